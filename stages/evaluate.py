"""Stage evaluate: the only stage that reads labels -> metrics.json, per-class accuracy, confusion."""

from pathlib import Path

import numpy as np
import torch

from pipeline.core.artifacts import (
    check_encoder,
    read_features,
    read_json,
    read_table,
    read_tensors,
    write_csv,
    write_json,
)
from pipeline.core.params import ClipParams, EvaluateParams, load_dataset, load_section
from pipeline.core.stage import log, run
from pipeline.data.datasets import image_root, read_ids
from pipeline.method.alignment import head_from_state
from pipeline.method.alignment import predict as dl_predict
from pipeline.method.text_classifier import zero_shot_probs
from pipeline.method.tuning import predict as tuned_predict
from pipeline.method.visual_prompts import prompted_from_state
from pipeline.models.factory import clip_identity, create_clip
from pipeline.report import evaluation as ev
from pipeline.report.summary_plot import render_summary


def main(
    dataset: str,
    split_dir: Path,
    features_dir: Path,
    classifiers: Path,
    pseudo_labels: Path,
    head: Path,
    prompt: Path,
    out_dir: Path,
    params: Path = Path("params.yaml"),
) -> None:
    data = load_dataset(params, dataset).data
    clip = load_section(params, "clip", ClipParams)
    cfg = load_section(params, "evaluate", EvaluateParams)
    classes = read_json(split_dir / "classes.json")["classes"]
    test_ids = read_ids(split_dir / "test.parquet")
    labels = read_table(split_dir / "labels.parquet")[0].to_pandas()
    truth = dict(zip(labels["id"], labels["label"]))
    model, preprocess, _ = create_clip(clip)

    # Every input must come from the current settings and split: refuse stale ones before any work.
    clip_path, dino_path = features_dir / "clip" / "test.parquet", features_dir / "dino" / "test.parquet"
    clip_ids, clip_test, clip_meta = read_features(clip_path)
    dino_ids, dino_test, dino_meta = read_features(dino_path)
    tensors, text_meta = read_tensors(classifiers)
    head_state, head_meta = read_tensors(head)
    state, prompt_meta = read_tensors(prompt)
    selected, selected_meta = read_table(pseudo_labels)
    now = {**clip_identity(clip), "preprocess": preprocess.as_dict()}
    dino_then = {k: head_meta.get(k) for k in ("encoder", "model", "pretrained", "kwargs", "preprocess")}
    check_encoder(classifiers, text_meta, {**clip_identity(clip), "classes": classes}, "text_classifier")
    check_encoder(clip_path, {**clip_meta, "ids": clip_ids}, {**now, "ids": test_ids}, "features_clip")
    check_encoder(pseudo_labels, selected_meta, {"clip_preprocess": now["preprocess"]}, "features_clip")
    check_encoder(dino_path, {**dino_meta, "ids": dino_ids}, {**dino_then, "ids": test_ids}, "features_dino")
    check_encoder(head, head_meta, {"classes": classes}, "align")
    check_encoder(prompt, prompt_meta, {**now, "classes": classes}, "tune")

    y = np.array([truth[i] for i in test_ids])
    scale = float(tensors["logit_scale"])
    feats = torch.as_tensor(clip_test)
    predictions = {
        "zero_shot": zero_shot_probs(feats, tensors["zeroshot"], scale).argmax(-1).numpy(),
        "cde": zero_shot_probs(feats, tensors["cde"], scale).argmax(-1).numpy(),
        "dl": dl_predict(head_from_state(head_state), dino_test)[0],
    }
    tuned = prompted_from_state(model.visual, state, prompt_meta["logit_scale"])
    predictions["nola"] = tuned_predict(
        tuned, image_root(data), test_ids, preprocess, cfg.batch_size, cfg.num_workers
    ).argmax(-1)

    selected = selected.to_pandas()
    known = selected[selected["id"].isin(truth.keys())]
    accuracy = {name: ev.accuracy(pred, y) for name, pred in predictions.items()}
    # Grouped so that `dvc exp show` / `dvc metrics diff` put the four methods in adjacent columns.
    metrics = {"accuracy": accuracy, "nola_gain": accuracy["nola"] - accuracy["zero_shot"]}
    metrics["pseudo_labels"] = {
        "count": len(selected),
        "precision": ev.accuracy(known["label"].to_numpy(), np.array([truth[i] for i in known["id"]]))
        if len(known)
        else None,
    }
    metrics["data"] = {"test_images": len(y), "classes": len(classes)}
    write_json(out_dir / "metrics.json", metrics)
    per_class = {name: ev.per_class_accuracy(pred, y, len(classes)) for name, pred in predictions.items()}
    write_csv(
        out_dir / "per_class.csv",
        [{"class": c, **{n: per_class[n][i] for n in per_class}} for i, c in enumerate(classes)],
        ["class", *per_class],
    )
    write_csv(out_dir / "confusion.csv", ev.confusion_rows(predictions["nola"], y, classes), ["actual", "predicted"])
    render_summary(
        out_dir / "summary.png",
        f"NoLA on {dataset}: {len(classes)} classes, {len(y)} test images",
        accuracy,
        classes,
        per_class,
    )
    log.info("evaluate: %s", ", ".join(f"{n} {a:.3f}" for n, a in accuracy.items()))


if __name__ == "__main__":
    run(main)
