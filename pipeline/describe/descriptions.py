"""Class descriptions: one factory, :func:`create_describer`, chosen by ``describe.source``.

A describer maps class names to lists of sentences. ``templates`` fills sentence templates (no
LLM); ``file`` reads a user's JSON; ``llama_cpp``, ``vllm`` and ``openai`` ask an LLM the domain's
CuPL-style prompts (:mod:`pipeline.describe.llm`), class by class, each answer cached as it
arrives. Answers from an LLM or a file are cleaned (:mod:`pipeline.describe.cleaning`) and gated
(:mod:`pipeline.describe.gate`); a class left with fewer than ``describe.min_sentences`` usable
LLM sentences is topped up with the templates (a file's sentences are used as given; any source's
class with none usable gets the templates alone), and descriptions.json says which classes and why.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import read_json
from pipeline.core.errors import NolaError
from pipeline.core.params import DescribeParams
from pipeline.core.progress import track
from pipeline.describe.cleaning import CleaningReport, clean_sentences
from pipeline.describe.gate import GateReport, gate
from pipeline.describe.llm import LLM_SOURCES, Sampling, create_backend
from pipeline.describe.llm.cache import CompletionCache, GenerationStats, generate_cached
from pipeline.describe.prompts import load_prompt_file

log = logging.getLogger("nola")


class DescriptionError(NolaError, ValueError):
    """Descriptions that cannot be produced as configured, worded for the user."""


@dataclass(frozen=True)
class Describer:
    describe: Callable[[list[str]], Iterator[tuple[str, list[str]]]]  # (class, raw sentences), one class at a time
    provenance: dict[str, Any] = field(default_factory=dict)  # what made the sentences, for descriptions.json
    cleaned: bool = True  # answers from an LLM or a file are cleaned; templates are used as written


def _checked_templates(params: DescribeParams) -> list[str]:
    if not params.templates:
        raise DescriptionError("describe.templates is empty; give sentence templates with a {} for the class name")
    bad = [t for t in params.templates if "{}" not in t]
    if bad:
        raise DescriptionError(
            f"describe.templates: each template needs a {{}} for the class name; these have none: {bad}"
        )
    return params.templates


def _from_templates(params: DescribeParams, prompts_file: Path | None) -> Describer:
    templates = _checked_templates(params)
    return Describer(lambda classes: ((c, [t.format(c) for t in templates]) for c in classes), cleaned=False)


def class_key(name: str) -> str:
    """A class name as the file lookup compares it: case, spaces, underscores and dashes do not
    matter, so the paper's published JSON ("Annual Crop Land") fits our names ("annual crop land")."""
    return " ".join(name.replace("_", " ").replace("-", " ").lower().split())


def _from_file(params: DescribeParams, prompts_file: Path | None) -> Describer:
    if not params.file:
        raise DescriptionError("describe.source = 'file' needs describe.file (JSON: class name -> list of sentences)")
    data = read_json(params.file)
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in data.values()
    ):
        raise DescriptionError(f"{params.file}: expected a JSON object mapping class name -> list of sentences")
    by_key: dict[str, str] = {}
    for name in data:
        other = by_key.setdefault(class_key(name), name)
        if other != name:
            raise DescriptionError(
                f"{params.file}: keys {other!r} and {name!r} name the same class (case, spaces, underscores "
                "and dashes are ignored); keep one"
            )

    def describe(classes: list[str]) -> Iterator[tuple[str, list[str]]]:
        found = {c: data.get(by_key.get(class_key(c), ""), []) for c in classes}
        missing = [c for c in classes if not found[c]]
        if missing:
            raise DescriptionError(
                f"{params.file}: no descriptions for classes {missing}; add them or use describe.source = 'templates'"
            )
        return ((c, list(found[c])) for c in classes)

    return Describer(describe)


