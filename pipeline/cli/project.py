"""Scaffolding a stand-alone DVC project of this pipeline (the smoke run, tests, demos)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import yaml

from pipeline.core.errors import NolaError

PROJECT_ROOT = Path(__file__).resolve().parents[2]
CODE = ("pipeline", "stages", "prompts", "plots", "dvc.yaml")  # plots/: dvc.yaml's Vega-Lite templates


def _git(*args: str, cwd: Path) -> None:
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def scaffold(path: str | Path, params: dict, dvc_config: dict[str, str] | None = None) -> Path:
    """A new git + DVC repo at ``path`` holding the pipeline code and ``params``, committed."""
    path = Path(path)
    if path.exists() and any(path.iterdir()):
        raise NolaError(f"{path}: already exists and is not empty; remove it or choose another folder")
    path.mkdir(parents=True, exist_ok=True)
    for name in CODE:
        src = PROJECT_ROOT / name
        if src.is_dir():
            shutil.copytree(src, path / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, path / name)
    (path / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    shutil.copy(PROJECT_ROOT / ".gitignore", path / ".gitignore")  # keeps artifacts out of git (issue 16)
    _git("init", "-q", "-b", "main", cwd=path)
    subprocess.run(["dvc", "init", "-q"], cwd=path, check=True, capture_output=True)
    shutil.copy(PROJECT_ROOT / ".dvcignore", path / ".dvcignore")  # bytecode is no code dependency
    for key, value in {"core.analytics": "false", **(dvc_config or {})}.items():
        subprocess.run(["dvc", "config", key, value], cwd=path, check=True, capture_output=True)
    _git("add", "-A", cwd=path)
    _git("-c", "user.name=nola", "-c", "user.email=nola@localhost", "commit", "-q", "-m", "NoLA project", cwd=path)
    return path
