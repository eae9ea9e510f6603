"""Data not downloaded, and downloads without network: one message with the dataset, the
params key and the fix (`nola fetch-data`, the README's offline section), no empty folder left."""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest
import yaml

from pipeline.core.errors import DatasetError
from pipeline.core.params import DataParams
from pipeline.data.datasets import create_dataset, fetch

from helpers import PROJECT, smoke_params


@pytest.mark.unit
@pytest.mark.parametrize("made", [False, True])
def test_eurosat_not_downloaded_names_data_root_and_fetch_data(tmp_path, made):
    root = tmp_path / "data" / "eurosat"
    if made:
        root.mkdir(parents=True)  # an empty folder, as a failed download used to leave
    with pytest.raises(DatasetError) as caught:
        create_dataset(DataParams(source="eurosat", root=str(root)))
    text = str(caught.value)
    assert text.startswith(f"data.root = {str(root)!r}: EuroSAT is not there") and "nola fetch-data" in text
    assert "2750'" not in text.split("(")[0], "the message names the params value, not torchvision's subfolder"


def no_network(*_args, **_kwargs):
    raise urllib.error.URLError(OSError(-3, "Temporary failure in name resolution"))


@pytest.mark.unit
def test_fetch_without_network_is_one_message_and_leaves_no_folder(tmp_path, monkeypatch):
    """The real torchvision download path, with the network call failing as offline."""
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    root = tmp_path / "data" / "eurosat"
    with pytest.raises(DatasetError) as caught:
        fetch(DataParams(source="eurosat", root=str(root)))
    text = str(caught.value)
    assert text.startswith(f"EuroSAT: the download into data.root = {str(root)!r} failed")
    assert "name resolution" in text and "Offline and air-gapped use" in text
    assert not (tmp_path / "data").exists(), "the failed download's empty folders are removed"


@pytest.mark.unit
def test_a_failed_download_keeps_what_was_there(tmp_path, monkeypatch):
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    root = tmp_path / "eurosat"
    (root / "notes").mkdir(parents=True)
    (root / "notes" / "readme.txt").write_text("mine")
    with pytest.raises(DatasetError):
        fetch(DataParams(source="eurosat", root=str(root)))
    assert sorted(p.relative_to(root).as_posix() for p in root.rglob("*")) == ["notes", "notes/readme.txt"]


@pytest.mark.e2e
def test_fetch_data_without_network_is_one_line(tmp_path):
    """What `make run` runs first, on a machine without network: every socket connection fails
    (a sitecustomize in the child makes connect raise ENETUNREACH), the real download code runs."""
    offline = tmp_path / "offline"
    offline.mkdir()
    (offline / "sitecustomize.py").write_text(
        "import errno, socket\n"
        "def _unreachable(self, *args):\n"
        "    raise OSError(errno.ENETUNREACH, 'Network is unreachable')\n"
        "socket.socket.connect = _unreachable\n"
    )
    params = smoke_params()
    params["datasets"] = {"eurosat": {"data": {"source": "eurosat", "root": "data/eurosat"}, "domain": "satellite"}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    result = subprocess.run(
        [sys.executable, "-m", "pipeline", "fetch-data"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(offline), str(PROJECT)])},
    )
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert "error: EuroSAT: the download into data.root = 'data/eurosat' failed" in result.stderr
    assert "urlopen error" in result.stderr  # here DNS fails first; with DNS, connect() does
    assert not (tmp_path / "data").exists(), "no empty data/eurosat/eurosat/ left behind"
