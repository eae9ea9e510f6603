"""Stage features_<encoder>: pool and test images -> <encoder>/pool.parquet, test.parquet."""

from enum import StrEnum
from pathlib import Path

from pipeline.core import hardware
from pipeline.core.distributed import process_group
from pipeline.core.params import ClipParams, ComputeParams, DinoParams, FeaturesParams, load_dataset, load_section
from pipeline.core.stage import log, run
from pipeline.data.datasets import image_root
from pipeline.encode.feature_cache import PreviousFeatures, encode_split, previous_outputs
from pipeline.encode.features import ImageEncoder, library_versions
from pipeline.models.factory import clip_identity, create_clip, create_dino, dino_identity

SPLITS = ("pool", "test")


class Encoder(StrEnum):
    clip = "clip"
    dino = "dino"


def main(encoder: Encoder, dataset: str, split_dir: Path, out_dir: Path, params: Path = Path("params.yaml")) -> None:
    data = load_dataset(params, dataset).data
    features = load_section(params, "features", FeaturesParams)
    compute = load_section(params, "compute", ComputeParams)
    hw = hardware.resolve(features.device, features.precision, "features")
    if encoder is Encoder.clip:
        clip = load_section(params, "clip", ClipParams)
        model, preprocess, _ = create_clip(clip)
        network, identity, seed = model.visual, clip_identity(clip), clip.seed
    else:
        dino = load_section(params, "dino", DinoParams)
        network, preprocess = create_dino(dino)
        identity, seed = dino_identity(dino), dino.seed
    encode = ImageEncoder.prepare(network, preprocess, hw, features.batch_size, features.num_workers)
    root = image_root(data)
    # the seed sets the weights that pretrained leaves random: part of what features can be reused across;
    # so does the compute (bf16 or a GPU round the last bits differently)
    meta = {
        **identity,
        "seed": seed,
        "preprocess": preprocess.as_dict(),
        "compute": hw.as_dict(),
        "versions": library_versions(),
    }
    with process_group(compute.backend, hw.device.type) as group:
        previous = PreviousFeatures(previous_outputs([out_dir / f"{s}.parquet" for s in SPLITS]), meta)
        for split in SPLITS:
            out = out_dir / f"{split}.parquet"
            counts = encode_split(
                out,
                split_dir / f"{split}.parquet",
                encode,
                meta,
                root,
                features.part_size,
                group,
                previous,
                f"features_{encoder.value} {split}",
            )
            if group.is_main:
                log.info(
                    "features_%s %s: %d images encoded, %d from finished parts, %d reused by content hash "
                    "(%d processes, %s, %s) -> %s",
                    encoder.value,
                    split,
                    counts.encoded,
                    counts.resumed,
                    counts.reused,
                    group.world_size,
                    hw.device.type,
                    hw.precision,
                    out,
                )


if __name__ == "__main__":
    run(main)
