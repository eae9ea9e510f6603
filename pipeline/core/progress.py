"""Progress for long loops: a tqdm bar on a terminal only (CI logs stay readable), a log line with
the count and the rate when the loop ends."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TypeVar

from tqdm import tqdm

log = logging.getLogger("nola")
T = TypeVar("T")


def batch_size_of(batch) -> int:
    """Images in a DataLoader batch: a tensor, or an (images, targets) pair."""
    return len(batch[0]) if isinstance(batch, (tuple, list)) else len(batch)


def track(
    batches: Iterable[T],
    total: int,
    desc: str,
    unit: str = "images",
    size: Callable[[T], int] = batch_size_of,
    report: bool = True,
) -> Iterator[T]:
    """Yield ``batches`` while a bar counts ``total`` items; ``report`` logs count and rate at the end."""
    start, done = time.perf_counter(), 0
    with tqdm(
        total=total,
        desc=desc,
        unit=unit[:-1] if unit.endswith("s") else unit,
        disable=None,
        leave=False,
        dynamic_ncols=True,
    ) as bar:
        for batch in batches:
            yield batch
            n = size(batch)
            done += n
            bar.update(n)
    if report:
        log.info(
            "%s: %d %s in %.1f s (%s)",
            desc,
            done,
            unit,
            time.perf_counter() - start,
            rate(done, time.perf_counter() - start, unit),
        )


def rate(count: int, seconds: float, unit: str = "images") -> str:
    return f"{count / seconds:.1f} {unit}/s" if seconds > 0 else f"- {unit}/s"
