"""Decoding images to RGB and the two transforms of the method (deterministic test view, strong view)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torchvision.transforms import v2

from pipeline.core.errors import NolaError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp")
MAX_ASPECT = 4.0


def load_rgb(path: str | Path, draft: int | None = None) -> Image.Image:
    """Open an image as 8-bit RGB: EXIF orientation applied, alpha composited on white,
    16-bit, palette, CMYK and grayscale converted; an animation gives its first frame.

    ``draft``: a JPEG whose sides are both at least twice ``draft`` is decoded at 1/2, 1/4 or 1/8
    scale in the DCT domain (libjpeg), keeping both sides >= ``draft``: a resize to ``draft``
    afterwards sees the same picture, and a 4000 x 3000 photo decodes about 10x faster.
    """
    with Image.open(path) as im:
        if draft:
            im.draft("RGB", (draft, draft))
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


def load_screened(path: str | Path, draft: int | None = None) -> Image.Image:
    """:func:`load_rgb` for the stages after split, which only list images it decoded."""
    try:
        return load_rgb(path, draft)
    except Exception as err:  # any decoder error: the file changed after split screened it
        raise ImageError(
            f"{path}: no longer decodes ({type(err).__name__}: {err}); it changed after the split "
            "stage screened it: rerun split (dvc repro split)"
        ) from None


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


# RandomResizedCrop's smallest crop: 20% of the area at aspect 3/4 -> sqrt(0.15) of a side.
STRONG_MIN_SCALE = 0.2
STRONG_MIN_SIDE = (STRONG_MIN_SCALE * 3 / 4) ** 0.5


def gaussian_blur(image: torch.Tensor, kernel_size: int, sigma: float) -> torch.Tensor:
    """torchvision's Gaussian blur of a uint8 C x H x W image (same kernel, reflect padding) as two
    1-D passes: the same pixels within one level, about 4x faster than its 2-D convolution."""
    half = (kernel_size - 1) / 2
    pdf = torch.exp(-0.5 * (torch.linspace(-half, half, kernel_size) / sigma) ** 2)
    kernel = pdf / pdf.sum()
    channels, pad = image.shape[-3], kernel_size // 2
    x = image.float().unsqueeze(0)
    x = F.conv2d(
        F.pad(x, [pad, pad, 0, 0], mode="reflect"), kernel.view(1, 1, 1, -1).expand(channels, 1, 1, -1), groups=channels
    )
    x = F.conv2d(
        F.pad(x, [0, 0, pad, pad], mode="reflect"), kernel.view(1, 1, -1, 1).expand(channels, 1, -1, 1), groups=channels
    )
    return x.squeeze(0).round_().to(torch.uint8)


class RandomGaussianBlur:
    """:func:`gaussian_blur` with sigma drawn uniformly from ``sigma`` (as torchvision's GaussianBlur)."""

    def __init__(self, kernel_size: int, sigma: tuple[float, float]):
        self.kernel_size, self.sigma = kernel_size, sigma

    def __call__(self, image: torch.Tensor) -> torch.Tensor:
        return gaussian_blur(image, self.kernel_size, torch.empty(1).uniform_(*self.sigma).item())


@dataclass(frozen=True)
class Preprocess:
    """The deterministic view: resize the shorter side, center crop, normalise.

    This view works on uint8 tensors from decoding on (torch's antialiased uint8 resize is about 4x
    faster than PIL's and within one level of it); the strong view works on the PIL image until its
    blur. Both end as uint8 C x H x W: a quarter of float32's bytes between loader workers and the
    model. :meth:`normalize` finishes a batch.
    """

    size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    interpolation: str = "bicubic"

    @property
    def draft(self) -> int:
        """JPEG draft size of the deterministic view: its resize sees at least ``size`` pixels."""
        return self.size

    @property
    def strong_draft(self) -> int:
        """JPEG draft size of the strong view: even its smallest crop keeps ``size`` pixels."""
        return int(np.ceil(self.size / STRONG_MIN_SIDE))

    def pixels(self) -> v2.Compose:
        """The deterministic view as uint8 C x H x W."""
        return v2.Compose(
            [
                limit_aspect,
                v2.PILToTensor(),
                v2.Resize(self.size, interpolation=v2.InterpolationMode(self.interpolation), antialias=True),
                v2.CenterCrop(self.size),
            ]
        )

    def normalize(self, batch: torch.Tensor, dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """uint8 N x C x H x W -> the model's input, computed in float32 as ToTensor + Normalize do."""
        mean = torch.tensor(self.mean, device=batch.device).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=batch.device).view(1, -1, 1, 1)
        return batch.float().div_(255).sub_(mean).div_(std).to(dtype)

    def strong_pixels(self) -> v2.Compose:
        """The strong view of the method's prompt-tuning step, as uint8 C x H x W.

        As the reference code makes it: on the PIL image, crop with bilinear and perspective with
        bicubic interpolation (torchvision has no bicubic perspective for tensors), then the blur.
        """
        jitter = v2.ColorJitter(0.4, 0.4, 0.4, 0.1)
        return v2.Compose(
            [
                v2.RandomResizedCrop(
                    self.size, scale=(STRONG_MIN_SCALE, 1.0), interpolation=v2.InterpolationMode.BILINEAR
                ),
                v2.RandomHorizontalFlip(),
                v2.RandomApply([jitter], p=0.8),
                v2.RandomPerspective(distortion_scale=0.2, p=0.5, interpolation=v2.InterpolationMode.BICUBIC),
                jitter,
                v2.PILToTensor(),
                RandomGaussianBlur(2 * (self.size // 20) + 1, sigma=(0.1, 2.0)),
            ]
        )

    def as_dict(self) -> dict:
        d = asdict(self)
        d["mean"], d["std"] = list(self.mean), list(self.std)
        return d
