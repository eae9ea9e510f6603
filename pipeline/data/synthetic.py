"""A small, deterministic image collection: one drawn shape and texture family per class.

It lets tests and the offline smoke run exercise every stage without downloading anything.
The same (classes, per_class, size, seed) always gives the same pixels.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("circle", "square", "triangle", "stripes", "checkerboard", "cross")


def _draw(kind: str, size: int, rng: np.random.Generator) -> Image.Image:
    background = tuple(int(v) for v in rng.integers(0, 256, 3))
    colour = tuple(int(v) for v in rng.integers(0, 256, 3))
    im = Image.new("RGB", (size, size), background)
    d = ImageDraw.Draw(im)
    c = size / 2 + rng.uniform(-0.15, 0.15, 2) * size
    r = size * rng.uniform(0.2, 0.35)
    if kind == "circle":
        d.ellipse([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=colour)
    elif kind == "square":
        d.rectangle([c[0] - r, c[1] - r, c[0] + r, c[1] + r], fill=colour)
    elif kind == "triangle":
        d.polygon([(c[0], c[1] - r), (c[0] - r, c[1] + r), (c[0] + r, c[1] + r)], fill=colour)
    elif kind == "stripes":
        step = max(2, int(size * rng.uniform(0.06, 0.12)))
        for x in range(0, size, 2 * step):
            d.rectangle([x, 0, x + step - 1, size], fill=colour)
    elif kind == "checkerboard":
        step = max(2, int(size * rng.uniform(0.1, 0.2)))
        for y in range(0, size, step):
            for x in range((y // step % 2) * step, size, 2 * step):
                d.rectangle([x, y, x + step - 1, y + step - 1], fill=colour)
    elif kind == "cross":
        w = r / 3
        d.rectangle([c[0] - r, c[1] - w, c[0] + r, c[1] + w], fill=colour)
        d.rectangle([c[0] - w, c[1] - r, c[0] + w, c[1] + r], fill=colour)
    noise = rng.normal(0, 8, (size, size, 3))
    return Image.fromarray(np.clip(np.asarray(im, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def generate(root: str | Path, classes: int = 4, per_class: int = 24, size: int = 96, seed: int = 0) -> Path:
    """Write ``root/<class>/<class>_<i>.png`` (every third image as JPEG, to exercise both decoders)."""
    if not 1 <= classes <= len(CLASSES):
        raise ValueError(f"synthetic data has 1 to {len(CLASSES)} classes, got {classes}")
    root = Path(root)
    rng = np.random.default_rng(seed)
    for kind in CLASSES[:classes]:
        folder = root / kind
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            im = _draw(kind, size, rng)
            if i % 3 == 2:
                im.save(folder / f"{kind}_{i:03d}.jpg", quality=90)
            else:
                im.save(folder / f"{kind}_{i:03d}.png")
    return root
