"""What several test modules share: paths, the smoke params, running commands, scaffolding a
DVC project. Nothing here reaches the network."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import yaml

PROJECT = Path(__file__).resolve().parents[1]
SMOKE_PARAMS = PROJECT / "configs" / "smoke.yaml"


def smoke_params() -> dict:
    """A fresh copy of the smoke configuration: tests may change it freely."""
    return yaml.safe_load(SMOKE_PARAMS.read_text())


STAGES = (  # every per-dataset stage of dvc.yaml, in pipeline order (check_params runs once, before them)
    "split",
    "describe",
    "text_classifier",
    "features_clip",
    "features_dino",
    "pseudo_labels",
    "align",
    "tune",
    "predict",
    "evaluate",
    "report",
)


def sh(*cmd: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command; on failure show its output in the test report."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def make_dvc_project(path: Path, params: dict) -> Path:
    from pipeline.cli.project import scaffold

    return scaffold(path, params)
