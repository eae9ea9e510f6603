"""Reproduce the paper's table: one `dvc exp run` per dataset, then a markdown table of the metrics.

    python scripts/paper_benchmark.py plan                 # the commands, one experiment per dataset
    python scripts/paper_benchmark.py run dtd eurosat      # fetch, run, keep results/<dataset>.json
    python scripts/paper_benchmark.py table results/*.json # the markdown table
    dvc exp show --json > exps.json && python scripts/paper_benchmark.py table --exp-show exps.json
"""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Annotated

import typer

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline import paper_table  # noqa: E402
from pipeline.benchmarks import BENCHMARKS  # noqa: E402
from pipeline.datasets import fetch  # noqa: E402
from pipeline.params import DataParams  # noqa: E402
from pipeline.stage import run_app  # noqa: E402

PAPER_DATASETS = ["imagenet", "caltech101", "dtd", "eurosat", "fgvc_aircraft", "food101", "flowers102",
                  "oxford_pets", "stanford_cars", "sun397", "ucf101"]
app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)
Names = Annotated[list[str] | None, typer.Argument(help="datasets (default: the paper's 11)")]


@app.command()
def plan(names: Names = None, queue: Annotated[bool, typer.Option(help="queue them (dvc queue start)")] = False):
    """Print the commands: fetch each dataset into data/<name>, then one `dvc exp run` per dataset."""
    names = names or PAPER_DATASETS
    for name in names:
        typer.echo(f"python -m pipeline fetch-data --dataset {name}")
    for name in names:
        typer.echo(shlex.join(BENCHMARKS[name].exp_run(queue)))
    if queue:
        typer.echo("dvc queue start")


@app.command()
def run(names: Names = None, results: Annotated[Path, typer.Option(help="where metrics land")] = Path("results")):
    """Fetch each dataset, run its experiment in the workspace, keep its metrics.json."""
    for name in names or PAPER_DATASETS:
        fetch(DataParams(source=name, root=f"data/{name}"))
        subprocess.run(BENCHMARKS[name].exp_run(), check=True)
        results.mkdir(parents=True, exist_ok=True)
        shutil.copy(paper_table.METRICS_FILE, results / f"{name}.json")
    typer.echo(f"results in {results}/; table: python scripts/paper_benchmark.py table {results}/*.json")


@app.command()
def table(
    metrics: Annotated[list[str] | None, typer.Argument(help="metrics.json files: NAME=path or path/NAME.json")] = None,
    exp_show: Annotated[Path | None, typer.Option(help="the output of dvc exp show --json")] = None,
    out: Annotated[Path | None, typer.Option(help="write the table here instead of printing it")] = None,
):
    """A markdown table of the four methods per dataset, with the paper's headline."""
    rows = paper_table.from_files(metrics or [])
    if exp_show:
        rows.update(paper_table.load_exp_show(exp_show))
    text = paper_table.markdown(rows)
    if out:
        out.write_text(text, encoding="utf-8")
    else:
        typer.echo(text)


if __name__ == "__main__":
    run_app(app)
