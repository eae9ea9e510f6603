"""A full disk is one message naming the file and the free space, never a traceback, and the old
artifact stays: through each writer's own error type (OSError, pyarrow, safetensors), in the
stage runner, and for real on a tiny tmpfs."""

from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pytest
import torch
import typer
import yaml
from safetensors import SafetensorError

from pipeline.core import artifacts
from pipeline.core.artifacts import feature_table, read_json, write_json, write_table, write_tensors
from pipeline.core.errors import DiskFullError
from pipeline.core.stage import run_app
from pipeline.data import synthetic
from pipeline.data.datasets import Collection, write_split

from helpers import PROJECT, smoke_params

SAFETENSORS_FULL = (
    'Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "No space left on device" })'
)


def no_leftovers(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.unit
def test_safetensors_full_disk_is_one_message_and_keeps_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "head.safetensors"
    write_tensors(target, {"w": torch.zeros(2)}, {"old": True})
    old = target.read_bytes()

    def full(*_args, **_kwargs):
        raise SafetensorError(SAFETENSORS_FULL)

    monkeypatch.setattr(artifacts, "save_file", full)
    with pytest.raises(DiskFullError, match=r"head\.safetensors: disk full while writing it \(\d+\.\d MiB free"):
        write_tensors(target, {"w": torch.ones(2)}, {"old": False})
    assert target.read_bytes() == old and no_leftovers(tmp_path) == ["head.safetensors"]


@pytest.mark.unit
@pytest.mark.parametrize(
    "error",
    [OSError(errno.ENOSPC, "No space left on device"), pa.ArrowIOError("IOError: [Errno 28] No space left on device")],
)
def test_parquet_full_disk_is_one_message(tmp_path, monkeypatch, error):
    def full(*_args, **_kwargs):
        raise error

    monkeypatch.setattr(artifacts.pq, "write_table", full)
    target = tmp_path / "pool.parquet"
    with pytest.raises(DiskFullError, match="pool.parquet: disk full"):
        write_table(target, feature_table(["a"], np.zeros((1, 2))))
    assert no_leftovers(tmp_path) == []


@pytest.mark.unit
def test_other_write_errors_are_not_called_a_full_disk(tmp_path, monkeypatch):
    def denied(*_args, **_kwargs):
        raise OSError(errno.EACCES, "Permission denied")

    monkeypatch.setattr(artifacts.pq, "write_table", denied)
    with pytest.raises(OSError) as caught:
        write_table(tmp_path / "x.parquet", feature_table(["a"], np.zeros((1, 2))))
    assert not isinstance(caught.value, DiskFullError)


@pytest.mark.unit
def test_the_stage_runner_words_a_full_disk_met_outside_the_writers(tmp_path, capsys):
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)

    @app.command()
    def stage() -> None:
        raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "cache.bin"))

    with pytest.raises(SystemExit) as code:
        sys.argv = ["stage"]
        run_app(app)
    err = capsys.readouterr().err
    assert code.value.code == 2
    assert err.startswith(f"error: {tmp_path / 'cache.bin'}: disk full") and "Traceback" not in err


@pytest.fixture
def tiny_disk(tmp_path):
    """A real 256 KiB tmpfs (needs the right to mount: root in a container with CAP_SYS_ADMIN)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)]).returncode != 0:
        pytest.skip("cannot mount a tmpfs here; the unit tests above cover the same paths")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


@pytest.mark.e2e
def test_a_really_full_disk(tiny_disk, tmp_path):
    """Each writer, then the features stage, on a 256 KiB disk: one message each, the files that
    fitted intact, no temporary file left taking the space."""
    write_json(tiny_disk / "metrics.json", {"old": True})
    with pytest.raises(DiskFullError, match="big.json: disk full"):
        write_json(tiny_disk / "big.json", {"x": "y" * 2**20})
    with pytest.raises(DiskFullError, match="big.safetensors: disk full"):
        write_tensors(tiny_disk / "big.safetensors", {"w": torch.rand(2**18)}, {})
    with pytest.raises(DiskFullError, match="big.parquet: disk full"):
        write_table(tiny_disk / "big.parquet", feature_table(["a"] * 256, np.random.rand(256, 1024)))
    assert read_json(tiny_disk / "metrics.json") == {"old": True}
    assert no_leftovers(tiny_disk) == ["metrics.json"]

    (tiny_disk / "filler").write_bytes(b"\0" * (shutil.disk_usage(tiny_disk).free - 8192))  # 8 KiB left
    root = synthetic.generate(tmp_path / "images", classes=2, per_class=300, size=40)
    ids = sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*"))
    write_split(Collection(root, ["circle", "square"], ids[:300], ids[300:], [0] * 300), tmp_path / "split")
    params = smoke_params()
    params["datasets"] = {"x": {"data": {"source": "folder", "root": str(root)}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", "stages.features", "clip", "x", str(tmp_path / "split"), str(tiny_disk / "f")]
        + ["--params", str(tmp_path / "params.yaml")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env={**os.environ, "NOLA_LOG": "WARNING"},
    )
    assert result.returncode == 2, result.stderr
    assert "disk full while writing it" in result.stderr and "Traceback" not in result.stderr, result.stderr
    assert not [p for p in (tiny_disk / "f").rglob("*") if p.name.endswith(".tmp")]
