"""What users pick DVC for, shown on real repos: minimal reruns, sharing through a remote and a
shared cache, and byte-identical artifacts from clean runs."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from helpers import PROJECT, STAGES, make_dvc_project, sh, smoke_params

pytestmark = pytest.mark.e2e


def two_dataset_params() -> dict:
    params = smoke_params()
    shapes = params["datasets"].pop("synthetic")
    params["datasets"]["shapes"] = copy.deepcopy(shapes)
    params["datasets"]["shapes"]["data"]["root"] = "data/shapes"
    params["datasets"]["more"] = copy.deepcopy(shapes)
    params["datasets"]["more"]["data"].update(
        root="data/more", seed=1, synthetic_classes=2, synthetic_per_class=8, synthetic_size=48
    )
    params["datasets"]["more"]["domain"] = "textures"
    return params


def repro(repo: Path, *args: str) -> set[str]:
    """Run `dvc repro`; return the stages that really computed (from the stages' own audit log)."""
    log = repo / ".stage_log"
    log.unlink(missing_ok=True)
    out = sh("dvc", "repro", *args, cwd=repo, env={"NOLA_STAGE_LOG": str(log)}).stdout
    said = set(re.findall(r"Running stage '([^']+)'", out))
    computed = set()
    if log.exists():
        for line in log.read_text().splitlines():
            module, *argv = line.split()
            if module == "check_params":  # one stage for the whole params file, no dataset
                computed.add(module)
                continue
            name = {"features": f"features_{argv[0]}"}.get(module, module) if argv else module
            dataset = next((a for a in argv if a in ("shapes", "more", "synthetic")), None)
            if dataset is None:  # describe, pseudo_labels, align take only paths
                dataset = next(a.split("/")[1] for a in argv if a.startswith("artifacts/"))
            computed.add(f"{name}@{dataset}")
    assert said == computed, f"dvc said it ran {said}, the stages logged {computed}"
    return computed


def clone(origin: Path, path: Path, cache_config: dict[str, str] | None = None) -> Path:
    sh("git", "clone", "-q", str(origin), str(path), cwd=origin.parent)
    for key, value in (cache_config or {}).items():
        sh("dvc", "config", "--local", key, value, cwd=path)
    sh("python", "-m", "pipeline", "fetch-data", cwd=path)
    return path


def edit_params(repo: Path, change) -> None:
    params = yaml.safe_load((repo / "params.yaml").read_text())
    change(params)
    (repo / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))


def lock_md5s(repo: Path) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    return {o["path"]: o["md5"] for stage in lock["stages"].values() for o in stage.get("outs", [])}


@pytest.fixture(scope="module")
def team(tmp_path_factory):
    base = tmp_path_factory.mktemp("team")
    origin = make_dvc_project(base / "origin", two_dataset_params())
    shared = {
        "cache.dir": str(base / "shared-cache"),
        "cache.shared": "group",
        "cache.type": "reflink,hardlink,symlink",
    }
    a = clone(origin, base / "a", shared)
    computed = repro(a)
    return {"base": base, "origin": origin, "a": a, "shared": shared, "first": computed}


def all_stages(*datasets: str) -> set[str]:
    """Every stage of a full run: check_params and each stage of each dataset."""
    return {"check_params"} | {f"{s}@{d}" for s in STAGES for d in datasets}


def test_first_run_computes_every_stage_of_every_dataset(team):
    assert team["first"] == all_stages("shapes", "more")
    assert repro(team["a"]) == set()


def _rerun_after(repo: Path, change) -> set[str]:
    """The stages a params edit makes compute, besides check_params (which every edit reruns)."""
    edit_params(repo, change)
    try:
        ran = repro(repo)
        assert "check_params" in ran
        return ran - {"check_params"}
    finally:
        sh("git", "checkout", "--", "params.yaml", cwd=repo)
        assert repro(repo) == set(), "going back restores from the run-cache without computing"


