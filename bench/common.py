"""What the benchmarks share: test images, timing, the matmul-bound limit and the printed table.

The machine may be shared and noisy, so every figure that matters is a ratio against a baseline
measured in the same run, on the same files, in the same process, and repeated runs are
interleaved (baseline, project, baseline, project, ...) and summarised by their median.
"""

from __future__ import annotations

import multiprocessing
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image

from pipeline.core.distributed import Group
from pipeline.encode.feature_cache import PreviousFeatures, encode_split
from pipeline.encode.features import ImageEncoder

THREADS = int(os.environ.get("NOLA_THREADS", "2"))
IMAGES = Path(tempfile.gettempdir()) / "nola-bench-images"  # generated once, reused by later runs


def setup_threads() -> None:
    """The stages' fixed thread count (pipeline/core/stage.py), so the figures are the stages' own."""
    torch.set_num_threads(THREADS)


def photo_like_jpeg(path: Path, size: tuple[int, int], seed: int) -> None:
    """A JPEG (quality 90) with smooth regions, edges and sensor-like noise, so that it decodes at
    about the cost of a real photo of that size (pure noise would be slower, flat colour faster)."""
    rng = np.random.default_rng(seed)
    w, h = size
    coarse = rng.integers(0, 256, (h // 24 + 2, w // 24 + 2, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(coarse).resize(size, Image.Resampling.BICUBIC), dtype=np.float32)
    edges = np.kron(rng.random((h // 4 + 1, w // 4 + 1)) < 0.02, np.ones((4, 4)))[:h, :w, None] * 60.0
    noisy = base + edges + rng.normal(0.0, 6.0, base.shape)
    Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8)).save(path, quality=90)


def photo_like_jpegs(folder: Path, count: int, size: tuple[int, int] = (500, 375), processes: int = 1) -> list[str]:
    """``count`` photo-like JPEGs in ``folder`` (existing ones reused; image i is always the same);
    returns their names."""
    folder.mkdir(parents=True, exist_ok=True)
    names = [f"img_{size[0]}x{size[1]}_{i:05d}.jpg" for i in range(count)]
    todo = [(folder / name, size, i) for i, name in enumerate(names) if not (folder / name).exists()]
    if processes > 1 and len(todo) > 1:
        with multiprocessing.get_context("spawn").Pool(processes) as pool:
            pool.starmap(photo_like_jpeg, todo)
    else:
        for args in todo:
            photo_like_jpeg(*args)
    return names


def stage_extract(encoder: ImageEncoder, root: Path, ids: list[str], hashes: dict[str, str], out: Path) -> None:
    """The features stage's own path for ``ids``: a split file (id, sha256), then
    pipeline.encode.feature_cache.encode_split (part files, assembled into ``out``), nothing to reuse."""
    split = out.with_name(out.stem + "-split.parquet")
    pq.write_table(pa.table({"id": ids, "sha256": [hashes[i] for i in ids]}), split)
    meta = {"bench": out.stem}
    encode_split(out, split, encoder, meta, root, 4096, Group(), PreviousFeatures([], meta), out.stem)


def timed(fn: Callable[[], object]) -> float:
    """Wall seconds of ``fn()``, GPU work included."""
    sync = torch.cuda.synchronize if torch.cuda.is_available() else lambda: None
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def interleaved(runs: dict[str, Callable[[list[str]], object]], chunks: list[list[str]]) -> dict[str, list[float]]:
    """Seconds of each run on each chunk of images. The runs alternate chunk by chunk (their order
    swapped every chunk), so a change of machine load hits them alike."""
    seconds: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for i, chunk in enumerate(chunks):
        for name in names if i % 2 == 0 else names[::-1]:
            seconds[name].append(timed(lambda name=name, chunk=chunk: runs[name](chunk)))
    return seconds


def chunked(ids: list[str], chunks: int) -> list[list[str]]:
    size = -(-len(ids) // chunks)
    return [ids[i : i + size] for i in range(0, len(ids), size)]


def paired_ratio(baseline: list[float], project: list[float]) -> float:
    """Median over chunks of baseline seconds / project seconds (each pair ran back to back)."""
    return statistics.median([b / p for b, p in zip(baseline, project)])


def matmul_flops(dtype: torch.dtype, n: int = 2048, repeats: int = 7, device: str = "cpu") -> float:
    """FLOP/s of an n^3 matmul in ``dtype`` (best of ``repeats``: the attainable peak)."""
    a, b = (torch.randn(n, n, device=device).to(dtype) for _ in range(2))
    a @ b
    best = min(timed(lambda: a @ b) for _ in range(repeats))
    return 2 * n**3 / best


def cpu_peak_flops(dtype: torch.dtype) -> float:
    """The CPU's matmul peak at the stages' thread count: the larger of a matmul on all threads
    and ``THREADS`` x a one-thread matmul (which a busy neighbour on one core cannot halve)."""
    torch.set_num_threads(1)
    try:
        single = matmul_flops(dtype)
    finally:
        torch.set_num_threads(THREADS)
    return max(THREADS * single, matmul_flops(dtype))


def forward_flops(model: torch.nn.Module, size: int) -> float:
    """FLOPs (2 per multiply-add, as in the matmul figure) of one image's forward pass, counted by
    torch. Counted with autograd on and attention as plain matmuls: the inference fast paths
    (fused multi-head attention, CPU flash attention) are invisible to the counter."""
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with sdpa_kernel(SDPBackend.MATH), counter:
        model(torch.zeros(1, 3, size, size, dtype=next(model.parameters()).dtype))
    return float(counter.get_total_flops())


def table(header: list[str], rows: list[list[object]]) -> str:
    """A GitHub-markdown table, so that the output pastes into README.md as is."""
    cells = [[f"{v:.3g}" if isinstance(v, float) else str(v) for v in row] for row in [header, *rows]]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in cells]
    lines.insert(1, "| " + " | ".join("-" * w for w in widths) + " |")
    return "\n".join(lines)
