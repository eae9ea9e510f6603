"""What a DVC project of this pipeline holds: each stage's outputs, which stages are stale
(``dvc status``) and the metrics, for ``python -m pipeline info``."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from pathlib import Path

from pipeline.core.artifacts import read_json
from pipeline.core.errors import NolaError


class ProjectError(NolaError, RuntimeError):
    """Not a DVC project of this pipeline, or DVC could not tell its status."""


@dataclass
class StageInfo:
    name: str
    outputs: list[tuple[str, int | None]]
    """(path, size in bytes or None when missing)"""
    changes: list[str]
    """Why the stage would rerun; empty when up to date."""


def _resolved_stages(project: Path) -> list[tuple[str, list[str], list[str]]]:
    """(stage name, output paths, metrics paths) with dvc.yaml's foreach expanded (split@eurosat, ...)."""
    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    if not (project / "dvc.yaml").is_file():
        raise ProjectError(f"{project}: no dvc.yaml here; run from the project root or pass --project")
    try:
        with Repo(str(project)) as repo:
            return [
                (stage.name, [str(o.def_path) for o in stage.outs], [str(o.def_path) for o in stage.outs if o.metric])
                for stage in repo.index.stages
            ]
    except DvcException as err:
        raise ProjectError(f"{project}: DVC cannot read the pipeline: {err}") from None


def dvc_status(project: Path) -> dict:
    """``dvc status --json``: stage -> list of {"changed deps" / "changed outs": {path: state}}."""
    try:
        result = subprocess.run(["dvc", "status", "--json"], cwd=project, capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise ProjectError("dvc is not installed; pip install -r requirements.txt") from None
    if result.returncode != 0:
        raise ProjectError(f"{project}: dvc status failed: {result.stderr.strip() or result.stdout.strip()}")
    return json.loads(result.stdout or "{}")


def _describe_changes(entries: list) -> list[str]:
    changes = []
    for entry in entries:
        if isinstance(entry, str):
            changes.append(entry)
            continue
        for kind, items in entry.items():
            for path, state in (items or {}).items():
                if isinstance(state, dict):
                    changes += [f"param {key} {what}" for key, what in state.items()]
                else:
                    changes.append(f"{kind.removeprefix('changed ').rstrip('s')} {path} {state}")
    return changes


def stage_infos(project: Path) -> list[StageInfo]:
    stages = _resolved_stages(project)
    status = dvc_status(project)
    return [
        StageInfo(
            name,
            [(p, (project / p).stat().st_size if (project / p).is_file() else None) for p in outs],
            _describe_changes(status.get(name, [])),
        )
        for name, outs, _ in stages
    ]


def metric_files(project: Path) -> list[Path]:
    return [project / p for _, _, metrics in _resolved_stages(project) for p in metrics]


def _size(n: int | None) -> str:
    if n is None:
        return "missing"
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return ""


def accuracy_table(metrics: dict) -> list[str]:
    """The four methods' accuracy, NoLA's gain over zero-shot, pseudo-label count and precision."""
    if not isinstance(metrics, dict) or not isinstance(metrics.get("accuracy") or {}, dict):
        return ["  not a metrics document of the evaluate stage (rerun it: dvc repro evaluate)"]
    accuracy = metrics.get("accuracy") or {}
    lines = [f"  {m:<10} {100 * a:6.2f} %" for m, a in accuracy.items() if a is not None]
    if metrics.get("nola_gain") is not None:
        lines.append(f"  NoLA - zero-shot: {100 * metrics['nola_gain']:+.2f} points")
    pseudo = metrics.get("pseudo_labels") or {}
    if pseudo.get("count") is not None:
        precision = pseudo.get("precision")
        lines.append(
            f"  pseudo-labels: {pseudo['count']}"
            + (f", precision {100 * precision:.1f} %" if precision is not None else "")
        )
    return lines


def report(project: Path) -> str:
    lines = []
    infos = stage_infos(project)
    for info in infos:
        state = (
            "up to date" if not info.changes else ("never run" if all(s is None for _, s in info.outputs) else "stale")
        )
        lines.append(f"{info.name}: {state}")
        lines += [f"    {path}  ({_size(size)})" for path, size in info.outputs]
        if info.changes and state == "stale":
            lines += [f"    changed: {c}" for c in info.changes[:8]]
            if len(info.changes) > 8:
                lines.append(f"    ... and {len(info.changes) - 8} more (dvc status)")
    stale = [i.name for i in infos if i.changes]
    lines.append("")
    lines.append(
        f"stale: {', '.join(stale)} (dvc repro reruns them, and the stages their new outputs feed)"
        if stale
        else "every stage is up to date"
    )
    for path in metric_files(project):
        if path.is_file():
            lines += ["", f"metrics ({path.relative_to(project)}):", *accuracy_table(read_json(path))]
    return "\n".join(lines)
