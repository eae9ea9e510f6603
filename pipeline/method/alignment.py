"""The DINO labelling network: a small head on frozen DINO features, trained on pseudo-labels."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.core.errors import check_loss


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
def predict(head: AlignmentHead, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Argmax label and its probability for every row."""
    probs = torch.softmax(head(torch.as_tensor(features, dtype=torch.float32)), dim=-1)
    conf, label = probs.max(dim=-1)
    return label.numpy(), conf.numpy()


def head_from_state(state: dict[str, torch.Tensor]) -> AlignmentHead:
    """Rebuild a head from its saved state dict (shapes give the sizes)."""
    hidden, in_dim = state["0.weight"].shape
    head = AlignmentHead(in_dim, hidden, state["2.weight"].shape[0])
    head.load_state_dict(state)
    return head.eval()
