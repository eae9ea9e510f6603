"""params.yaml is validated as a whole when any stage starts, and by the check_params stage first
in every `dvc repro` after an edit: one message, naming each bad key, its value and what is allowed."""

from __future__ import annotations

import shutil
import subprocess
import sys

import pytest
import yaml

from pipeline.core.params import ParamsError, load_params
from pipeline.models.factory import MODEL_NAME_CHECKS

from helpers import PROJECT, SMOKE_PARAMS, make_dvc_project, smoke_params


def write(tmp_path, params: dict | str):
    path = tmp_path / "params.yaml"
    path.write_text(params if isinstance(params, str) else yaml.safe_dump(params))
    return path


def problems(tmp_path, params: dict | str) -> str:
    with pytest.raises(ParamsError) as err:
        load_params(write(tmp_path, params), MODEL_NAME_CHECKS)
    return str(err.value)


def with_change(section: str, key: str, value) -> dict:
    """The smoke params with ``section.key`` set; ``section`` may be dotted (datasets.synthetic.data)."""
    params = smoke_params()
    target = params
    for part in section.split("."):
        target = target[part]
    target[key] = value
    return params


@pytest.mark.unit
def test_the_shipped_params_files_are_valid():
    for path in (PROJECT / "params.yaml", SMOKE_PARAMS):
        sections = load_params(path, MODEL_NAME_CHECKS).model_dump()
        assert set(sections) == {
            "datasets",
            "clip",
            "dino",
            "describe",
            "features",
            "pseudo_labels",
            "align",
            "tune",
            "predict",
            "report",
            "compute",
        }
    assert load_params(SMOKE_PARAMS).tune.prompt_tokens == 4


@pytest.mark.unit
@pytest.mark.parametrize(
    ("section", "key", "value", "expected"),
    [
        ("pseudo_labels", "fraction", 1.5, "pseudo_labels.fraction = 1.5: Input should be less than or equal to 1"),
        ("pseudo_labels", "fraction", 0, "pseudo_labels.fraction = 0: Input should be greater than 0"),
        ("align", "lr", 0.0, "align.lr = 0.0: Input should be greater than 0"),
        ("tune", "base_lr", 4, "tune.base_lr = 4: Input should be less than or equal to 1"),
        ("tune", "base_lr", "fast", "tune.base_lr = 'fast': Input should be a valid number"),
        ("tune", "epochs", 0, "tune.epochs = 0: Input should be greater than or equal to 1"),
        ("tune", "epochs", 2.5, "tune.epochs = 2.5: Input should be a valid integer"),
        ("tune", "epochs", True, "tune.epochs = True: expected a number, got the boolean True"),
        ("tune", "prompt_tokens", -1, "tune.prompt_tokens = -1: Input should be greater than or equal to 0"),
        ("tune", "prompt_tokens", 5000, "tune.prompt_tokens = 5000: Input should be less than or equal to 1000"),
        (
            "datasets.synthetic.data",
            "source",
            "imagenette",
            "datasets.synthetic.data.source = 'imagenette': Input should be 'folder', 'manifest', 'eurosat'",
        ),
        (
            "datasets.synthetic.data",
            "bad_images",
            "ignore",
            "datasets.synthetic.data.bad_images = 'ignore': Input should be 'skip' or 'fail'",
        ),
        (
            "datasets.synthetic.data",
            "test_fraction",
            1.0,
            "datasets.synthetic.data.test_fraction = 1.0: Input should be less than 1",
        ),
        (
            "datasets.synthetic.data",
            "sourc",
            "folder",
            "datasets.synthetic.data.sourc = 'folder': unknown key; datasets.synthetic.data allows source, root,",
        ),
        (
            "datasets.synthetic",
            "templates",
            ["a {name} photo."],
            "template 'a {name} photo.' needs exactly one {} for the class name",
        ),
        ("tune", "epoch", 3, "tune.epoch = 3: unknown key; tune allows prompt_tokens, epochs,"),
        ("clip", "model", "ViT-B-23", "clip.model = 'ViT-B-23': not an open_clip model (close: ViT-B-32"),
        ("dino", "model", "vit_base_patch16_244.dino", "dino.model = 'vit_base_patch16_244.dino': not a timm model"),
    ],
)
def test_a_bad_value_is_named_with_what_is_allowed(tmp_path, section, key, value, expected):
    message = problems(tmp_path, with_change(section, key, value))
    assert message.startswith(f"{tmp_path / 'params.yaml'}: invalid parameters\n")
    assert expected in message


