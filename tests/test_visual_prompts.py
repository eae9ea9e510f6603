import math

import open_clip
import pytest
import torch
import torch.nn.functional as F

from pipeline.method.visual_prompts import PromptedCLIP, VisualPromptError, prompted_from_state

pytestmark = pytest.mark.unit


def test_zero_prompts_equal_open_clip_encode_image(smoke_model):
    model, preprocess, _ = smoke_model
    torch.manual_seed(1)
    images = torch.randn(3, 3, preprocess.size, preprocess.size)
    prompted = PromptedCLIP(model.visual, torch.randn(4, 32), 0, 10.0)
    with torch.no_grad():
        torch.testing.assert_close(prompted.encode_image(images), model.encode_image(images))


def test_sequence_first_layout_keeps_open_clip_results_and_avoids_per_token_weight_copies():
    from torch.profiler import profile

    from pipeline.core.params import ClipParams
    from pipeline.models.factory import create_clip

    fresh, preprocess, _ = create_clip(ClipParams(model="nola-smoke-vit", pretrained=None))
    wrapped, _, _ = create_clip(ClipParams(model="nola-smoke-vit", pretrained=None))
    prompted = PromptedCLIP(wrapped.visual, torch.randn(4, 32), 0, 10.0)
    images = torch.randn(3, 3, preprocess.size, preprocess.size)
    with torch.no_grad():
        torch.testing.assert_close(prompted.encode_image(images), fresh.encode_image(images))
    prompted = PromptedCLIP(wrapped.visual, torch.randn(4, 32), 5, 10.0)
    with profile() as trace:
        prompted(images).sum().backward()
    assert not [e.key for e in trace.key_averages() if e.key == "aten::bmm"]  # batch-first MHA's slow path


def test_prompts_change_the_feature_and_have_no_position(smoke_model):
    model, preprocess, _ = smoke_model
    images = torch.randn(2, 3, preprocess.size, preprocess.size)
    prompted = PromptedCLIP(model.visual, torch.randn(4, 32), 5, 10.0)
    width = model.visual.class_embedding.shape[-1]
    bound = math.sqrt(6.0 / (3 * 16 * 16 + width))
    assert prompted.prompts.shape == (1, 5, width)
    assert prompted.prompts.abs().max() <= bound
    with torch.no_grad():
        assert not torch.allclose(prompted.encode_image(images), model.encode_image(images))


def test_gradients_reach_only_trainable_parameters(smoke_model):
    model, preprocess, _ = smoke_model
    classifier = F.normalize(torch.randn(4, 32), dim=-1)
    prompted = PromptedCLIP(model.visual, classifier, 3, 10.0)
    logits = prompted(torch.randn(2, 3, preprocess.size, preprocess.size))
    F.cross_entropy(logits, torch.tensor([0, 1])).backward()
    trainable = {n for n, p in prompted.named_parameters() if p.requires_grad}
    assert "prompts" in trainable and "classifier.weight" in trainable
    assert all("ln" in n or n in ("prompts", "classifier.weight") for n in trainable), trainable
    assert {n for n in trainable if "ln_" in n} >= {"visual.ln_pre.weight", "visual.ln_post.weight"}
    for name, p in prompted.named_parameters():
        if name in trainable:
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name
    torch.testing.assert_close(prompted.classifier.weight.detach(), classifier)


def test_state_round_trip_into_a_fresh_tower(smoke_model):
    from pipeline.core.params import ClipParams
    from pipeline.models.factory import create_clip

    model, preprocess, _ = smoke_model
    prompted = PromptedCLIP(model.visual, torch.randn(4, 32), 2, 10.0)
    with torch.no_grad():
        prompted.visual.ln_post.weight.mul_(1.5)
    state = {k: v.detach().clone() for k, v in prompted.trainable_state().items()}
    fresh, _, _ = create_clip(ClipParams(model="nola-smoke-vit", pretrained=None))
    rebuilt = prompted_from_state(fresh.visual, state, 10.0)
    x = torch.randn(1, 3, preprocess.size, preprocess.size)
    with torch.no_grad():
        torch.testing.assert_close(rebuilt(x), prompted(x))
        prompted.visual.ln_post.weight.div_(1.5)


def test_non_vit_tower_gets_a_clear_error():
    model = open_clip.create_model("RN50", pretrained=None)
    with pytest.raises(VisualPromptError, match="VisionTransformer"):
        PromptedCLIP(model.visual, torch.randn(2, 1024), 4, 10.0)
