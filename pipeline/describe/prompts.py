"""CuPL-style prompt files, one per image domain (``prompts/<domain>.yaml``), edited by users."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.core.errors import NolaError


class PromptError(NolaError, ValueError):
    """A prompt file that is missing or malformed."""


def load_prompts(path: str | Path) -> list[str]:
    """The prompt templates of one file; each has a ``{}`` where the class name goes."""
    path = Path(path)
    if not path.is_file():
        known = sorted(p.stem for p in path.parent.glob("*.yaml")) if path.parent.is_dir() else []
        raise PromptError(
            f"{path}: no prompt file for this domain; set the dataset's domain to one of {known} "
            f"or write {path} (a YAML list under 'prompts:', each with a {{}} for the class name)"
        )
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise PromptError(f"{path}: not valid YAML ({err})") from None
    prompts = doc.get("prompts") if isinstance(doc, dict) else None
    if not isinstance(prompts, list) or not prompts or not all(isinstance(p, str) for p in prompts):
        raise PromptError(f"{path}: expected 'prompts:' followed by a non-empty list of strings")
    missing = [p for p in prompts if "{}" not in p]
    if missing:
        raise PromptError(f"{path}: each prompt needs a {{}} for the class name; these have none: {missing}")
    repeated = sorted({p for p in prompts if prompts.count(p) > 1})
    if repeated:
        raise PromptError(f"{path}: prompts listed more than once: {repeated}")
    return prompts