def test_a_dataset_template_reruns_that_datasets_text_side_only(team):
    ran = _rerun_after(team["a"], lambda p: p["datasets"]["shapes"]["templates"].append("a sketch of a {}."))
    assert "text_classifier@shapes" in ran
    downstream = ("text_classifier", "pseudo_labels", "align", "tune", "predict", "evaluate", "report")
    assert ran <= {f"{s}@shapes" for s in downstream}


def test_a_prompt_edit_reruns_describe_for_that_domains_datasets_only(team):
    a = team["a"]
    prompts = a / "prompts" / "generic.yaml"
    prompts.write_text(prompts.read_text() + '  - "What does a {} look like from far away?"\n')
    try:
        ran = repro(a)
    finally:
        sh("git", "checkout", "--", "prompts", cwd=a)
        assert repro(a) == set()
    # the smoke config describes from templates, so the descriptions (and all that follows) are
    # unchanged; with an LLM source the prompt's new completions flow on to text_classifier@shapes
    assert ran == {"describe@shapes"}


def test_a_tune_param_reruns_tune_and_what_follows_only(team):
    ran = _rerun_after(team["a"], lambda p: p["tune"].update(epochs=1))
    assert ran == {f"{s}@{d}" for s in ("tune", "predict", "evaluate", "report") for d in ("shapes", "more")}


def test_another_clip_model_reruns_clip_features_not_dino(team):
    def switch(p):
        p["clip"].update(model="nola-smoke-vit-alt", model_config_dir=str(PROJECT / "tests" / "model_configs"))

    ran = _rerun_after(team["a"], switch)
    assert {"features_clip@shapes", "features_clip@more", "text_classifier@shapes"} <= ran
    assert not any(s.startswith(("features_dino", "split", "describe")) for s in ran)


def test_a_change_to_one_dataset_leaves_the_other_alone(team):
    ran = _rerun_after(team["a"], lambda p: p["datasets"]["more"]["data"].update(test_fraction=0.5))
    assert "split@more" in ran and all(s.endswith("@more") for s in ran)


def test_remote_shares_results_without_recomputing(team):
    a, base = team["a"], team["base"]
    sh("dvc", "remote", "add", "-d", "--local", "store", str(base / "remote"), cwd=a)
    sh("dvc", "push", "--run-cache", cwd=a)
    sh("git", "add", "-A", cwd=a)  # dvc.lock, and the metrics and plots, which live in git
    sh("git", "commit", "-qm", "results", cwd=a)
    for name, fetch in (("b", ["dvc", "pull"]), ("c", None)):
        teammate = clone(a, base / name)  # its own, empty DVC cache
        sh("dvc", "remote", "add", "-d", "--local", "store", str(base / "remote"), cwd=teammate)
        if fetch:
            sh(*fetch, cwd=teammate)
            assert "up to date" in sh("dvc", "status", cwd=teammate).stdout
            assert repro(teammate) == set()
        else:
            assert repro(teammate, "--pull") == set()
        assert (teammate / "artifacts/shapes/tune/prompt.safetensors").read_bytes() == (
            a / "artifacts/shapes/tune/prompt.safetensors"
        ).read_bytes()


def test_shared_cache_directory_serves_a_second_clone(team):
    e = clone(team["origin"], team["base"] / "e", team["shared"])
    assert repro(e) == set(), "the run-cache in the shared cache dir restores every stage"
    prompt = e / "artifacts/shapes/features/dino/pool.parquet"
    assert prompt.is_symlink() or prompt.stat().st_nlink > 1, "outputs are linked from the shared cache"


def test_clean_runs_give_identical_artifacts(team):
    fresh = clone(team["origin"], team["base"] / "f")  # own empty cache, no remote: computes everything
    assert repro(fresh) == all_stages("shapes", "more")
    assert lock_md5s(fresh) == lock_md5s(team["a"])
