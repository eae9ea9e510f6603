"""Stage pseudo_labels: CLIP pool features x CDE -> the most confident images per class."""

from pathlib import Path

import numpy as np
import pyarrow as pa
import torch

from pipeline.core.artifacts import ArtifactError, check_encoder, read_features, read_tensors, write_table
from pipeline.core.params import ClipParams, PseudoLabelParams, load_section
from pipeline.core.stage import log, run
from pipeline.method import pseudo_labels as pl
from pipeline.method.text_classifier import zero_shot_probs
from pipeline.models.factory import clip_identity


def main(clip_pool: Path, classifiers: Path, out: Path, params: Path = Path("params.yaml")) -> None:
    clip = load_section(params, "clip", ClipParams)
    cfg = load_section(params, "pseudo_labels", PseudoLabelParams)
    ids, features, meta = read_features(clip_pool)
    check_encoder(clip_pool, meta, clip_identity(clip), "features_clip")
    tensors, text_meta = read_tensors(classifiers)
    check_encoder(classifiers, text_meta, clip_identity(clip), "text_classifier")
    classes = text_meta["classes"]
    if not ids:
        raise ArtifactError(f"{clip_pool}: the unlabeled pool is empty; add images to the dataset's data.root")
    probs = zero_shot_probs(torch.as_tensor(features), tensors["cde"], float(tensors["logit_scale"])).numpy()
    k = pl.images_per_class(len(ids), len(classes), cfg.fraction, cfg.min_per_class)
    idx, label, rank, prob = pl.select(probs, k, cfg.max_rank)
    report = pl.coverage(label, rank, classes)
    if report["missing"]:
        log.warning(
            "pseudo_labels: no pseudo-label for %s (no image has them in its top-%d); the DL head learns no "
            "example of them",
            report["missing"],
            cfg.max_rank,
        )
    if report["fallback"]:
        log.info(
            "pseudo_labels: %s are no image's top-1; their pseudo-labels come from 2nd/3rd predictions",
            report["fallback"],
        )
    table = pa.table(
        {
            "id": pa.array([ids[i] for i in idx], type=pa.string()),
            "label": pa.array(label, type=pa.int32()),
            "rank": pa.array(rank, type=pa.int8()),
            "prob": pa.array(prob, type=pa.float32()),
        }
    )
    write_table(out, table, {"k": k, "classes": classes, "coverage": report, "clip_preprocess": meta["preprocess"]})
    fallback = int(np.sum(rank > 1))
    log.info("pseudo_labels: k=%d, %d images selected (%d by 2nd/3rd prediction) -> %s", k, len(idx), fallback, out)


if __name__ == "__main__":
    run(main)
