"""Stage features_<encoder>: pool and test images -> <encoder>/pool.parquet, test.parquet."""
from enum import StrEnum
from pathlib import Path

from pipeline.datasets import image_root, read_ids
from pipeline.features import extract_to_parquet
from pipeline.models import clip_identity, create_clip, create_dino, dino_identity
from pipeline.params import ClipParams, DinoParams, FeaturesParams, load_dataset, load_section
from pipeline.stage import log, run


class Encoder(StrEnum):
    clip = "clip"
    dino = "dino"


def main(encoder: Encoder, dataset: str, split_dir: Path, out_dir: Path, params: Path = Path("params.yaml")) -> None:
    data = load_dataset(params, dataset).data
    features = load_section(params, "features", FeaturesParams)
    if encoder is Encoder.clip:
        clip = load_section(params, "clip", ClipParams)
        model, preprocess, _ = create_clip(clip)
        encode, identity = model.encode_image, clip_identity(clip)
    else:
        dino = load_section(params, "dino", DinoParams)
        model, preprocess = create_dino(dino)
        encode, identity = model, dino_identity(dino)
    root = image_root(data)
    for split in ("pool", "test"):
        ids = read_ids(split_dir / f"{split}.parquet")
        out = out_dir / f"{split}.parquet"
        extract_to_parquet(out, encode, identity, root, ids, preprocess, features.batch_size, features.num_workers,
                           desc=f"features_{encoder.value} {split}")
        log.info("features_%s: %d %s images -> %s", encoder.value, len(ids), split, out)


if __name__ == "__main__":
    run(main)
