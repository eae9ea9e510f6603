"""The whole pipeline through real `dvc repro` in temporary git + DVC repos, on the smoke config."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import vl_convert
from safetensors.torch import load_file

from pipeline.core.artifacts import read_features, read_tensors

import helpers
from helpers import make_dvc_project, sh, smoke_params

pytestmark = pytest.mark.e2e

STAGES = [f"{s}@synthetic" for s in helpers.STAGES]
TRAINING_ARTIFACTS = [
    "artifacts/synthetic/split/pool.parquet",
    "artifacts/synthetic/split/classes.json",
    "artifacts/synthetic/describe/descriptions.json",
    "artifacts/synthetic/text/classifiers.safetensors",
    "artifacts/synthetic/features/clip/pool.parquet",
    "artifacts/synthetic/features/dino/pool.parquet",
    "artifacts/synthetic/pseudo_labels/pseudo_labels.parquet",
    "artifacts/synthetic/align/head.safetensors",
    "artifacts/synthetic/align/dl_labels.parquet",
    "artifacts/synthetic/tune/prompt.safetensors",
]


def test_every_stage_runs_and_a_second_repro_is_up_to_date(smoke_run):
    clone, out = smoke_run
    for stage in STAGES:
        assert f"Running stage '{stage}'" in out
    again = sh("dvc", "repro", cwd=clone).stdout
    assert "Running stage" not in again
    assert "up to date" in sh("dvc", "status", cwd=clone).stdout


def test_split_and_text_artifacts(smoke_run):
    clone, _ = smoke_run
    a = clone / "artifacts" / "synthetic"
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
    pool_ids = pq.read_table(clone / "artifacts/synthetic/split/pool.parquet").column("id").to_pylist()
    for split, n in (("pool", 72), ("test", 24)):
        ids, feats, meta = read_features(clone / f"artifacts/synthetic/features/{encoder}/{split}.parquet")
        assert feats.shape == (n, dim) and np.isfinite(feats).all()
        assert meta["encoder"] == encoder and meta["dim"] == dim
        assert set(meta["preprocess"]) == {"size", "mean", "std", "interpolation"}
        assert meta["compute"]["device"] == "cpu" and meta["compute"]["precision"] in ("fp32", "bf16")
        assert {"torch", "open_clip", "timm"} <= set(meta["versions"])
        if split == "pool":
            assert ids == pool_ids
        assert "label" not in pq.read_schema(clone / f"artifacts/synthetic/features/{encoder}/{split}.parquet").names


def test_labelling_and_tuning_artifacts(smoke_run):
    clone, _ = smoke_run
    a = clone / "artifacts" / "synthetic"
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
    a = clone / "artifacts/synthetic/evaluate"
    metrics = json.loads((a / "metrics.json").read_text())
    assert list(metrics["accuracy"]) == ["cde", "dl", "nola", "zero_shot"]
    assert all(0.0 <= a <= 1.0 for a in metrics["accuracy"].values())
    assert metrics["nola_gain"] == metrics["accuracy"]["nola"] - metrics["accuracy"]["zero_shot"]
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
    params["datasets"] = {
        "shapes": {
            "data": {"source": "manifest", "root": "data/pool", "manifest": "data/pool/manifest.csv"},
            "domain": "generic",
            "templates": ["a photo of a {}."],
        }
    }
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
        sh("dvc", "repro", "tune@shapes", cwd=project)
        hashes.append({a: (project / a.replace("/synthetic/", "/shapes/")).read_bytes() for a in TRAINING_ARTIFACTS})
    for artifact in TRAINING_ARTIFACTS:
        assert hashes[0][artifact] == hashes[1][artifact], f"{artifact} changed with the pool labels"


# --- the users' surface on the reproduced smoke project: plots, summary PNG, predict, info, experiments ---


def test_dvc_plots_show_renders_every_plot(smoke_run, tmp_path):
    clone, _ = smoke_run
    shown = json.loads(sh("dvc", "plots", "show", "--json", cwd=clone).stdout)["data"]
    assert set(shown) == {
        "artifacts/synthetic/tune/log.csv",
        "artifacts/synthetic/evaluate/per_class.csv",
        "artifacts/synthetic/evaluate/confusion.csv",
        "artifacts/synthetic/evaluate/summary.png",
    }
    rows = {
        name: len(plots[0]["content"]["data"]["values"]) for name, plots in shown.items() if plots[0]["type"] == "vega"
    }
    assert rows == {
        "artifacts/synthetic/tune/log.csv": 2,  # epochs
        "artifacts/synthetic/evaluate/per_class.csv": 4,  # classes
        "artifacts/synthetic/evaluate/confusion.csv": 24,
    }  # test images
    # what the page draws, rendered offline by Vega-Lite from DVC's own filled specs
    texts = {
        name: set(
            re.findall(r"<text[^>]*>([^<]+)</text>", vl_convert.vegalite_to_svg(plots[0]["content"], vl_version="5.8"))
        )
        for name, plots in shown.items()
        if plots[0]["type"] == "vega"
    }
    assert {"loss", "agreement"} <= texts["artifacts/synthetic/tune/log.csv"]
    assert {"zero_shot", "cde", "dl", "nola"} <= texts["artifacts/synthetic/evaluate/per_class.csv"]
    sh("dvc", "plots", "show", "-o", str(tmp_path / "html"), cwd=clone)
    page = (tmp_path / "html" / "index.html").read_text()
    assert "vega" in page and "summary.png" in page


def test_summary_png_is_rendered(smoke_run):
    from PIL import Image

    clone, _ = smoke_run
    with Image.open(clone / "artifacts/synthetic/evaluate/summary.png") as im:
        assert im.format == "PNG" and im.size[0] >= 1000 and im.size[1] >= 300
        assert len(set(im.convert("RGB").getdata())) > 50, "a real chart, not a blank canvas"


def test_predict_cli_agrees_with_evaluate(smoke_run, tmp_path):
    clone, _ = smoke_run
    test_ids = pq.read_table(clone / "artifacts/synthetic/split/test.parquet").column("id").to_pylist()
    confusion = list(csv.DictReader((clone / "artifacts/synthetic/evaluate/confusion.csv").open()))
    expected = {i: row["predicted"] for i, row in zip(test_ids, confusion)}
    manifest = tmp_path / "new" / "manifest.csv"
    manifest.parent.mkdir()
    for i in test_ids:
        (manifest.parent / i).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(clone / "data/synthetic" / i, manifest.parent / i)
    manifest.write_text("path\n" + "\n".join(test_ids) + "\n")
    out = tmp_path / "predictions.csv"
    sh(
        "python",
        "-m",
        "pipeline",
        "predict",
        str(manifest),
        "--out",
        str(out),
        "-k",
        "3",
        "--batch-size",
        "5",
        cwd=clone,
    )
    rows = list(csv.DictReader(out.open()))
    assert [r["path"] for r in rows] == test_ids
    assert list(rows[0]) == ["path", "class_1", "prob_1", "class_2", "prob_2", "class_3", "prob_3"]
    for r in rows:
        probs = [float(r[f"prob_{j}"]) for j in (1, 2, 3)]
        assert probs == sorted(probs, reverse=True) and sum(probs) <= 1.0 + 1e-5
        assert r["class_1"] == expected[r["path"]]


def test_info_lists_outputs_metrics_and_stale_stages(smoke_run, tmp_path):
    from pipeline.cli.project_info import report

    clone, _ = smoke_run
    out = sh("python", "-m", "pipeline", "info", cwd=clone).stdout
    assert "every stage is up to date" in out
    assert "artifacts/synthetic/evaluate/summary.png" in out and "missing" not in out
    assert "nola" in out and "NoLA - zero-shot" in out
    copy = tmp_path / "copy"  # edited here, so the shared reference run stays as it is
    shutil.copytree(clone, copy, symlinks=True)
    params = copy / "params.yaml"
    params.write_text(params.read_text().replace("label_smoothing: 0.1", "label_smoothing: 0.2"))
    out = report(copy)
    assert "tune@synthetic: stale" in out and "changed: param tune modified" in out
    assert "evaluate@synthetic: up to date" in out
    assert "stale: check_params, tune@synthetic (" in out


def test_experiment_metrics_diff_and_paper_table(smoke_run):
    """Last in this module: it leaves the experiment's results in the workspace."""
    from pipeline.report.paper_table import from_exp_show, markdown

    clone, _ = smoke_run
    sh("git", "add", "-A", cwd=clone)
    sh("git", "commit", "-qm", "smoke results", cwd=clone)
    sh("dvc", "exp", "run", "-n", "smaller-batches", "-S", "predict.batch_size=7", cwd=clone)  # predict on
    diff = sh("dvc", "metrics", "diff", "--all", "--md", cwd=clone).stdout
    for method in ("zero_shot", "cde", "dl", "nola"):
        assert f"accuracy.{method} " in diff
    rows = from_exp_show(json.loads(sh("dvc", "exp", "show", "--json", cwd=clone).stdout))
    metrics = json.loads((clone / "artifacts/synthetic/evaluate/metrics.json").read_text())
    assert rows == {"synthetic": {m: 100 * metrics["accuracy"][m] for m in ("zero_shot", "cde", "dl", "nola")}}
    assert "| synthetic |" in markdown(rows)
