"""Typed, validated views of ``params.yaml``, one model per section.

Each stage validates only the sections it depends on, so a typo in ``tune`` cannot stop
``features_clip``, and every error names the key, the bad value and what is allowed.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import NolaError


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataParams(Section):
    """Where a collection's images are and how its unlabeled pool and labeled test split are cut."""

    source: Literal[
        "folder", "manifest", "eurosat", "synthetic",
        # the paper's benchmarks (pipeline/benchmarks.py)
        "dtd", "flowers102", "food101", "oxford_pets", "stanford_cars", "fgvc_aircraft", "sun397",
        "caltech101", "cifar10", "cifar100", "resisc45", "ucf101", "imagenet",
    ]
    root: str
    manifest: str | None = None
    split_file: str | None = None
    classes: list[str] | None = None
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 0
    download: bool = True
    synthetic_classes: int = Field(4, ge=1, le=6)
    synthetic_per_class: int = Field(24, ge=2)
    synthetic_size: int = Field(96, ge=8)


class DatasetParams(Section):
    """One entry of ``datasets``. Split apart so that each stage depends only on its part: the
    images (``data``), the prompt domain of its descriptions, the templates of its classifier."""

    data: DataParams
    domain: str = "generic"
    templates: list[str] = Field(default_factory=lambda: ["a photo of a {}."], min_length=1)


class ClipParams(Section):
    """An open_clip model: a registered name plus a pretrained tag or a local weights file."""

    model: str = "ViT-B-32"
    pretrained: str | None = "openai"
    model_config_dir: str | None = None
    seed: int = 0


class DinoParams(Section):
    """A timm model used as a frozen feature extractor (its pooled CLS token)."""

    model: str = "vit_base_patch16_224.dino"
    pretrained: bool | str = True
    kwargs: dict[str, Any] = Field(default_factory=dict)
    seed: int = 0


class DescribeParams(Section):
    """Where the class descriptions come from."""

    source: Literal["templates", "file"] = "templates"
    templates: list[str] = Field(default_factory=list)
    file: str | None = None


class FeaturesParams(Section):
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0)


class PseudoLabelParams(Section):
    fraction: float = Field(0.2, gt=0.0, le=1.0)
    min_per_class: int = Field(16, ge=1)
    max_rank: int = Field(3, ge=1)


class AlignParams(Section):
    hidden: int = Field(256, ge=1)
    lr: float = Field(1e-3, gt=0.0)
    batch_size: int = Field(32, ge=1)
    epochs: int = Field(50, ge=1)
    seed: int = 0


class TuneParams(Section):
    prompt_tokens: int = Field(50, ge=0)
    epochs: int = Field(50, ge=1)
    batch_size: int = Field(64, ge=1)
    base_lr: float = Field(0.004, gt=0.0)
    base_batch_size: int = Field(512, ge=1)
    weight_decay: float = Field(0.01, ge=0.0)
    label_smoothing: float = Field(0.1, ge=0.0, lt=1.0)
    num_workers: int = Field(2, ge=0)
    seed: int = 0


class EvaluateParams(Section):
    batch_size: int = Field(64, ge=1)
    num_workers: int = Field(2, ge=0)


SECTIONS: dict[str, type[Section]] = {
    "clip": ClipParams,
    "dino": DinoParams,
    "describe": DescribeParams,
    "features": FeaturesParams,
    "pseudo_labels": PseudoLabelParams,
    "align": AlignParams,
    "tune": TuneParams,
    "evaluate": EvaluateParams,
}

S = TypeVar("S", bound=Section)


class ParamsError(NolaError, ValueError):
    """A params.yaml problem, worded for the user."""


def read_yaml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ParamsError(f"{path}: params file not found; run from the project root or pass --params")
    with path.open(encoding="utf-8") as f:
        raw = yaml.safe_load(f) or {}
    if not isinstance(raw, dict):
        raise ParamsError(f"{path}: expected a mapping of sections at the top level")
    return raw


def load_section(path: str | Path, name: str, model: type[S]) -> S:
    """Validate one section of a params file; ``name`` may be dotted (``datasets.eurosat``)."""
    raw: Any = read_yaml(path)
    for part in name.split("."):
        raw = raw.get(part) if isinstance(raw, dict) else None
        if raw is None and name.startswith("datasets."):
            known = ", ".join(read_yaml(path).get("datasets") or {}) or "none"
            raise ParamsError(f"{path}: no dataset {name.split('.', 1)[1]!r} under 'datasets' (defined: {known})")
    raw = raw or {}
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join([name, *map(str, e["loc"])])
            value = e.get("input")
            problems.append(f"  {key} = {value!r}: {e['msg']}")
        raise ParamsError(f"{path}: invalid parameters\n" + "\n".join(problems)) from None



def load_dataset(path: str | Path, name: str) -> DatasetParams:
    return load_section(path, f"datasets.{name}", DatasetParams)


def dataset_names(path: str | Path) -> list[str]:
    return list(read_yaml(path).get("datasets") or {})
