"""Benchmark 4, for a machine with a CUDA GPU: benchmarks 1 and 2 on the GPU, in absolute images/s
and as a fraction of the GPU's bf16 limit (a large bf16 matmul measured in the same run).

For each of feature extraction (CLIP ViT-B/32, DINO ViT-B/16) and prompt tuning (ViT-B/32, 50
prompt tokens) it prints the end-to-end rate (JPEG files -> parquet / one training epoch, loader
workers decoding on the CPU cores) and the model-only rate (the same batch already on the GPU),
so a gap between the two shows the decoding bound. A few minutes at most.

    python -m bench.gpu            # on the GPU machine
    python -m bench.gpu --tiny     # tiny models and images on whatever device there is: checks it runs
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pipeline.core import hardware
from pipeline.core.artifacts import file_sha256
from pipeline.core.params import ClipParams, DinoParams, TuneParams
from pipeline.data.images import Preprocess
from pipeline.encode.features import ImageEncoder
from pipeline.method.tuning import optimizer_for, smoothed_cross_entropy, tune
from pipeline.method.visual_prompts import PromptedCLIP
from pipeline.models.factory import create_clip, create_dino

from .common import IMAGES, forward_flops, matmul_flops, photo_like_jpegs, stage_extract, table, timed

FULL = {
    "clip": ClipParams(model="ViT-B-32", pretrained=None),
    "dino": DinoParams(model="vit_base_patch16_224.dino", pretrained=False),
    "images": 4096,
    "image_size": (500, 375),
    "batch_size": 256,
    "prompts": 50,
    "matmul": 8192,
}
TINY = {
    "clip": ClipParams(model="nola-smoke-vit", pretrained=None),
    "dino": DinoParams(
        model="vit_small_patch16_224.dino",
        pretrained=False,
        kwargs={"img_size": 64, "depth": 2, "embed_dim": 64, "num_heads": 2},
    ),
    "images": 48,
    "image_size": (96, 72),
    "batch_size": 16,
    "prompts": 4,
    "matmul": 512,
}


def model_only(step, batch: int, repeats: int = 10) -> float:
    """images/s of ``step()`` on one resident batch (after one warm-up call)."""
    step()
    return batch * repeats / timed(lambda: [step() for _ in range(repeats)])


def row(what: str, e2e: float, resident: float, flops: float, peak: float) -> list[str]:
    """A table row: images/s end to end and model only, GFLOP per image, the peak's images/s, and
    both rates as a fraction of it."""
    limit = peak / flops
    return [
        what,
        f"{e2e:.0f}",
        f"{resident:.0f}",
        f"{flops / 1e9:.3g}",
        f"{limit:.0f}",
        f"{100 * e2e / limit:.1f}%",
        f"{100 * resident / limit:.1f}%",
    ]


def features_row(
    name: str,
    model: nn.Module,
    preprocess: Preprocess,
    cfg: dict,
    compute: hardware.Compute,
    ids: list[str],
    hashes: dict[str, str],
    workers: int,
    peak: float,
    out: Path,
) -> list:
    flops = forward_flops(model, preprocess.size)
    encode = ImageEncoder.prepare(model, preprocess, compute, cfg["batch_size"], workers)
    stage_extract(encode, IMAGES, ids[: cfg["batch_size"]], hashes, out)  # warm-up
    e2e = len(ids) / timed(lambda: stage_extract(encode, IMAGES, ids, hashes, out))
    x = torch.randn(cfg["batch_size"], 3, preprocess.size, preprocess.size, device=compute.device).to(compute.dtype)

    def forward() -> None:
        with torch.inference_mode():
            encode.network(x)

    resident = model_only(forward, cfg["batch_size"])
    return row(f"features {name}", e2e, resident, flops, peak)


def tune_row(cfg: dict, compute: hardware.Compute, ids: list[str], workers: int, peak: float) -> list:
    model, preprocess, _ = create_clip(cfg["clip"])
    classes = 10
    classifier = nn.functional.normalize(torch.randn(classes, model.visual.output_dim), dim=-1)
    prompted = PromptedCLIP(model.visual, classifier, cfg["prompts"], 100.0)
    flops = 2 * forward_flops(prompted, preprocess.size)  # forward + activation gradients (weights frozen)
    params = TuneParams(prompt_tokens=cfg["prompts"], epochs=1, batch_size=cfg["batch_size"], num_workers=workers)
    targets = np.arange(len(ids)) % classes
    batch = cfg["batch_size"]
    tune(prompted, IMAGES, ids[:batch], targets[:batch], preprocess, params, compute=compute)  # warm-up
    e2e = len(ids) / timed(lambda: tune(prompted, IMAGES, ids, targets, preprocess, params, compute=compute))

    prompted.train()
    optimizer, _ = optimizer_for(prompted, params, total_steps=1)  # the tune stage's optimizer
    x = torch.randn(cfg["batch_size"], 3, preprocess.size, preprocess.size, device=compute.device)
    y = torch.arange(cfg["batch_size"], device=compute.device) % classes

    def step() -> None:
        with compute.training():
            loss = smoothed_cross_entropy(prompted(x).float(), y, 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    resident = model_only(step, cfg["batch_size"])
    return row(f"tune clip +{cfg['prompts']} prompts", e2e, resident, flops, peak)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tiny", action="store_true", help="tiny models and images: a check that it runs")
    parser.add_argument("--workers", type=int, default=max(1, (os.cpu_count() or 2) - 1))
    args = parser.parse_args()
    cfg = TINY if args.tiny else FULL
    compute = hardware.resolve("auto", "auto")
    if compute.device.type != "cuda" and not args.tiny:
        parser.error("no CUDA GPU here; run with --tiny to check the script on the CPU")
    name = torch.cuda.get_device_name() if compute.device.type == "cuda" else "cpu"
    ids = photo_like_jpegs(IMAGES, cfg["images"], cfg["image_size"], processes=args.workers)
    # the limit is a matmul in the dtype the models run in: bf16 on a GPU; on a CPU without native
    # bf16 (--tiny) auto picks fp32, and emulated bf16 would be a limit below the models' own rate
    peak = matmul_flops(compute.dtype, cfg["matmul"], device=compute.device.type)
    clip, clip_preprocess, _ = create_clip(cfg["clip"])
    dino, dino_preprocess = create_dino(cfg["dino"])
    hashes = {i: file_sha256(IMAGES / i) for i in ids}
    with tempfile.TemporaryDirectory(prefix="nola-bench-gpu-") as tmp:
        rows = [
            features_row(
                name, model, preprocess, cfg, compute, ids, hashes, args.workers, peak, Path(tmp) / "features.parquet"
            )
            for name, model, preprocess in (("clip", clip.visual, clip_preprocess), ("dino", dino, dino_preprocess))
        ]
    rows.append(tune_row(cfg, compute, ids, args.workers, peak))
    print(
        f"{name}: {compute.precision}, {compute.precision} matmul {peak / 1e12:.1f} TFLOP/s, {len(ids)} JPEGs "
        f"{cfg['image_size'][0]}x{cfg['image_size'][1]}, batch {cfg['batch_size']}, {args.workers} loader workers"
    )
    print(
        table(
            [
                "run",
                "end-to-end img/s",
                "model-only img/s",
                "GFLOP/img",
                f"{compute.precision} limit img/s",
                "e2e of limit",
                "model of limit",
            ],
            rows,
        )
    )


if __name__ == "__main__":
    main()
