"""The user CLI: ``python -m pipeline --help``."""
from pathlib import Path

import typer

from pipeline import datasets
from pipeline.params import DataParams, load_section
from pipeline.stage import run_app

app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, help=__doc__)


@app.command("fetch-data")
def fetch_data(params: Path = Path("params.yaml")) -> None:
    """Download (EuroSAT) or generate (synthetic) the images that params.yaml's data section names."""
    root = datasets.fetch(load_section(params, "data", DataParams))
    typer.echo(f"images ready under {root}")


@app.command()
def smoke(directory: Path = typer.Argument(Path(".smoke"), help="where to create the scratch DVC project")) -> None:
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


@app.callback()
def main() -> None:
    """NoLA: label-free tuning of CLIP zero-shot classifiers."""


if __name__ == "__main__":
    run_app(app)
