import pytest
import torch

from pipeline.core.params import TuneParams
from pipeline.method.tuning import param_groups, scaled_lr, smoothed_cross_entropy
from pipeline.method.visual_prompts import PromptedCLIP

pytestmark = pytest.mark.unit


def test_label_smoothing_matches_its_formula():
    torch.manual_seed(0)
    logits = torch.randn(5, 4)
    target = torch.tensor([0, 3, 1, 1, 2])
    eps = 0.1
    logp = torch.log_softmax(logits, dim=-1)
    nll = -logp[torch.arange(5), target]
    uniform = -logp.mean(dim=-1)
    expected = ((1 - eps) * nll + eps * uniform).mean()
    torch.testing.assert_close(smoothed_cross_entropy(logits, target, eps), expected)
    assert smoothed_cross_entropy(logits, target, 0.0) == pytest.approx(nll.mean().item())


def test_lr_scales_linearly_with_batch():
    assert scaled_lr(TuneParams(batch_size=512)) == pytest.approx(0.004)
    assert scaled_lr(TuneParams(batch_size=64)) == pytest.approx(0.0005)


def test_weight_decay_on_every_non_bias_parameter(smoke_model):
    model, _, _ = smoke_model
    prompted = PromptedCLIP(model.visual, torch.randn(3, 32), 4, 10.0)
    decay, no_decay = param_groups(prompted, 0.01)
    assert decay["weight_decay"] == 0.01 and no_decay["weight_decay"] == 0.0
    assert any(p is prompted.prompts for p in decay["params"])
    assert any(p is prompted.classifier.weight for p in decay["params"])
    norm_weights = [m.weight for m in prompted.visual.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert norm_weights and all(any(p is w for p in decay["params"]) for w in norm_weights)
    biases = {id(p) for n, p in prompted.named_parameters() if p.requires_grad and n.endswith("bias")}
    assert biases and {id(p) for p in no_decay["params"]} == biases
    n_trainable = sum(1 for p in prompted.parameters() if p.requires_grad)
    assert len(decay["params"]) + len(no_decay["params"]) == n_trainable


def test_tune_under_bf16_autocast_keeps_fp32_parameters_and_moves_them(synthetic_root):
    from pipeline.core import hardware
    from pipeline.core.params import ClipParams
    from pipeline.method.tuning import tune
    from pipeline.models.factory import create_clip

    model, preprocess, _ = create_clip(ClipParams(model="nola-smoke-vit", pretrained=None))
    prompted = PromptedCLIP(model.visual, torch.nn.functional.normalize(torch.randn(3, 32), dim=-1), 2, 10.0)
    before = {k: v.detach().clone() for k, v in prompted.trainable_state().items()}
    ids = sorted(p.relative_to(synthetic_root).as_posix() for p in synthetic_root.rglob("*.*"))
    targets = [sorted({i.split("/")[0] for i in ids}).index(i.split("/")[0]) for i in ids]
    params = TuneParams(prompt_tokens=2, epochs=2, batch_size=6, num_workers=0)
    history = tune(
        prompted,
        synthetic_root,
        ids,
        targets,
        preprocess,
        params,
        compute=hardware.Compute(torch.device("cpu"), torch.bfloat16),
    )
    assert [h.epoch for h in history] == [1, 2] and all(torch.isfinite(torch.tensor(h.loss)) for h in history)
    after = prompted.trainable_state()
    assert all(v.dtype == torch.float32 for v in after.values())
    assert not torch.equal(after["prompts"], before["prompts"])
    assert not torch.equal(after["visual.ln_post.weight"], before["visual.ln_post.weight"])


def test_strong_view_interpolations_are_the_references():
    """RandomResizedCrop bilinear, RandomPerspective bicubic (on the PIL image), uint8 out."""
    import numpy as np
    from PIL import Image
    from torchvision.transforms import v2

    from pipeline.data.images import Preprocess

    strong = Preprocess(size=32, mean=(0.5,) * 3, std=(0.5,) * 3).strong_pixels()
    by_type = {type(t): t for t in strong.transforms}
    assert by_type[v2.RandomResizedCrop].interpolation == v2.InterpolationMode.BILINEAR
    assert by_type[v2.RandomPerspective].interpolation == v2.InterpolationMode.BICUBIC
    image = Image.fromarray(np.random.default_rng(0).integers(0, 255, (40, 50, 3), dtype=np.uint8))
    torch.manual_seed(0)
    views = [strong(image) for _ in range(8)]
    assert all(v.dtype == torch.uint8 and v.shape == (3, 32, 32) for v in views)


def test_schedules_and_heads(smoke_model):
    """constant (default) keeps the lr, cosine ends at 0; linear (default) logits are the classifier on
    the raw feature, cosine ones logit scale x cosine."""
    import torch.nn.functional as F

    from pipeline.method.tuning import optimizer_for

    model, _, _ = smoke_model
    classifier = F.normalize(torch.randn(3, 32), dim=-1)
    images = torch.randn(2, 3, 64, 64)
    for schedule, last in [("constant", 0.004), ("cosine", 0.0)]:
        prompted = PromptedCLIP(model.visual, classifier, 2, 10.0)
        optimizer, scheduler = optimizer_for(prompted, TuneParams(batch_size=512, schedule=schedule), 4)
        for _ in range(4):
            optimizer.step()
            scheduler.step()
        assert [g["lr"] for g in optimizer.param_groups] == pytest.approx([last, last], abs=1e-12)
    linear = PromptedCLIP(model.visual, classifier, 2, 10.0).eval()
    cosine = PromptedCLIP(model.visual, classifier, 2, 10.0, "cosine").eval()
    with torch.no_grad():
        cosine.prompts.copy_(linear.prompts)
        feature = linear.encode_image(images)
        torch.testing.assert_close(linear(images), feature @ classifier.T)
        torch.testing.assert_close(cosine(images), 10.0 * F.normalize(feature, dim=-1) @ classifier.T)
