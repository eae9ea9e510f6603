"""The GPU benchmark is meant to be run once on a lent machine, so it must not rot unseen: its
``--tiny`` mode runs the same code (ImageEncoder, the features stage's writer, tune, the FLOP
counter and the matmul peak) on tiny models on the CPU."""

from __future__ import annotations

import sys

import pytest

from helpers import PROJECT, sh

pytestmark = pytest.mark.e2e


def test_gpu_bench_runs_tiny_on_the_cpu(tmp_path):
    out = sh(
        sys.executable, "-m", "bench.gpu", "--tiny", "--workers", "1", cwd=PROJECT, env={"TMPDIR": str(tmp_path)}
    ).stdout
    assert len(list((tmp_path / "nola-bench-images").glob("img_96x72_*.jpg"))) == 48
    rows = {
        cells[0]: cells[1:]
        for line in out.splitlines()
        if line.startswith("| ")
        for cells in [[c.strip() for c in line.strip("|").split("|")]]
    }
    assert set(rows) >= {"features clip", "features dino", "tune clip +4 prompts"}
    for name in ("features clip", "features dino", "tune clip +4 prompts"):
        e2e, resident, gflop, limit, e2e_share, resident_share = rows[name]
        assert float(e2e) > 0 and float(resident) > 0 and float(gflop) > 0 and float(limit) > 0, name
        # a rate above the matmul-bound limit would mean a wrong FLOP count or peak (a loaded machine's
        # end-to-end share can print as 0.0%, so only the upper bound is a check)
        assert float(e2e_share.rstrip("%")) <= 100 and float(resident_share.rstrip("%")) <= 100, name
