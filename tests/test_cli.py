"""The user CLI without a pipeline run: help, datasets, models, predict's input handling, the
installed entry point, and progress output."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from pipeline.__main__ import app
from pipeline.cli.predict import PredictError, list_images, top_k, usable
from pipeline.core.errors import DatasetError
from pipeline.core.progress import track
from pipeline.data.benchmarks import BENCHMARKS
from pipeline.models import catalog

from helpers import PROJECT, sh

runner = CliRunner()
COMMANDS = ["fetch-data", "smoke", "predict", "info", "datasets", "models", "docs"]


@pytest.mark.unit
@pytest.mark.parametrize("command", [[], *[[c] for c in COMMANDS]])
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output
    if not command:
        assert all(c in result.output for c in COMMANDS)


@pytest.mark.unit
def test_datasets_lists_every_benchmark_and_details_one():
    listing = runner.invoke(app, ["datasets"]).output
    assert all(name in listing for name in BENCHMARKS)
    detail = runner.invoke(app, ["datasets", "oxford_pets"]).output
    assert "domain: pets" in detail and "Visually describe a {}, a type of pet." in detail
    entry = yaml.safe_load(textwrap.dedent(detail.split("params.yaml:\n", 1)[1]))
    assert entry["oxford_pets"]["data"] == {"source": "oxford_pets", "root": "data/oxford_pets"}


@pytest.mark.unit
def test_unknown_dataset_is_a_clear_error():
    result = runner.invoke(app, ["datasets", "imagenette"])
    assert isinstance(result.exception, DatasetError) and "unknown dataset 'imagenette'" in str(result.exception)


@pytest.mark.unit
def test_models_are_known_to_the_installed_libraries():
    assert catalog.missing() == []
    out = runner.invoke(app, ["models"]).output
    assert "ViT-B-32" in out and "vit_base_patch16_224.dino" in out


@pytest.mark.e2e
def test_installed_nola_command(tmp_path):
    """pyproject's [project.scripts] entry: install into a scratch folder and run it."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "pipeline", "stages"):
        (shutil.copytree if (PROJECT / name).is_dir() else shutil.copy)(PROJECT / name, src / name)
    sh(
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-deps",
        "--no-build-isolation",
        "--target",
        str(tmp_path / "site"),
        str(src),
        cwd=tmp_path,
    )
    assert (tmp_path / "site/pipeline/models/configs/nola-smoke-vit.json").is_file()
    bad = subprocess.run(
        [str(tmp_path / "site/bin/nola"), "info", "--project", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(tmp_path / "site"), "PATH": ""},
    )
    assert bad.returncode == 2 and "no dvc.yaml here" in bad.stderr, "errors go through run_app"
    assert "Traceback" not in bad.stderr


@pytest.mark.unit
def test_list_images_from_folder_and_manifest(tmp_path):
    from PIL import Image

    for p in ("a/1.jpg", "a/b/2.png", ".hidden.jpg"):
        (tmp_path / p).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (4, 4)).save(tmp_path / p)
    (tmp_path / "notes.txt").write_text("x")
    assert list_images(tmp_path) == (tmp_path, ["a/1.jpg", "a/b/2.png"])
    (tmp_path / "m.csv").write_text("path\na/b/2.png\n")
    assert list_images(tmp_path / "m.csv") == (tmp_path, ["a/b/2.png"])
    (tmp_path / "bad.csv").write_text("path\na/missing.jpg\n")
    assert list_images(tmp_path / "bad.csv") == (tmp_path, ["a/missing.jpg"])
    (tmp_path / "nopath.csv").write_text("file\na/1.jpg\n")
    with pytest.raises(PredictError, match="'path' column"):
        list_images(tmp_path / "nopath.csv")
    with pytest.raises(PredictError, match="no images inside"):
        list_images(_empty(tmp_path))


@pytest.mark.unit
def test_bad_files_are_skipped_with_a_reason_each_not_the_batch(tmp_path):
    from PIL import Image

    Image.new("RGB", (4, 4)).save(tmp_path / "good.png")
    (tmp_path / "empty.jpg").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image")
    good, bad = usable(tmp_path, ["empty.jpg", "good.png", "missing.jpg", "text.jpg"])
    assert good == ["good.png"]
    assert [(i, r.split(" [")[0]) for i, r in bad] == [
        ("empty.jpg", "an empty file (0 bytes)"),
        ("missing.jpg", "no such file, or a link to nothing"),
        ("text.jpg", "not an image format Pillow can identify"),
    ]


def _empty(tmp_path):
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


@pytest.mark.unit
def test_top_k_orders_by_probability_and_breaks_ties_by_class_order():
    probs = np.array([[0.1, 0.6, 0.3], [0.4, 0.2, 0.4]])
    rows = top_k(["x.jpg", "y.jpg"], probs, ["cat", "dog", "owl"], 2)
    assert rows[0] == {"path": "x.jpg", "class_1": "dog", "prob_1": "0.600000", "class_2": "owl", "prob_2": "0.300000"}
    assert [rows[1]["class_1"], rows[1]["class_2"]] == ["cat", "owl"]
    assert len(top_k(["x.jpg"], probs[:1], ["cat", "dog", "owl"], 10)[0]) == 7


@pytest.mark.unit
def test_track_logs_count_and_rate_and_draws_no_bar_off_a_terminal(caplog, capsys):
    batches = [np.zeros((4, 2)), np.zeros((3, 2))]
    with caplog.at_level(logging.INFO, logger="nola"):
        assert list(track(batches, total=7, desc="encode pool")) == batches
    assert "encode pool: 7 images in" in caplog.text and "images/s" in caplog.text
    assert capsys.readouterr().err == ""
