"""DINO-assisted prompt tuning: targets are the DL network's labels, inputs are strong views."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader

from pipeline.core.distributed import GlobalBatches, Group, SeededViews
from pipeline.core.errors import TrainingError, check_loss
from pipeline.core.hardware import CPU_FP32, Compute
from pipeline.core.params import TuneParams
from pipeline.core.progress import rate, track
from pipeline.data.images import Preprocess
from pipeline.encode.features import ImageEncoder, ImageList
from pipeline.method.visual_prompts import PromptedCLIP

log = logging.getLogger("nola")


def smoothed_cross_entropy(logits: torch.Tensor, target: torch.Tensor, epsilon: float) -> torch.Tensor:
    """Label-smoothing cross-entropy: (1 - eps) * NLL + eps * mean over classes of -log p."""
    return F.cross_entropy(logits, target, label_smoothing=epsilon)


def scaled_lr(params: TuneParams) -> float:
    """Linear scaling of the reference lr (given at ``base_batch_size``) to our batch size."""
    return params.base_lr * params.batch_size / params.base_batch_size


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """The reference code's rule: weight decay on every trainable parameter whose name has no
    ``bias`` (prompts, classifier and LayerNorm weights), none on biases."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        (no_decay if "bias" in name else decay).append(p)
    return [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]


def optimizer_for(
    model: nn.Module, params: TuneParams, total_steps: int
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW at the scaled lr, and the lr schedule over ``total_steps`` (``params.schedule``):
    constant as in the reference code, or cosine decay to 0."""
    optimizer = torch.optim.AdamW(
        param_groups(model, params.weight_decay), lr=scaled_lr(params), betas=(0.9, 0.999), eps=1e-8, fused=True
    )

    def factor(step: int) -> float:
        if params.schedule == "constant":
            return 1.0
        return 0.5 * (1 + math.cos(math.pi * step / max(total_steps, 1)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


@dataclass
class EpochLog:
    epoch: int
    loss: float
    agreement: float
    lr: float


def tune(
    model: PromptedCLIP,
    root: str | Path,
    ids: Sequence[str],
    targets: np.ndarray,
    preprocess: Preprocess,
    params: TuneParams,
    group: Group = Group(),
    compute: Compute = CPU_FP32,
) -> list[EpochLog]:
    """A fixed schedule (no label-based model selection): AdamW, ``params.epochs`` of full batches
    (a partial last batch is dropped unless it is the only one), lr constant or cosine (:func:`optimizer_for`).

    A step is one prompted CLIP forward/backward on strong views (the DL targets are precomputed)
    under :meth:`Compute.training` (autocast in ``compute.dtype``; parameters, fused-AdamW state
    and the loss stay fp32). Strong views are uint8 tensors made by the loader workers.

    Under torchrun (``group``), DistributedDataParallel: each process takes its slice of every
    global batch of ``params.batch_size`` images, so the batch and the lr are a single process's.
    """
    if len(ids) == 0:
        raise TrainingError("tune: the pool has no images with DL labels; check the align stage's output")
    if min(len(ids), params.batch_size) < group.world_size:
        raise TrainingError(
            f"tune: a batch of {min(len(ids), params.batch_size)} images cannot be shared by "
            f"{group.world_size} processes; raise tune.batch_size or lower compute.nproc"
        )
    torch.manual_seed(params.seed)
    model.to(compute.device)
    views = ImageList(
        root, ids, preprocess.strong_pixels(), targets=[int(t) for t in targets], draft=preprocess.strong_draft
    )
    dataset = SeededViews(views, params.seed)
    sampler = GlobalBatches(len(dataset), params.batch_size, params.seed, group)
    loader = DataLoader(
        dataset,
        batch_sampler=sampler,
        num_workers=params.num_workers,
        persistent_workers=params.num_workers > 0,
        pin_memory=compute.device.type == "cuda",
    )
    # fp16 (GPU only) needs loss scaling, or small gradients underflow to 0; a no-op otherwise
    scaler = torch.amp.GradScaler(compute.device.type, enabled=compute.dtype == torch.float16)
    network = model
    if group.distributed:
        network = DistributedDataParallel(model, device_ids=[compute.device] if compute.device.type == "cuda" else None)
    optimizer, scheduler = optimizer_for(model, params, params.epochs * len(loader))
    history = []
    step = 0
    for epoch in range(params.epochs):
        model.train()
        loss_sum, agree, seen = 0.0, 0, 0
        start = time.perf_counter()
        per_epoch = len(loader) * sampler.global_batch() // group.world_size
        for pixels, target in track(loader, per_epoch, f"tune epoch {epoch + 1}/{params.epochs}", report=False):
            images = preprocess.normalize(pixels.to(compute.device, non_blocking=True))
            target = target.to(compute.device, non_blocking=True)
            with compute.training():
                logits = network(images).float()
            loss = smoothed_cross_entropy(logits, target, params.label_smoothing)
            value = loss.item()
            check_loss(
                value,
                "tune",
                epoch + 1,
                step + 1,
                optimizer.param_groups[0]["lr"],
                "tune.base_lr",
                "the CLIP weights (clip.pretrained) or the CDE classifier (rerun text_classifier)",
            )
            optimizer.zero_grad(set_to_none=True)
            # DDP averages gradients over processes; weighting each process's mean loss by its share
            # of the global batch makes that average the gradient of the global batch's mean loss,
            # also when the global batch does not divide evenly (slices differ by one image)
            scaler.scale(loss * (len(target) * group.world_size / sampler.global_batch())).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            step += 1
            loss_sum += value * len(target)
            agree += int((logits.argmax(-1) == target).sum())
            seen += len(target)
        loss_sum, agree, seen = group.sum([loss_sum, agree, seen])
        history.append(EpochLog(epoch + 1, loss_sum / seen, agree / seen, optimizer.param_groups[0]["lr"]))
        log.info(
            "tune: epoch %d/%d, loss %.4f, agreement with DL labels %.3f, %d images (%s)",
            epoch + 1,
            params.epochs,
            history[-1].loss,
            history[-1].agreement,
            seen,
            rate(seen, time.perf_counter() - start),
        )
    model.eval()
    return history


def class_probs(
    model: PromptedCLIP,
    root: str | Path,
    ids: Sequence[str],
    preprocess: Preprocess,
    batch_size: int = 64,
    num_workers: int = 0,
) -> np.ndarray:
    """Class probabilities of the tuned model on the deterministic view (fp32, on the CPU)."""
    logits = ImageEncoder(model.eval(), preprocess, CPU_FP32, batch_size, num_workers).encode(root, ids, "predict")
    return torch.softmax(torch.from_numpy(logits), dim=-1).numpy()
