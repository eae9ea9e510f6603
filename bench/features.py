"""Benchmark 1: end-to-end feature extraction, JPEG files on disk -> parquet.

This project's features stage (pipeline.encode.feature_cache.encode_split with an ImageEncoder in the
precision ``auto`` resolves to) against a loop written the way the reference code encodes images:
fp32 weights, full PIL decode, torchvision Resize/CenterCrop/ToTensor/Normalize in DataLoader
workers, features gathered in memory and written at the end. Same images, same models (random weights: the same cost
as pretrained ones), same process. The images are split into chunks and the two alternate chunk
by chunk; the ratio is the median of the per-chunk time ratios, so that load from other processes
hits both alike. Also the matmul-bound limit: the images/s if every model FLOP ran at the speed
of a large bf16 matmul measured in the same run (FLOPs counted by torch, 2 per multiply-add).

    python -m bench.features [--images 512] [--chunks 4] [--batch-size 64] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from pipeline.core import hardware
from pipeline.core.artifacts import feature_table, file_sha256, read_features
from pipeline.core.params import ClipParams, DinoParams
from pipeline.data.images import Preprocess
from pipeline.encode.features import ImageEncoder
from pipeline.models.factory import create_clip, create_dino

from .common import (
    IMAGES,
    chunked,
    cpu_peak_flops,
    forward_flops,
    interleaved,
    paired_ratio,
    photo_like_jpegs,
    setup_threads,
    stage_extract,
    table,
)

ENCODERS = {
    "clip_b32": lambda: _clip_visual(ClipParams(model="ViT-B-32", pretrained=None)),
    "dino_b16": lambda: create_dino(DinoParams(model="vit_base_patch16_224.dino", pretrained=False)),
}


def _clip_visual(params: ClipParams) -> tuple[nn.Module, Preprocess]:
    model, preprocess, _ = create_clip(params)
    return model.visual, preprocess


class ReferenceImages(Dataset):
    """The reference's dataset: ``Image.open(path).convert('RGB')`` then the torchvision transform."""

    def __init__(self, paths: list[Path], preprocess: Preprocess):
        self.paths = paths
        self.transform = T.Compose(
            [
                T.Resize(preprocess.size, interpolation=T.InterpolationMode.BICUBIC),
                T.CenterCrop(preprocess.size),
                T.ToTensor(),
                T.Normalize(preprocess.mean, preprocess.std),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(Image.open(self.paths[i]).convert("RGB"))


def reference_extract(
    model: nn.Module, root: Path, ids: list[str], preprocess: Preprocess, out: Path, batch_size: int, workers: int
) -> None:
    loader = DataLoader(
        ReferenceImages([root / i for i in ids], preprocess), batch_size=batch_size, num_workers=workers
    )
    chunks = []
    with torch.no_grad():
        for images in loader:
            chunks.append(model(images))
    pq.write_table(feature_table(ids, torch.cat(chunks).numpy()), out)


@dataclass
class Result:
    name: str
    images: int
    baseline: float  # images/s over all chunks
    project: float
    ratio: float  # median over chunks of the paired time ratio
    limit: float  # images/s if every FLOP ran at the bf16 matmul peak
    flops: float  # per image

    @property
    def fraction(self) -> float:
        return self.project / self.limit


def run(
    images: int = 512,
    chunks: int = 4,
    batch_size: int = 64,
    workers: int = 2,
    encoders: tuple[str, ...] = tuple(ENCODERS),
) -> tuple[list[Result], dict]:
    setup_threads()
    compute = hardware.resolve("cpu", "auto")
    ids = photo_like_jpegs(IMAGES, images)
    peak = {"fp32": cpu_peak_flops(torch.float32), "bf16": cpu_peak_flops(torch.bfloat16)}
    with tempfile.TemporaryDirectory(prefix="nola-bench-") as tmp:
        results = [
            _encoder_run(name, ids, Path(tmp), compute, peak["bf16"], chunks, batch_size, workers) for name in encoders
        ]
    info = {
        "peak_fp32": peak["fp32"],
        "peak_bf16": peak["bf16"],
        "precision": compute.precision,
        "threads": torch.get_num_threads(),
        "batch_size": batch_size,
        "workers": workers,
        "chunks": chunks,
    }
    return results, info


def _encoder_run(
    name: str,
    ids: list[str],
    scratch: Path,
    compute: hardware.Compute,
    peak: float,
    chunks: int,
    batch_size: int,
    workers: int,
) -> Result:
    reference, preprocess = ENCODERS[name]()
    flops = forward_flops(reference, preprocess.size)
    reference.eval()
    project = ImageEncoder.prepare(ENCODERS[name]()[0], preprocess, compute, batch_size, workers)
    hashes = {i: file_sha256(IMAGES / i) for i in ids}
    outs = {"baseline": scratch / f"{name}-baseline.parquet", "project": scratch / f"{name}-project.parquet"}
    runs = {
        "baseline": lambda ids: reference_extract(
            reference, IMAGES, ids, preprocess, outs["baseline"], batch_size, workers
        ),
        "project": lambda ids: stage_extract(project, IMAGES, ids, hashes, outs["project"]),
    }
    for fn in runs.values():
        fn(ids[:batch_size])  # warm-up: oneDNN kernels, page cache
    parts = chunked(ids, chunks)
    seconds = interleaved(runs, parts)
    assert read_features(outs["project"])[0] == parts[-1] and pq.read_table(outs["baseline"]).num_rows == len(parts[-1])
    return Result(
        name,
        len(ids),
        len(ids) / sum(seconds["baseline"]),
        len(ids) / sum(seconds["project"]),
        paired_ratio(seconds["baseline"], seconds["project"]),
        peak / flops,
        flops,
    )


def report(results: list[Result], info: dict) -> str:
    rows = [
        [
            r.name,
            r.images,
            f"{r.baseline:.1f}",
            f"{r.project:.1f}",
            f"{r.ratio:.2f}x",
            f"{r.flops / 1e9:.1f}",
            f"{r.limit:.1f}",
            f"{100 * r.fraction:.0f}%",
        ]
        for r in results
    ]
    head = (
        f"feature extraction, JPEG -> parquet ({info['threads']} threads, batch {info['batch_size']}, "
        f"{info['workers']} workers, {info['chunks']} interleaved chunks; ratio = median of chunk ratios); "
        f"matmul peak fp32 {info['peak_fp32'] / 1e9:.0f} GFLOP/s, bf16 {info['peak_bf16'] / 1e9:.0f} GFLOP/s; "
        f"project precision {info['precision']}"
    )
    return (
        head
        + "\n"
        + table(
            [
                "encoder",
                "images",
                "baseline img/s",
                "project img/s",
                "ratio",
                "GFLOP/img",
                "bf16 limit img/s",
                "of limit",
            ],
            rows,
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=512)
    parser.add_argument("--chunks", type=int, default=4, help="interleaved baseline/project runs")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    args = parser.parse_args()
    results, info = run(args.images, args.chunks, args.batch_size, args.workers, tuple(args.encoders))
    print(report(results, info))


if __name__ == "__main__":
    main()
