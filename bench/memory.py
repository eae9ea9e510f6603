"""Benchmark 3: peak RSS of the features stage on N and 10N images, measured as
``bench.features_scale`` does (the real stage through pipeline.core.launch in a subprocess, the smoke
encoder, generated images); the stage streams the split and its output, so the ratio stays near 1.

    python -m bench.memory [--images 2000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from .common import table
from .features_scale import PROJECT, make_split, params_file, run_stage


def run(images: int = 2000, part_size: int = 1024) -> dict:
    rss = {}
    with tempfile.TemporaryDirectory(prefix="nola-bench-rss-") as tmp:
        tmp = Path(tmp)
        for n in (images, 10 * images):
            root, split = tmp / f"images{n}", tmp / f"split{n}"
            make_split(root, split, n)
            _, rss[n] = run_stage(params_file(tmp / f"p{n}.yaml", root, part_size, 1), split, tmp / f"out{n}")
    small, large = rss[images], rss[10 * images]
    return {
        "images": images,
        "rss_n": small,
        "rss_10n": large,
        "ratio": large / small,
        "per_1000": (large - small) / (9 * images) * 1000,
    }


def run_isolated(images: int = 2000) -> dict:
    """:func:`run` in a fresh interpreter: a child's peak RSS includes what the process that forked
    it held at the fork, so a parent that has loaded models (``make bench``) would inflate it."""
    out = subprocess.run(
        [sys.executable, "-m", "bench.memory", "--images", str(images), "--json"],
        cwd=PROJECT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.splitlines()[-1])


def report(r: dict) -> str:
    return "features stage peak RSS (smoke CLIP, generated PNGs, part size 1024)\n" + table(
        ["images N", "peak RSS N", "peak RSS 10N", "ratio", "growth per 1000 images"],
        [
            [
                r["images"],
                f"{r['rss_n']:.0f} MiB",
                f"{r['rss_10n']:.0f} MiB",
                f"{r['ratio']:.3f}",
                f"{r['per_1000']:.2f} MiB",
            ]
        ],
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON line")
    args = parser.parse_args()
    result = run(args.images)
    print(json.dumps(result) if args.json else report(result))


if __name__ == "__main__":
    main()
