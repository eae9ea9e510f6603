"""Nothing is lost and nothing runs on silently: kill -9 leaves old or complete artifacts, a NaN
loss stops training with the step and the cause, unsafe checkpoints are refused, LLM text stays data."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
import torch
import torch.nn.functional as F
import yaml

from pipeline.core.artifacts import (
    ArtifactError,
    check_made_with,
    read_features,
    read_json,
    read_tensors,
    write_json,
    write_table,
    write_tensors,
)
from pipeline.core.errors import TrainingError
from pipeline.core.params import ClipParams, TuneParams
from pipeline.data import synthetic
from pipeline.data.datasets import Collection, write_split
from pipeline.method.alignment import train_head
from pipeline.method.text_classifier import cde_texts
from pipeline.method.tuning import tune
from pipeline.method.visual_prompts import PromptedCLIP
from pipeline.models.factory import ModelError, clip_identity, create_clip

from helpers import PROJECT, smoke_params


def stage(*args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", *args],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NOLA_LOG": "INFO"},
    )


def finish(process: subprocess.Popen) -> str:
    _, err = process.communicate(timeout=600)
    assert process.returncode == 0, err
    return err


def write_params(path: Path, root: Path, **changes: dict) -> Path:
    params = smoke_params()
    params["datasets"] = {"x": {"data": {"source": "folder", "root": str(root)}}}
    for section, values in changes.items():
        params[section].update(values)
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.e2e
def test_kill_while_writing_leaves_the_old_artifact(tmp_path):
    target = tmp_path / "metrics.json"
    write_json(target, {"old": True})
    writer = subprocess.Popen(
        [
            sys.executable,
            "-c",
            (
                "import sys, time\n"
                "from pipeline.core.artifacts import atomic_path\n"
                "with atomic_path(sys.argv[1]) as tmp:\n"
                "    tmp.write_text('{\"new\": tr')\n"
                "    print('half written', flush=True)\n"
                "    time.sleep(600)\n"
            ),
            str(target),
        ],
        cwd=PROJECT,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout.readline() == "half written\n"
    writer.send_signal(signal.SIGKILL)
    assert writer.wait() == -signal.SIGKILL
    assert read_json(target) == {"old": True}
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "metrics.json"]
    assert len(leftovers) == 1 and leftovers[0].startswith(".metrics.json.")
    write_json(target, {"new": True})
    assert read_json(target) == {"new": True}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"], "the next write clears the leftover"


@pytest.mark.e2e
def test_kill_9_during_the_features_stage(tmp_path):
    """The stage writes pool.parquet then test.parquet; killed right after the first rename,
    pool is complete and new, test is the old file, never a truncated one."""
    root = synthetic.generate(tmp_path / "images", classes=2, per_class=150, size=40)
    ids = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*"))
    write_split(Collection(root, ["circle", "square"], ids[:20], ids[20:], [0] * len(ids[20:])), tmp_path / "split")
    out = tmp_path / "features"
    pool, test = out / "pool.parquet", out / "test.parquet"
    args = ("stages.features", "clip", "x", str(tmp_path / "split"), str(out), "--params")
    finish(stage(*args, str(write_params(tmp_path / "old.yaml", root))))
    old = {p: p.read_bytes() for p in (pool, test)}
    old_inode = pool.stat().st_ino

    running = stage(*args, str(write_params(tmp_path / "new.yaml", root, clip={"seed": 1})))
    while pool.stat().st_ino == old_inode:
        assert running.poll() is None, running.communicate()[1]
        time.sleep(0.002)
    running.send_signal(signal.SIGKILL)
    assert running.wait() == -signal.SIGKILL, "killed before the stage finished"
    assert test.read_bytes() == old[test]
    new_pool = pool.read_bytes()
    assert new_pool != old[pool] and read_features(pool)[1].shape == (20, 32)

    finish(stage(*args, str(tmp_path / "new.yaml")))
    assert pool.read_bytes() == new_pool, "the killed run's finished file is the one a full run writes"
    assert test.read_bytes() != old[test] and read_features(test)[1].shape == (len(ids) - 20, 32)
    assert sorted(p.name for p in out.iterdir()) == ["pool.parquet", "test.parquet"]


def tune_inputs(tmp_path: Path, classes: list[str]) -> tuple[Path, Path, Path]:
    root = synthetic.generate(tmp_path / "images", classes=len(classes), per_class=8, size=40)
    ids = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*"))
    labels = [classes.index(i.split("/")[0]) for i in ids]  # synthetic folders are named after the classes
    write_table(
        tmp_path / "dl_labels.parquet",
        pa.table({"id": ids, "label": pa.array(labels, type=pa.int32())}),
        {"classes": classes},
    )
    torch.manual_seed(0)
    cde = F.normalize(torch.randn(len(classes), 32), dim=-1)
    write_tensors(
        tmp_path / "classifiers.safetensors",
        {"cde": cde, "zeroshot": cde.clone(), "logit_scale": torch.ones(1)},
        {**clip_identity(ClipParams(**smoke_params()["clip"])), "classes": classes},
    )
    return root, tmp_path / "dl_labels.parquet", tmp_path / "classifiers.safetensors"


@pytest.mark.e2e
def test_kill_9_during_the_tune_stage(tmp_path):
    root, dl_labels, classifiers = tune_inputs(tmp_path, ["circle", "square"])
    out = tmp_path / "tune"
    args = ("stages.tune", "x", str(dl_labels), str(classifiers), str(out), "--params")
    finish(stage(*args, str(write_params(tmp_path / "old.yaml", root, tune={"epochs": 1}))))
    old = {p: p.read_bytes() for p in out.iterdir()}
    assert sorted(p.name for p in old) == ["log.csv", "prompt.safetensors"]

    running = stage(*args, str(write_params(tmp_path / "new.yaml", root, tune={"epochs": 40, "seed": 1})))
    assert any("tune: 16 pool images" in line for line in running.stderr)  # training starts after this line
    time.sleep(0.5)
    running.send_signal(signal.SIGKILL)
    assert running.wait() == -signal.SIGKILL, "killed during training"
    assert {p: p.read_bytes() for p in out.iterdir()} == old

    finish(stage(*args, str(write_params(tmp_path / "new.yaml", root, tune={"epochs": 2, "seed": 1}))))
    state, meta = read_tensors(out / "prompt.safetensors")
    assert (out / "prompt.safetensors").read_bytes() != old[out / "prompt.safetensors"]
    assert meta["classes"] == ["circle", "square"] and state["prompts"].shape == (1, 4, 64)


@pytest.mark.e2e
def test_tune_refuses_dl_labels_for_another_class_list(tmp_path):
    root, dl_labels, classifiers = tune_inputs(tmp_path, ["circle", "square"])
    write_table(
        dl_labels, pa.table({"id": ["x"], "label": pa.array([0], type=pa.int32())}), {"classes": ["circle", "triangle"]}
    )
    run = stage(
        "stages.tune",
        "x",
        str(dl_labels),
        str(classifiers),
        str(tmp_path / "tune"),
        "--params",
        str(write_params(tmp_path / "p.yaml", root)),
    )
    _, err = run.communicate(timeout=600)
    assert run.returncode == 2 and "Traceback" not in err
    assert re.search(
        r"dl_labels.parquet: made with classes=\['circle', 'triangle'\] but the current settings give "
        r"\['circle', 'square'\] \(2 vs 2 items; first difference at item 1: 'triangle' vs 'square'\); "
        r"rerun the 'align' stage",
        err,
    ), err


@pytest.mark.unit
def test_check_made_with_says_what_differs():
    made = {"size": 224, "mean": [0.5, 0.5, 0.5], "interpolation": "bicubic"}
    now = {**made, "interpolation": "bilinear"}
    with pytest.raises(ArtifactError, match=r"differs in interpolation: 'bicubic' vs 'bilinear'\).*features_dino"):
        check_made_with("f.parquet", {"preprocess": made}, {"preprocess": now}, "features_dino")
    with pytest.raises(ArtifactError, match=r"3 vs 2 items; first difference at item 2: 'c' vs '<end>'"):
        check_made_with("h.safetensors", {"classes": ["a", "b", "c"]}, {"classes": ["a", "b"]}, "align")


def small_tune(smoke_model, root: Path, prompted: PromptedCLIP) -> list:
    ids = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*"))
    cfg = TuneParams(epochs=2, batch_size=4, num_workers=0, prompt_tokens=2)
    return tune(prompted, root, ids, np.arange(len(ids)) % 3, smoke_model[1], cfg)


def prompted(smoke_model, logit_scale: float) -> PromptedCLIP:
    return PromptedCLIP(smoke_model[0].visual, F.normalize(torch.randn(3, 32), dim=-1), 2, logit_scale)


@pytest.mark.unit
def test_nan_loss_at_the_first_step_blames_the_inputs(smoke_model, synthetic_root):
    model = prompted(smoke_model, 10.0)
    with torch.no_grad():
        model.classifier.weight[0, 0] = float("nan")  # a CDE classifier that is not finite
    with pytest.raises(
        TrainingError,
        match=r"tune: loss is nan at epoch 1, step 1, before any update, so an input "
        r"is not finite: .*rerun text_classifier",
    ):
        small_tune(smoke_model, synthetic_root, model)


@pytest.mark.unit
def test_nan_loss_later_names_the_step_and_the_lr(smoke_model, synthetic_root):
    """A model that starts to give NaN at its third forward pass: the step is named, the lr blamed."""
    model = prompted(smoke_model, 10.0)
    calls = {"n": 0}

    def poison(_module, _inputs, output):
        calls["n"] += 1
        return output * float("nan") if calls["n"] >= 3 else output

    model.classifier.register_forward_hook(poison)
    with pytest.raises(
        TrainingError,
        match=r"tune: loss is nan at epoch 1, step 3, after 2 updates at lr "
        r"[0-9.e-]+: training diverged; lower tune.base_lr",
    ):
        small_tune(smoke_model, synthetic_root, model)


@pytest.mark.unit
def test_nan_features_stop_the_alignment_head():
    features = np.ones((8, 4), dtype=np.float32)
    features[3, 1] = np.nan
    with pytest.raises(TrainingError, match=r"align: loss is nan at epoch 1, step 1, .*rerun features_dino"):
        train_head(features, np.arange(8) % 2, 2, hidden=4, batch_size=8, epochs=2)


SAFETY_RULES = {
    r"torch\.load\((?![^)]*weights_only=True)": "torch.load without weights_only=True",
    r"\bpickle\.loads?\(|\bdill\b|\bjoblib\b|read_pickle|allow_pickle=True": "unpickling",
    r"(?<![.\w])(eval|exec)\(": "eval / exec",
    r"yaml\.(unsafe_load|full_load|load\((?![^)]*Loader=_UniqueKeyLoader))"
    r"|Loader=yaml\.(Full|Unsafe)?Loader\b": "a YAML loader that builds objects",
}


@pytest.mark.unit
def test_no_unsafe_deserialisation_in_the_code():
    for folder in ("pipeline", "stages", "bench"):
        for path in sorted((PROJECT / folder).rglob("*.py")):
            text = path.read_text(encoding="utf-8")
            for pattern, what in SAFETY_RULES.items():
                assert not re.search(pattern, text), f"{path.relative_to(PROJECT)}: {what}"


class _Payload:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.unit
def test_a_pickled_checkpoint_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "code ran"
    torch.save({"state_dict": {"x": torch.zeros(1)}, "extra": _Payload(marker)}, tmp_path / "weights.pt")
    with pytest.raises(ModelError, match=r"clip.pretrained = .*weights.pt': refused: .*weights_only=True"):
        create_clip(ClipParams(model="nola-smoke-vit", pretrained=str(tmp_path / "weights.pt")))
    assert not marker.exists()


@pytest.mark.unit
def test_llm_text_is_kept_as_data(tmp_path):
    """Descriptions with quotes, braces, newlines and code travel as JSON strings and reach the
    text encoder verbatim: never formatted, never evaluated."""
    tricky = ['He said "{0.__class__}" and {}', "line one\nline two \\n \u2028", "__import__('os').system('x')"]
    write_json(tmp_path / "descriptions.json", {"classes": ["cat"], "descriptions": {"cat": tricky}})
    loaded = json.loads((tmp_path / "descriptions.json").read_text(encoding="utf-8"))["descriptions"]
    assert loaded == {"cat": tricky}
    assert cde_texts(["cat"], ["a photo of a {}."], loaded)["cat"] == [*tricky, "a photo of a cat."]
