"""Metrics. The only module that looks at labels, and only the evaluate stage calls it."""

from __future__ import annotations

import numpy as np


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    return float((np.asarray(pred) == np.asarray(labels)).mean()) if len(labels) else float("nan")


def per_class_accuracy(pred: np.ndarray, labels: np.ndarray, n_classes: int) -> list[float | None]:
    out = []
    for c in range(n_classes):
        mask = labels == c
        out.append(float((pred[mask] == c).mean()) if mask.any() else None)
    return out


def confusion_rows(pred: np.ndarray, labels: np.ndarray, classes: list[str]) -> list[dict[str, str]]:
    """One row per test image, the shape DVC's confusion-matrix template reads."""
    return [{"actual": classes[a], "predicted": classes[p]} for a, p in zip(labels.tolist(), pred.tolist())]
