"""The paper's table from this pipeline's metrics: one row per dataset, the average, and the
paper's headline beside it for comparison."""
from __future__ import annotations

import json
import math
from pathlib import Path

from .artifacts import read_json
from .errors import NolaError

METHODS = ("zero_shot", "cde", "dl", "nola")
HEADLINE = {"over_zero_shot": 11.9, "over_lafter": 3.6, "datasets": 11}
# CLIP ViT-B/32 (OpenAI weights) zero-shot top-1 with open_clip's own benchmark prompts, to sanity-check
# this pipeline's zero_shot column (papers report slightly different values).
REFERENCE_ZERO_SHOT = {
    "imagenet": 63.3, "caltech101": 87.6, "cifar10": 89.8, "cifar100": 64.2, "dtd": 44.4, "eurosat": 50.4,
    "flowers102": 66.7, "oxford_pets": 87.0, "sun397": 62.5, "resisc45": 53.6, "food101": 84.0,
    "stanford_cars": 59.6, "fgvc_aircraft": 19.5,
}
METRICS_FILE = "artifacts/evaluate/metrics.json"


class TableError(NolaError, ValueError):
    """Metrics that cannot be put in the table."""


def accuracies(metrics: dict, origin: str) -> dict[str, float]:
    """Percent accuracy of each method in one metrics.json document."""
    try:
        return {m: 100.0 * float(metrics["accuracy"][m]) for m in METHODS}
    except (KeyError, TypeError, ValueError):
        raise TableError(f"{origin}: not a metrics.json of the evaluate stage (needs accuracy.{{{','.join(METHODS)}}})"
                         ) from None


def from_files(specs: list[str]) -> dict[str, dict[str, float]]:
    """``NAME=path/metrics.json`` or ``path/NAME.json`` -> dataset -> method -> accuracy (%)."""
    rows = {}
    for spec in specs:
        name, _, path = spec.rpartition("=")
        rows[name or Path(path).stem] = accuracies(read_json(path), path)
    return rows


def from_exp_show(doc: list) -> dict[str, dict[str, float]]:
    """``dvc exp show --json`` -> dataset (its data.source) -> method -> accuracy (%).

    When experiments named ``nola-*`` (as the plan makes them) exist, only they count; otherwise
    every row with metrics does, later rows winning for the same dataset.
    """
    if not isinstance(doc, list):
        raise TableError("expected the JSON list that `dvc exp show --json` prints")
    found: list[tuple[str, str, dict]] = []

    def visit(entry: dict) -> None:
        data = entry.get("data") or {}
        metrics = ((data.get("metrics") or {}).get(METRICS_FILE) or {}).get("data")
        params = ((data.get("params") or {}).get("params.yaml") or {}).get("data") or {}
        name = entry.get("name") or str(data.get("rev"))
        if metrics:
            found.append((name, (params.get("data") or {}).get("source") or name, metrics))
        for exp in entry.get("experiments") or []:
            for rev in exp.get("revs") or []:
                visit(rev)

    for entry in doc:
        visit(entry)
    ours = [f for f in found if f[0].startswith("nola-")]
    return {source: accuracies(metrics, f"experiment {name}") for name, source, metrics in ours or found}


def _cell(value: float | None) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.1f}"


def markdown(rows: dict[str, dict[str, float]]) -> str:
    if not rows:
        raise TableError("no metrics given")
    head = "| dataset | zero-shot | CDE | DL | NoLA | NoLA - zero-shot | zero-shot, open_clip reference |"
    lines = [head, "|" + " --- |" * 7]
    for name in sorted(rows):
        r = rows[name]
        lines.append(f"| {name} | " + " | ".join(_cell(r[m]) for m in METHODS)
                     + f" | {r['nola'] - r['zero_shot']:+.1f} | {_cell(REFERENCE_ZERO_SHOT.get(name))} |")
    mean = {m: sum(r[m] for r in rows.values()) / len(rows) for m in METHODS}
    gain = mean["nola"] - mean["zero_shot"]
    lines.append(f"| **average ({len(rows)})** | " + " | ".join(f"**{mean[m]:.1f}**" for m in METHODS)
                 + f" | **{gain:+.1f}** | |")
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
