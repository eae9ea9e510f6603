"""Stage pseudo_labels: CLIP pool features x CDE -> the most confident images per class."""

from pathlib import Path

import torch

from pipeline.core.artifacts import read_features, write_table
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.method import pseudo_labels as pl
from pipeline.method.text_classifier import read_classifiers, zero_shot_probs
from pipeline.models.factory import clip_identity


def main(clip_pool: Path, classifiers: Path, out: Path, params: Path = Path("params.yaml")) -> None:
    p = load_params(params)
    ids, features, meta = read_features(clip_pool, made_with=clip_identity(p.clip), by="features_clip")
    text = read_classifiers(classifiers, clip_identity(p.clip))
    probs = zero_shot_probs(torch.as_tensor(features), text.cde, text.logit_scale).numpy()
    table, info = pl.pseudo_label_table(ids, probs, text.classes, p.pseudo_labels)
    write_table(out, table, {**info, "clip_preprocess": meta["preprocess"]})
    if info["coverage"]["missing"]:
        log.warning(
            "pseudo_labels: no pseudo-label for %s (no image has them in its top-%d); the DL head learns no "
            "example of them",
            info["coverage"]["missing"],
            p.pseudo_labels.max_rank,
        )
    if info["coverage"]["fallback"]:
        log.info(
            "pseudo_labels: %s are no image's top-1; their pseudo-labels come from 2nd/3rd predictions",
            info["coverage"]["fallback"],
        )
    log.info(
        "pseudo_labels: k=%d, %d images selected (%d by 2nd/3rd prediction) -> %s",
        info["k"],
        table.num_rows,
        sum(r > 1 for r in table.column("rank").to_pylist()),
        out,
    )


if __name__ == "__main__":
    run(main)
