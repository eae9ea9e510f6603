"""Each dvc.yaml stage depends on all the code it runs, so an edit of any module a stage imports
makes `dvc status` report that stage stale. The import closure is read from the source (every
import statement of every project module reached, those inside functions too)."""

from __future__ import annotations

import ast
import re
import shutil
from pathlib import Path

import pytest
import yaml

from helpers import PROJECT, STAGES, sh

ROOTS = ("pipeline", "stages")
MODULE_IN_CMD = re.compile(r"python -m ([\w.]+)(?: (stages\.\w+))?")


def module_file(name: str) -> Path | None:
    path = PROJECT.joinpath(*name.split("."))
    for candidate in (path / "__init__.py", path.with_suffix(".py")):
        if candidate.is_file():
            return candidate
    return None


def imported_modules(name: str) -> set[str]:
    """Project modules that ``name`` imports, as dotted names (``from a import b`` may name a module b)."""
    path = module_file(name)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, base] if base else parts)
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    return {m for m in found if m.split(".")[0] in ROOTS and module_file(m)}


def import_closure(modules: list[str]) -> set[str]:
    """Files (relative to the project) of ``modules`` and of everything they import, packages'
    ``__init__.py`` included, since importing a module runs them."""
    seen: set[str] = set()
    todo = list(modules)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo += [".".join(parts[:i]) for i in range(1, len(parts))]
        todo += imported_modules(name)
    return {module_file(m).relative_to(PROJECT).as_posix() for m in seen}


def stages() -> dict[str, dict]:
    """Each stage of dvc.yaml (a foreach stage once, by its template) with its command and deps."""
    doc = yaml.safe_load((PROJECT / "dvc.yaml").read_text())
    return {name: stage.get("do", stage) for name, stage in doc["stages"].items()}


@pytest.mark.unit
def test_the_tests_stage_list_is_dvc_yamls():
    """tests/helpers.STAGES, which the e2e tests count runs against, lists dvc.yaml's per-dataset stages."""
    doc = yaml.safe_load((PROJECT / "dvc.yaml").read_text())
    assert tuple(name for name, stage in doc["stages"].items() if "foreach" in stage) == STAGES


def entry_modules(cmd: str) -> list[str]:
    match = MODULE_IN_CMD.search(" ".join(cmd.split()))
    assert match, f"no 'python -m MODULE' in {cmd!r}"
    return [m for m in match.groups() if m]


def uncovered(stage: dict) -> list[str]:
    """Imported files that no code dependency of ``stage`` (a file or a folder) covers."""
    code = [d for d in stage["deps"] if "${" not in d and d.split("/")[0] in ROOTS]
    return sorted(
        f for f in import_closure(entry_modules(stage["cmd"])) if not any(f == d or f.startswith(d + "/") for d in code)
    )


@pytest.mark.unit
@pytest.mark.parametrize("name", list(stages()))
def test_every_stage_depends_on_the_code_it_imports(name):
    assert uncovered(stages()[name]) == []


@pytest.mark.unit
@pytest.mark.parametrize("name", list(stages()))
def test_removing_any_code_dep_is_caught(name):
    """The check above can fail: without any one of its code deps, a stage misses modules."""
    stage = stages()[name]
    for dep in [d for d in stage["deps"] if d.split("/")[0] in ROOTS]:
        assert uncovered({**stage, "deps": [d for d in stage["deps"] if d != dep]}), f"{name}: {dep} is not needed"


def deepest_module(name: str) -> str:
    """A library module only this stage's closure reaches through other modules, preferably."""
    closure = import_closure(entry_modules(stages()[name]["cmd"]))
    library = sorted(f for f in closure if f.startswith("pipeline/") and not f.endswith("__init__.py"))
    return max(library, key=lambda f: (f.count("/"), f))


@pytest.mark.e2e
def test_editing_a_module_makes_its_stage_stale(smoke_run, tmp_path):
    """In a reproduced project, appending a comment to one module each stage imports makes
    `dvc status` name that stage (and the edit reverted, up to date again)."""
    project = tmp_path / "project"
    shutil.copytree(smoke_run[0], project, symlinks=True)
    for name in stages():
        module = project / deepest_module(name)
        original = module.read_text(encoding="utf-8")
        module.write_text(original + "\n# edited\n", encoding="utf-8")
        status = sh("dvc", "status", cwd=project).stdout
        module.write_text(original, encoding="utf-8")
        stage = name if name == "check_params" else f"{name}@synthetic"
        assert f"{stage}:" in status, f"editing {module.relative_to(project)} left {stage} up to date:\n{status}"
    assert "up to date" in sh("dvc", "status", cwd=project).stdout
