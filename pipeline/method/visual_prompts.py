"""Shallow visual prompt tuning of an open_clip ViT, with a linear classifier on top.

Prompt tokens enter right after the CLS token, after patch + positional embedding and ln_pre,
and get no positional embedding. They are dropped again after the transformer, so open_clip's
own pooling and projection run unchanged (with 0 prompts this is exactly ``encode_image``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
import torch.nn.functional as F
from open_clip.transformer import VisionTransformer
from torch import nn

from pipeline.core.artifacts import read_tensors
from pipeline.core.errors import NolaError


class VisualPromptError(NolaError, TypeError):
    """A model that cannot take visual prompts."""


def sequence_first(transformer: nn.Module) -> None:
    """Run the blocks on contiguous (tokens, batch, width) tensors, as OpenAI's CLIP does.

    With open_clip's batch-first layout, nn.MultiheadAttention transposes its input, and with
    autograd on, torch's matmul then multiplies the transposed input by the projection weight
    expanded (copied) once per token: a training step ran about 3x slower on the CPU. Same
    weights, same results; ``transformer.forward`` does the transposes.
    """
    transformer.batch_first = False
    for module in transformer.modules():
        if isinstance(module, nn.MultiheadAttention):
            module.batch_first = False


Head = Literal["linear", "cosine"]


class PromptedCLIP(nn.Module):
    """Prompted vision tower -> projected feature -> bias-free linear classifier.

    ``head="linear"`` (the reference code's): the classifier on the unnormalised feature, no logit
    scale, in training and at test time. ``head="cosine"``: logit scale x classifier(normalised
    feature), CLIP's zero-shot form.
    """

    def __init__(
        self, visual: nn.Module, classifier: torch.Tensor, n_prompts: int, logit_scale: float, head: Head = "linear"
    ):
        super().__init__()
        if not isinstance(visual, VisionTransformer):
            raise VisualPromptError(
                f"visual prompts need an open_clip VisionTransformer tower, got {type(visual).__name__}; "
                "choose a ViT model (e.g. ViT-B-32)"
            )
        self.visual = visual
        width = visual.class_embedding.shape[-1]
        bound = math.sqrt(6.0 / (3 * 16 * 16 + width))
        self.prompts = nn.Parameter(torch.empty(1, n_prompts, width).uniform_(-bound, bound))
        self.classifier = nn.Linear(classifier.shape[1], classifier.shape[0], bias=False)
        with torch.no_grad():
            self.classifier.weight.copy_(classifier)
        self.logit_scale = float(logit_scale)
        self.head = head
        self.freeze_all_but_trainable()
        sequence_first(visual.transformer)

    def freeze_all_but_trainable(self) -> None:
        """Trainable: prompts, every LayerNorm of the vision tower, the classifier."""
        for p in self.visual.parameters():
            p.requires_grad_(False)
        for m in self.visual.modules():
            if isinstance(m, nn.LayerNorm):
                for p in m.parameters():
                    p.requires_grad_(True)

    def trainable_state(self) -> dict[str, torch.Tensor]:
        return {n: p for n, p in self.named_parameters() if p.requires_grad}

    def encode_image(self, images: torch.Tensor) -> torch.Tensor:
        v = self.visual
        x = v._embeds(images)
        n = self.prompts.shape[1]
        if n:
            x = torch.cat([x[:, :1], self.prompts.expand(x.shape[0], -1, -1).to(x.dtype), x[:, 1:]], dim=1)
        x = v.transformer(x)
        if n:
            x = torch.cat([x[:, :1], x[:, 1 + n :]], dim=1)
        pooled, _ = v._pool(x)
        return pooled @ v.proj if v.proj is not None else pooled

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        features = self.encode_image(images)
        if self.head == "linear":
            return self.classifier(features)
        return self.logit_scale * self.classifier(F.normalize(features, dim=-1))


def load_tuned(path: str | Path, visual: nn.Module, made_with: dict[str, Any]) -> tuple[PromptedCLIP, dict[str, Any]]:
    """The tune stage's artifact on a fresh vision tower, refused unless made with ``made_with``."""
    state, meta = read_tensors(path, made_with=made_with, by="tune")
    return prompted_from_state(visual, state, meta["logit_scale"], meta["head"]), meta


def prompted_from_state(
    visual: nn.Module, state: dict[str, torch.Tensor], logit_scale: float, head: Head = "linear"
) -> PromptedCLIP:
    """Rebuild a tuned model: a fresh vision tower plus the saved trainable parameters."""
    model = PromptedCLIP(visual, state["classifier.weight"], state["prompts"].shape[1], logit_scale, head)
    expected = set(model.trainable_state())
    if set(state) != expected:
        raise VisualPromptError(
            f"saved prompt parameters do not fit this vision tower (missing {sorted(expected - set(state))[:3]}, "
            f"unexpected {sorted(set(state) - expected)[:3]}); rerun the 'tune' stage with the current clip params"
        )
    model.load_state_dict(state, strict=False)
    return model.eval()
