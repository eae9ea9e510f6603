"""A content-addressed cache of completions, so that only new or edited prompts reach the LLM.

The key is a hash of everything that decides an answer: the backend's identity (backend, model and
its file hash or the server's model name, mode, chat format), the whole prompt template (few-shot
examples included), the class name and the sampling settings, seed included. An entry can
therefore never be stale; it can only be missing. It lives outside DVC's outputs
(``describe.cache_dir``) because DVC deletes a stage's outputs before rerunning it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import write_json
from pipeline.describe.llm import Backend, Completion, Sampling

CHUNK = 64  # prompts per backend call: progress is cached as it goes, a failure loses one chunk at most


def fill(template: str, class_name: str) -> str:
    return template.replace("{}", class_name)


@dataclass
class GenerationStats:
    generated: int = 0  # prompts sent to the LLM
    cached: int = 0  # prompts answered from the cache
    tokens: int = 0  # tokens the LLM generated in this run

    def summary(self) -> str:
        return f"{self.generated} prompts answered by the LLM ({self.tokens} tokens), {self.cached} from the cache"


class CompletionCache:
    """One JSON file per key under ``root``; ``root=None`` caches nothing."""

    def __init__(self, root: str | Path | None) -> None:
        self.root = Path(root) if root else None

    @staticmethod
    def key_fields(identity: dict[str, str], template: str, class_name: str, sampling: Sampling) -> dict[str, Any]:
        return {"generator": identity, "prompt": template, "class": class_name, "sampling": sampling.as_dict()}

    def _path(self, fields: dict[str, Any]) -> Path:
        digest = hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()
        return self.root / digest[:2] / f"{digest}.json"

    def get(self, fields: dict[str, Any]) -> Completion | None:
        if self.root is None:
            return None
        path = self._path(fields)
        try:
            entry = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent, or a damaged entry: regenerate it
        if not isinstance(entry, dict) or entry.get("key") != fields:
            return None
        return Completion(tuple(entry["texts"]), int(entry["tokens"]))

    def put(self, fields: dict[str, Any], completion: Completion) -> None:
        if self.root is not None:
            write_json(
                self._path(fields), {"key": fields, "texts": list(completion.texts), "tokens": completion.tokens}
            )


def generate_cached(
    backend: Backend,
    cache: CompletionCache,
    requests: Sequence[tuple[str, str]],
    sampling: Sampling,
    stats: GenerationStats | None = None,
) -> tuple[list[Completion], GenerationStats]:
    """Completions of (prompt template, class name) pairs, asking the backend only for cache misses.

    Each chunk's answers are cached as soon as the backend returns them, so an interrupted run
    resumes where it stopped. ``stats``, if given, accumulates over several calls.
    """
    stats = stats if stats is not None else GenerationStats()
    keys = [cache.key_fields(backend.identity, template, name, sampling) for template, name in requests]
    results: list[Completion | None] = [cache.get(k) for k in keys]
    missing = [i for i, r in enumerate(results) if r is None]
    stats.cached += len(requests) - len(missing)
    for start in range(0, len(missing), CHUNK):
        chunk = missing[start : start + CHUNK]
        completions = backend.generate([fill(*requests[i]) for i in chunk], sampling)
        for i, completion in zip(chunk, completions, strict=True):
            cache.put(keys[i], completion)
            results[i] = completion
            stats.generated += 1
            stats.tokens += completion.tokens
    return [r for r in results if r is not None], stats
