"""Weights that are not on the machine, offline (HF_HUB_OFFLINE or no connection): one message at
once, naming the param and the local-weights way round, instead of minutes of retries."""

from __future__ import annotations

import time

import pytest
from huggingface_hub import constants

from pipeline.core.params import ClipParams, DinoParams
from pipeline.models import factory
from pipeline.models.factory import ModelError, create_clip, create_dino


@pytest.fixture
def empty_cache(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)


def no_connection(monkeypatch):
    """As on a machine without network: the Hub's address does not answer."""
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(factory, "HUB", ("127.0.0.1", 9))  # discard port: nothing listens, refused at once


@pytest.mark.unit
@pytest.mark.parametrize("offline", ["HF_HUB_OFFLINE is set", "cannot be reached"])
def test_missing_clip_weights_fail_fast_with_the_local_file_pointer(empty_cache, monkeypatch, caplog, offline):
    if offline == "cannot be reached":
        no_connection(monkeypatch)
    start = time.monotonic()
    with pytest.raises(ModelError) as caught:
        create_clip(ClipParams(model="ViT-B-32", pretrained="openai"))
    assert time.monotonic() - start < 30
    text = str(caught.value)
    assert text.startswith("clip.pretrained = 'openai': the weights of 'ViT-B-32' are not on this machine")
    assert offline in text and "set clip.pretrained to its path" in text and "Offline and air-gapped use" in text
    assert constants.HF_HUB_OFFLINE, "no connection switches the Hub client offline: no retries"
    assert not [r for r in caplog.records if "Failed to download" in r.getMessage()], "one message, not two"


@pytest.mark.unit
def test_missing_dino_weights_fail_fast_with_the_local_file_pointer(empty_cache, monkeypatch):
    no_connection(monkeypatch)
    with pytest.raises(ModelError) as caught:
        create_dino(DinoParams(model="vit_small_patch16_224.dino", pretrained=True, kwargs={"depth": 1}))
    text = str(caught.value)
    assert text.startswith("dino.pretrained = True: the weights of 'vit_small_patch16_224.dino' are not on")
    assert "cannot be reached" in text and "set dino.pretrained to its path" in text
