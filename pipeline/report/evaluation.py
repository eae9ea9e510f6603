"""Evaluation: the four classifiers on one set of images, and metrics against labels.

The only module that looks at labels, and only the evaluate stage calls its metric functions.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from pipeline.core.errors import NolaError
from pipeline.data.images import Preprocess
from pipeline.method.alignment import AlignmentHead, dl_probs
from pipeline.method.text_classifier import TextClassifiers, zero_shot_probs
from pipeline.method.tuning import class_probs
from pipeline.method.visual_prompts import PromptedCLIP

METHODS = ("zero_shot", "cde", "dl", "nola")  # the paper's baselines, then NoLA
NO_LABELS = "no labeled test split and no data.eval_labels, so nothing to score"


class EvaluationError(NolaError, ValueError):
    """Inputs of evaluation that do not belong together."""


def four_classifiers(
    clip_features: np.ndarray,
    dino_features: np.ndarray,
    text: TextClassifiers,
    head: AlignmentHead,
    tuned: PromptedCLIP,
    root: str | Path,
    ids: list[str],
    preprocess: Preprocess,
    batch_size: int = 64,
    num_workers: int = 0,
) -> dict[str, np.ndarray]:
    """Class probabilities (N x C) of zero-shot CLIP, CDE, the DL network and tuned CLIP (NoLA)
    for the images ``ids``, whose CLIP and DINO features are given in the same order."""
    clip = torch.as_tensor(clip_features)
    return {
        "zero_shot": zero_shot_probs(clip, text.zeroshot, text.logit_scale).numpy(),
        "cde": zero_shot_probs(clip, text.cde, text.logit_scale).numpy(),
        "dl": dl_probs(head, dino_features),
        "nola": class_probs(tuned, root, ids, preprocess, batch_size, num_workers),
    }


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


def metrics_document(
    predictions: dict[str, np.ndarray],
    labels: np.ndarray,
    pseudo_labels: pd.DataFrame,
    truth: dict[str, int],
    classes: list[str],
) -> dict:
    """metrics.json: accuracies grouped so that `dvc exp show` / `dvc metrics diff` put the four
    methods in adjacent columns, NoLA's gain, and the precision of the pseudo-labels."""
    scores = {name: accuracy(pred, labels) for name, pred in predictions.items()}
    known = pseudo_labels[pseudo_labels["id"].isin(truth.keys())]
    precision = accuracy(known["label"].to_numpy(), np.array([truth[i] for i in known["id"]])) if len(known) else None
    return {
        "accuracy": scores,
        "nola_gain": scores["nola"] - scores["zero_shot"],
        "pseudo_labels": {"count": len(pseudo_labels), "precision": precision},
        "data": {"test_images": len(labels), "classes": len(classes)},
    }
