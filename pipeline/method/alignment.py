"""The DINO labelling network: a small head on frozen DINO features, trained on pseudo-labels."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core.artifacts import ArtifactError
from pipeline.core.errors import check_loss
from pipeline.core.params import AlignParams


class AlignmentHead(nn.Sequential):
    """MLP in -> hidden -> ReLU -> classes."""

    def __init__(self, in_dim: int, hidden: int, n_classes: int):
        super().__init__(nn.Linear(in_dim, hidden), nn.ReLU(), nn.Linear(hidden, n_classes))


def train_head(
    features: np.ndarray,
    labels: np.ndarray,
    n_classes: int,
    hidden: int = 256,
    lr: float = 1e-3,
    batch_size: int = 32,
    epochs: int = 50,
    seed: int = 0,
) -> tuple[AlignmentHead, list[float]]:
    """Cross-entropy with Adam on the pseudo-labelled features; returns the head and per-epoch loss."""
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    head = AlignmentHead(features.shape[1], hidden, n_classes)
    x = torch.as_tensor(features, dtype=torch.float32)
    y = torch.as_tensor(labels, dtype=torch.long)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr)
    history = []
    head.train()
    step = 0
    for epoch in range(epochs):
        perm = torch.randperm(len(x), generator=generator)
        total = 0.0
        for start in range(0, len(x), batch_size):
            batch = perm[start : start + batch_size]
            loss = F.cross_entropy(head(x[batch]), y[batch])
            step += 1
            value = loss.item()
            check_loss(value, "align", epoch + 1, step, lr, "align.lr", "the DINO features (rerun features_dino)")
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += value * len(batch)
        history.append(total / max(len(x), 1))
    head.eval()
    return head, history


@torch.inference_mode()
def dl_probs(head: AlignmentHead, features: np.ndarray) -> np.ndarray:
    """The DL network's class probabilities (N x C) for DINO features; its label is the argmax."""
    return torch.softmax(head(torch.as_tensor(features, dtype=torch.float32)), dim=-1).numpy()


def head_from_state(state: dict[str, torch.Tensor]) -> AlignmentHead:
    """Rebuild a head from its saved state dict (shapes give the sizes)."""
    hidden, in_dim = state["0.weight"].shape
    head = AlignmentHead(in_dim, hidden, state["2.weight"].shape[0])
    head.load_state_dict(state)
    return head.eval()


def pseudo_labelled_rows(ids: list[str], selected: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into the pool features of the pseudo-labelled images, and their labels."""
    row = {image_id: i for i, image_id in enumerate(ids)}
    chosen = selected.column("id").to_pylist()
    unknown = [i for i in chosen if i not in row]
    if unknown:
        raise ArtifactError(
            f"pseudo-labelled ids missing from the DINO pool features (e.g. {unknown[:3]}); rerun features_dino"
        )
    if not chosen:
        raise ArtifactError("no pseudo-labelled images; the alignment head cannot be trained")
    return np.array([row[i] for i in chosen]), selected.column("label").to_numpy()


def fit_head(
    ids: list[str], features: np.ndarray, selected: pa.Table, n_classes: int, params: AlignParams
) -> tuple[AlignmentHead, list[float]]:
    """The alignment head trained on the DINO features of the pseudo-labelled images."""
    rows, labels = pseudo_labelled_rows(ids, selected)
    return train_head(
        features[rows], labels, n_classes, params.hidden, params.lr, params.batch_size, params.epochs, params.seed
    )


def dl_label_table(ids: list[str], probs: np.ndarray) -> pa.Table:
    """The DL network's label for every pool image, and its probability."""
    return pa.table(
        {
            "id": pa.array(ids, type=pa.string()),
            "label": pa.array(probs.argmax(axis=1).astype(np.int32)),
            "prob": pa.array(probs.max(axis=1).astype(np.float32)),
        }
    )
