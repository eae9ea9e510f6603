"""The quality gate after cleaning, on hand-written cases and on real raw answers of the packaged
Gemma 3 270M (tests/data/gemma270m_raw_answers.json, made once by tests/data/make_gemma270m_answers.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.data.benchmarks import EUROSAT_CLASS_NAMES
from pipeline.describe.cleaning import clean_sentences
from pipeline.describe.gate import gate, judge
from pipeline.describe.prompts import PromptFile, few_shot

pytestmark = pytest.mark.unit

DATA = Path(__file__).resolve().parent / "data" / "gemma270m_raw_answers.json"
EUROSAT = list(EUROSAT_CLASS_NAMES.values())


@pytest.mark.parametrize(
    ("sentence", "reason"),
    [
        ("Which level of the Home Dining Room are the fire stairs on?", "question"),
        ("What is the colour of the river.", "question"),
        ("The river is wide? Yes.", "question"),
        ("Describe the river in three words.", "instruction"),
        ("Identify the main channel of the river.", "instruction"),
        ("highway; B) road; C) depression; D) sea.", "fragment"),
        ("The correct answer: a river.", "fragment"),
        ("river; stream; brook; creek.", "fragment"),
        ("Q: the river runs east.", "fragment"),
        ("A river situation (i.", "fragment"),
        ("A river is a 河流 winding through fields.", "other_script"),
        ("The river looks like река from above.", "other_script"),
        ("A dense forest covers the hills with dark green canopy.", "other_class"),
        ("Rows of houses with red roofs line the streets, like residential buildings.", "other_class"),
        ("A grey highway crosses the land.", "other_class"),
    ],
)
def test_each_reason_drops_its_case(sentence, reason):
    kept, report = gate([sentence], "river", EUROSAT)
    assert kept == [] and report.as_dict()[reason] == 1 and report.checked == 1 and report.kept == 0


@pytest.mark.parametrize(
    "sentence",
    [
        "A river is a thin winding blue line through green fields.",
        "Rivers appear as dark ribbons of water bordered by trees.",
        "A river runs past a forest and a highway bridge.",  # names others, but this one too
        "The water shows as a smooth dark band with bright sandbanks.",  # names no class at all
    ],
)
def test_visual_sentences_pass(sentence):
    kept, report = gate([sentence], "river", EUROSAT)
    assert kept == [sentence] and report.kept == 1


def test_near_duplicates_are_dropped_and_the_first_kept():
    sentences = [
        "A river is a thin winding blue line through green fields.",
        "A river is a thin, winding blue line through the green fields.",
        "A river is a wide brown band of water between sandy banks.",
    ]
    kept, report = gate(sentences, "river", EUROSAT)
    assert kept == [sentences[0], sentences[2]] and report.near_duplicate == 1


def test_an_x_or_y_class_is_named_by_either_side():
    kept, report = gate(["A calm lake reflects the sky.", "A road crosses a lake."], "highway or road", EUROSAT)
    assert kept == ["A road crosses a lake."] and report.other_class == 1


def test_the_scripts_of_the_class_names_are_allowed():
    classes = ["кошка", "собака"]
    kept, report = gate(["Серая кошка спит на диване.", "A grey кошка sleeps on a sofa."], "кошка", classes)
    assert kept == ["Серая кошка спит на диване."] and report.other_script == 1  # Latin is the other script here


def test_few_shot_transcript_ends_with_the_question_and_chat_gets_it_bare():
    examples = [("solar farm", "Rows of dark panels.")]
    text = few_shot("Describe {} from above.", examples)
    assert text == "Q: Describe solar farm from above.\nA: Rows of dark panels.\n\nQ: Describe {} from above.\nA:"
    prompts = PromptFile(["Describe {} from above."], examples)
    assert prompts.templates("chat") == ["Describe {} from above."]
    assert prompts.templates("completions") == [text]
    assert PromptFile(["Describe {}."], []).templates("completions") == ["Describe {}."]


def test_the_gate_on_real_raw_answers_of_the_packaged_model():
    """Each stored answer carries a label written by reading it: the gate must reach the same verdict."""
    data = json.loads(DATA.read_text())
    assert data["generator"]["model"] == "gemma-3-270m-q4_k_m.gguf" and data["sampling"]["seed"] == 0
    assert len(data["answers"]) >= 60 and all(a["expect"] for a in data["answers"])
    classes = data["classes"]
    verdicts = []
    for c in classes:
        answers = [a for a in data["answers"] if a["class"] == c]
        sentences = [clean_sentences([a["raw"]], min_words=3)[0] for a in answers]
        cleaned = [s[0] for s in sentences if s]
        reasons = iter(judge(cleaned, c, classes))
        for a, s in zip(answers, sentences, strict=True):
            verdicts.append((a["raw"], a["expect"], (next(reasons) or "keep") if s else "cleaning"))
    wrong = [v for v in verdicts if v[1] != v[2]]
    assert not wrong, wrong
    assert sum(v[1] == "keep" for v in verdicts) >= 10  # the gate keeps real descriptions, not just nothing
