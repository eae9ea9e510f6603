"""README tables generated from their sources, so that they cannot drift: the params table from the
pydantic model (pipeline/core/params.py), the command table from the typer app. ``nola docs --write``
rewrites them between their markers; the unit tests fail when README.md differs."""

from __future__ import annotations

import json
import re
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types
import typer
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from pipeline.core.errors import NolaError
from pipeline.core.params import Params

REGENERATE = "nola docs --write (or: make docs)"


def _cell(text: str) -> str:
    """Markdown table cells may not hold a bare '|' or a newline."""
    return text.replace("|", "\\|").replace("\n", " ")


def _code(value: Any) -> str:
    return "`" + (json.dumps(value) if not isinstance(value, str) else value) + "`"


def _section(annotation: Any) -> tuple[type[BaseModel] | None, bool]:
    """The nested model a field holds, and whether it holds one per name (``dict[str, Model]``)."""
    if get_origin(annotation) is dict:
        value = get_args(annotation)[1]
        return (value, True) if isinstance(value, type) and issubclass(value, BaseModel) else (None, False)
    return (annotation, False) if isinstance(annotation, type) and issubclass(annotation, BaseModel) else (None, False)


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " | ".join(_code(a) for a in get_args(annotation))
    if get_origin(annotation) in (Union, types.UnionType):
        names = [_type_name(a) for a in get_args(annotation) if a is not type(None)]
        return " or ".join(names) + (" or `null`" if type(None) in get_args(annotation) else "")
    if get_origin(annotation) is list:
        return f"list of {_type_name(get_args(annotation)[0])}"
    if get_origin(annotation) is dict:
        return "mapping"
    return getattr(annotation, "__name__", str(annotation))


_BOUNDS = {
    annotated_types.Ge: (">=", "ge"),
    annotated_types.Gt: (">", "gt"),
    annotated_types.Le: ("<=", "le"),
    annotated_types.Lt: ("<", "lt"),
}


def _allowed(field: Any) -> str:
    text = _type_name(field.annotation)
    bounds = [f"{_BOUNDS[type(m)][0]} {getattr(m, _BOUNDS[type(m)][1])}" for m in field.metadata if type(m) in _BOUNDS]
    bounds += ["non-empty" for m in field.metadata if isinstance(m, annotated_types.MinLen) and m.min_length == 1]
    return text + (" " + ", ".join(bounds) if bounds else "")


def _default(field: Any) -> str:
    if field.default_factory is not None:
        return _code(field.default_factory())
    return "required" if field.default is PydanticUndefined else _code(field.default)


def params_rows(model: type[BaseModel] = Params, prefix: str = "") -> Iterator[tuple[str, str, str, str]]:
    """(key, default, allowed values, help) of every leaf key, depth first in the model's order."""
    for name, field in model.model_fields.items():
        nested, per_name = _section(field.annotation)
        key = f"{prefix}{name}"
        if nested is not None:
            yield from params_rows(nested, f"{key}.<name>." if per_name else f"{key}.")
        else:
            yield key, _default(field), _allowed(field), field.description or ""


def params_table(model: type[BaseModel] = Params) -> str:
    lines = ["| key | default | allowed values | meaning |", "| --- | --- | --- | --- |"]
    lines += [f"| `{k}` | {_cell(d)} | {_cell(a)} | {_cell(h)} |" for k, d, a, h in params_rows(model)]
    return "\n".join(lines)


def _usage(command: Any) -> str:
    """Arguments and options of a command (typer's own click copy, so duck-typed)."""
    parts = []
    for p in command.params:
        if p.param_type_name == "argument":
            parts.append(f"[{p.name.upper()}]" if not p.required else p.name.upper())
        elif p.name != "help":
            parts.append(f"[{p.opts[0]}{'' if getattr(p, 'is_flag', False) else ' ' + p.name.upper()}]")
    return " ".join(parts)


def commands_table(app: typer.Typer) -> str:
    """One row per command of the app: its arguments and options, and its help's first paragraph."""
    group = typer.main.get_command(app)
    lines = ["| command | what it does |", "| --- | --- |"]
    for name, command in sorted(group.commands.items()):
        usage = f"nola {name} {_usage(command)}".strip()
        lines.append(f"| `{_cell(usage)}` | {_cell(_first_paragraph(command.help or ''))} |")
    return "\n".join(lines)


def _first_paragraph(text: str) -> str:
    """A docstring's first paragraph on one line (a summary may wrap)."""
    return " ".join(text.strip().split("\n\n")[0].split())


def tables() -> dict[str, str]:
    """Each generated table by its README marker name."""
    from pipeline.__main__ import app

    return {"params-table": params_table(), "cli-table": commands_table(app)}


def _span(name: str) -> re.Pattern[str]:
    return re.compile(rf"(<!-- {name}:start -->\n)(.*?)(<!-- {name}:end -->)", re.S)


def render(readme: str, generated: dict[str, str]) -> str:
    """The README text with each marked table replaced by its generated one."""
    for name, table in generated.items():
        if not _span(name).search(readme):
            raise NolaError(f"README has no <!-- {name}:start --> ... <!-- {name}:end --> markers")
        readme = _span(name).sub(lambda m, t=table: m.group(1) + t + "\n" + m.group(3), readme)
    return readme


def stale(readme: str, generated: dict[str, str]) -> list[str]:
    """The names of the marked tables whose README text differs from the generated one."""
    return [name for name, table in generated.items() if render(readme, {name: table}) != readme]


def write_tables(readme_path: Path) -> list[str]:
    """Regenerate the tables in place; the names of those that changed."""
    text = readme_path.read_text(encoding="utf-8")
    generated = tables()
    changed = stale(text, generated)
    if changed:
        readme_path.write_text(render(text, generated), encoding="utf-8")
    return changed
