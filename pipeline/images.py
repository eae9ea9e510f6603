"""Decoding images to RGB and the two transforms of the method (deterministic test view, strong view)."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps
from torchvision import transforms as T

from .errors import NolaError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_ASPECT = 4.0


def load_rgb(path: str | Path) -> Image.Image:
    """Open an image as 8-bit RGB: EXIF orientation applied, alpha composited on white,
    16-bit, palette, CMYK and grayscale converted; an animation gives its first frame."""
    with Image.open(path) as im:
        im = ImageOps.exif_transpose(im)
        if im.mode in ("I;16", "I;16B", "I;16L", "I"):
            arr = np.asarray(im, dtype=np.float64)
            peak = 65535.0 if arr.max(initial=0) > 255 else 255.0
            im = Image.fromarray(np.clip(arr * (255.0 / peak), 0, 255).astype(np.uint8))
        if im.mode == "P":
            im = im.convert("RGBA")
        if im.mode in ("RGBA", "LA", "PA"):
            im = im.convert("RGBA")
            background = Image.new("RGBA", im.size, (255, 255, 255, 255))
            im = Image.alpha_composite(background, im)
        return im.convert("RGB")


class ImageError(NolaError, ValueError):
    """An image that fails to decode after the split stage screened it."""


def load_screened(path: str | Path) -> Image.Image:
    """:func:`load_rgb` for the stages after split, which only list images it decoded."""
    try:
        return load_rgb(path)
    except Exception as err:  # any decoder error: the file changed after split screened it
        raise ImageError(f"{path}: no longer decodes ({type(err).__name__}: {err}); it changed after the split "
                         "stage screened it: rerun split (dvc repro split)") from None


def limit_aspect(im: Image.Image, max_aspect: float = MAX_ASPECT) -> Image.Image:
    """Center-crop an extreme panorama to ``max_aspect``: resizing its short side to 224 would
    otherwise make a giant image. Resize + center crop only keep the central square, so images
    within the ratio are untouched and wider ones lose nothing that the crop would have kept."""
    w, h = im.size
    keep_w, keep_h = min(w, round(max_aspect * h)), min(h, round(max_aspect * w))
    if (keep_w, keep_h) == (w, h):
        return im
    left, top = (w - keep_w) // 2, (h - keep_h) // 2
    return im.crop((left, top, left + keep_w, top + keep_h))


@dataclass(frozen=True)
class Preprocess:
    """The deterministic view: resize the shorter side, center crop, normalise."""

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"

    def transform(self) -> T.Compose:
        return T.Compose(
            [
                limit_aspect,
                T.Resize(self.size, interpolation=T.InterpolationMode(self.interpolation)),
                T.CenterCrop(self.size),
                T.ToTensor(),
                T.Normalize(self.mean, self.std),
            ]
        )

    def strong_transform(self) -> T.Compose:
        """The strong view of the method's prompt-tuning step."""
        jitter = T.ColorJitter(0.4, 0.4, 0.4, 0.1)
        blur_kernel = 2 * (self.size // 20) + 1
        return T.Compose(
            [
                T.RandomResizedCrop(
                    self.size, scale=(0.2, 1.0), interpolation=T.InterpolationMode(self.interpolation)
                ),
                T.RandomHorizontalFlip(),
                T.RandomApply([jitter], p=0.8),
                T.RandomPerspective(distortion_scale=0.2, p=0.5),
                jitter,
                T.GaussianBlur(blur_kernel, sigma=(0.1, 2.0)),
                T.ToTensor(),
                T.Normalize(self.mean, self.std),
            ]
        )

    def as_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d
