"""Predictions of a tuned model on new images: a folder or a manifest in, top-k classes out."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pipeline.core.artifacts import write_csv
from pipeline.core.errors import NolaError
from pipeline.core.params import ClipParams
from pipeline.data.datasets import find_images
from pipeline.data.images import IMAGE_SUFFIXES
from pipeline.data.screening import REASONS, inspect_file
from pipeline.method.tuning import class_probs
from pipeline.method.visual_prompts import load_tuned
from pipeline.models.factory import clip_identity, create_clip


class PredictError(NolaError, ValueError):
    """Images to predict on that cannot be read as given."""


def list_images(source: Path) -> tuple[Path, list[str]]:
    """A folder (searched recursively) or a CSV / parquet manifest with a ``path`` column, paths
    relative to the manifest's folder or absolute -> (root, image ids relative to root)."""
    if source.is_dir():
        ids = find_images(source)
        if not ids:
            raise PredictError(f"{source}: no images inside (looked for {', '.join(IMAGE_SUFFIXES)})")
        return source, ids
    if source.suffix.lower() not in (".csv", ".parquet") or not source.is_file():
        raise PredictError(f"{source}: not a folder of images nor a .csv / .parquet manifest")
    import pandas as pd

    frame = pd.read_parquet(source) if source.suffix.lower() == ".parquet" else pd.read_csv(source, dtype=str)
    if "path" not in frame.columns:
        raise PredictError(f"{source}: a manifest needs a 'path' column, has {list(frame.columns)}")
    return source.parent, [str(p) for p in frame["path"]]


def usable(root: Path, ids: list[str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The ids that open as images, and (id, reason) for each that does not: one bad file is
    skipped with its reason, it does not stop the batch."""
    good, bad = [], []
    for image_id in ids:
        digest, reason, detail = inspect_file(root, image_id)
        if digest:
            good.append(image_id)
        else:
            bad.append((image_id, REASONS[reason] + (f" [{detail}]" if detail else "")))
    return good, bad


def top_k(ids: list[str], probs: np.ndarray, classes: list[str], k: int) -> list[dict]:
    """One row per image: path, then class_1, prob_1, ... class_k, prob_k, most likely first.
    Ties are broken by class order, so the rows are reproducible."""
    k = min(k, len(classes))
    order = np.argsort(-probs, axis=1, kind="stable")[:, :k]
    rows = []
    for image, ranks, p in zip(ids, order, probs):
        row: dict = {"path": image}
        for j, c in enumerate(ranks, 1):
            row[f"class_{j}"], row[f"prob_{j}"] = classes[c], f"{p[c]:.6f}"
        rows.append(row)
    return rows


def predict_images(
    tuned: Path, clip: ClipParams, source: Path, out: Path, k: int = 5, batch_size: int = 64, num_workers: int = 0
) -> tuple[int, list[tuple[str, str]]]:
    """Write ``out`` (CSV) for every usable image of ``source``; returns the number of images and
    the skipped files with their reasons."""
    root, listed = list_images(source)
    ids, skipped = usable(root, listed)
    if not ids:
        raise PredictError(f"{source}: none of the {len(listed)} files opens as an image, e.g. {skipped[0]}")
    model, preprocess, _ = create_clip(clip)
    prompted, meta = load_tuned(tuned, model.visual, clip_identity(clip))
    probs = class_probs(prompted, root, ids, preprocess, batch_size, num_workers)
    k = min(k, len(meta["classes"]))
    fields = ["path", *[f for j in range(1, k + 1) for f in (f"class_{j}", f"prob_{j}")]]
    write_csv(out, top_k(ids, probs, meta["classes"], k), fields)
    return len(ids), skipped
