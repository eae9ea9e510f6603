"""NoLA: label-free tuning of CLIP zero-shot classifiers. Each command has its own --help."""
import shlex
from pathlib import Path
from typing import Annotated

import typer

from pipeline import datasets
from pipeline.params import DataParams, load_section
from pipeline.stage import run_app

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


@app.command("fetch-data")
def fetch_data(
    params: Path = Path("params.yaml"),
    dataset: Annotated[str | None, typer.Option(help="a benchmark to fetch into data/<name> instead of "
                                                     "params.yaml's data section (see: datasets)")] = None,
) -> None:
    """Download (torchvision datasets) or generate (synthetic) the images that params.yaml's data section names."""
    from pipeline.benchmarks import get_benchmark

    data = (DataParams(source=get_benchmark(dataset).name, root=f"data/{dataset}") if dataset
            else load_section(params, "data", DataParams))
    typer.echo(f"images ready under {datasets.fetch(data)}")


@app.command()
def smoke(
    directory: Annotated[Path, typer.Argument(help="where to create the scratch DVC project")] = Path(".smoke"),
) -> None:
    """Run the whole pipeline offline on the smoke configuration in a scratch DVC project."""
    import subprocess

    import yaml

    from pipeline.project import PROJECT_ROOT, scaffold

    params = yaml.safe_load((PROJECT_ROOT / "configs" / "smoke.yaml").read_text())
    project = scaffold(directory, params)
    datasets.fetch(load_section(project / "params.yaml", "data", DataParams).model_copy(
        update={"root": str(project / params["data"]["root"])}))
    subprocess.run(["dvc", "repro"], cwd=project, check=True)
    typer.echo(f"metrics: {project / 'artifacts' / 'evaluate' / 'metrics.json'}")


@app.command()
def predict(
    images: Annotated[Path, typer.Argument(help="a folder of images (searched recursively) or a CSV / parquet "
                                                "manifest with a 'path' column, relative to the manifest")],
    out: Annotated[Path, typer.Option("--out", "-o", help="the CSV to write")] = Path("predictions.csv"),
    tuned: Annotated[Path, typer.Option(help="the tune stage's artifact")] = Path("artifacts/tune/prompt.safetensors"),
    params: Annotated[Path, typer.Option(help="params.yaml with the artifact's clip section")] = Path("params.yaml"),
    top_k: Annotated[int, typer.Option("--top-k", "-k", min=1, help="classes per image")] = 5,
    batch_size: Annotated[int, typer.Option(min=1)] = 64,
    num_workers: Annotated[int, typer.Option(min=0, help="image decoding processes")] = 0,
) -> None:
    """Classify new images with the tuned model: a CSV of the top-k classes and their probabilities."""
    from pipeline.params import ClipParams
    from pipeline.predict import predict_images

    n = predict_images(tuned, load_section(params, "clip", ClipParams), images, out, top_k, batch_size, num_workers)
    typer.echo(f"{n} images -> {out}")


@app.command()
def info(project: Annotated[Path, typer.Option(help="the DVC project's root")] = Path(".")) -> None:
    """What each stage produced, which stages are stale (dvc status) and the metrics."""
    from pipeline.project_info import report

    typer.echo(report(project))


@app.command("datasets")
def list_datasets(
    name: Annotated[str | None, typer.Argument(help="one dataset: its details and dvc exp run overrides")] = None,
) -> None:
    """The supported datasets (data.source), their prompt domain and how to get them."""
    from pipeline.benchmarks import BENCHMARKS, get_benchmark

    if name is None:
        typer.echo("data.source values: folder (root/<class>/<images>), manifest (CSV / parquet), synthetic, and:\n")
        for spec in BENCHMARKS.values():
            typer.echo(f"  {spec.name:<14} {spec.title:<28} domain: {spec.domain}\n{'':<17}{spec.get}")
        typer.echo("\nDetails and experiment overrides: python -m pipeline datasets NAME")
        return
    spec = get_benchmark(name)
    typer.echo(f"{spec.title} (data.source: {spec.name})\n  get it: {spec.get}\n  domain: {spec.domain}")
    typer.echo("  templates:\n" + "\n".join(f"    {t}" for t in spec.templates))
    typer.echo("  run it as an experiment:\n    " + shlex.join(spec.exp_run()))


@app.command()
def models() -> None:
    """Suggested CLIP (open_clip) and DINO (timm) models."""
    from pipeline.model_catalog import table

    typer.echo(table())


@app.callback()
def root_callback() -> None:
    """NoLA: label-free tuning of CLIP zero-shot classifiers."""


def main() -> None:
    """The installed ``nola`` command."""
    run_app(app)


if __name__ == "__main__":
    main()
