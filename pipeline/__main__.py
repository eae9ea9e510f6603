"""The user CLI: ``python -m pipeline --help``."""
import subprocess
import sys
from pathlib import Path

import typer
import yaml

from pipeline import datasets
from pipeline.params import dataset_names, load_dataset
from pipeline.stage import run_app

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


@app.command("fetch-data")
def fetch_data(
    dataset: list[str] = typer.Option(None, help="only these entries of params.yaml's datasets"),
    params: Path = Path("params.yaml"),
) -> None:
    """Download (EuroSAT) or generate (synthetic) the images of each dataset in params.yaml."""
    for name in dataset or dataset_names(params):
        root = datasets.fetch(load_dataset(params, name).data)
        typer.echo(f"{name}: images ready under {root}")


@app.command()
def smoke(directory: Path = typer.Argument(Path(".smoke"), help="where to create the scratch DVC project")) -> None:
    """Run the whole pipeline offline on the smoke configuration in a scratch DVC project."""
    from pipeline.project import PROJECT_ROOT, scaffold

    project = scaffold(directory, yaml.safe_load((PROJECT_ROOT / "configs" / "smoke.yaml").read_text()))
    subprocess.run([sys.executable, "-m", "pipeline", "fetch-data"], cwd=project, check=True)
    subprocess.run(["dvc", "repro"], cwd=project, check=True)
    for name in dataset_names(project / "params.yaml"):
        typer.echo(f"metrics: {project / 'artifacts' / name / 'evaluate' / 'metrics.json'}")


@app.callback()
def main() -> None:
    """NoLA: label-free tuning of CLIP zero-shot classifiers."""


if __name__ == "__main__":
    run_app(app)
