"""Image encoding: a frozen encoder over a list of images, batch by batch.

:class:`ImageEncoder` holds what makes encoding fast (weights in the compute's dtype, uint8 views
decoded by loader workers, fused Linear + GELU on the CPU); :mod:`pipeline.encode.feature_cache` splits a
collection into resumable, shardable parts and calls it per part.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import open_clip
import timm
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from pipeline.core.artifacts import ArtifactError
from pipeline.core.hardware import Compute
from pipeline.core.progress import track
from pipeline.data.images import Preprocess, load_screened
from pipeline.models.fusion import fuse_linear_gelu


class ImageList(Dataset):
    """Images by id (a path relative to ``root``), each decoded (JPEGs at ``draft`` scale, see
    :func:`pipeline.data.images.load_rgb`) and through ``transform``."""

    def __init__(
        self,
        root: str | Path,
        ids: Sequence[str],
        transform: Callable,
        targets: Sequence[int] | None = None,
        draft: int | None = None,
    ):
        self.root, self.ids, self.transform, self.targets, self.draft = Path(root), list(ids), transform, targets, draft

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        image = self.transform(load_screened(self.root / self.ids[i], self.draft))
        return image if self.targets is None else (image, self.targets[i])


def library_versions() -> dict[str, str]:
    return {"torch": torch.__version__.split("+")[0], "open_clip": open_clip.__version__, "timm": timm.__version__}


@dataclass(frozen=True)
class ImageEncoder:
    """A frozen network, the view it reads, where and in which number format it computes, and
    how images are batched and decoded."""

    network: nn.Module
    preprocess: Preprocess
    compute: Compute
    batch_size: int = 64
    num_workers: int = 0

    @classmethod
    def prepare(
        cls, network: nn.Module, preprocess: Preprocess, compute: Compute, batch_size: int = 64, num_workers: int = 0
    ) -> ImageEncoder:
        """Move ``network`` to the compute's device and cast its weights to the compute's dtype.

        Weights are cast once (not autocast per call): on CPUs with native bf16 this is the
        fastest form, and the features stay within 0.99 cosine of fp32 (tests/test_features.py).
        On the CPU, Linear + GELU pairs are fused (:mod:`pipeline.models.fusion`).
        """
        network = network.to(compute.device, compute.dtype).eval().requires_grad_(False)
        if compute.device.type == "cpu":
            fuse_linear_gelu(network)
        return cls(network, preprocess, compute, batch_size, num_workers)

    def encode(self, root: str | Path, ids: Sequence[str], desc: str = "encode") -> np.ndarray:
        """An N x D float32 array of the network's outputs, rows in the order of ``ids``.

        Loader workers decode uint8 views (a quarter of float32's bytes to pass on); the batch
        is normalised where the network runs, pinned memory overlapping the copy to a GPU.
        """
        dataset = ImageList(root, ids, self.preprocess.pixels(), draft=self.preprocess.draft)
        loader = DataLoader(
            dataset,
            batch_size=self.batch_size,
            num_workers=self.num_workers,
            pin_memory=self.compute.device.type == "cuda",
        )
        chunks = []
        with torch.inference_mode():
            for pixels in track(loader, len(dataset), desc):
                x = self.preprocess.normalize(pixels.to(self.compute.device, non_blocking=True), self.compute.dtype)
                chunks.append(self.network(x).float().cpu().numpy())
        return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def check_finite(path: str | Path, encoder: str, ids: Sequence[str], features: np.ndarray) -> None:
    """Refuse NaN / inf features: they come from corrupt weights and would poison every later stage."""
    bad = [i for i, row in zip(ids, features) if not np.isfinite(row).all()]
    if bad:
        raise ArtifactError(
            f"{path}: the {encoder} encoder gave non-finite features for {len(bad)} images "
            f"(e.g. {bad[:3]}); its weights are likely corrupt: check {encoder}.pretrained"
        )
