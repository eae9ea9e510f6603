"""A quality gate after cleaning: drops sentences that are not a visual description of their class.

A small base model, sampled hot, continues a prompt with whatever text is likely: quiz questions,
instructions, multiple-choice answer keys, text in other scripts, sentences about a neighbouring
class. Each would pull the class's text embedding away from its images, so each is dropped here
and counted by reason; descriptions.json carries the counts, so the damage is visible per run.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass

QUESTION_WORDS = {"what", "which", "how", "why", "who", "whom", "whose", "where", "when", "does", "do", "is", "are"}
INSTRUCTION_WORDS = {
    "describe", "explain", "write", "list", "identify", "name", "choose", "select", "answer", "give", "compare",
    "find", "draw", "read", "imagine", "consider", "click", "fill", "match", "complete", "define", "discuss",
    "determine", "calculate", "label", "circle", "underline", "please", "let's", "let", "see", "note",
}  # fmt: skip
# "B) road", "(c) sea", "Answer: A", "Q: ...", "forest; river; lake", "A pasture situation (i.": the
# shapes of quiz and list text, and of an answer cut inside a parenthesis (the stop "." in "i.e.")
FRAGMENT = re.compile(r"(?:^|[\s;,(])[A-Da-d]\)|\b(?:answer|options?|choices?)\s*:|\b[QA]:|;.*;|\([^)]*$")
STOPWORDS = {"or", "and", "of", "the", "a", "an", "with", "in", "on"}
NEAR_DUPLICATE = 0.8  # word-set overlap (Jaccard) from which two sentences count as one


@dataclass
class GateReport:
    checked: int = 0
    kept: int = 0
    question: int = 0
    instruction: int = 0
    fragment: int = 0
    other_script: int = 0
    other_class: int = 0
    near_duplicate: int = 0

    def add(self, other: GateReport) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def dropped(self) -> str:
        return ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in asdict(self).items() if k not in ("checked", "kept"))


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+(?:'[^\W_]+)?", text.casefold())


def scripts(text: str) -> set[str]:
    """The scripts of the letters in ``text`` (LATIN, CYRILLIC, CJK, ...), by Unicode character name."""
    return {unicodedata.name(ch, "UNKNOWN").split(" ")[0] for ch in text if ch.isalpha()}


def _alternatives(name: str) -> list[re.Pattern]:
    """Ways a sentence names a class: its full name or one side of an 'X or Y' name, plural allowed."""
    parts = [name, *re.split(r"\s+or\s+", name)] if re.search(r"\s+or\s+", name) else [name]
    return [re.compile(rf"\b{re.escape(p.casefold())}(?:s|es)?\b") for p in parts if p.strip()]


def _names_loosely(sentence_words: set[str], name: str) -> bool:
    """Whether a sentence refers to ``name`` at all: any content word of it, as a word prefix."""
    stems = [w[:5] for w in _words(name) if w not in STOPWORDS and len(w) >= 3]
    return any(w.startswith(s) for s in stems for w in sentence_words)


def reason(sentence: str, class_name: str, others: list[str], allowed_scripts: set[str]) -> str | None:
    """Why ``sentence`` is not a description of ``class_name`` (a GateReport field), or None."""
    words = _words(sentence)
    if "?" in sentence or (words and words[0] in QUESTION_WORDS):
        return "question"
    if words and words[0] in INSTRUCTION_WORDS:
        return "instruction"
    if FRAGMENT.search(sentence):
        return "fragment"
    if not scripts(sentence) <= allowed_scripts:
        return "other_script"
    lowered = sentence.casefold()
    if not _names_loosely(set(words), class_name) and any(
        p.search(lowered) for other in others for p in _alternatives(other)
    ):
        return "other_class"
    return None


def _overlap(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a | b else 1.0


def judge(sentences: list[str], class_name: str, classes: list[str]) -> list[str | None]:
    """Per sentence, in order: why the gate drops it (a GateReport field), or None to keep it."""
    others = [c for c in classes if c != class_name]
    allowed = scripts(" ".join(classes)) or {"LATIN"}
    reasons: list[str | None] = []
    kept_words: list[set[str]] = []
    for sentence in sentences:
        why = reason(sentence, class_name, others, allowed)
        words = set(_words(sentence))
        if why is None and any(_overlap(words, k) >= NEAR_DUPLICATE for k in kept_words):
            why = "near_duplicate"
        if why is None:
            kept_words.append(words)
        reasons.append(why)
    return reasons


def gate(sentences: list[str], class_name: str, classes: list[str]) -> tuple[list[str], GateReport]:
    """The sentences that pass, in order, and how many were dropped for each reason."""
    report = GateReport(checked=len(sentences))
    kept = []
    for sentence, why in zip(sentences, judge(sentences, class_name, classes), strict=True):
        if why:
            setattr(report, why, getattr(report, why) + 1)
        else:
            kept.append(sentence)
    report.kept = len(kept)
    return kept, report