@pytest.mark.unit
def test_all_problems_come_in_one_message(tmp_path):
    params = with_change("tune", "epochs", -1)
    params["align"]["lrr"] = 0.1
    params["trainer"] = {"epochs": 3}
    params["dino"]["model"] = "dino_vit"
    message = problems(tmp_path, params)
    assert "tune.epochs = -1" in message
    assert "dino.model = 'dino_vit': not a timm model" in message
    assert (
        "align.lrr = 0.1: unknown key; align allows hidden, lr, batch_size, epochs, seed (did you mean 'lr'?)"
        in message
    )
    assert "trainer: unknown section; allowed: datasets, clip, dino" in message
    assert len(message.splitlines()) == 5


@pytest.mark.unit
def test_an_unknown_section_suggests_the_close_one(tmp_path):
    params = smoke_params()
    params["pseudo_label"] = params.pop("pseudo_labels")
    assert "pseudo_label: unknown section; allowed:" in problems(tmp_path, params)
    assert "(did you mean 'pseudo_labels'?)" in problems(tmp_path, params)


@pytest.mark.unit
def test_a_section_that_is_not_a_mapping(tmp_path):
    assert "tune = 5: Input should be a valid dictionary" in problems(tmp_path, {"tune": 5})


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("tune:\n  epochs: 3\ntune:\n  epochs: 4\n", "key 'tune' given twice"),
        ("tune:\n  epochs: 3\n  epochs: 4\n", "key 'epochs' given twice"),
        ("tune: {epochs: 3\n", "not valid YAML"),
        ("- a\n- b\n", "expected a mapping of sections"),
    ],
)
def test_broken_yaml_is_a_clear_error(tmp_path, text, expected):
    assert expected in problems(tmp_path, text)


@pytest.mark.unit
def test_yaml_exponent_without_a_dot_still_reads_as_a_number(tmp_path):
    """PyYAML reads 1e-3 as a string; the lr must still be 0.001, not an error."""
    rest = {k: v for k, v in smoke_params().items() if k != "align"}
    sections = load_params(write(tmp_path, yaml.safe_dump(rest) + "align:\n  lr: 1e-3\n"))
    assert sections.align.lr == pytest.approx(0.001)


@pytest.mark.e2e
def test_a_stage_refuses_bad_params_before_any_work(tmp_path):
    params = write(tmp_path, with_change("tune", "base_lr", -0.004))
    result = subprocess.run(
        [sys.executable, "-m", "stages.split", "synthetic", str(tmp_path / "out"), "--params", str(params)],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert "tune.base_lr = -0.004: Input should be greater than 0" in result.stderr
    assert not (tmp_path / "out").exists()


def repro(project) -> subprocess.CompletedProcess:
    return subprocess.run(["dvc", "repro"], cwd=project, capture_output=True, text=True)


@pytest.mark.e2e
def test_dvc_repro_checks_params_even_when_nothing_else_would_rerun(smoke_run, tmp_path):
    """In a reproduced project, a bad key stops `dvc repro` with the checker's message before any
    other stage; a harmless edit reruns only the check, whose marker makes nothing else rerun."""
    project = tmp_path / "project"
    shutil.copytree(smoke_run[0], project, symlinks=True)
    params_file = project / "params.yaml"
    original = params_file.read_text()

    def edited(change) -> str:
        params = yaml.safe_load(original)
        change(params)
        return yaml.safe_dump(params)

    cases = [
        (lambda p: p.update(tunee={"epochs": 3}), "tunee: unknown section; allowed: datasets, clip"),
        (
            lambda p: p["datasets"]["synthetic"].update(templatess=["a {}."]),
            "datasets.synthetic.templatess = ['a {}.']: unknown key; datasets.synthetic allows data, domain, templates",
        ),
        (lambda p: p.update(datasets={}), "datasets = {}: needs at least one entry"),
    ]
    for change, expected in cases:
        params_file.write_text(edited(change))
        result = repro(project)
        assert result.returncode != 0, result.stdout
        assert expected in result.stderr + result.stdout
        assert "Traceback" not in result.stderr
        assert [line for line in result.stdout.splitlines() if line.startswith("Running stage")] == [
            "Running stage 'check_params':"
        ]
    params_file.write_text(original + "# a comment\n")
    result = repro(project)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stdout.splitlines() if line.startswith("Running stage")] == [
        "Running stage 'check_params':"
    ]


@pytest.mark.e2e
def test_a_dataset_name_with_a_shell_metacharacter_is_refused_before_any_command(tmp_path):
    params = smoke_params()
    params["datasets"] = {"x;touch PWNED;": params["datasets"]["synthetic"]}
    project = make_dvc_project(tmp_path / "project", params)
    result = repro(project)
    assert result.returncode != 0
    assert "dataset names ['x;touch PWNED;'] are not allowed: use letters, digits, '_' and '-'" in result.stderr
    assert not (project / "PWNED").exists()
