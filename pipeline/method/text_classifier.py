"""The text side: class-description embeddings (CDE) and the plain class-name classifier."""

from __future__ import annotations

import torch
import torch.nn.functional as F


@torch.inference_mode()
def encode_texts(model, tokenizer, texts: list[str], batch_size: int = 256) -> torch.Tensor:
    """L2-normalised CLIP text embeddings, one row per text."""
    out = []
    for i in range(0, len(texts), batch_size):
        tokens = tokenizer(texts[i : i + batch_size])
        out.append(F.normalize(model.encode_text(tokens).float(), dim=-1))
    return torch.cat(out)


def class_embedding(embeddings: torch.Tensor) -> torch.Tensor:
    """Mean of normalised embeddings, normalised again."""
    return F.normalize(F.normalize(embeddings, dim=-1).mean(dim=0), dim=-1)


def build_classifier(model, tokenizer, classes: list[str], texts_per_class: dict[str, list[str]]) -> torch.Tensor:
    """A C x D matrix, one normalised class embedding per row."""
    rows = []
    for c in classes:
        if not texts_per_class.get(c):
            raise ValueError(f"class {c!r} has no texts to embed")
        rows.append(class_embedding(encode_texts(model, tokenizer, texts_per_class[c])))
    return torch.stack(rows)


def template_texts(classes: list[str], templates: list[str]) -> dict[str, list[str]]:
    return {c: [t.format(c) for t in templates] for c in classes}


def cde_texts(classes: list[str], templates: list[str], descriptions: dict[str, list[str]]) -> dict[str, list[str]]:
    """Per class: its descriptions plus the dataset templates filled with its name."""
    filled = template_texts(classes, templates)
    return {c: [*descriptions.get(c, []), *filled[c]] for c in classes}


def zero_shot_probs(image_features: torch.Tensor, classifier: torch.Tensor, logit_scale: float) -> torch.Tensor:
    return torch.softmax(logit_scale * F.normalize(image_features.float(), dim=-1) @ classifier.T, dim=-1)
