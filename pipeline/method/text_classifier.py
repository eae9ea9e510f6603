"""The text side: class-description embeddings (CDE) and the plain class-name classifier."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from pipeline.core.artifacts import read_tensors, write_tensors


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


@dataclass(frozen=True)
class TextClassifiers:
    """The text_classifier stage's artifact: CDE and class-name (zero-shot) matrices, C x D, with
    CLIP's logit scale and the class order of their rows."""

    cde: torch.Tensor
    zeroshot: torch.Tensor
    logit_scale: float
    classes: list[str]


def build_classifiers(
    model, tokenizer, classes: list[str], templates: list[str], descriptions: dict[str, list[str]]
) -> TextClassifiers:
    """The CDE classifier (descriptions + templates) and the zero-shot one (templates only)."""
    cde = build_classifier(model, tokenizer, classes, cde_texts(classes, templates, descriptions))
    zeroshot = build_classifier(model, tokenizer, classes, template_texts(classes, templates))
    return TextClassifiers(cde, zeroshot, float(model.logit_scale.detach().exp()), classes)


def write_classifiers(path: str | Path, classifiers: TextClassifiers, clip_identity: dict[str, Any]) -> None:
    tensors = {
        "cde": classifiers.cde,
        "zeroshot": classifiers.zeroshot,
        "logit_scale": torch.tensor([classifiers.logit_scale], dtype=torch.float32),
    }
    write_tensors(path, tensors, {**clip_identity, "classes": classifiers.classes})


def read_classifiers(
    path: str | Path, clip_identity: dict[str, Any], classes: list[str] | None = None
) -> TextClassifiers:
    """The classifiers, refused unless made with the current CLIP (and, if given, these classes)."""
    made_with = {**clip_identity, **({"classes": classes} if classes is not None else {})}
    tensors, meta = read_tensors(path, made_with=made_with, by="text_classifier")
    return TextClassifiers(tensors["cde"], tensors["zeroshot"], float(tensors["logit_scale"]), meta["classes"])
