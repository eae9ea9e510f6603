"""Multi-output stages are all-or-nothing: a failed evaluate leaves no metrics.json without its
summary.png (dvc metrics show would present the failed run), and the metrics come last."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest
import yaml

from pipeline.core import artifacts
from pipeline.core.artifacts import output_set, read_json, write_json

from helpers import sh


@pytest.mark.unit
def test_a_failure_inside_the_set_writes_none_of_it(tmp_path):
    out = tmp_path / "evaluate"
    with pytest.raises(RuntimeError, match="plot failed"), output_set(out, last="metrics.json") as staging:
        write_json(staging / "metrics.json", {"accuracy": 0.5})
        (staging / "per_class.csv").write_text("class\n")
        raise RuntimeError("plot failed")
    assert not out.exists() and list(tmp_path.iterdir()) == []


@pytest.mark.unit
def test_the_set_lands_whole_with_the_metrics_last(tmp_path, monkeypatch):
    out = tmp_path / "evaluate"
    write_json(out / "metrics.json", {"old": True})
    (tmp_path / ".evaluate.killed.tmp").mkdir()  # what a killed run leaves
    moved = []
    real_replace = os.replace

    def recording_replace(src, dst):
        if os.path.dirname(dst) == str(out):  # the moves into the output folder, not the atomic writes
            moved.append(os.path.basename(dst))
        real_replace(src, dst)

    monkeypatch.setattr(artifacts.os, "replace", recording_replace)
    with output_set(out, last="metrics.json") as staging:
        assert not (out / "summary.png").exists(), "nothing lands before the block ends"
        write_json(staging / "metrics.json", {"new": True})
        (staging / "summary.png").write_bytes(b"png")
        (staging / "confusion.csv").write_text("actual,predicted\n")
    assert moved[-1] == "metrics.json" and sorted(moved) == ["confusion.csv", "metrics.json", "summary.png"]
    assert read_json(out / "metrics.json") == {"new": True}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["evaluate"], "staging folders are gone"


@pytest.mark.e2e
def test_a_failed_evaluate_leaves_no_metrics(smoke_run, tmp_path):
    """The real evaluate stage on a finished smoke project, failing at its last output (the plot):
    no metrics.json, nothing else of the set, and every earlier artifact unchanged."""
    origin, _ = smoke_run
    project = tmp_path / "p"
    shutil.copytree(origin, project, symlinks=True)
    evaluate = project / "artifacts" / "synthetic" / "evaluate"
    shutil.rmtree(evaluate)
    before = sh("dvc", "status", "--json", cwd=project).stdout
    cmd = yaml.safe_load((project / "dvc.yaml").read_text())["stages"]["evaluate"]["do"]["cmd"]
    args = cmd.replace("${key}", "synthetic").split("stages.evaluate", 1)[1].split()  # the stage's own arguments
    failing = (
        "import sys\n"
        "import stages.evaluate as e\n"
        "from pipeline.core.stage import run\n"
        "def no_plot(*a, **k):\n"
        "    raise OSError(5, 'Input/output error', 'summary.png')\n"
        "e.render_summary = no_plot\n"
        "sys.argv = ['evaluate', *sys.argv[1:]]\n"
        "run(e.main)\n"
    )
    result = subprocess.run([sys.executable, "-c", failing, *args], cwd=project, capture_output=True, text=True)
    assert result.returncode != 0 and "Input/output error" in result.stderr
    assert not evaluate.exists() or list(evaluate.iterdir()) == []
    assert not list((project / "artifacts" / "synthetic").glob(".evaluate.*"))
    assert sh("dvc", "status", "--json", cwd=project).stdout == before, "no other artifact changed"
