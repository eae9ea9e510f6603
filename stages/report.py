"""Stage report: predictions, pseudo-labels, training log, skipped files (and metrics where there are
labels) -> report.html (self-contained) and summary.png."""

from pathlib import Path

from pipeline.core.artifacts import read_csv, read_json, read_table
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.data.datasets import image_root
from pipeline.report.page import ReportInputs, write_report
from pipeline.report.predictions import read_predictions


def main(
    dataset: str,
    split_dir: Path,
    predictions: Path,
    pseudo_labels: Path,
    tune_log: Path,
    evaluate_dir: Path,
    out_dir: Path,
    params: Path = Path("params.yaml"),
) -> None:
    p = load_params(params)
    frame, classes = read_predictions(predictions)
    metrics = read_json(evaluate_dir / "metrics.json")
    selected, _ = read_table(pseudo_labels, columns=["label"])
    inputs = ReportInputs(
        dataset=dataset,
        classes=classes,
        predictions=frame,
        pseudo_labels=selected.column("label").to_pylist(),
        training=read_csv(tune_log),
        skipped=read_json(split_dir / "skipped.json")["skipped"],
        metrics=metrics,
        confusion=read_csv(evaluate_dir / "confusion.csv") if metrics.get("evaluated") else [],
    )
    write_report(out_dir, inputs, image_root(p.dataset(dataset).data), p.report.examples, p.report.thumbnail)
    log.info("report@%s: %d images -> %s", dataset, len(frame), out_dir / "report.html")


if __name__ == "__main__":
    run(main)
