"""Stage predict: the four classifiers on every image of the collection -> predictions.parquet."""

from pathlib import Path

import numpy as np

from pipeline.core.artifacts import read_classes, read_features, read_tensors
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.data.datasets import image_root, read_ids
from pipeline.method.alignment import head_from_state
from pipeline.method.text_classifier import read_classifiers
from pipeline.method.visual_prompts import load_tuned
from pipeline.models.factory import clip_identity, create_clip
from pipeline.report import evaluation as ev
from pipeline.report.predictions import predictions_table, write_predictions

DINO_IDENTITY = ("encoder", "model", "pretrained", "kwargs", "preprocess")
SPLITS = ("pool", "test")


def main(
    dataset: str,
    split_dir: Path,
    features_dir: Path,
    classifiers: Path,
    head: Path,
    prompt: Path,
    out: Path,
    params: Path = Path("params.yaml"),
) -> None:
    p = load_params(params)
    classes = read_classes(split_dir / "classes.json")
    ids = {s: read_ids(split_dir / f"{s}.parquet") for s in SPLITS}
    model, preprocess, _ = create_clip(p.clip)

    # Every input must come from the current settings and split: refuse stale ones before any work.
    clip_now = {**clip_identity(p.clip), "preprocess": preprocess.as_dict()}
    text = read_classifiers(classifiers, clip_identity(p.clip), classes)
    head_state, head_meta = read_tensors(head, made_with={"classes": classes}, by="align")
    dino_then = {k: head_meta.get(k) for k in DINO_IDENTITY}
    clip_parts, dino_parts = [], []
    for split in SPLITS:
        where = features_dir / "{}" / f"{split}.parquet"
        _, clip, _ = read_features(str(where).format("clip"), made_with=clip_now, by="features_clip", ids=ids[split])
        _, dino, _ = read_features(str(where).format("dino"), made_with=dino_then, by="features_dino", ids=ids[split])
        clip_parts.append(clip)
        dino_parts.append(dino)
    tuned, _ = load_tuned(prompt, model.visual, {**clip_now, "classes": classes})

    every = [*ids["pool"], *ids["test"]]
    probs = ev.four_classifiers(
        np.concatenate(clip_parts),
        np.concatenate(dino_parts),
        text,
        head_from_state(head_state),
        tuned,
        image_root(p.dataset(dataset).data),
        every,
        preprocess,
        p.predict.batch_size,
        p.predict.num_workers,
    )
    splits = ["pool"] * len(ids["pool"]) + ["test"] * len(ids["test"])
    write_predictions(out, predictions_table(every, splits, probs, classes, p.predict.top_k), classes)
    agree = float((probs["nola"].argmax(1) == probs["zero_shot"].argmax(1)).mean())
    log.info("predict@%s: %d images, NoLA agrees with zero-shot on %.3f -> %s", dataset, len(every), agree, out)


if __name__ == "__main__":
    run(main)
