"""Stage features_<encoder>: pool and test images -> <encoder>/pool.parquet, test.parquet."""

from enum import StrEnum
from pathlib import Path

import pyarrow.parquet as pq

from pipeline.core import hardware
from pipeline.core.distributed import process_group
from pipeline.core.params import load_params
from pipeline.core.stage import log, run
from pipeline.data.datasets import image_root
from pipeline.encode.feature_cache import PreviousFeatures, encode_split, previous_outputs
from pipeline.encode.features import ImageEncoder, library_versions
from pipeline.models.factory import create_encoder

SPLITS = ("pool", "test")


class Encoder(StrEnum):
    clip = "clip"
    dino = "dino"


def main(encoder: Encoder, dataset: str, split_dir: Path, out_dir: Path, params: Path = Path("params.yaml")) -> None:
    p = load_params(params)
    cfg = p.features
    hw = hardware.resolve(cfg.device, cfg.precision, "features")
    model = create_encoder(encoder.value, p)
    encode = ImageEncoder.prepare(model.network, model.preprocess, hw, cfg.batch_size, cfg.num_workers)
    root = image_root(p.dataset(dataset).data)
    # what features can be reused across: the encoder (its seed too) and the compute (bf16 or a GPU
    # round the last bits differently)
    meta = {
        **model.identity,
        "preprocess": model.preprocess.as_dict(),
        "compute": hw.as_dict(),
        "versions": library_versions(),
    }
    with process_group(p.compute.backend, hw.device.type) as group:
        previous = PreviousFeatures(previous_outputs([out_dir / f"{s}.parquet" for s in SPLITS]), meta)
        for split in SPLITS:
            out = out_dir / f"{split}.parquet"
            counts = encode_split(
                out,
                split_dir / f"{split}.parquet",
                encode,
                meta,
                root,
                cfg.part_size,
                group,
                previous,
                f"features_{encoder.value} {split}",
                # an unlabeled collection has no test split: an empty file, features as wide as the pool's
                empty_dim=pq.read_schema(out_dir / "pool.parquet").field("feature").type.list_size
                if split == "test"
                else None,
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
