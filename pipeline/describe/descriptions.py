"""Class descriptions: one factory, :func:`create_describer`, chosen by ``describe.source``.

A describer maps class names to lists of sentences. ``templates`` fills sentence templates (no
LLM); ``file`` reads a user's JSON; ``llama_cpp``, ``vllm`` and ``openai`` ask an LLM the domain's
CuPL-style prompts (:mod:`pipeline.describe.llm`). Answers from an LLM or a file are cleaned
(:mod:`pipeline.describe.cleaning`); a class left with no usable sentence falls back to the templates, and
descriptions.json says which classes did and why.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.core.artifacts import read_json
from pipeline.core.errors import NolaError
from pipeline.core.params import DescribeParams
from pipeline.describe.cleaning import CleaningReport, clean_sentences
from pipeline.describe.llm import LLM_SOURCES, Sampling, create_backend
from pipeline.describe.llm.cache import CompletionCache, generate_cached
from pipeline.describe.prompts import load_prompts


class DescriptionError(NolaError, ValueError):
    """Descriptions that cannot be produced as configured, worded for the user."""


@dataclass(frozen=True)
class Describer:
    describe: Callable[[list[str]], dict[str, list[str]]]
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
    return Describer(lambda classes: {c: [t.format(c) for t in templates] for c in classes}, cleaned=False)


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

    def describe(classes: list[str]) -> dict[str, list[str]]:
        found = {c: data.get(by_key.get(class_key(c), ""), []) for c in classes}
        missing = [c for c in classes if not found[c]]
        if missing:
            raise DescriptionError(
                f"{params.file}: no descriptions for classes {missing}; add them or use describe.source = 'templates'"
            )
        return {c: list(found[c]) for c in classes}

    return Describer(describe)


def _from_llm(params: DescribeParams, prompts_file: Path | None) -> Describer:
    if prompts_file is None:
        raise DescriptionError(f"describe.source = {params.source!r} needs a prompt file (prompts/<domain>.yaml)")
    prompts = load_prompts(prompts_file)
    _checked_templates(params)  # the fallback: fail now, not after the LLM ran
    backend = create_backend(params)
    sampling = Sampling.from_params(params)
    cache = CompletionCache(params.cache_dir)

    def describe(classes: list[str]) -> dict[str, list[str]]:
        requests = [(p, c) for c in classes for p in prompts]
        completions, _ = generate_cached(backend, cache, requests, sampling)
        answers: dict[str, list[str]] = {c: [] for c in classes}
        for (_, c), completion in zip(requests, completions, strict=True):
            answers[c].extend(completion.texts)
        return answers

    return Describer(describe, {"generator": backend.identity, "prompts": prompts, "sampling": sampling.as_dict()})


FACTORIES: dict[str, Callable[[DescribeParams, Path | None], Describer]] = {
    "templates": _from_templates,
    "file": _from_file,
    **dict.fromkeys(LLM_SOURCES, _from_llm),
}


def create_describer(params: DescribeParams, prompts_file: str | Path | None = None) -> Describer:
    return FACTORIES[params.source](params, Path(prompts_file) if prompts_file else None)


def describe_classes(params: DescribeParams, classes: list[str], prompts_file: str | Path | None = None) -> dict:
    """The descriptions.json document: class -> sentences, in class order, plus provenance."""
    describer = create_describer(params, prompts_file)
    sentences = describer.describe(classes)
    doc: dict[str, Any] = {"source": params.source, **describer.provenance, "classes": classes}
    if not describer.cleaned:
        return {**doc, "descriptions": {c: sentences[c] for c in classes}}
    descriptions, fallback, total = {}, {}, CleaningReport()
    for c in classes:
        kept, report = clean_sentences(sentences[c], params.min_words)
        total.add(report)
        if not kept:
            kept, fallback[c] = [t.format(c) for t in params.templates], report.why_none_kept()
        descriptions[c] = kept
    return {**doc, "descriptions": descriptions, "fallback": fallback, "cleaning": total.as_dict()}


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
