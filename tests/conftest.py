"""Shared fixtures. Nothing here reaches the network: models are random-weight builds of real
open_clip / timm architectures, images are generated, DVC analytics are off."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
import yaml

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ.setdefault("NOLA_THREADS", "2")

PROJECT = Path(__file__).resolve().parents[1]
SMOKE_PARAMS = PROJECT / "configs" / "smoke.yaml"


def smoke_params() -> dict:
    return yaml.safe_load(SMOKE_PARAMS.read_text())


def sh(*cmd: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    """Run a command; on failure show its output in the test report."""
    result = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} exited {result.returncode}\n{result.stdout}\n{result.stderr}")
    return result


def make_dvc_project(path: Path, params: dict) -> Path:
    from pipeline.cli.project import scaffold

    return scaffold(path, params)


@pytest.fixture(scope="session")
def smoke_model():
    from pipeline.core.params import ClipParams
    from pipeline.models.factory import create_clip

    return create_clip(ClipParams(**smoke_params()["clip"]))


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    from pipeline.data import synthetic

    return synthetic.generate(tmp_path_factory.mktemp("synthetic") / "images", classes=3, per_class=6, size=48)


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory):
    """A fresh clone of a committed smoke project, reproduced once (the clean reference run)."""
    base = tmp_path_factory.mktemp("e2e")
    origin = make_dvc_project(base / "origin", smoke_params())
    sh("git", "clone", "-q", str(origin), str(base / "clone"), cwd=base)
    clone = base / "clone"
    sh("python", "-m", "pipeline", "fetch-data", cwd=clone)
    first = sh("dvc", "repro", cwd=clone)
    return clone, first.stdout
