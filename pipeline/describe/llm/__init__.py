"""LLM backends for class descriptions: one small interface, one factory, chosen by ``describe.source``.

A backend turns prompts into ``samples`` sampled answers each, seeded from ``describe.seed``, and
says who it is (:attr:`Backend.identity`) so that completions can be cached by content
(:mod:`pipeline.describe.llm.cache`).
"""

from __future__ import annotations

import hashlib
import importlib
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

from pipeline.core.errors import NolaError
from pipeline.core.params import DescribeParams

LLM_SOURCES = ("llama_cpp", "vllm", "openai")


class LLMError(NolaError, RuntimeError):
    """A backend that cannot be created or does not answer, worded for the user."""


@dataclass(frozen=True)
class Sampling:
    """How each prompt is sampled; part of every cache key."""

    samples: int
    temperature: float
    top_p: float
    max_tokens: int
    stop: tuple[str, ...]
    seed: int

    @classmethod
    def from_params(cls, params: DescribeParams) -> Sampling:
        return cls(params.samples, params.temperature, params.top_p, params.max_tokens, tuple(params.stop), params.seed)

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stop": list(self.stop)}

    def sample_seeds(self) -> list[int]:
        """One seed per sample, for backends that draw samples one request at a time."""
        return [
            int.from_bytes(hashlib.sha256(f"{self.seed}:{i}".encode()).digest()[:4], "big") >> 1
            for i in range(self.samples)
        ]


@dataclass(frozen=True)
class Completion:
    """The sampled answers to one prompt, and how many tokens they took."""

    texts: tuple[str, ...]
    tokens: int


class Backend(Protocol):
    identity: dict[str, str]  # backend name, model (and its file hash), mode: what makes answers differ

    def generate(self, prompts: Sequence[str], sampling: Sampling) -> list[Completion]:
        """``sampling.samples`` answers for each prompt, in prompt order."""
        ...


def import_optional(module: str, why: str) -> Any:
    """Import a backend's library only when that backend is chosen; say how to install it if missing."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise LLMError(why) from None


def chat_messages(prompt: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": prompt}]


def create_backend(params: DescribeParams) -> Backend:
    """The backend that ``describe.source`` names; its library is imported only here."""
    from pipeline.describe.llm import llama_backend, openai_backend, vllm_backend

    factories = {"llama_cpp": llama_backend.create, "vllm": vllm_backend.create, "openai": openai_backend.create}
    if params.source not in factories:
        raise LLMError(f"describe.source = {params.source!r} is not an LLM backend; choose one of {list(factories)}")
    return factories[params.source](params)
