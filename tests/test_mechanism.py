"""The method's core claim on controlled features: a head trained on CLIP's confident picks,
but reading DINO features that cluster cleanly, labels the pool better than CLIP itself."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from pipeline.method.alignment import dl_probs, train_head
from pipeline.method.pseudo_labels import images_per_class, select
from pipeline.method.text_classifier import zero_shot_probs

pytestmark = pytest.mark.unit


def test_dl_network_beats_the_cde_classifier_it_was_trained_from():
    rng = np.random.default_rng(0)
    n_classes, per_class, dim = 5, 80, 32
    labels = np.repeat(np.arange(n_classes), per_class)
    # CLIP: class directions plus heavy noise -> a noisy zero-shot classifier
    text = F.normalize(torch.randn(n_classes, dim, generator=torch.Generator().manual_seed(0)), dim=-1)
    clip = text.numpy()[labels] + rng.normal(0, 0.6, (len(labels), dim))
    # DINO: tight, well separated clusters (but not aligned with any class name)
    centres = rng.normal(0, 1, (n_classes, 48)) * 3
    dino = centres[labels] + rng.normal(0, 0.5, (len(labels), 48))

    probs = zero_shot_probs(torch.tensor(clip, dtype=torch.float32), text, logit_scale=100.0).numpy()
    cde_acc = (probs.argmax(1) == labels).mean()
    k = images_per_class(len(labels), n_classes)
    idx, cls, _, _ = select(probs, k)
    head, history = train_head(dino[idx], cls, n_classes, hidden=64, epochs=50, seed=0)
    dl_acc = (dl_probs(head, dino).argmax(1) == labels).mean()

    assert history[-1] < history[0]
    assert 0.4 < cde_acc < 0.9, f"the setup should give a noisy zero-shot classifier, got {cde_acc:.3f}"
    assert dl_acc >= cde_acc + 0.15, f"DL {dl_acc:.3f} vs CDE {cde_acc:.3f}"
