"""Model factories: local weight files are loaded (no download), and bad names are refused."""

import pytest
import torch
from safetensors.torch import save_file

from pipeline.core.params import ClipParams, DinoParams
from pipeline.models.factory import ModelError, create_clip, create_dino

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
