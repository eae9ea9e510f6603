"""A pool where about 10% of the files are bad, through real `dvc repro`: the run completes, the
skip report is exact, and every other artifact is byte-identical to the clean smoke run's. Stale
artifacts (other preprocessing, other class list) are refused with the stage to rerun."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.core.artifacts import feature_table, read_features, write_table

from bad_images import CASES
from helpers import make_dvc_project, sh, smoke_params

pytestmark = pytest.mark.e2e

# (class folder, case) -> reason; 11 bad files next to the 96 good ones of the smoke set.
BAD = [
    ("circle", "zero-byte"),
    ("square", "zero-byte"),
    ("stripes", "zero-byte"),
    ("circle", "truncated JPEG"),
    ("triangle", "truncated JPEG"),
    ("square", "text file named .jpg"),
    ("stripes", "text file named .jpg"),
    ("triangle", "decompression bomb"),
    ("circle", "decompression bomb"),
]
# copies whose ids sort after their originals: with a seeded split the first id is the one kept
DUPLICATES = [("square/square_004.png", "square/zz copy of 4.png"), ("circle/circle_002.jpg", "square/zz copy.jpg")]


@pytest.fixture(scope="module")
def dirty_run(tmp_path_factory):
    project = make_dvc_project(tmp_path_factory.mktemp("dirty") / "project", smoke_params())
    sh("python", "-m", "pipeline", "fetch-data", cwd=project)
    root = project / "data" / "synthetic"
    expected = {}
    for n, (folder, case) in enumerate(BAD):
        name, writer, reason = CASES[case]
        writer(root / folder / name, n)
        expected[f"{folder}/{name}"] = reason
    for original, copy in DUPLICATES:
        shutil.copyfile(root / original, root / copy)
        expected[copy] = "duplicate"
    (root / "circle" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
    result = sh("dvc", "repro", cwd=project)
    return project, expected, result.stdout + result.stderr


def test_the_run_completes_with_the_right_skip_report(dirty_run):
    project, expected, output = dirty_run
    assert "Traceback" not in output
    assert f"{len(expected)} of {96 + len(expected)} files skipped" in output  # the split stage's summary
    report = json.loads((project / "artifacts/synthetic/split/skipped.json").read_text())
    assert {s["id"]: s["reason"] for s in report["skipped"]} == expected
    assert sum(c["skipped"] for c in report["counts"].values()) == len(expected) == 11
    assert sum(c["kept"] for c in report["counts"].values()) == 96
    assert report["empty_classes"] == []
    metrics = json.loads((project / "artifacts/synthetic/evaluate/metrics.json").read_text())
    assert metrics["data"] == {"test_images": 24, "classes": 4}


def test_good_files_get_the_same_artifacts_as_a_clean_run(dirty_run, smoke_run):
    project, _, _ = dirty_run
    clean, _ = smoke_run
    files = sorted(p.relative_to(clean).as_posix() for p in (clean / "artifacts").rglob("*") if p.is_file())
    assert len(files) >= 15
    # the skip report, and the report page that lists the skipped files, are the only differences
    differ = {"artifacts/synthetic/split/skipped.json", "artifacts/synthetic/report/report.html"}
    for name in files:
        if name not in differ:
            assert (project / name).read_bytes() == (clean / name).read_bytes(), f"{name} differs"
    page = "artifacts/synthetic/report/report.html"
    assert "11 files skipped" in (project / page).read_text() and "0 files skipped" in (clean / page).read_text()
    assert json.loads((clean / "artifacts/synthetic/split/skipped.json").read_text())["skipped"] == []


def copy_of(project: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(project, tmp_path / "copy", symlinks=True))


def run_stage(project: Path, name: str) -> subprocess.CompletedProcess:
    """Run a stage's command as DVC resolves it (foreach expanded), without DVC around it."""
    from dvc.repo import Repo

    with Repo(str(project)) as repo:
        cmd = shlex.split(next(s for s in repo.index.stages if s.name == name).cmd)
    return subprocess.run([sys.executable, *cmd[1:]], cwd=project, capture_output=True, text=True)


def refused(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    return result.stderr


def test_features_made_with_another_preprocessing_are_refused(dirty_run, tmp_path):
    project = copy_of(dirty_run[0], tmp_path)
    path = project / "artifacts/synthetic/features/clip/test.parquet"
    ids, features, meta = read_features(path)
    meta["preprocess"]["interpolation"] = "bilinear"
    write_table(path, feature_table(ids, features), meta)
    message = refused(run_stage(project, "predict@synthetic"))
    assert "features/clip/test.parquet: made with preprocess=" in message
    assert "differs in interpolation: 'bilinear' vs 'bicubic'" in message
    assert "rerun the 'features_clip' stage (dvc repro features_clip)" in message


def test_artifacts_made_for_another_class_list_are_refused(dirty_run, tmp_path):
    project = copy_of(dirty_run[0], tmp_path)
    params = yaml.safe_load((project / "params.yaml").read_text())
    params["datasets"]["synthetic"]["data"]["classes"] = ["ring", "box", "band", "wedge"]
    (project / "params.yaml").write_text(yaml.safe_dump(params))
    assert run_stage(project, "split@synthetic").returncode == 0
    message = refused(run_stage(project, "predict@synthetic"))
    assert (
        "classifiers.safetensors: made with classes=['circle', 'square', 'stripes', 'triangle'] but the current "
        "settings give ['ring', 'box', 'band', 'wedge']" in message
    )
    assert "rerun the 'text_classifier' stage" in message
