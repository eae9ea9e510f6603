"""NoLA: label-free tuning of CLIP zero-shot classifiers. Each command has its own --help."""

import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Annotated

import typer
import yaml

from pipeline.core.params import load_params
from pipeline.core.stage import deterministic_torch, run_app

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


@app.command("fetch-data")
def fetch_data(
    dataset: Annotated[list[str] | None, typer.Option(help="only these entries of params.yaml's datasets")] = None,
    params: Path = Path("params.yaml"),
) -> None:
    """Download (torchvision datasets) or generate (synthetic) the images of each dataset in params.yaml."""
    from pipeline.data import datasets

    p = load_params(params)
    for name in dataset or list(p.datasets):
        root = datasets.fetch(p.dataset(name).data)
        typer.echo(f"{name}: images ready under {root}")


@app.command(context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
def repro(
    ctx: typer.Context, params: Annotated[Path, typer.Option(help="the params to check")] = Path("params.yaml")
) -> None:
    """Check every data.root of params.yaml for entries DVC would hang or stop on, then run
    `dvc repro` with the remaining arguments (e.g. `nola repro evaluate@eurosat --force`)."""
    from pipeline.cli.data_roots import check_data_roots

    check_data_roots(load_params(params), Path.cwd())
    raise typer.Exit(subprocess.run(["dvc", "repro", *ctx.args]).returncode)


@app.command()
def smoke(
    directory: Annotated[Path, typer.Argument(help="where to create the scratch DVC project")] = Path(".smoke"),
) -> None:
    """Run the whole pipeline offline on the smoke configuration in a scratch DVC project."""
    from pipeline.cli.project import PROJECT_ROOT, scaffold

    project = scaffold(directory, yaml.safe_load((PROJECT_ROOT / "configs" / "smoke.yaml").read_text()))
    subprocess.run([sys.executable, "-m", "pipeline", "fetch-data"], cwd=project, check=True)
    subprocess.run(["dvc", "repro"], cwd=project, check=True)
    for name in load_params(project / "params.yaml").datasets:
        typer.echo(f"metrics: {project / 'artifacts' / name / 'evaluate' / 'metrics.json'}")


@app.command()
def predict(
    images: Annotated[
        Path,
        typer.Argument(
            help="a folder of images (searched recursively) or a CSV / parquet "
            "manifest with a 'path' column, relative to the manifest"
        ),
    ],
    out: Annotated[Path, typer.Option("--out", "-o", help="the CSV to write")] = Path("predictions.csv"),
    dataset: Annotated[str | None, typer.Option(help="whose tuned model (default: the first in params.yaml)")] = None,
    tuned: Annotated[Path | None, typer.Option(help="the tune stage's artifact (default: the dataset's)")] = None,
    params: Annotated[Path, typer.Option(help="params.yaml with the artifact's clip section")] = Path("params.yaml"),
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="classes per image")] = 5,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    num_workers: Annotated[int, typer.Option(min=0, help="image decoding processes")] = 0,
) -> None:
    """Classify new images with the tuned model: a CSV of the top-k classes and their probabilities."""
    from pipeline.cli.predict import predict_images

    p = load_params(params)
    if tuned is None:
        name = dataset or next(iter(p.datasets))
        tuned = Path("artifacts") / name / "tune" / "prompt.safetensors"
    deterministic_torch()
    n, skipped = predict_images(tuned, p.clip, images, out, top_k, batch_size, num_workers)
    for image_id, reason in skipped:
        typer.echo(f"skipped {image_id}: {reason}", err=True)
    typer.echo(f"{n} images -> {out}" + (f"; {len(skipped)} files skipped (listed above)" if skipped else ""))


@app.command()
def predictions(
    dataset: Annotated[str | None, typer.Argument(help="whose predictions (default: the first in params.yaml)")] = None,
    csv: Annotated[Path, typer.Option("--csv", help="the CSV to write")] = Path("predictions.csv"),
    params: Annotated[Path, typer.Option(help="params.yaml naming the datasets")] = Path("params.yaml"),
) -> None:
    """Export the predict stage's predictions (every image, four classifiers, top classes) as CSV."""
    from pipeline.report.predictions import export_csv

    name = dataset or next(iter(load_params(params).datasets))
    n = export_csv(Path("artifacts") / name / "predict" / "predictions.parquet", csv)
    typer.echo(f"{n} images -> {csv}")


@app.command()
def info(project: Annotated[Path, typer.Option(help="the DVC project's root")] = Path(".")) -> None:
    """What each stage produced, which stages are stale (dvc status) and the metrics."""
    from pipeline.cli.project_info import report

    typer.echo(report(project))


@app.command("datasets")
def list_datasets(
    name: Annotated[str | None, typer.Argument(help="one dataset: its details and params.yaml entry")] = None,
) -> None:
    """The supported datasets (data.source), their prompt domain and how to get them."""
    from pipeline.data.benchmarks import BENCHMARKS, get_benchmark

    if name is None:
        typer.echo(
            "data.source values: folder (root/<class>/<images>, or any layout without labels + data.classes), "
            "manifest (CSV / parquet), synthetic, and:\n"
        )
        for spec in BENCHMARKS.values():
            typer.echo(f"  {spec.name:<14} {spec.title:<28} domain: {spec.domain}\n{'':<17}{spec.get}")
        typer.echo("\nDetails and the params.yaml entry: python -m pipeline datasets NAME")
        return
    spec = get_benchmark(name)
    typer.echo(f"{spec.title} (data.source: {spec.name})\n  get it: {spec.get}\n  domain: {spec.domain}")
    typer.echo("  templates:\n" + "\n".join(f"    {t}" for t in spec.templates))
    typer.echo("  add it under `datasets:` in params.yaml:\n" + textwrap.indent(spec.params_yaml(), "    "))


@app.command()
def models() -> None:
    """Suggested CLIP (open_clip) and DINO (timm) models."""
    from pipeline.models.catalog import table

    typer.echo(table())


@app.command()
def docs(
    write: Annotated[bool, typer.Option("--write", help="rewrite README.md's tables in place")] = False,
    readme: Annotated[Path, typer.Option(help="the README with the table markers")] = Path("README.md"),
) -> None:
    """Print the README's generated tables (params, commands); --write updates them in README.md."""
    from pipeline.cli.docs import tables, write_tables

    if not write:
        typer.echo("\n\n".join(tables().values()))
        return
    changed = write_tables(readme)
    typer.echo(f"{readme}: regenerated {', '.join(changed)}" if changed else f"{readme}: tables up to date")


@app.callback()
def root_callback() -> None:
    """NoLA: label-free tuning of CLIP zero-shot classifiers."""


def main() -> None:
    """The installed ``nola`` command."""
    run_app(app)


if __name__ == "__main__":
    main()
