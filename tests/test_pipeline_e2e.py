"""The whole pipeline through real `dvc repro` in temporary git + DVC repos, on the smoke config."""
from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from safetensors.torch import load_file

from conftest import make_dvc_project, sh, smoke_params
from pipeline.artifacts import read_features, read_tensors

STAGES = ["split", "describe", "text_classifier", "features_clip", "features_dino", "pseudo_labels", "align",
          "tune", "evaluate"]
TRAINING_ARTIFACTS = [
    "artifacts/split/pool.parquet",
    "artifacts/split/classes.json",
    "artifacts/describe/descriptions.json",
    "artifacts/text/classifiers.safetensors",
    "artifacts/features/clip/pool.parquet",
    "artifacts/features/dino/pool.parquet",
    "artifacts/pseudo_labels/pseudo_labels.parquet",
    "artifacts/align/head.safetensors",
    "artifacts/align/dl_labels.parquet",
    "artifacts/tune/prompt.safetensors",
]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    """A fresh clone of a committed smoke project, reproduced once."""
    base = tmp_path_factory.mktemp("e2e")
    origin = make_dvc_project(base / "origin", smoke_params())
    sh("git", "clone", "-q", str(origin), str(base / "clone"), cwd=base)
    clone = base / "clone"
    sh("python", "-m", "pipeline", "fetch-data", cwd=clone)
    first = sh("dvc", "repro", cwd=clone)
    return clone, first.stdout


def test_every_stage_runs_and_a_second_repro_is_up_to_date(smoke_run):
    clone, out = smoke_run
    for stage in STAGES:
        assert f"Running stage '{stage}'" in out
    again = sh("dvc", "repro", cwd=clone).stdout
    assert "Running stage" not in again
    assert "up to date" in sh("dvc", "status", cwd=clone).stdout


def test_split_and_text_artifacts(smoke_run):
    clone, _ = smoke_run
    a = clone / "artifacts"
    classes = json.loads((a / "split/classes.json").read_text())["classes"]
    assert classes == ["circle", "square", "stripes", "triangle"]
    pool = pq.read_table(a / "split/pool.parquet")
    test = pq.read_table(a / "split/test.parquet")
    assert pool.column_names == ["id", "sha256"] and pool.num_rows == 72 and test.num_rows == 24
    descriptions = json.loads((a / "describe/descriptions.json").read_text())
    assert list(descriptions["descriptions"]) == classes
    assert all(len(v) == 3 for v in descriptions["descriptions"].values())
    tensors, meta = read_tensors(a / "text/classifiers.safetensors")
    assert meta["classes"] == classes and meta["model"] == "nola-smoke-vit"
    for name in ("cde", "zeroshot"):
        assert tensors[name].shape == (4, 32)
        torch.testing.assert_close(tensors[name].norm(dim=-1), torch.ones(4))
    assert not torch.allclose(tensors["cde"], tensors["zeroshot"])


@pytest.mark.parametrize(("encoder", "dim"), [("clip", 32), ("dino", 64)])
def test_feature_artifacts(smoke_run, encoder, dim):
    clone, _ = smoke_run
    pool_ids = pq.read_table(clone / "artifacts/split/pool.parquet").column("id").to_pylist()
    for split, n in (("pool", 72), ("test", 24)):
        ids, feats, meta = read_features(clone / f"artifacts/features/{encoder}/{split}.parquet")
        assert feats.shape == (n, dim) and np.isfinite(feats).all()
        assert meta["encoder"] == encoder and meta["dim"] == dim
        assert set(meta["preprocess"]) == {"size", "mean", "std", "interpolation"}
        assert {"torch", "open_clip", "timm"} <= set(meta["versions"])
        if split == "pool":
            assert ids == pool_ids
        assert "label" not in pq.read_schema(clone / f"artifacts/features/{encoder}/{split}.parquet").names