def _from_llm(params: DescribeParams, prompts_file: Path | None, stats: GenerationStats | None = None) -> Describer:
    if prompts_file is None:
        raise DescriptionError(f"describe.source = {params.source!r} needs a prompt file (prompts/<domain>.yaml)")
    prompt_file = load_prompt_file(prompts_file)
    templates = prompt_file.templates(params.mode)
    _checked_templates(params)  # the fallback: fail now, not after the LLM ran
    backend = create_backend(params)
    sampling = Sampling.from_params(params)
    cache = CompletionCache(params.cache_dir)

    def describe(classes: list[str]) -> Iterator[tuple[str, list[str]]]:
        nonlocal stats
        stats = stats if stats is not None else GenerationStats()
        for c in classes:
            completions, _ = generate_cached(backend, cache, [(t, c) for t in templates], sampling, stats)
            yield c, [text for completion in completions for text in completion.texts]
        log.info("describe: %s", stats.summary())

    provenance = {
        "generator": backend.identity,
        "prompts": prompt_file.prompts,
        "examples": [list(e) for e in prompt_file.examples] if templates != prompt_file.prompts else [],
        "sampling": sampling.as_dict(),
    }
    return Describer(describe, provenance)


FACTORIES: dict[str, Callable[[DescribeParams, Path | None], Describer]] = {  # and LLM_SOURCES: _from_llm
    "templates": _from_templates,
    "file": _from_file,
}


def create_describer(
    params: DescribeParams, prompts_file: str | Path | None = None, stats: GenerationStats | None = None
) -> Describer:
    """``stats``, for an LLM source, counts prompts and generated tokens (bench/describe_quality.py)."""
    prompts = Path(prompts_file) if prompts_file else None
    if params.source in LLM_SOURCES:
        return _from_llm(params, prompts, stats)
    return FACTORIES[params.source](params, prompts)


def describe_classes(
    params: DescribeParams,
    classes: list[str],
    prompts_file: str | Path | None = None,
    stats: GenerationStats | None = None,
) -> dict:
    """The descriptions.json document: class -> sentences, in class order, plus provenance.

    Classes are described one at a time: a progress bar (rate, ETA) on a terminal, and one log line
    per class with the answers it kept.
    """
    describer = create_describer(params, prompts_file, stats)
    doc: dict[str, Any] = {"source": params.source, **describer.provenance, "classes": classes}
    answers = describer.describe(classes)
    if not describer.cleaned:
        return {**doc, "descriptions": dict(answers)}
    descriptions, fallback, cleaning, gated = {}, {}, CleaningReport(), GateReport()
    start = time.perf_counter()
    progress = track(answers, len(classes), "describe", unit="classes", size=lambda _: 1, report=False)
    for done, (c, raw) in enumerate(progress, 1):
        cleaned, report = clean_sentences(raw, params.min_words)
        kept, passed = gate(cleaned, c, classes)
        cleaning.add(report)
        gated.add(passed)
        if not kept:
            fallback[c] = f"{report.why_none_kept()}; the gate dropped {passed.dropped()}"
            kept = [t.format(c) for t in params.templates]
        elif params.source in LLM_SOURCES and len(kept) < params.min_sentences:
            fallback[c] = (
                f"{len(kept)} usable of {report.answers} answers, fewer than describe.min_sentences = "
                f"{params.min_sentences}; the gate dropped {passed.dropped()}; topped up with the templates"
            )
            kept = kept + [t.format(c) for t in params.templates if t.format(c) not in kept]
        descriptions[c] = kept
        elapsed = time.perf_counter() - start
        log.info(
            "describe: %d/%d %r: %d of %d answers kept%s (%.0f s so far, about %.0f s left)",
            done,
            len(classes),
            c,
            passed.kept,
            report.answers,
            (", templates instead" if passed.kept == 0 else ", topped up with the templates") if c in fallback else "",
            elapsed,
            elapsed / done * (len(classes) - done),
        )
    return {
        **doc,
        "descriptions": {c: descriptions[c] for c in classes},
        "fallback": fallback,
        "cleaning": cleaning.as_dict(),
        "gate": gated.as_dict(),
    }


def load_descriptions(path: str | Path, classes: list[str]) -> dict[str, list[str]]:
    doc = read_json(path)
    descriptions = doc.get("descriptions") if isinstance(doc, dict) else None
    if not isinstance(descriptions, dict) or doc.get("classes") != classes:
        raise DescriptionError(
            f"{path}: made for classes {doc.get('classes') if isinstance(doc, dict) else '?'}, "
            f"not the current {classes}; rerun the 'describe' stage"
        )
    if not all(isinstance(v, list) and all(isinstance(t, str) for t in v) for v in descriptions.values()):
        raise DescriptionError(
            f"{path}: 'descriptions' must map each class to a list of sentences; rerun the 'describe' stage"
        )
    return descriptions
