"""The tuning step against numbers computed by the paper's reference code (tests/data/README.md).

``vpt_reference_step.safetensors`` was made by running the reference implementation (fp32, CPU)
on a tiny random-weight OpenAI-format CLIP. Here the same model and batch go through the
project's own classes: :class:`PromptedCLIP` with the default head, :func:`optimizer_for` with the
default tune params, :func:`smoothed_cross_entropy`; outputs, gradients and three optimiser steps
must agree to float error. The cosine head (the project's earlier objective) must not.
"""

import json
from pathlib import Path

import open_clip
import pytest
import torch
from safetensors import safe_open

from pipeline.core.params import TuneParams
from pipeline.method.tuning import optimizer_for, smoothed_cross_entropy
from pipeline.method.visual_prompts import PromptedCLIP

pytestmark = pytest.mark.unit

GOLDEN = Path(__file__).parent / "data" / "vpt_reference_step.safetensors"


def golden() -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    with safe_open(GOLDEN, "pt") as f:
        return {k: f.get_tensor(k) for k in f.keys()}, f.metadata()


def reference_name(name: str) -> str:
    """Our parameter names -> the reference's (its classifier is a bare matrix)."""
    return "classifier" if name == "classifier.weight" else name


def prompted(g: dict[str, torch.Tensor], head: str) -> PromptedCLIP:
    """The golden CLIP as an open_clip model, in exact fp32, with the golden initial values."""
    state = {k.removeprefix("clip_state."): v for k, v in g.items() if k.startswith("clip_state.")}
    clip = open_clip.model.build_model_from_openai_state_dict(dict(state), quick_gelu=True)
    clip.float().load_state_dict(state)  # the builder rounds to fp16; put the exact values back
    model = PromptedCLIP(clip.visual, g["classifier"], g["prompts"].shape[1], float(state["logit_scale"].exp()), head)
    with torch.no_grad():
        model.prompts.copy_(g["prompts"])
    return model


def params() -> TuneParams:
    """The default tune params (head, schedule, lr at batch 512, decay, smoothing) with 4 prompts."""
    return TuneParams(prompt_tokens=4, batch_size=512)


def max_rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp_min(1e-12))


def test_golden_file_describes_the_default_settings():
    g, meta = golden()
    p = params()
    assert json.loads(meta["clip_config"])["activation"] == "QuickGELU"
    assert "constant" in meta["optimizer"] and p.schedule == "constant" and p.head == "linear"
    assert "lr 0.004" in meta["optimizer"] and p.base_lr * p.batch_size / p.base_batch_size == pytest.approx(0.004)
    assert "weight decay 0.01" in meta["optimizer"] and p.weight_decay == 0.01
    assert "epsilon 0.1" in meta["loss"] and p.label_smoothing == 0.1


def test_forward_matches_the_reference():
    g, _ = golden()
    model = prompted(g, params().head).eval()
    with torch.no_grad():
        unprompted = PromptedCLIP(model.visual, g["classifier"], 0, 1.0).encode_image(g["images"])
        features = model.encode_image(g["images"])
        logits = model(g["images"])
    torch.testing.assert_close(unprompted, g["encode_image"], rtol=0, atol=1e-5)
    torch.testing.assert_close(features, g["features"], rtol=0, atol=1e-5)
    torch.testing.assert_close(logits, g["logits"], rtol=0, atol=1e-5)


def test_trainable_and_decayed_sets_match_the_reference():
    g, meta = golden()
    model = prompted(g, params().head)
    optimizer, _ = optimizer_for(model, params(), 3)
    names = {id(p): reference_name(n) for n, p in model.named_parameters()}
    trainable = {names[id(p)] for group in optimizer.param_groups for p in group["params"]}
    decayed = {names[id(p)] for group in optimizer.param_groups if group["weight_decay"] > 0 for p in group["params"]}
    assert trainable == set(json.loads(meta["trainable"]))
    assert decayed == set(json.loads(meta["decayed"]))


def run_steps(model: PromptedCLIP, g: dict[str, torch.Tensor], steps: int):
    """``steps`` optimiser steps on the golden batch, the way :func:`tune` makes each one."""
    p = params()
    optimizer, scheduler = optimizer_for(model, p, steps)
    model.train()
    losses, grads = [], {}
    for step in range(steps):
        loss = smoothed_cross_entropy(model(g["images"]).float(), g["targets"], p.label_smoothing)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if step == 0:
            grads = {reference_name(n): q.grad.clone() for n, q in model.named_parameters() if q.requires_grad}
        optimizer.step()
        scheduler.step()
        losses.append(loss.item())
    return losses, grads, [group["lr"] for group in optimizer.param_groups]


def test_three_steps_match_the_reference():
    g, _ = golden()
    model = prompted(g, params().head)
    losses, grads, lrs = run_steps(model, g, 3)
    assert losses == pytest.approx(g["losses"].tolist(), rel=1e-4)
    assert lrs == pytest.approx(g["lrs"].tolist(), rel=1e-12)
    assert set(grads) == {k.removeprefix("grad0.") for k in g if k.startswith("grad0.")}
    for name, grad in grads.items():
        assert max_rel(grad, g[f"grad0.{name}"]) < 1e-4, name
    for name, value in model.trainable_state().items():
        torch.testing.assert_close(value, g[f"after3.{reference_name(name)}"], rtol=0, atol=1e-5, msg=name)


def test_the_cosine_head_is_not_the_reference():
    """The project's earlier objective (logit scale x cosine) fails the same comparisons."""
    g, _ = golden()
    model = prompted(g, "cosine")
    with torch.no_grad():
        assert (model.eval()(g["images"]) - g["logits"]).abs().max() > 1e-2
    losses, grads, _ = run_steps(model, g, 3)
    assert abs(losses[0] - float(g["losses"][0])) > 1e-3
    assert max(max_rel(grads[n], g[f"grad0.{n}"]) for n in grads) > 1e-2
    after = model.trainable_state()
    assert max((after[n] - g[f"after3.{reference_name(n)}"]).abs().max().item() for n in after) > 1e-4
