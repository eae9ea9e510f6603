"""Reproduce the paper's table: every benchmark as one entry of params.yaml's `datasets`, one
`dvc repro` (each dataset gets its own cached stages), then a markdown table of the metrics.

    python scripts/paper_benchmark.py params > benchmarks.yaml   # the datasets: block, paper's 11
    # paste it into params.yaml (or: dvc exp run --set-param 'datasets=...'), then
    python -m pipeline fetch-data && dvc repro
    python scripts/paper_benchmark.py table                      # reads artifacts/*/evaluate/metrics.json
    dvc exp show --json > exps.json && python scripts/paper_benchmark.py table --exp-show exps.json
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.core.params import ClipParams  # noqa: E402
from pipeline.core.stage import run_app  # noqa: E402
from pipeline.data.benchmarks import get_benchmark  # noqa: E402
from pipeline.report import paper_table  # noqa: E402

PAPER_DATASETS = [
    "imagenet",
    "caltech101",
    "dtd",
    "eurosat",
    "fgvc_aircraft",
    "food101",
    "flowers102",
    "oxford_pets",
    "stanford_cars",
    "sun397",
    "ucf101",
]
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)
Names = Annotated[list[str] | None, typer.Argument(help="datasets (default: the paper's 11)")]


PAPER_CLIP = ClipParams(model="ViT-B-32", pretrained="openai")
HEADER = f"""\
# The paper's protocol: CoOp's split JSONs (put each in its data.root; CoOp's DATASETS.md links
# them), the reference code's per-dataset templates, and clip: {{model: {PAPER_CLIP.model}, pretrained:
# {PAPER_CLIP.pretrained}, quick_gelu: auto}} (params.yaml's defaults; auto builds QuickGELU, as
# OpenAI's weights need). The paper's GPT-3.5 descriptions: describe.source: file with its JSON.
"""


@app.command()
def params(names: Names = None) -> None:
    """Print the `datasets:` block of params.yaml for these benchmarks (images under data/<name>)."""
    entries = {name: get_benchmark(name).params_entry(paper=True) for name in names or PAPER_DATASETS}
    typer.echo(HEADER + yaml.safe_dump({"datasets": entries}, sort_keys=False, width=200), nl=False)


@app.command()
def table(
    metrics: Annotated[
        list[str] | None,
        typer.Argument(
            help="metrics.json files: NAME=path or path/NAME.json (default: artifacts/*/evaluate/metrics.json)"
        ),
    ] = None,
    exp_show: Annotated[Path | None, typer.Option(help="the output of dvc exp show --json")] = None,
    out: Annotated[Path | None, typer.Option(help="write the table here instead of printing it")] = None,
) -> None:
    """A markdown table of the four methods per dataset, with the paper's headline."""
    rows = paper_table.from_files(metrics) if metrics else {}
    if exp_show:
        rows.update(paper_table.load_exp_show(exp_show))
    if not metrics and not exp_show:
        rows = paper_table.from_workspace()
    text = paper_table.markdown(rows)
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text)


if __name__ == "__main__":
    run_app(app)
