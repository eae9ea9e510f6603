"""Image encoding: a frozen encoder over a list of images -> one parquet of features."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import open_clip
import timm
import torch
from torch.utils.data import DataLoader, Dataset

from .artifacts import ArtifactError
from .images import Preprocess, load_screened
from .progress import track


class ImageList(Dataset):
    """Images by id (a path relative to ``root``), each through ``transform``."""

    def __init__(self, root: str | Path, ids: Sequence[str], transform: Callable, targets: Sequence[int] | None = None):
        self.root, self.ids, self.transform, self.targets = Path(root), list(ids), transform, targets

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, i: int):
        image = self.transform(load_screened(self.root / self.ids[i]))
        return image if self.targets is None else (image, self.targets[i])


def library_versions() -> dict[str, str]:
    return {"torch": torch.__version__.split("+")[0], "open_clip": open_clip.__version__, "timm": timm.__version__}


@torch.inference_mode()
def encode_images(
    encode: Callable[[torch.Tensor], torch.Tensor],
    root: str | Path,
    ids: Sequence[str],
    preprocess: Preprocess,
    batch_size: int = 64,
    num_workers: int = 0,
    desc: str = "encode",
) -> np.ndarray:
    """An N x D float32 array, rows in the order of ``ids``."""
    loader = DataLoader(ImageList(root, ids, preprocess.transform()), batch_size=batch_size, num_workers=num_workers)
    chunks = [encode(batch).float().numpy() for batch in track(loader, len(ids), desc)]
    return np.concatenate(chunks) if chunks else np.zeros((0, 0), dtype=np.float32)


def check_finite(path: str | Path, encoder: str, ids: Sequence[str], features: np.ndarray) -> None:
    """Refuse NaN / inf features: they come from corrupt weights and would poison every later stage."""
    bad = [i for i, row in zip(ids, features) if not np.isfinite(row).all()]
    if bad:
        raise ArtifactError(f"{path}: the {encoder} encoder gave non-finite features for {len(bad)} images "
                            f"(e.g. {bad[:3]}); its weights are likely corrupt: check {encoder}.pretrained")
