"""Valid JSON of the wrong shape is one message naming the file and the expected shape, never a
TypeError traceback: classes.json (read by describe, text_classifier, evaluate), descriptions,
metrics shown by `nola info`."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from pipeline.cli.project_info import accuracy_table
from pipeline.core.artifacts import ArtifactError, read_classes, write_json
from pipeline.describe.descriptions import DescriptionError, load_descriptions

from helpers import PROJECT

WRONG_CLASSES = [
    [{"name": "forest"}, {"name": "river"}],
    {"classes": [{"name": "forest"}]},
    {"classes": []},
    {"names": ["forest"]},
    "forest",
]


@pytest.mark.unit
@pytest.mark.parametrize("doc", WRONG_CLASSES)
def test_classes_json_of_the_wrong_shape_is_refused(tmp_path, doc):
    path = tmp_path / "classes.json"
    write_json(path, doc)
    with pytest.raises(ArtifactError, match=r'classes.json: expected \{"classes": \["name", \.\.\.\]\}.*split'):
        read_classes(path)


@pytest.mark.unit
def test_classes_json_of_the_right_shape_is_read(tmp_path):
    write_json(tmp_path / "classes.json", {"classes": ["forest", "river"]})
    assert read_classes(tmp_path / "classes.json") == ["forest", "river"]


@pytest.mark.unit
def test_descriptions_of_the_wrong_shape_are_refused(tmp_path):
    path = tmp_path / "descriptions.json"
    write_json(path, {"classes": ["a"], "descriptions": {"a": "one sentence, not a list"}})
    with pytest.raises(DescriptionError, match="must map each class to a list of sentences"):
        load_descriptions(path, ["a"])


@pytest.mark.unit
@pytest.mark.parametrize("doc", [[1, 2], {"accuracy": [0.5]}])
def test_info_survives_a_metrics_file_of_the_wrong_shape(doc):
    assert accuracy_table(doc) == ["  not a metrics document of the evaluate stage (rerun it: dvc repro evaluate)"]


@pytest.mark.e2e
def test_the_describe_stage_says_what_is_wrong_with_classes_json(tmp_path):
    (tmp_path / "classes.json").write_text(json.dumps([{"name": "forest"}]))
    result = subprocess.run(
        [sys.executable, "-m", "stages.describe", str(tmp_path / "classes.json"), "prompts/generic.yaml"]
        + [str(tmp_path / "out.json"), "--params", "configs/smoke.yaml"],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
    assert result.stderr.startswith(f"error: {tmp_path / 'classes.json'}: expected"), result.stderr
    assert not (tmp_path / "out.json").exists()
