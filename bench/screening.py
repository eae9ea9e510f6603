"""What screening every image in the split stage costs: hash + full decode (now) against hashing
alone (what split did before), on the same generated JPEGs, in the same run.

    python -m bench.screening [--images 400] [--workers 2]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from pipeline.core.artifacts import file_sha256
from pipeline.core.params import DataParams
from pipeline.data.datasets import Collection
from pipeline.data.screening import screen


def make_images(root: Path, n: int, size: tuple[int, int]) -> list[str]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, (size[1] // 8, size[0] // 8, 3), dtype=np.uint8)
    for i in range(n):
        image = Image.fromarray(base).resize(size, Image.Resampling.BILINEAR)
        image.rotate(i % 360).save(root / f"{i:05d}.jpg", quality=90)
    return [f"{i:05d}.jpg" for i in range(n)]


def seconds(work, repeats: int = 3) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def measure(size: tuple[int, int], n: int, workers: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ids = make_images(root, n, size)
        collection = Collection(root, ["x"], ids, [], [])
        hashing = seconds(lambda: [file_sha256(root / i) for i in ids])
        screening = seconds(lambda: screen(collection, DataParams(), workers))
    print(
        f"{size[0]}x{size[1]} JPEG, {n} files: hash only {n / hashing:,.0f} files/s, "
        f"hash + decode ({workers} threads) {n / screening:,.0f} files/s, ratio {screening / hashing:.1f}x"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    for size in ((64, 64), (500, 375)):
        measure(size, args.images, args.workers)


if __name__ == "__main__":
    main()
