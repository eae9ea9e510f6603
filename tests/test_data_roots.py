"""`nola repro` checks every data.root before DVC hashes it: FIFOs, sockets, devices, symlink
loops, links to nothing and unreadable files are named with advice that works for a root inside
the project (.dvcignore) and outside it (DVC reads no .dvcignore there)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from pipeline.cli.data_roots import DataRootError, check_data_roots
from pipeline.core.params import load_params
from pipeline.data import synthetic

from bad_images import unreadable, without_file_access_override
from helpers import make_dvc_project, smoke_params


def plant(root: Path) -> dict[str, str]:
    """One of each entry DVC cannot hash, inside a class folder; name -> the words that name it."""
    folder = root / "circle"
    os.mkfifo(folder / "pipe.jpg")
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(folder / "sock"))
    os.symlink("loop_b", folder / "loop_a")
    os.symlink("loop_a", folder / "loop_b")
    os.symlink("gone.jpg", folder / "dangling.jpg")
    return {
        "pipe.jpg": "named pipe",
        "sock": "socket",
        "loop_a": "symlink loop",
        "loop_b": "symlink loop",
        "dangling.jpg": "link to nothing",
    }


def params_with_root(tmp_path: Path, root: Path) -> Path:
    params = smoke_params()
    params["datasets"]["synthetic"]["data"]["root"] = str(root)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.unit
def test_a_root_inside_the_project_is_fixed_by_the_dvcignore_lines_it_gives(tmp_path):
    project = tmp_path / "project"
    root = synthetic.generate(project / "data" / "images", classes=2, per_class=2, size=16)
    expected = plant(root)
    params = load_params(params_with_root(tmp_path, root.relative_to(project)))
    with pytest.raises(DataRootError) as caught:
        check_data_roots(params, project)
    text = str(caught.value)
    assert "datasets.synthetic.data.root = 'data/images'" in text and "5 entries" in text
    for name, words in expected.items():
        assert any(name in line and words in line for line in text.splitlines()), (name, text)
    assert ".dvcignore" in text
    lines = [line.strip() for line in text.splitlines() if line.startswith("    /")]
    assert sorted(lines) == sorted(f"/data/images/circle/{n}" for n in expected)
    (project / ".dvcignore").write_text("\n".join(lines) + "\n")  # the advice, followed
    check_data_roots(params, project)


@pytest.mark.unit
def test_a_root_outside_the_project_is_told_to_remove_the_entries(tmp_path):
    project = tmp_path / "project"
    project.mkdir()
    root = synthetic.generate(tmp_path / "elsewhere", classes=2, per_class=2, size=16)
    expected = plant(root)
    os.symlink("/dev/null", root / "square" / "null.png")
    params = load_params(params_with_root(tmp_path, root))
    (project / ".dvcignore").write_text("*\n")  # no help for a folder outside the project
    with pytest.raises(DataRootError) as caught:
        check_data_roots(params, project)
    text = str(caught.value)
    assert "6 entries" in text and "character device" in text and "outside the project" in text
    assert "add these lines" not in text
    for name in [*expected, "null.png"]:
        (root / ("square" if name == "null.png" else "circle") / name).unlink()  # the advice, followed
    check_data_roots(params, project)


@pytest.mark.e2e
def test_nola_repro_stops_before_dvc_and_the_advice_unblocks_dvc(tmp_path):
    """Without the check, `dvc repro` hangs on the FIFO with no output; `nola repro` names it and
    exits 2 at once. After the .dvcignore advice, dvc reaches the stages; an unreadable file is
    found by a root that file permissions apply to."""
    project = make_dvc_project(tmp_path / "p", smoke_params())
    subprocess.run([sys.executable, "-m", "pipeline", "fetch-data"], cwd=project, check=True, capture_output=True)
    os.mkfifo(project / "data" / "synthetic" / "circle" / "pipe.png")
    unreadable(project / "data" / "synthetic" / "square" / "secret.jpg", seed=1)

    def nola_repro(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "pipeline", "repro", *args],
            cwd=project,
            capture_output=True,
            text=True,
            timeout=120,
            preexec_fn=without_file_access_override,
        )

    result = nola_repro()
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr and "Running stage" not in result.stdout
    assert "circle/pipe.png: a named pipe" in result.stderr
    assert "square/secret.jpg: not readable" in result.stderr
    os.unlink(project / "data" / "synthetic" / "square" / "secret.jpg")
    with (project / ".dvcignore").open("a") as f:
        f.write("/data/synthetic/circle/pipe.png\n")
    result = nola_repro("check_params", "--single-item")
    assert result.returncode == 0, result.stderr
    assert "check_params" in result.stdout
    status = subprocess.run(["dvc", "status"], cwd=project, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0 and "split@synthetic" in status.stdout, status.stderr
