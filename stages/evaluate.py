"""Stage evaluate: the only stage that reads labels -> metrics.json, per-class accuracy, confusion."""

from pathlib import Path

import numpy as np

from pipeline.core.artifacts import (
    output_set,
    read_classes,
    read_features,
    read_table,
    read_tensors,
    write_csv,
    write_json,
)
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.data.datasets import image_root, read_ids, read_labels
from pipeline.method.alignment import head_from_state
from pipeline.method.text_classifier import read_classifiers
from pipeline.method.visual_prompts import load_tuned
from pipeline.models.factory import clip_identity, create_clip
from pipeline.report import evaluation as ev
from pipeline.report.summary_plot import render_summary

DINO_IDENTITY = ("encoder", "model", "pretrained", "kwargs", "preprocess")


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
    p = load_params(params)
    classes = read_classes(split_dir / "classes.json")
    test_ids = read_ids(split_dir / "test.parquet")
    truth = read_labels(split_dir / "labels.parquet")
    model, preprocess, _ = create_clip(p.clip)

    # Every input must come from the current settings and split: refuse stale ones before any work.
    clip_now = {**clip_identity(p.clip), "preprocess": preprocess.as_dict()}
    text = read_classifiers(classifiers, clip_identity(p.clip), classes)
    head_state, head_meta = read_tensors(head, made_with={"classes": classes}, by="align")
    _, clip_test, _ = read_features(
        features_dir / "clip" / "test.parquet", made_with=clip_now, by="features_clip", ids=test_ids
    )
    dino_then = {k: head_meta.get(k) for k in DINO_IDENTITY}
    _, dino_test, _ = read_features(
        features_dir / "dino" / "test.parquet", made_with=dino_then, by="features_dino", ids=test_ids
    )
    selected, _ = read_table(pseudo_labels, made_with={"clip_preprocess": clip_now["preprocess"]}, by="features_clip")
    tuned, _ = load_tuned(prompt, model.visual, {**clip_now, "classes": classes})

    probs = ev.four_classifiers(
        clip_test,
        dino_test,
        text,
        head_from_state(head_state),
        tuned,
        image_root(p.dataset(dataset).data),
        test_ids,
        preprocess,
        p.evaluate.batch_size,
        p.evaluate.num_workers,
    )
    predictions = {name: prob.argmax(axis=1) for name, prob in probs.items()}
    y = np.array([truth[i] for i in test_ids])
    metrics = ev.metrics_document(predictions, y, selected.to_pandas(), truth, classes)
    per_class = {name: ev.per_class_accuracy(pred, y, len(classes)) for name, pred in predictions.items()}
    with output_set(out_dir, last="metrics.json") as staging:
        write_json(staging / "metrics.json", metrics)
        write_csv(
            staging / "per_class.csv",
            [{"class": c, **{n: per_class[n][i] for n in per_class}} for i, c in enumerate(classes)],
            ["class", *per_class],
        )
        confusion = ev.confusion_rows(predictions["nola"], y, classes)
        write_csv(staging / "confusion.csv", confusion, ["actual", "predicted"])
        render_summary(
            staging / "summary.png",
            f"NoLA on {dataset}: {len(classes)} classes, {len(y)} test images",
            metrics["accuracy"],
            classes,
            per_class,
        )
    log.info("evaluate: %s", ", ".join(f"{n} {a:.3f}" for n, a in metrics["accuracy"].items()))


if __name__ == "__main__":
    run(main)
