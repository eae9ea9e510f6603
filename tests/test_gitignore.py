"""Artifacts stay out of git whatever happens to a run: the project's own .gitignore lists every
cached output of dvc.yaml (DVC's per-folder entries vanish after a failed or killed run)."""

from __future__ import annotations

import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml

from helpers import PROJECT, make_dvc_project, sh, smoke_params


def dvc_outputs(key: str) -> tuple[list[str], list[str]]:
    """(cached outs, uncached metrics / plots) of dvc.yaml, with ``${key}`` filled in."""
    cached, uncached = [], []
    for stage in yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"].values():
        body = stage.get("do", stage)
        for kind in ("outs", "metrics", "plots"):
            for out in body.get(kind) or []:
                path, options = next(iter(out.items())) if isinstance(out, dict) else (out, {})
                cache = (options or {}).get("cache", kind == "outs")
                (cached if cache else uncached).append(path.replace("${key}", key))
    return cached, uncached


def ignored(repo: Path, paths: list[str]) -> set[str]:
    """Which of ``paths`` git ignores in ``repo`` (git check-ignore, the rules git add follows)."""
    result = subprocess.run(
        ["git", "check-ignore", "--no-index", "--stdin"],
        cwd=repo,
        input="\n".join(paths),
        capture_output=True,
        text=True,
    )
    return set(result.stdout.split())


@pytest.mark.unit
def test_gitignore_lists_every_cached_output_and_no_metric(tmp_path):
    sh("git", "init", "-q", cwd=tmp_path)
    shutil.copy(PROJECT / ".gitignore", tmp_path / ".gitignore")
    cached, uncached = dvc_outputs("eurosat")
    assert len(cached) >= 15 and len(uncached) >= 4
    missing = set(cached) - ignored(tmp_path, cached)
    assert not missing, f"add to .gitignore (a line per dvc.yaml out, ${{key}} as *): {sorted(missing)}"
    assert not ignored(tmp_path, uncached), "metrics and plots (cache: false) belong in git"
    leftovers = ["artifacts/eurosat/evaluate/.metrics.json.a1b2.tmp", "artifacts/eurosat/align/.head.safetensors.x.tmp"]
    assert ignored(tmp_path, leftovers) == set(leftovers)
    # no stale line: the artifacts patterns are exactly dvc.yaml's cached outs
    lines = (PROJECT / ".gitignore").read_text().splitlines()
    patterns = {line[1:] for line in lines if line.startswith("/artifacts/")}
    assert patterns == set(dvc_outputs("*")[0])


def runs_features(process) -> bool:
    import psutil

    try:
        return "stages.features" in process.cmdline()
    except psutil.Error:  # gone meanwhile
        return False


@pytest.mark.e2e
def test_killed_stage_then_resume_leaves_no_artifact_for_git(tmp_path):
    """kill -9 a stage while `dvc repro` runs it: DVC then drops the .gitignore entries of every
    output it made in that run, and the resume skips those stages, so does not restore them.
    After the resume, `git status` lists no artifact, only the files meant for git."""
    import psutil

    project = make_dvc_project(tmp_path / "p", smoke_params())
    sh("python", "-m", "pipeline", "fetch-data", cwd=project)
    running = subprocess.Popen(
        ["dvc", "repro"], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    for line in running.stdout:  # split, describe, text_classifier, features_clip have run
        if "Running stage 'features_dino" in line:
            break
    stage = None
    while stage is None and running.poll() is None:
        stage = next((p for p in psutil.Process(running.pid).children(recursive=True) if runs_features(p)), None)
        time.sleep(0.05)
    assert stage is not None, "the features_dino stage was running"
    stage.send_signal(signal.SIGKILL)
    assert running.wait(timeout=120) != 0, "dvc repro failed with its stage"
    sh("dvc", "repro", cwd=project)
    status = sh("git", "status", "--porcelain", "--untracked-files=all", cwd=project).stdout.splitlines()
    paths = [line[3:] for line in status]
    cached, _ = dvc_outputs("synthetic")
    assert all((project / c).is_file() for c in cached), "the resumed run finished"
    leaked = [p for p in paths if p.endswith((".parquet", ".safetensors", ".tmp")) or p in cached]
    assert not leaked, f"artifacts git would commit: {leaked}"
    assert "dvc.lock" in paths and "artifacts/synthetic/evaluate/metrics.json" in paths
