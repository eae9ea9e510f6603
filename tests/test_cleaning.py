"""Cleaning raw answers into sentences CLIP can use, the template fallback, and the domain prompt files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.core.params import DescribeParams
from pipeline.describe.cleaning import CLIP_CONTEXT, clean_sentences, clip_token_count, fit_clip_context, normalise
from pipeline.describe.descriptions import DescriptionError, describe_classes
from pipeline.describe.prompts import PromptError, load_prompt_file, load_prompts

pytestmark = pytest.mark.unit

PROMPTS = Path(__file__).resolve().parents[1] / "prompts"
DOMAINS = ["actions", "aircraft", "cars", "flowers", "food", "generic", "pets", "satellite", "scenes", "textures"]


def test_normalise_removes_control_tokens_characters_and_markers():
    assert (
        normalise("<start_of_image><start_of_image>The <em>heat map</em>\x00 shows\tforests")
        == "The heat map shows forests."
    )
    assert normalise("\n\n* 1) a field of wheat,") == "a field of wheat."
    assert normalise("  A)  green   squares\u200b of crops!") == "green squares of crops!"
    assert normalise(" \n\t ") == "" and normalise("<|eot_id|>") == "" and normalise(", ;") == ""


def test_clean_sentences_counts_what_it_drops():
    answers = ["A dense green forest", "a dense  green forest.", "", "Trees", "  \x07  ", "Rows of tall pines"]
    kept, report = clean_sentences(answers, min_words=3)
    assert kept == ["A dense green forest.", "Rows of tall pines."]
    assert report.as_dict() == {"answers": 6, "kept": 2, "empty": 2, "too_short": 1, "duplicates": 1, "truncated": 0}


def test_long_sentences_are_cut_to_the_longest_prefix_that_fits_clip():
    long = " ".join(f"word{i}" for i in range(120))
    kept, report = clean_sentences([long, "a short one here"], min_words=3)
    assert report.truncated == 1 and report.kept == 2
    cut = kept[0]
    assert clip_token_count(cut) <= CLIP_CONTEXT and cut.endswith(".")
    n_words = len(cut.split())
    one_more = " ".join(long.split()[: n_words + 1]) + "."
    assert clip_token_count(one_more) > CLIP_CONTEXT
    endless = "x" * 1000
    assert clip_token_count(fit_clip_context(endless)) <= CLIP_CONTEXT < clip_token_count(endless)


def test_every_domain_has_a_prompt_file():
    assert sorted(p.stem for p in PROMPTS.glob("*.yaml")) == DOMAINS
    for domain in DOMAINS:
        prompt_file = load_prompt_file(PROMPTS / f"{domain}.yaml")
        prompts, examples = prompt_file.prompts, prompt_file.examples
        assert len(prompts) == 6 and all("{}" in p for p in prompts)
        assert len(examples) >= 3, f"{domain}: base models need worked examples"
        for name, answer in examples:  # the opening a base model copies (README: Class descriptions)
            opening, _, seen = answer.partition(", one can see ")
            assert opening.startswith("In a ") and name.lower() in opening.lower() and seen, (domain, answer)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (None, "no prompt file for this domain"),
        ('prompts: ["a {}", "b"]\n', "these have none: ['b']"),
        ('prompts: ["a {}", "a {}"]\n', "more than once"),
        ('- "a {}"\n', "expected 'prompts:'"),
        ('prompts: ["a {}"\n', "not valid YAML"),
        ('prompts: ["a {}"]\nexamples: [{class: x}]\n', "'examples:' must be a list"),
        ('prompts: ["a {}"]\nexamples: [{class: x, answer: "a {} b"}]\n', "may not contain braces"),
    ],
)
def test_bad_prompt_files_name_the_file_and_the_fix(tmp_path, text, message):
    path = tmp_path / "mine.yaml"
    if text is not None:
        path.write_text(text)
    else:
        (tmp_path / "other.yaml").write_text('prompts: ["a {}"]\n')
    with pytest.raises(PromptError, match="mine.yaml") as err:
        load_prompts(path)
    assert message in str(err.value)
    if text is None:
        assert "['other']" in str(err.value)


def test_a_class_without_usable_sentences_falls_back_to_the_templates(tmp_path):
    file = tmp_path / "descriptions.json"
    file.write_text(
        json.dumps({"cat": ["a cat asleep\x00 on a sofa", "A cat asleep on a sofa."], "dog": ["dog", " \n ", "Dog."]})
    )
    params = DescribeParams(source="file", file=str(file), templates=["a photo of a {}.", "a {} outdoors."])
    doc = describe_classes(params, ["cat", "dog"])
    assert doc["descriptions"] == {"cat": ["a cat asleep on a sofa."], "dog": ["a photo of a dog.", "a dog outdoors."]}
    assert doc["fallback"] == {
        "dog": "all 3 answers unusable: 1 empty, 2 too short, 0 duplicates; the gate dropped 0 question, "
        "0 instruction, 0 fragment, 0 other script, 0 other class, 0 near duplicate"
    }
    assert doc["cleaning"] == {"answers": 5, "kept": 1, "empty": 1, "too_short": 2, "duplicates": 1, "truncated": 0}


def test_description_file_keys_match_class_names_up_to_case_spaces_underscores_dashes(tmp_path):
    """The paper's published GPT-3.5 JSON names EuroSAT's classes in Title Case."""
    file = tmp_path / "eurosat.json"
    sentences = {"Annual Crop Land": ["Rows of green crops in flat fields."], "Herbaceous_Vegetation": ["Wild grass."]}
    file.write_text(json.dumps(sentences))
    params = DescribeParams(source="file", file=str(file), min_words=1)
    doc = describe_classes(params, ["annual crop land", "herbaceous-vegetation"])
    assert doc["descriptions"] == {
        "annual crop land": ["Rows of green crops in flat fields."],
        "herbaceous-vegetation": ["Wild grass."],
    }
    with pytest.raises(DescriptionError, match=r"no descriptions for classes \['annual crops'\]"):
        describe_classes(params, ["annual crops"])
    file.write_text(json.dumps({**sentences, "annual  crop-land": ["Other."]}))
    with pytest.raises(DescriptionError, match=r"keys 'Annual Crop Land' and 'annual  crop-land' name the same class"):
        describe_classes(params, ["annual crop land"])
