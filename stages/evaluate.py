"""Stage evaluate: the only stage that reads labels -> metrics.json, per-class accuracy, confusion.

It scores the predict stage's predictions on the labeled test split, or where a collection has
none, on the images of ``data.eval_labels``. Without either it writes a metrics.json that says
so, and empty tables: an unlabeled collection ends with its predictions and report, not an error.
"""

from pathlib import Path

import numpy as np

from pipeline.core.artifacts import output_set, read_classes, read_table, write_csv, write_json
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.data.datasets import read_eval_labels, read_ids, read_labels
from pipeline.report import evaluation as ev
from pipeline.report.predictions import read_predictions
from pipeline.report.summary_plot import render_no_labels, render_summary


def main(
    dataset: str,
    split_dir: Path,
    predictions: Path,
    pseudo_labels: Path,
    out_dir: Path,
    params: Path = Path("params.yaml"),
) -> None:
    data = load_params(params).dataset(dataset).data
    classes = read_classes(split_dir / "classes.json")
    frame, made_for = read_predictions(predictions)
    if made_for != classes:
        raise ev.EvaluationError(f"{predictions}: made for other classes; rerun predict (dvc repro predict@{dataset})")
    truth = read_labels(split_dir / "labels.parquet")
    test_ids = read_ids(split_dir / "test.parquet")
    scored, on = test_ids, "test images"
    if not test_ids:
        extra = read_eval_labels(data, classes, read_ids(split_dir / "pool.parquet"))
        truth = {**truth, **extra}
        scored, on = sorted(extra), "images of data.eval_labels"
    if not scored:
        with output_set(out_dir, last="metrics.json") as staging:
            write_json(staging / "metrics.json", {"evaluated": False, "reason": ev.NO_LABELS})
            write_csv(staging / "per_class.csv", [], ["class", *ev.METHODS])
            write_csv(staging / "confusion.csv", [], ["actual", "predicted"])
            render_no_labels(staging / "summary.png", f"NoLA on {dataset}: {ev.NO_LABELS}")
        log.info("evaluate@%s: %s; see the predictions and the report", dataset, ev.NO_LABELS)
        return
    index = {c: i for i, c in enumerate(classes)}
    rows = frame.set_index("id").loc[scored]
    predicted = {m: np.array([index[c] for c in rows[f"{m}_class_1"]]) for m in ev.METHODS}
    y = np.array([truth[i] for i in scored])
    selected, _ = read_table(pseudo_labels)
    metrics = {**ev.metrics_document(predicted, y, selected.to_pandas(), truth, classes), "evaluated": True}
    metrics["scored_on"] = on
    per_class = {name: ev.per_class_accuracy(pred, y, len(classes)) for name, pred in predicted.items()}
    with output_set(out_dir, last="metrics.json") as staging:
        write_json(staging / "metrics.json", metrics)
        write_csv(
            staging / "per_class.csv",
            [{"class": c, **{n: per_class[n][i] for n in per_class}} for i, c in enumerate(classes)],
            ["class", *per_class],
        )
        write_csv(staging / "confusion.csv", ev.confusion_rows(predicted["nola"], y, classes), ["actual", "predicted"])
        render_summary(
            staging / "summary.png",
            f"NoLA on {dataset}: {len(classes)} classes, {len(y)} {on}",
            metrics["accuracy"],
            classes,
            per_class,
        )
    log.info("evaluate: %s", ", ".join(f"{n} {a:.3f}" for n, a in metrics["accuracy"].items()))


if __name__ == "__main__":
    run(main)
