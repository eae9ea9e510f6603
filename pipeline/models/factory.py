"""Model factories: :func:`create_clip` (open_clip) and :func:`create_dino` (timm), chosen by params.

Weights come through open_clip / timm (a pretrained tag they download, or a local file). With no
pretrained weights the model is built with seeded random weights: that is how the tests and the
offline smoke configuration run the real architectures without any download.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import logging
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from pickle import UnpicklingError
from typing import Any

import open_clip
import timm
import torch
from torch import nn

from pipeline.core.errors import NolaError
from pipeline.core.params import ClipParams, DinoParams, Params
from pipeline.data.images import Preprocess

CONFIG_DIR = Path(__file__).parent / "configs"


class ModelError(NolaError, ValueError):
    """A model name or weights setting that cannot be honoured, worded for the user."""


UNSAFE_WEIGHTS = (
    "refused: this checkpoint holds pickled objects besides tensors, and weights are only loaded with "
    "torch.load(weights_only=True); give a .safetensors file or a plain state dict"
)


@functools.cache
def _register_configs(extra_dir: str | None) -> None:
    """Add our JSON configs (and the user's folder) to open_clip's registry, once per process:
    each call makes open_clip rescan every config it knows."""
    open_clip.add_model_config(CONFIG_DIR)
    if extra_dir:
        if not Path(extra_dir).is_dir():
            raise ModelError(f"clip.model_config_dir = {extra_dir!r}: no such folder")
        open_clip.add_model_config(extra_dir)


HUB = ("huggingface.co", 443)  # where open_clip and timm download weights from


def _hub_reachable(timeout: float = 3.0) -> bool:
    try:
        socket.create_connection(HUB, timeout=timeout).close()
        return True
    except OSError:
        return False


def _offline_reason() -> str | None:
    """Before weights that may need a download: why they cannot be downloaded, or None. With no
    connection, huggingface_hub is switched to offline mode, so cached weights still load and
    missing ones fail at once instead of after minutes of retries."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return "HF_HUB_OFFLINE is set"
    if not _hub_reachable():
        constants.HF_HUB_OFFLINE = True
        return f"{HUB[0]} cannot be reached"
    return None


@contextlib.contextmanager
def _no_download_error_log() -> Iterator[None]:
    """Drop open_clip's own log line for a failed weights download (it goes to the root logger)."""

    def keep(record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Failed to download weights")

    logging.getLogger().addFilter(keep)
    try:
        yield
    finally:
        logging.getLogger().removeFilter(keep)


def _missing_weights(key: str, value: Any, model: str, reason: str) -> ModelError:
    return ModelError(
        f"{key} = {value!r}: the weights of {model!r} are not on this machine and cannot be downloaded ({reason}); "
        f"run once with network, or download the weights file on another machine and set {key} to its path "
        "(README: Offline and air-gapped use)"
    )


def _suggest(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    return f" (close: {', '.join(close)})" if close else ""


def clip_name_problems(params: ClipParams) -> list[str]:
    """An unknown open_clip name, worded as a params problem (checked when any stage starts)."""
    try:
        _register_configs(params.model_config_dir)
    except ModelError as err:
        return [str(err)]
    if params.model in open_clip.list_models():
        return []
    return [
        f"clip.model = {params.model!r}: not an open_clip model{_suggest(params.model, open_clip.list_models())}; "
        "see open_clip.list_models() or set clip.model_config_dir to a folder with its JSON config"
    ]


def dino_name_problems(params: DinoParams) -> list[str]:
    arch = params.model.split(".")[0]
    if timm.is_model(arch):
        return []
    return [
        f"dino.model = {params.model!r}: not a timm model{_suggest(arch, timm.list_models())}; "
        "see timm.list_models('*dino*')"
    ]


MODEL_NAME_CHECKS = {"clip": clip_name_problems, "dino": dino_name_problems}  # for core.params.load_params


def quick_gelu(params: ClipParams) -> bool:
    """Whether to force QuickGELU: with ``auto``, what open_clip's config of the pretrained tag
    says the weights were trained with (OpenAI's: QuickGELU, which open_clip's ``ViT-B-32`` config
    does not build by itself and only warns about); a tag that says nothing, a local weights file
    or random weights keep the model config's activation. A boolean param decides outright."""
    if params.quick_gelu != "auto":
        return bool(params.quick_gelu)
    if not params.pretrained:
        return False
    return bool(open_clip.get_pretrained_cfg(params.model, params.pretrained).get("quick_gelu", False))


def clip_identity(params: ClipParams) -> dict[str, Any]:
    """What makes CLIP features comparable; stored in artifacts and checked by later stages."""
    return {"encoder": "clip", "model": params.model, "pretrained": params.pretrained, "quick_gelu": quick_gelu(params)}


def dino_identity(params: DinoParams) -> dict[str, Any]:
    return {
        "encoder": "dino",
        "model": params.model,
        "pretrained": params.pretrained,
        "kwargs": params.kwargs,
        "normalize": params.normalize,
    }


def create_clip(params: ClipParams) -> tuple[open_clip.CLIP, Preprocess, Any]:
    """An open_clip model in eval mode, its deterministic preprocessing and its tokenizer."""
    problems = clip_name_problems(params)
    if problems:
        raise ModelError("; ".join(problems))
    torch.manual_seed(params.seed)
    tag = params.pretrained and not Path(params.pretrained).is_file()  # a tag: weights from the Hub
    offline = _offline_reason() if tag else None
    try:
        with _no_download_error_log():  # the ModelError below says it, once
            model = open_clip.create_model(
                params.model, pretrained=params.pretrained or None, force_quick_gelu=quick_gelu(params)
            )
    except UnpicklingError:
        raise ModelError(f"clip.pretrained = {params.pretrained!r}: {UNSAFE_WEIGHTS}") from None
    except (RuntimeError, OSError) as err:
        if offline and "download" in str(err).lower():
            raise _missing_weights("clip.pretrained", params.pretrained, params.model, offline) from None
        raise ModelError(f"clip.pretrained = {params.pretrained!r} for {params.model!r}: {err}") from None
    model.eval()
    cfg = getattr(model.visual, "preprocess_cfg", {})
    size = model.visual.image_size
    preprocess = Preprocess(
        size=int(size[0] if isinstance(size, (tuple, list)) else size),
        mean=tuple(cfg.get("mean", open_clip.OPENAI_DATASET_MEAN)),
        std=tuple(cfg.get("std", open_clip.OPENAI_DATASET_STD)),
        interpolation=cfg.get("interpolation", "bicubic"),
    )
    return model, preprocess, open_clip.get_tokenizer(params.model)


def create_dino(params: DinoParams) -> tuple[nn.Module, Preprocess]:
    """A timm model returning its pooled (CLS) feature, and the deterministic preprocessing (its mean
    and std per ``dino.normalize``)."""
    problems = dino_name_problems(params)
    if problems:
        raise ModelError("; ".join(problems))
    torch.manual_seed(params.seed)
    kwargs = dict(params.kwargs)
    pretrained = params.pretrained
    if isinstance(pretrained, str):
        if not Path(pretrained).is_file():
            raise ModelError(f"dino.pretrained = {pretrained!r}: no such weights file")
        kwargs["pretrained_cfg_overlay"] = {"file": pretrained}
        pretrained = True
    offline = _offline_reason() if params.pretrained is True else None
    try:
        model = timm.create_model(params.model, pretrained=pretrained, num_classes=0, **kwargs)
    except UnpicklingError:
        raise ModelError(f"dino.pretrained = {params.pretrained!r}: {UNSAFE_WEIGHTS}") from None
    except OSError as err:  # huggingface_hub's LocalEntryNotFoundError, a failed URL download
        if offline is None:
            raise ModelError(
                f"dino.pretrained = True: the weights of {params.model!r} failed to download ({err})"
            ) from None
        raise _missing_weights("dino.pretrained", True, params.model, offline) from None
    except (RuntimeError, TypeError) as err:
        raise ModelError(f"dino: cannot build {params.model!r} with {params.kwargs}: {err}") from None
    model.eval()
    cfg = timm.data.resolve_model_data_config(model)
    patch_embed = getattr(model, "patch_embed", None)
    size = patch_embed.img_size[-1] if patch_embed is not None and patch_embed.img_size else cfg["input_size"][-1]
    mean, std = cfg["mean"], cfg["std"]
    if params.normalize == "clip":  # as the reference code feeds DINO, whatever the clip section is
        mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    preprocess = Preprocess(
        size=int(size), mean=tuple(float(v) for v in mean), std=tuple(float(v) for v in std), interpolation="bicubic"
    )
    return model, preprocess


@dataclass(frozen=True)
class Encoder:
    """A frozen image encoder as the features stage uses it: the network whose output is the
    feature, its deterministic view, and what identifies its features (stored in their metadata)."""

    network: nn.Module
    preprocess: Preprocess
    identity: dict[str, Any]


def create_encoder(name: str, params: Params) -> Encoder:
    """``clip`` (the vision tower of ``params.clip``) or ``dino`` (``params.dino``). The seed is
    part of the identity: it sets the weights that ``pretrained`` leaves random."""
    if name == "clip":
        model, preprocess, _ = create_clip(params.clip)
        return Encoder(model.visual, preprocess, {**clip_identity(params.clip), "seed": params.clip.seed})
    if name == "dino":
        network, preprocess = create_dino(params.dino)
        return Encoder(network, preprocess, {**dino_identity(params.dino), "seed": params.dino.seed})
    raise ModelError(f"no image encoder named {name!r}; choose clip or dino")
