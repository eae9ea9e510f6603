"""Feature extraction: bf16 fidelity, determinism, fused Linear + GELU, uint8 views, JPEG draft decoding."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image
from torchvision import transforms as T
from torchvision.transforms import v2

from pipeline.core import hardware
from pipeline.core.artifacts import file_sha256, read_features
from pipeline.core.distributed import Group
from pipeline.core.params import ClipParams, DinoParams
from pipeline.data.images import Preprocess, gaussian_blur, load_rgb
from pipeline.encode.feature_cache import PreviousFeatures, encode_split
from pipeline.encode.features import ImageEncoder
from pipeline.models.factory import create_clip, create_dino

from helpers import smoke_params

pytestmark = pytest.mark.unit

FP32 = hardware.Compute(torch.device("cpu"), torch.float32)
BF16 = hardware.Compute(torch.device("cpu"), torch.bfloat16)


def _smoke_encoder(name: str):
    if name == "clip":
        model, preprocess, _ = create_clip(ClipParams(**smoke_params()["clip"]))
        return model.visual, preprocess
    return create_dino(DinoParams(**smoke_params()["dino"]))


def _ids(root) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*.*"))


@pytest.mark.parametrize("encoder", ["clip", "dino"])
def test_bf16_features_stay_close_to_fp32(synthetic_root, encoder):
    ids = _ids(synthetic_root)
    features = {}
    for compute in (FP32, BF16):
        encode = ImageEncoder.prepare(*_smoke_encoder(encoder), compute, batch_size=5)
        assert next(encode.network.parameters()).dtype == compute.dtype
        features[compute.precision] = encode.encode(synthetic_root, ids)
    cosine = torch.nn.functional.cosine_similarity(
        torch.from_numpy(features["fp32"]), torch.from_numpy(features["bf16"]), dim=-1
    )
    assert cosine.mean() >= 0.99, cosine
    assert not np.array_equal(features["fp32"], features["bf16"])  # bf16 really ran


def test_bf16_extraction_is_byte_identical_whatever_the_loader_workers(synthetic_root, tmp_path):
    ids = _ids(synthetic_root)
    split = tmp_path / "pool.parquet"
    pq.write_table(pa.table({"id": ids, "sha256": [file_sha256(synthetic_root / i) for i in ids]}), split)
    encode = ImageEncoder.prepare(*_smoke_encoder("dino"), BF16, batch_size=4)
    meta = {"encoder": "dino", "compute": BF16.as_dict()}
    outs = [tmp_path / name / "pool.parquet" for name in ("a", "b", "workers")]
    for out, workers in zip(outs, (0, 0, 2)):
        encode_split(
            out,
            split,
            replace(encode, num_workers=workers),
            meta,
            synthetic_root,
            7,
            Group(),
            PreviousFeatures([], meta),
            "test",
        )
    assert outs[0].read_bytes() == outs[1].read_bytes() == outs[2].read_bytes()
    got_ids, features, got_meta = read_features(outs[0])
    assert got_ids == ids and features.shape == (len(ids), 64)
    assert got_meta["compute"] == {"device": "cpu", "precision": "bf16"}


def test_uint8_views_match_the_pil_transforms_and_normalise_exactly(synthetic_root):
    preprocess = Preprocess(32, (0.48, 0.45, 0.40), (0.26, 0.26, 0.27))
    image = load_rgb(synthetic_root / _ids(synthetic_root)[0])
    pixels = preprocess.pixels()(image)
    pil_view = T.Compose([T.Resize(32, interpolation=T.InterpolationMode.BICUBIC), T.CenterCrop(32)])(image)
    assert (pixels.int() - T.functional.pil_to_tensor(pil_view).int()).abs().max() <= 1
    reference = T.Compose([T.ToTensor(), T.Normalize(preprocess.mean, preprocess.std)])(
        T.functional.to_pil_image(pixels)
    )
    assert torch.equal(preprocess.normalize(pixels[None])[0], reference)


@pytest.mark.parametrize("sigma", [0.1, 0.8, 2.0])
def test_separable_blur_matches_torchvision(synthetic_root, sigma):
    pixels = T.functional.pil_to_tensor(load_rgb(synthetic_root / _ids(synthetic_root)[1]))
    ours = gaussian_blur(pixels, 23, sigma)
    theirs = v2.functional.gaussian_blur(pixels, [23, 23], [sigma, sigma])
    assert ours.dtype == torch.uint8 and (ours.int() - theirs.int()).abs().max() <= 1


def _marked_photo(path, size=(1600, 1200), box=(1000, 300, 1160, 420), exif_orientation: int | None = None):
    """A smooth gradient with one bright rectangle at a known place."""
    w, h = size
    x, y = np.meshgrid(np.linspace(0, 1, w), np.linspace(0, 1, h))
    pixels = np.stack([80 + 60 * x, 60 + 80 * y, 90 + 40 * x * y], axis=-1)
    pixels[box[1] : box[3], box[0] : box[2]] = 250
    image = Image.fromarray(pixels.astype(np.uint8))
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    image.save(path, quality=95, exif=exif)


def _bright_centre(view: torch.Tensor) -> np.ndarray:
    ys, xs = np.nonzero(view.float().mean(0).numpy() > 200)
    return np.array([xs.mean(), ys.mean()])


@pytest.mark.parametrize("orientation", [None, 6])
def test_jpeg_draft_keeps_the_geometry_and_the_exif_orientation(tmp_path, orientation):
    path = tmp_path / "photo.jpg"
    _marked_photo(path, exif_orientation=orientation)
    preprocess = Preprocess(224, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    full, drafted = load_rgb(path), load_rgb(path, draft=preprocess.draft)
    expected_full = (1200, 1600) if orientation == 6 else (1600, 1200)
    assert full.size == expected_full
    assert drafted.size == (expected_full[0] // 4, expected_full[1] // 4)  # 1200 // 224 = 5 -> 1/4 scale
    assert min(drafted.size) >= preprocess.size
    a, b = preprocess.pixels()(full), preprocess.pixels()(drafted)
    assert a.shape == b.shape == (3, 224, 224)
    assert np.abs(_bright_centre(a) - _bright_centre(b)).max() < 1.0
    assert (a.float() - b.float()).abs().mean() < 2.0


def test_draft_leaves_small_and_non_jpeg_images_alone(tmp_path):
    _marked_photo(tmp_path / "small.jpg", size=(400, 300), box=(10, 10, 50, 50))
    Image.new("RGB", (900, 900), (1, 2, 3)).save(tmp_path / "big.png")
    assert load_rgb(tmp_path / "small.jpg", draft=224).size == (400, 300)
    assert load_rgb(tmp_path / "big.png", draft=224).size == (900, 900)


def test_precision_auto_follows_the_hardware():
    compute = hardware.resolve("cpu", "auto")
    assert compute.dtype == (torch.bfloat16 if hardware.cpu_has_bf16() else torch.float32)
    assert hardware.resolve("cpu", "fp32").dtype == torch.float32
    assert hardware.resolve("cpu", "bf16").as_dict() == {"device": "cpu", "precision": "bf16"}
    with pytest.raises(hardware.HardwareError, match=r"features.precision = 'fp16'.*bf16"):
        hardware.resolve("cpu", "fp16")
    if torch.cuda.is_available():
        assert hardware.resolve("auto", "fp32").device.type == "cuda"
    else:
        assert hardware.resolve("auto", "fp32").device.type == "cpu"
        with pytest.raises(hardware.HardwareError, match=r"tune.device = 'cuda'"):
            hardware.resolve("cuda", "auto", "tune")


@pytest.mark.parametrize("encoder", ["clip", "dino"])
def test_fused_linear_gelu_computes_the_same_features(encoder):
    from pipeline.models.fusion import LinearGELU, available

    plain, preprocess = _smoke_encoder(encoder)
    fused, _ = _smoke_encoder(encoder)
    plain = plain.eval().requires_grad_(False)
    fused = ImageEncoder.prepare(fused, preprocess, FP32).network
    n_fused = sum(isinstance(m, LinearGELU) for m in fused.modules())
    assert n_fused == (2 if available() else 0)  # one per block of the 2-block smoke models
    images = torch.randn(3, 3, preprocess.size, preprocess.size)
    with torch.inference_mode():
        torch.testing.assert_close(fused(images), plain(images), rtol=1e-4, atol=1e-4)
