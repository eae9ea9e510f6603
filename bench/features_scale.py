"""The features stage on large pools: peak RSS with N and 10N images (it should stay flat: the
split streams in parts, features stream into the output) and wall time with 2 processes
(torchrun, gloo) against 1, all with the tiny smoke encoder on generated images, in one run.

    python -m bench.features_scale [--images 2000] [--part-size 1024]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import yaml
from PIL import Image

from pipeline.core.artifacts import file_sha256

PROJECT = Path(__file__).resolve().parents[1]


def make_split(root: Path, split_dir: Path, n: int) -> None:
    """``n`` distinct small PNGs and a split (pool: all of them, test: the first 16)."""
    rng = np.random.default_rng(0)
    (root / "x").mkdir(parents=True, exist_ok=True)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (24, 24, 3), dtype=np.uint8)).save(root / "x" / f"{i:06d}.png")
    ids = [f"x/{i:06d}.png" for i in range(n)]
    split_dir.mkdir(parents=True, exist_ok=True)
    for name, chosen in (("pool", ids), ("test", ids[:16])):
        pq.write_table(
            pa.table({"id": chosen, "sha256": [file_sha256(root / i) for i in chosen]}), split_dir / f"{name}.parquet"
        )


def params_file(path: Path, root: Path, part_size: int, nproc: int) -> Path:
    params = yaml.safe_load((PROJECT / "configs" / "smoke.yaml").read_text())
    params["datasets"] = {"bench": {"data": {"source": "folder", "root": str(root)}}}
    params["features"].update(part_size=part_size, batch_size=64)
    params["compute"] = {"nproc": nproc, "nnodes": 1}
    path.write_text(yaml.safe_dump(params))
    return path


def run_stage(params: Path, split_dir: Path, out: Path, nproc: int = 1) -> tuple[float, float]:
    """(wall seconds, peak RSS in MiB of the stage's largest process); the cores are split
    between the processes (NOLA_THREADS), so 2 processes do not oversubscribe them."""
    threads = os.cpu_count() or 1
    cmd = [
        sys.executable,
        "-m",
        "pipeline.core.launch",
        "stages.features",
        "clip",
        "bench",
        str(split_dir),
        str(out),
        "--params",
        str(params),
    ]
    start = time.perf_counter()
    env = {**os.environ, "PYTHONPATH": str(PROJECT), "NOLA_THREADS": str(max(1, threads // nproc))}
    proc = subprocess.Popen(cmd, cwd=out.parent, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    if status != 0:
        sys.exit(f"the features stage failed:\n{proc.stderr.read().decode()}")
    return wall, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--part-size", type=int, default=1024)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        rss = {}
        for n in (args.images, 10 * args.images):
            root, split = tmp / f"images{n}", tmp / f"split{n}"
            make_split(root, split, n)
            wall, rss[n] = run_stage(params_file(tmp / f"p{n}.yaml", root, args.part_size, 1), split, tmp / f"out{n}")
            print(f"{n:7d} images, 1 process: {wall:6.1f} s ({n / wall:5.0f} images/s), peak RSS {rss[n]:6.0f} MiB")
        print(f"peak RSS ratio 10N / N: {rss[10 * args.images] / rss[args.images]:.2f} (1.00 = flat)")
        n = args.images
        root, split = tmp / f"images{n}", tmp / f"split{n}"
        walls = {}
        for nproc in (1, 2):
            params = params_file(tmp / f"q{nproc}.yaml", root, args.part_size, nproc)
            walls[nproc], peak = run_stage(params, split, tmp / f"procs{nproc}", nproc)
            print(f"{n:7d} images, {nproc} process(es): {walls[nproc]:6.1f} s wall, peak RSS {peak:6.0f} MiB")
        print(
            f"2 processes / 1 process wall time: {walls[2] / walls[1]:.2f} "
            f"(on {os.cpu_count()} CPU cores shared with other work: expect little gain)"
        )


if __name__ == "__main__":
    main()
