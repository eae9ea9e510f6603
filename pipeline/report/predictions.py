"""The predictions artifact: for every image, the top classes and probabilities of the four classifiers.

The main output for a collection without labels; evaluation and the report read it, so every
number they show comes from one computation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa

from pipeline.core.artifacts import read_table, write_csv, write_table
from pipeline.report.evaluation import METHODS


def top_classes(probs: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """(N x k class indices, N x k probabilities), most likely first; ties go to the earlier class,
    so the rows are reproducible."""
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    return order, np.take_along_axis(probs, order, axis=1)


def predictions_table(
    ids: list[str], splits: list[str], probs: dict[str, np.ndarray], classes: list[str], k: int
) -> pa.Table:
    """id, split, then per method ``<method>_class_<j>`` and ``<method>_prob_<j>`` for j = 1..k."""
    k = min(k, len(classes))
    columns: dict[str, pa.Array] = {"id": pa.array(ids, pa.string()), "split": pa.array(splits, pa.string())}
    for method in METHODS:
        order, top = top_classes(probs[method], k)
        for j in range(k):
            columns[f"{method}_class_{j + 1}"] = pa.array([classes[c] for c in order[:, j]], pa.string())
            columns[f"{method}_prob_{j + 1}"] = pa.array(top[:, j], pa.float32())
    return pa.table(columns)


def write_predictions(path: str | Path, table: pa.Table, classes: list[str]) -> None:
    write_table(path, table, {"classes": classes, "methods": list(METHODS)})


def read_predictions(path: str | Path):
    """The predictions as a DataFrame, and the class list they were made with."""
    table, meta = read_table(path, by="predict")
    return table.to_pandas(), meta["classes"]


def export_csv(predictions: str | Path, out: str | Path) -> int:
    """The predictions artifact as CSV (probabilities with 6 decimals); returns the number of rows."""
    frame, _ = read_predictions(predictions)
    rows = [
        {c: (f"{v:.6f}" if "_prob_" in c else v) for c, v in row.items()} for row in frame.to_dict(orient="records")
    ]
    write_csv(out, rows, list(frame.columns))
    return len(rows)