def test_labelling_and_tuning_artifacts(smoke_run):
    clone, _ = smoke_run
    a = clone / "artifacts"
    selected = pq.read_table(a / "pseudo_labels/pseudo_labels.parquet")
    assert selected.column_names == ["id", "label", "rank", "prob"]
    assert json.loads(selected.schema.metadata[b"nola"])["k"] == 4  # max(4, floor(0.2 * 72 / 4))
    ids = selected.column("id").to_pylist()
    assert len(ids) == len(set(ids)) and 0 < len(ids) <= 16
    head = load_file(a / "align/head.safetensors")
    assert head["0.weight"].shape == (32, 64) and head["2.weight"].shape == (4, 32)
    dl = pq.read_table(a / "align/dl_labels.parquet")
    assert dl.num_rows == 72 and set(dl.column("label").to_pylist()) <= {0, 1, 2, 3}
    prompt, meta = read_tensors(a / "tune/prompt.safetensors")
    assert prompt["prompts"].shape == (1, 4, 64) and prompt["classifier.weight"].shape == (4, 32)
    assert any(k.startswith("visual.") and "ln" in k for k in prompt)
    assert meta["prompt_tokens"] == 4
    log = list(csv.DictReader((a / "tune/log.csv").open()))
    assert [int(r["epoch"]) for r in log] == [1, 2] and all(np.isfinite(float(r["loss"])) for r in log)


def test_metrics_and_plots(smoke_run):
    clone, _ = smoke_run
    a = clone / "artifacts/evaluate"
    metrics = json.loads((a / "metrics.json").read_text())
    for method in ("zero_shot", "cde", "dl", "nola"):
        assert 0.0 <= metrics[method]["accuracy"] <= 1.0
    assert metrics["data"] == {"test_images": 24, "classes": 4}
    assert 0 < metrics["pseudo_labels"]["count"] <= 16
    assert 0.0 <= metrics["pseudo_labels"]["precision"] <= 1.0
    per_class = list(csv.DictReader((a / "per_class.csv").open()))
    assert [r["class"] for r in per_class] == ["circle", "square", "stripes", "triangle"]
    assert len(list(csv.DictReader((a / "confusion.csv").open()))) == 24
    shown = sh("dvc", "metrics", "show", "--json", cwd=clone).stdout
    assert "nola" in shown


def _manifest_project(path: Path, images: Path, rows: list[tuple[str, str, str]]) -> Path:
    params = smoke_params()
    params["data"] = {"source": "manifest", "root": "data/pool", "manifest": "data/pool/manifest.csv", "seed": 0,
                      "domain": "generic"}
    project = make_dvc_project(path, params)
    shutil.copytree(images, project / "data/pool")
    with (project / "data/pool/manifest.csv").open("w", newline="") as f:
        csv.writer(f).writerows([("path", "label", "split"), *rows])
    return project


def test_training_artifacts_do_not_depend_on_pool_labels(tmp_path, synthetic_root):
    files = sorted(p.relative_to(synthetic_root).as_posix() for p in synthetic_root.rglob("*.*"))
    rows = [(f, f.split("/")[0], "test" if i % 4 == 0 else "train") for i, f in enumerate(files)]
    rng = np.random.default_rng(0)
    pool = [i for i, r in enumerate(rows) if r[2] == "train"]
    shuffled = [rows[i][1] for i in rng.permutation(pool)]
    permuted = list(rows)
    for j, (i, label) in enumerate(zip(pool, shuffled)):
        permuted[i] = (rows[i][0], "" if j % 3 == 0 else label, "train")  # permuted, a third removed
    assert permuted != rows

    hashes = []
    for name, variant in (("true", rows), ("permuted", permuted)):
        project = _manifest_project(tmp_path / name, synthetic_root, variant)
        sh("dvc", "repro", "tune", cwd=project)
        hashes.append({a: (project / a).read_bytes() for a in TRAINING_ARTIFACTS})
    for artifact in TRAINING_ARTIFACTS:
        assert hashes[0][artifact] == hashes[1][artifact], f"{artifact} changed with the pool labels"
