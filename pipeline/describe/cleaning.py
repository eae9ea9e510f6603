"""Raw answers (from an LLM or a user's file) -> sentences that CLIP's text encoder can use.

Removes model control tokens, control characters, list markers and extra whitespace; drops empty,
too-short and duplicate answers; truncates sentences longer than CLIP's 77-token context and
counts them, since CLIP's tokenizer would otherwise cut them silently.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass
from functools import lru_cache

CLIP_CONTEXT = 77  # tokens, start and end tokens included
SPECIAL_TOKEN = re.compile(r"<\|?/?[A-Za-z0-9_]+\|?>")
LIST_MARKER = re.compile(r"^(?:[-*•>\"'“”‘’]+|\(?[0-9]{1,2}[.)]|\(?[A-Za-z]\))\s*")
TRAILING = " ,;:-\"'“”‘’"


@dataclass
class CleaningReport:
    answers: int = 0
    kept: int = 0
    empty: int = 0
    too_short: int = 0
    duplicates: int = 0
    truncated: int = 0

    def add(self, other: CleaningReport) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)

    def why_none_kept(self) -> str:
        if not self.answers:
            return "no answers"
        return (
            f"all {self.answers} answers unusable: {self.empty} empty, {self.too_short} too short, "
            f"{self.duplicates} duplicates"
        )


@lru_cache(maxsize=1)
def _clip_tokenizer():
    from open_clip.tokenizer import SimpleTokenizer

    return SimpleTokenizer()


def clip_token_count(text: str) -> int:
    """Tokens ``text`` takes in CLIP's context, start and end tokens included."""
    return len(_clip_tokenizer().encode(text)) + 2


def fit_clip_context(sentence: str) -> str:
    """The longest word prefix of ``sentence`` (ending in a period) that fits CLIP's context."""
    if clip_token_count(sentence) <= CLIP_CONTEXT:
        return sentence
    words = sentence.split(" ")
    if clip_token_count(_as_sentence(words[0])) > CLIP_CONTEXT:  # one endless "word": cut characters
        return _as_sentence(words[0][: _longest_fitting(list(words[0]), "")])
    return _as_sentence(" ".join(words[: _longest_fitting(words, " ")]))


def _longest_fitting(pieces: list[str], joiner: str) -> int:
    """The largest n such that the first n pieces, joined, fit CLIP's context (at least 1)."""
    lo, hi = 1, len(pieces) - 1
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if clip_token_count(_as_sentence(joiner.join(pieces[:mid]))) <= CLIP_CONTEXT:
            lo = mid
        else:
            hi = mid - 1
    return lo


def _as_sentence(text: str) -> str:
    text = text.rstrip(TRAILING)
    return text if text.endswith((".", "!", "?")) else f"{text}."


def normalise(text: str) -> str:
    """One line of plain text: no control tokens or characters, list markers or repeated spaces."""
    text = SPECIAL_TOKEN.sub(" ", text)
    text = "".join(" " if unicodedata.category(ch).startswith("C") else ch for ch in text)
    text = " ".join(text.split())
    while (stripped := LIST_MARKER.sub("", text, count=1)) != text:
        text = stripped
    return _as_sentence(text) if text.rstrip(TRAILING) else ""


def clean_sentences(answers: list[str], min_words: int) -> tuple[list[str], CleaningReport]:
    """Usable sentences, in answer order, and what was dropped or cut."""
    report = CleaningReport(answers=len(answers))
    kept: list[str] = []
    seen: set[str] = set()
    for answer in answers:
        sentence = normalise(answer)
        if not sentence:
            report.empty += 1
            continue
        if len(sentence.split()) < min_words:
            report.too_short += 1
            continue
        fitted = fit_clip_context(sentence)
        report.truncated += fitted != sentence
        if fitted.casefold() in seen:
            report.duplicates += 1
            continue
        seen.add(fitted.casefold())
        kept.append(fitted)
    report.kept = len(kept)
    return kept, report
