"""Pseudo-label selection: the CDE classifier's most confident images per class."""

from __future__ import annotations

import math

import numpy as np
import pyarrow as pa

from pipeline.core.errors import NolaError
from pipeline.core.params import PseudoLabelParams


class PseudoLabelError(NolaError, ValueError):
    """Pseudo-labels the method cannot go on from, worded for the user."""


def images_per_class(n_pool: int, n_classes: int, fraction: float = 0.2, minimum: int = 16) -> int:
    """k = max(minimum, floor(fraction * N_pool / C))."""
    return max(minimum, math.floor(fraction * n_pool / n_classes))


def select(probs: np.ndarray, k: int, max_rank: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Top-k images per class by confidence, falling back to 2nd then 3rd predictions.

    For class c: the images whose top-1 prediction is c, ranked by their top-1 probability. If no
    image predicts c first, those whose 2nd prediction is c (ranked by the 2nd probability), then
    3rd. An image picked twice is kept only for its first class. Ties break by image index.

    Returns (image index, class, rank used, probability), sorted by class then confidence.
    """
    n, n_classes = probs.shape
    ranks = min(max_rank, n_classes)
    order = np.argsort(-probs, axis=1, kind="stable")[:, :ranks]
    sorted_probs = np.take_along_axis(probs, order, axis=1)
    picked: list[tuple[int, int, int, float]] = []
    seen: set[int] = set()
    for c in range(n_classes):
        for r in range(ranks):
            candidates = np.flatnonzero(order[:, r] == c)
            if candidates.size:
                break
        else:
            continue
        conf = sorted_probs[candidates, r]
        best = candidates[np.lexsort((candidates, -conf))][:k]
        for i in best:
            if int(i) not in seen:
                seen.add(int(i))
                picked.append((int(i), c, r + 1, float(probs[i, c])))
    if not picked:
        empty = np.zeros(0, dtype=np.int64)
        return empty, empty, empty, np.zeros(0, dtype=np.float32)
    idx, cls, rank, prob = zip(*picked)
    return np.array(idx), np.array(cls), np.array(rank), np.array(prob, dtype=np.float32)


def coverage(label: np.ndarray, rank: np.ndarray, classes: list[str]) -> dict[str, list]:
    """Per class: how many pseudo-labels, which classes got none, which only by 2nd/3rd predictions.

    A class without pseudo-labels is allowed (the head still has its output, it just learns no
    example of it). Fewer than two covered classes is not: the DL network would be constant.
    """
    counts = np.bincount(label.astype(np.int64), minlength=len(classes))
    report = {
        "per_class": counts.tolist(),
        "missing": [c for c, n in zip(classes, counts) if n == 0],
        "fallback": [classes[c] for c in sorted({int(c) for c, r in zip(label, rank) if r > 1})],
    }
    covered = len(classes) - len(report["missing"])
    if len(classes) > 1 and covered < 2:
        raise PseudoLabelError(
            f"only {covered} of {len(classes)} classes got pseudo-labels; the DL network would predict one class for "
            "every image. Check the class names (data.classes) and the descriptions, or raise pseudo_labels.max_rank"
        )
    return report


def pseudo_label_table(
    ids: list[str], probs: np.ndarray, classes: list[str], params: PseudoLabelParams
) -> tuple[pa.Table, dict]:
    """The pseudo_labels artifact: one row per selected image (id, label, rank, prob), and its
    metadata (k, classes, coverage)."""
    if not ids:
        raise PseudoLabelError("the unlabeled pool is empty; add images to the dataset's data.root")
    k = images_per_class(len(ids), len(classes), params.fraction, params.min_per_class)
    idx, label, rank, prob = select(probs, k, params.max_rank)
    table = pa.table(
        {
            "id": pa.array([ids[i] for i in idx], type=pa.string()),
            "label": pa.array(label, type=pa.int32()),
            "rank": pa.array(rank, type=pa.int8()),
            "prob": pa.array(prob, type=pa.float32()),
        }
    )
    return table, {"k": k, "classes": classes, "coverage": coverage(label, rank, classes)}
