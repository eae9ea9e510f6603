"""CuPL-style prompt files, one per image domain (``prompts/<domain>.yaml``), edited by users.

A file holds questions (``prompts:``, each with a ``{}`` for the class name) and, for base models,
worked answers (``examples:``) about classes of the same domain that no benchmark uses. A base
model does not answer a bare question, it continues the text; in ``completions`` mode each
question is therefore sent after the examples as a few-shot Q/A transcript, so that the model's
most likely continuation is one more visual sentence. ``chat`` mode sends the bare question.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from pipeline.core.errors import NolaError


class PromptError(NolaError, ValueError):
    """A prompt file that is missing or malformed."""


@dataclass(frozen=True)
class PromptFile:
    prompts: list[str]
    examples: list[tuple[str, str]]  # (class name, one-sentence visual description)

    def templates(self, mode: str) -> list[str]:
        """What is sent per question: the bare question (chat, or no examples), else a few-shot transcript."""
        if mode == "chat" or not self.examples:
            return self.prompts
        return [few_shot(p, self.examples) for p in self.prompts]


def few_shot(question: str, examples: list[tuple[str, str]]) -> str:
    shots = "".join(f"Q: {question.replace('{}', name)}\nA: {answer}\n\n" for name, answer in examples)
    return f"{shots}Q: {question}\nA:"


def _examples(path: Path, doc: dict) -> list[tuple[str, str]]:
    raw = doc.get("examples", [])
    ok = isinstance(raw, list) and all(
        isinstance(e, dict) and set(e) == {"class", "answer"} and all(isinstance(v, str) and v for v in e.values())
        for e in raw
    )
    if not ok:
        raise PromptError(f"{path}: 'examples:' must be a list of {{class: ..., answer: ...}} with non-empty strings")
    braced = [e["answer"] for e in raw if "{" in e["answer"] or "{" in e["class"]]
    if braced:
        raise PromptError(f"{path}: example answers and classes may not contain braces: {braced}")
    return [(e["class"], e["answer"]) for e in raw]


def load_prompt_file(path: str | Path) -> PromptFile:
    """The questions and worked examples of one file, checked."""
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
    return PromptFile(prompts, _examples(path, doc))


def load_prompts(path: str | Path) -> list[str]:
    """The questions of one file; each has a ``{}`` where the class name goes."""
    return load_prompt_file(path).prompts
