"""Model factories: local weight files are loaded (no download), and bad names are refused."""

import warnings

import open_clip
import pytest
import torch
from open_clip.transformer import QuickGELU
from safetensors.torch import save_file

from pipeline.core.params import ClipParams, DinoParams
from pipeline.models.factory import ModelError, create_clip, create_dino, quick_gelu

from helpers import smoke_params

pytestmark = pytest.mark.unit


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_clip_from_a_local_weights_file(tmp_path):
    params = ClipParams(**smoke_params()["clip"])
    source, _, _ = create_clip(params)
    path = tmp_path / "clip.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    other_seed, _, _ = create_clip(params.model_copy(update={"seed": 7}))
    assert not _same(source, other_seed)
    loaded, _, _ = create_clip(params.model_copy(update={"seed": 7, "pretrained": str(path)}))
    assert _same(source, loaded)


def test_dino_from_a_local_weights_file(tmp_path):
    params = DinoParams(**smoke_params()["dino"])
    source, _ = create_dino(params)
    path = tmp_path / "dino.safetensors"
    save_file({k: v.contiguous() for k, v in source.state_dict().items()}, str(path))
    loaded, preprocess = create_dino(params.model_copy(update={"seed": 7, "pretrained": str(path)}))
    assert _same(source, loaded)
    assert preprocess.size == 64


def test_missing_local_files_and_unknown_names_are_refused(tmp_path):
    with pytest.raises(ModelError, match="dino.pretrained"):
        create_dino(DinoParams(**{**smoke_params()["dino"], "pretrained": str(tmp_path / "none.pth")}))
    with pytest.raises(ModelError, match="clip.model"):
        create_clip(ClipParams(model="ViT-Q-99", pretrained=None))


def test_quick_gelu_follows_every_pretrained_tag():
    """For each (model, tag) open_clip knows, the activation we build is the one the tag's config
    says its weights were trained with (config level: nothing is downloaded)."""
    forced = 0
    for model, tag in open_clip.list_pretrained():
        wanted = open_clip.get_pretrained_cfg(model, tag)
        own = (open_clip.get_model_config(model) or {}).get("quick_gelu", False)
        ours = quick_gelu(ClipParams(model=model, pretrained=tag))
        if "quick_gelu" in wanted:
            assert (ours or own) == wanted["quick_gelu"], (model, tag)
        else:  # the tag says nothing: open_clip's model config decides
            assert not ours, (model, tag)
        forced += ours and not own
    assert quick_gelu(ClipParams()) and forced > 10  # ViT-B-32 + openai among them


def _holds_quick_gelu(model: torch.nn.Module) -> bool:
    return any(isinstance(m, QuickGELU) for m in model.modules())


def test_a_built_model_holds_quick_gelu_when_asked():
    params = ClipParams(**smoke_params()["clip"])
    assert not _holds_quick_gelu(create_clip(params)[0])  # random weights, auto: the config's GELU
    assert _holds_quick_gelu(create_clip(params.model_copy(update={"quick_gelu": True}))[0].visual)


def _mismatch_warnings(params: ClipParams) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        create_clip(params)
    return [str(w.message) for w in caught if "QuickGELU mismatch" in str(w.message)]


def test_default_params_build_openai_clip_without_a_mismatch(monkeypatch):
    """open_clip's own check of the tag's activation, on the default ViT-B-32 + openai; only the
    download is left out (no weights file: the architecture is built with random weights)."""
    monkeypatch.setattr(open_clip.factory, "download_pretrained", lambda cfg, cache_dir=None: None)
    assert _mismatch_warnings(ClipParams()) == []
    assert _mismatch_warnings(ClipParams(quick_gelu=False))  # the check would see a wrong activation


def test_dino_gets_clips_normalisation_by_default(monkeypatch):
    """The reference feeds DINO the view normalised for OpenAI's CLIP; dino.normalize: model keeps
    timm's own."""
    from pipeline.core.params import Params
    from pipeline.models.factory import create_encoder

    monkeypatch.setattr(open_clip.factory, "download_pretrained", lambda cfg, cache_dir=None: None)
    clip = create_clip(ClipParams())[1]  # the paper's CLIP: ViT-B-32 with OpenAI's weights
    raw = smoke_params()
    dino = create_encoder("dino", Params(**raw)).preprocess
    assert (dino.mean, dino.std) == (clip.mean, clip.std)
    own = create_encoder("dino", Params(**{**raw, "dino": {**raw["dino"], "normalize": "model"}})).preprocess
    timm_own = create_dino(DinoParams(**{**raw["dino"], "normalize": "model"}))[1]
    assert (own.mean, own.std) == (timm_own.mean, timm_own.std) and own.mean != dino.mean
