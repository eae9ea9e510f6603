"""Data parallelism with PyTorch's own engine (torch.distributed under torchrun).

A stage started by torchrun finds RANK / WORLD_SIZE / LOCAL_RANK in its environment; without them
it is the only process (rank 0 of 1) and nothing here touches torch.distributed. Work is split
into contiguous shards, so every image is processed exactly once and rank order is data order.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch.utils.data import Dataset, Sampler


@dataclass(frozen=True)
class Group:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    def sum(self, values: list[float]) -> list[float]:
        """Element-wise sum over ranks (float64, so counts stay exact)."""
        if not self.distributed:
            return list(values)
        tensor = torch.tensor(values, dtype=torch.float64)
        dist.all_reduce(tensor)
        return tensor.tolist()


@contextlib.contextmanager
def process_group(backend: str = "auto", device: str = "cpu") -> Iterator[Group]:
    """The group this process belongs to; joins torch.distributed when torchrun started it.
    ``auto``: NCCL when the stage computes on CUDA (``device``), else gloo."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        yield Group()
        return
    if backend == "auto":
        backend = "nccl" if device == "cuda" else "gloo"
    group = Group(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))
    if group.rank != 0:  # one voice in the log: rank 0 reports totals summed over the group
        logging.getLogger("nola").setLevel(logging.WARNING)
    if backend == "nccl":
        torch.cuda.set_device(group.local_rank)
    dist.init_process_group(backend)
    try:
        yield group
        dist.barrier()
    finally:
        dist.destroy_process_group()


def shard(count: int, rank: int, world_size: int) -> range:
    """Rank ``rank``'s contiguous share of ``range(count)``: sizes differ by at most one, no padding."""
    return range(count * rank // world_size, count * (rank + 1) // world_size)


class GlobalBatches(Sampler[list[int]]):
    """One process's slice of each global batch of a seeded shuffle.

    Every epoch permutes ``range(size)`` with a generator seeded by (seed, epoch), cuts it into
    global batches of ``batch_size`` (the last, partial one dropped unless it is the only one) and
    yields this rank's contiguous slice of each. Whatever the number of processes, a step sees the
    same images as a single process would. Indices are tagged with the epoch (``epoch * size + i``)
    so that :class:`SeededViews` draws each image's augmentation from (seed, epoch, image) alone.
    """

    def __init__(self, size: int, batch_size: int, seed: int, group: Group):
        self.size, self.batch_size, self.seed, self.group, self.epoch = size, batch_size, seed, group, 0

    def global_batch(self) -> int:
        return min(self.batch_size, self.size)

    def __len__(self) -> int:
        return max(self.size // self.batch_size, 1)

    def __iter__(self) -> Iterator[list[int]]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 100_003 + self.epoch))
        offset = self.epoch * self.size
        self.epoch += 1
        for b in range(len(self)):
            batch = order[b * self.batch_size : b * self.batch_size + self.global_batch()]
            part = shard(len(batch), self.group.rank, self.group.world_size)
            yield [offset + int(i) for i in batch[part.start : part.stop]]


class SeededViews(Dataset):
    """Random views whose randomness depends on (seed, epoch, image) only, not on which process
    or DataLoader worker draws them; indices come tagged by :class:`GlobalBatches`."""

    def __init__(self, dataset: Dataset, seed: int):
        self.dataset, self.seed = dataset, seed

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, tagged: int):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed * 1_000_003 + tagged)
            return self.dataset[tagged % len(self.dataset)]
