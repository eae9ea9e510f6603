"""CPU inference: each Linear followed by a GELU becomes one oneDNN matmul that applies the GELU
to its result before storing it (torch's own mkldnn op, the one torch.compile fuses this pair
into). It saves a pass over the transformer MLP's widest activation: DINO ViT-B/16 in bf16 ran
about 12% faster on the development CPU, CLIP ViT-B/32 about 4%. Same weights, same function.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator

import torch
from timm.layers import Mlp
from torch import nn


class LinearGELU(nn.Module):
    """``gelu(linear(x))`` in one oneDNN call."""

    def __init__(self, linear: nn.Linear, approximate: str):
        super().__init__()
        self.weight, self.bias, self.approximate = linear.weight, linear.bias, approximate

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.ops.mkldnn._linear_pointwise(x, self.weight, self.bias, "gelu", [], self.approximate)


@functools.cache
def available(dtype: torch.dtype = torch.float32) -> bool:
    """Whether oneDNN runs the fused op in ``dtype`` on this CPU: bf16 needs AVX512 (a CPU with
    only AVX2 cannot make the primitive), so one tiny call decides."""
    if not (torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")):
        return False
    x, w = torch.ones(2, 8, dtype=dtype), torch.ones(8, 8, dtype=dtype)
    try:
        torch.ops.mkldnn._linear_pointwise(x, w, None, "gelu", [], "none")
    except RuntimeError:
        return False
    return True


def _linear_gelu_pairs(module: nn.Module) -> Iterator[tuple[str, str]]:
    """Names of (Linear, GELU) children whose output goes straight from one into the other."""
    if isinstance(module, nn.Sequential):  # open_clip's MLP: c_fc, gelu, c_proj
        names = list(module._modules)
        yield from zip(names, names[1:])
    elif type(module) is Mlp:  # timm's: fc1, act, drop1, norm, fc2
        yield "fc1", "act"


def fuse_linear_gelu(model: nn.Module) -> int:
    """Fuse in place, for inference on the CPU in the dtype of the model's weights; returns how
    many pairs were fused (none where oneDNN cannot run that dtype)."""
    if not available(next(model.parameters()).dtype):
        return 0
    fused = 0
    for module in list(model.modules()):
        for linear_name, act_name in list(_linear_gelu_pairs(module)):
            linear, act = getattr(module, linear_name), getattr(module, act_name)
            if isinstance(linear, nn.Linear) and isinstance(act, nn.GELU):
                setattr(module, linear_name, LinearGELU(linear, act.approximate))
                setattr(module, act_name, nn.Identity())
                fused += 1
    return fused
