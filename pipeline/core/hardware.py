"""Where a stage computes and in which number format: ``device`` and ``precision`` params resolved.

``auto`` picks what is fast without hurting the features: a CUDA GPU when there is one, and
bfloat16 where the hardware computes it natively (CUDA, CPUs with AMX or AVX512-BF16). Elsewhere
bf16 would be emulated (slower than fp32), so ``auto`` stays in fp32 there.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from pipeline.core.errors import NolaError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


class HardwareError(NolaError, ValueError):
    """A device or precision setting this machine cannot honour, worded for the user."""


@cache
def cpu_flags() -> frozenset[str]:
    """The CPU feature flags from /proc/cpuinfo (empty where there is no such file)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_bf16() -> bool:
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


@dataclass(frozen=True)
class Compute:
    """A resolved device and dtype."""

    device: torch.device
    dtype: torch.dtype

    @property
    def precision(self) -> str:
        return next(name for name, dtype in DTYPES.items() if dtype == self.dtype)

    def as_dict(self) -> dict[str, str]:
        """Recorded in artifacts: features made in bf16 or on a GPU differ in the last bits."""
        return {"device": self.device.type, "precision": self.precision}

    def training(self) -> contextlib.ExitStack:
        """For the forward pass of a training step: autocast to ``dtype`` (parameters, optimizer
        state and the loss stay fp32); on the CPU, attention as plain matmuls, whose backward ran
        about 20% faster per step than that of the CPU flash-attention kernel."""
        stack = contextlib.ExitStack()
        stack.enter_context(torch.autocast(self.device.type, dtype=self.dtype, enabled=self.dtype != torch.float32))
        if self.device.type == "cpu":
            stack.enter_context(sdpa_kernel(SDPBackend.MATH))
        return stack


CPU_FP32 = Compute(torch.device("cpu"), torch.float32)


def resolve(device: str = "auto", precision: str = "auto", section: str = "features") -> Compute:
    """``device``: auto | cpu | cuda (the GPU torchrun's LOCAL_RANK names, else GPU 0);
    ``precision``: auto | fp32 | bf16 | fp16."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise HardwareError(f"{section}.device = 'cuda' but torch sees no CUDA GPU; use 'auto' or 'cpu'")
    dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0"))) if device == "cuda" else torch.device(device)
    if precision == "auto":
        native_bf16 = torch.cuda.is_bf16_supported() if dev.type == "cuda" else cpu_has_bf16()
        precision = "bf16" if native_bf16 else "fp32"
    if precision == "fp16" and dev.type == "cpu":
        raise HardwareError(
            f"{section}.precision = 'fp16' on the CPU: CPUs have no fast fp16 matmul (it runs hundreds of "
            "times slower); use 'bf16' or 'auto'"
        )
    if precision not in DTYPES:
        raise HardwareError(f"{section}.precision = {precision!r}: expected one of auto, {', '.join(DTYPES)}")
    return Compute(dev, DTYPES[precision])
