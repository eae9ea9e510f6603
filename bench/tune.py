"""Benchmark 2: prompt-tuning throughput, training images per second.

This project's ``pipeline.method.tuning.tune`` (CLIP ViT-B/32 with 50 prompt tokens; DL labels computed
once beforehand, autocast in the precision ``auto`` resolves to, fused AdamW, uint8 strong views
from loader workers) against a step written as the reference trains: every step decodes the full
image into a weak and a strong view, runs DINO ViT-B/16 and the alignment head on the weak view for
the target, then the prompted CLIP forward/backward in fp32 with a plain AdamW. Same images, same
process. Each run is one epoch over a chunk of the images, loader start-up included; the two
alternate chunk by chunk and the ratio is the median of the per-chunk time ratios.

    python -m bench.tune [--images 128] [--batch-size 32] [--chunks 2] [--workers 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

from pipeline.core import hardware
from pipeline.core.params import ClipParams, DinoParams, TuneParams
from pipeline.data.images import Preprocess
from pipeline.method.alignment import AlignmentHead
from pipeline.method.tuning import param_groups, scaled_lr, smoothed_cross_entropy, tune
from pipeline.method.visual_prompts import PromptedCLIP
from pipeline.models.factory import create_clip, create_dino

from .common import IMAGES, chunked, interleaved, paired_ratio, photo_like_jpegs, setup_threads, table

CLASSES = 10


def prompted_clip(prompts: int) -> tuple[PromptedCLIP, Preprocess]:
    model, preprocess, _ = create_clip(ClipParams(model="ViT-B-32", pretrained=None))
    classifier = torch.nn.functional.normalize(torch.randn(CLASSES, model.visual.output_dim), dim=-1)
    return PromptedCLIP(model.visual, classifier, prompts, 100.0), preprocess


class ReferenceViews(Dataset):
    """The reference's training dataset: one full decode, a weak and a strong float view (PIL transforms)."""

    def __init__(self, paths: list[Path], clip: Preprocess, dino: Preprocess):
        self.paths = paths
        self.weak = T.Compose(
            [
                T.Resize(dino.size, interpolation=T.InterpolationMode.BICUBIC),
                T.CenterCrop(dino.size),
                T.ToTensor(),
                T.Normalize(dino.mean, dino.std),
            ]
        )
        jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
        self.strong = T.Compose(
            [
                T.RandomResizedCrop(clip.size, scale=(0.2, 1.0), interpolation=T.InterpolationMode.BICUBIC),
                T.RandomHorizontalFlip(),
                T.RandomApply([jitter], p=0.8),
                T.RandomPerspective(0.2, p=0.5),
                jitter,
                T.GaussianBlur(2 * (clip.size // 20) + 1, sigma=(0.1, 2.0)),
                T.ToTensor(),
                T.Normalize(clip.mean, clip.std),
            ]
        )

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image = Image.open(self.paths[i]).convert("RGB")
        return self.weak(image), self.strong(image)


def reference_epoch(
    model: PromptedCLIP, dino: nn.Module, head: nn.Module, loader: DataLoader, optimizer: torch.optim.Optimizer
) -> None:
    model.train()
    for weak, strong in loader:
        with torch.no_grad():
            target = head(dino(weak)).argmax(-1)
        loss = smoothed_cross_entropy(model(strong), target, 0.1)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def run(images: int = 128, batch_size: int = 32, chunks: int = 2, workers: int = 2, prompts: int = 50) -> dict:
    setup_threads()
    compute = hardware.resolve("cpu", "auto")
    ids = photo_like_jpegs(IMAGES, images)
    params = TuneParams(prompt_tokens=prompts, epochs=1, batch_size=batch_size, num_workers=workers)
    label = {name: i % CLASSES for i, name in enumerate(ids)}

    project_model, preprocess = prompted_clip(prompts)
    reference_model, _ = prompted_clip(prompts)
    dino, dino_preprocess = create_dino(DinoParams(model="vit_base_patch16_224.dino", pretrained=False))
    head = AlignmentHead(dino.num_features, 256, CLASSES).eval()
    optimizer = torch.optim.AdamW(param_groups(reference_model, params.weight_decay), lr=scaled_lr(params))

    def reference(chunk: list[str]) -> None:
        loader = DataLoader(
            ReferenceViews([IMAGES / i for i in chunk], preprocess, dino_preprocess),
            batch_size=batch_size,
            shuffle=True,
            drop_last=len(chunk) > batch_size,
            num_workers=workers,
        )
        reference_epoch(reference_model, dino, head, loader, optimizer)

    def project(chunk: list[str]) -> None:
        tune(project_model, IMAGES, chunk, np.array([label[i] for i in chunk]), preprocess, params, compute=compute)

    runs = {"baseline": reference, "project": project}
    for fn in runs.values():
        fn(ids[:batch_size])  # warm-up
    seconds = interleaved(runs, chunked(ids, chunks))
    baseline, project_rate = len(ids) / sum(seconds["baseline"]), len(ids) / sum(seconds["project"])
    return {
        "images": len(ids),
        "batch_size": batch_size,
        "prompts": prompts,
        "workers": workers,
        "chunks": chunks,
        "precision": compute.precision,
        "threads": torch.get_num_threads(),
        "baseline": baseline,
        "project": project_rate,
        "ratio": paired_ratio(seconds["baseline"], seconds["project"]),
    }


def report(r: dict) -> str:
    head = (
        f"prompt tuning, CLIP ViT-B/32 + {r['prompts']} prompt tokens ({r['threads']} threads, batch "
        f"{r['batch_size']}, {r['workers']} workers, {r['chunks']} interleaved chunks; ratio = median of chunk "
        f"ratios); project precision {r['precision']}"
    )
    return (
        head
        + "\n"
        + table(
            ["step", "images", "baseline img/s", "project img/s", "ratio"],
            [["train", r["images"], f"{r['baseline']:.1f}", f"{r['project']:.1f}", f"{r['ratio']:.2f}x"]],
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--chunks", type=int, default=2, help="interleaved baseline/project runs")
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    print(report(run(args.images, args.batch_size, args.chunks, args.workers)))


if __name__ == "__main__":
    main()
