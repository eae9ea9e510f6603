"""The paper's table from this pipeline's metrics: one row per dataset, the average, and the
paper's headline beside it for comparison."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

from pipeline.core.artifacts import read_json
from pipeline.core.errors import NolaError

METHODS = ("zero_shot", "cde", "dl", "nola")
HEADLINE = {"over_zero_shot": 11.9, "over_lafter": 3.6, "datasets": 11}
# CLIP ViT-B/32 (OpenAI weights) zero-shot top-1 with open_clip's own benchmark prompts, to sanity-check
# this pipeline's zero_shot column (papers report slightly different values).
REFERENCE_ZERO_SHOT = {
    "imagenet": 63.3,
    "caltech101": 87.6,
    "cifar10": 89.8,
    "cifar100": 64.2,
    "dtd": 44.4,
    "eurosat": 50.4,
    "flowers102": 66.7,
    "oxford_pets": 87.0,
    "sun397": 62.5,
    "resisc45": 53.6,
    "food101": 84.0,
    "stanford_cars": 59.6,
    "fgvc_aircraft": 19.5,
}
METRICS_PATH = re.compile(r"artifacts/([^/]+)/evaluate/metrics\.json")


class TableError(NolaError, ValueError):
    """Metrics that cannot be put in the table."""


def accuracies(metrics: dict, origin: str) -> dict[str, float]:
    """Percent accuracy of each method in one metrics.json document."""
    try:
        return {m: 100.0 * float(metrics["accuracy"][m]) for m in METHODS}
    except (KeyError, TypeError, ValueError):
        raise TableError(
            f"{origin}: not a metrics.json of the evaluate stage (needs accuracy.{{{','.join(METHODS)}}})"
        ) from None


def from_files(specs: list[str]) -> dict[str, dict[str, float]]:
    """``NAME=path/metrics.json`` or ``path/NAME.json`` -> dataset -> method -> accuracy (%)."""
    rows = {}
    for spec in specs:
        name, _, path = spec.rpartition("=")
        rows[name or Path(path).stem] = accuracies(read_json(path), path)
    return rows


def dataset_of(metrics_path: str) -> str | None:
    """``artifacts/<dataset>/evaluate/metrics.json`` -> dataset."""
    match = METRICS_PATH.fullmatch(Path(metrics_path).as_posix())
    return match.group(1) if match else None


def from_workspace(root: str | Path = ".") -> dict[str, dict[str, float]]:
    """Every dataset's metrics in a DVC project: dataset -> method -> accuracy (%)."""
    return {
        p.parts[-3]: accuracies(read_json(p), str(p))
        for p in sorted(Path(root).glob("artifacts/*/evaluate/metrics.json"))
    }


def from_exp_show(doc: list) -> dict[str, dict[str, float]]:
    """``dvc exp show --json`` -> dataset -> method -> accuracy (%), later revisions winning."""
    if not isinstance(doc, list):
        raise TableError("expected the JSON list that `dvc exp show --json` prints")
    rows: dict[str, dict[str, float]] = {}

    def visit(entry: dict) -> None:
        data = entry.get("data") or {}
        for path, content in (data.get("metrics") or {}).items():
            name = dataset_of(path)
            if name and (content or {}).get("data"):
                rows[name] = accuracies(content["data"], f"{entry.get('name') or data.get('rev')}: {path}")
        for exp in entry.get("experiments") or []:
            for rev in exp.get("revs") or []:
                visit(rev)

    for entry in doc:
        visit(entry)
    return rows


def _cell(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.1f}"


def markdown(rows: dict[str, dict[str, float]]) -> str:
    if not rows:
        raise TableError("no metrics given")
    head = "| dataset | zero-shot | CDE | DL | NoLA | NoLA - zero-shot | zero-shot, open_clip reference |"
    lines = [head, "|" + " --- |" * 7]
    for name in sorted(rows):
        r = rows[name]
        lines.append(
            f"| {name} | "
            + " | ".join(_cell(r[m]) for m in METHODS)
            + f" | {r['nola'] - r['zero_shot']:+.1f} | {_cell(REFERENCE_ZERO_SHOT.get(name))} |"
        )
    mean = {m: sum(r[m] for r in rows.values()) / len(rows) for m in METHODS}
    gain = mean["nola"] - mean["zero_shot"]
    lines.append(
        f"| **average ({len(rows)})** | "
        + " | ".join(f"**{mean[m]:.1f}**" for m in METHODS)
        + f" | **{gain:+.1f}** | |"
    )
    lines += [
        "",
        f"Paper (CLIP ViT-B/32, {HEADLINE['datasets']} datasets): NoLA {HEADLINE['over_zero_shot']:+.1f} points "
        f"over zero-shot CLIP and {HEADLINE['over_lafter']:+.1f} over LaFTer on average.",
        f"This run ({len(rows)} dataset{'s' if len(rows) != 1 else ''}): NoLA {gain:+.1f} points over zero-shot "
        f"CLIP on average ({gain - HEADLINE['over_zero_shot']:+.1f} against the paper's gain).",
    ]
    return "\n".join(lines) + "\n"


def load_exp_show(path: str | Path) -> dict[str, dict[str, float]]:
    return from_exp_show(json.loads(Path(path).read_text(encoding="utf-8")))
