"""Shared fixtures, read-only: a test that needs to change one works on its own copy. Nothing
here reaches the network: models are random-weight builds of real open_clip / timm
architectures, images are generated, DVC analytics are off.

Every test carries exactly one kind marker (pyproject.toml): ``make test-fast`` runs ``unit``."""

from __future__ import annotations

import copy
import os
from pathlib import Path

import pytest

from helpers import make_dvc_project, sh, smoke_params

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["DVC_NO_ANALYTICS"] = "1"
os.environ.setdefault("NOLA_THREADS", "2")

KINDS = ("unit", "e2e", "llm", "distributed")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse a test without a kind, or with two: it would be missed by, or doubled in, a subset."""
    wrong = [
        f"{item.nodeid}: {kinds or 'none'}"
        for item in items
        if len(kinds := [m.name for m in item.iter_markers() if m.name in KINDS]) != 1
    ]
    if wrong:
        raise pytest.UsageError(
            "each test needs exactly one of the markers " + ", ".join(KINDS) + ":\n  " + "\n  ".join(wrong)
        )


@pytest.fixture(scope="session")
def _smoke_model_built():
    from pipeline.core.params import ClipParams
    from pipeline.models.factory import create_clip

    return create_clip(ClipParams(**smoke_params()["clip"]))


@pytest.fixture
def smoke_model(_smoke_model_built):
    """(model, preprocess, tokenizer) of the smoke CLIP, built once; each test gets its own copy
    of the model, since wrapping it in PromptedCLIP or tuning it changes it in place."""
    model, preprocess, tokenizer = _smoke_model_built
    return copy.deepcopy(model), preprocess, tokenizer


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
