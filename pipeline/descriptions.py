"""Class descriptions: one factory, :func:`create_describer`, chosen by ``describe.source``.

A describer maps class names to lists of sentences. ``templates`` fills CuPL-like sentence
templates (no LLM); ``file`` reads a user's JSON. LLM backends plug in behind the same call.
"""
from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from .artifacts import read_json
from .errors import NolaError
from .params import DescribeParams

Describer = Callable[[list[str]], dict[str, list[str]]]


class DescriptionError(NolaError, ValueError):
    """Descriptions that cannot be produced as configured, worded for the user."""


def _from_templates(params: DescribeParams) -> Describer:
    if not params.templates:
        raise DescriptionError("describe.templates is empty; give sentence templates with a {} for the class name")
    bad = [t for t in params.templates if "{}" not in t]
    if bad:
        raise DescriptionError(f"describe.templates: each template needs a {{}} for the class name; not these: {bad}")

    def describe(classes: list[str]) -> dict[str, list[str]]:
        return {c: [t.format(c) for t in params.templates] for c in classes}

    return describe


def _from_file(params: DescribeParams) -> Describer:
    if not params.file:
        raise DescriptionError("describe.source = 'file' needs describe.file (JSON: class name -> list of sentences)")
    data = read_json(params.file)
    if not isinstance(data, dict) or not all(
        isinstance(v, list) and all(isinstance(s, str) for s in v) for v in data.values()
    ):
        raise DescriptionError(f"{params.file}: expected a JSON object mapping class name -> list of sentences")

    def describe(classes: list[str]) -> dict[str, list[str]]:
        missing = [c for c in classes if not data.get(c)]
        if missing:
            raise DescriptionError(
                f"{params.file}: no descriptions for classes {missing}; add them or use describe.source = 'templates'"
            )
        return {c: list(data[c]) for c in classes}

    return describe


BACKENDS: dict[str, Callable[[DescribeParams], Describer]] = {
    "templates": _from_templates,
    "file": _from_file,
}


def create_describer(params: DescribeParams) -> Describer:
    return BACKENDS[params.source](params)


def describe_classes(params: DescribeParams, classes: list[str]) -> dict:
    """The descriptions.json document: class -> sentences, in class order, plus provenance."""
    sentences = create_describer(params)(classes)
    return {
        "source": params.source,
        "classes": classes,
        "descriptions": {c: sentences[c] for c in classes},
    }


def load_descriptions(path: str | Path, classes: list[str]) -> dict[str, list[str]]:
    doc = read_json(path)
    descriptions = doc.get("descriptions") if isinstance(doc, dict) else None
    if not isinstance(descriptions, dict) or doc.get("classes") != classes:
        raise DescriptionError(
            f"{path}: made for classes {doc.get('classes') if isinstance(doc, dict) else '?'}, "
            f"not the current {classes}; rerun the 'describe' stage"
        )
    return descriptions
