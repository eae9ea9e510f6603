"""The gauntlet: one writer per kind of dirty image file, and the test helper that makes root
really unable to read a chmod-000 file. Each writer takes a path and a seed (different seeds give
different bytes, so the pool and test copies of a case are not duplicates of each other)."""

from __future__ import annotations

import ctypes
import io
import os
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image


def noise(size: tuple[int, int] = (24, 24), seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))


def good(path: Path, seed: int) -> None:
    noise(seed=seed).save(path, format="PNG" if path.suffix == ".png" else "JPEG")


def zero_byte(path: Path, seed: int) -> None:
    path.write_bytes(b"")


def truncated_jpeg(path: Path, seed: int) -> None:
    buffer = io.BytesIO()
    noise((64, 64), seed).save(buffer, format="JPEG", quality=95)
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def text_named_jpg(path: Path, seed: int) -> None:
    path.write_text(f"this is a text file, not an image ({seed})\n")


def png_named_jpg(path: Path, seed: int) -> None:
    noise(seed=seed).save(path, format="PNG")


def cmyk_jpeg(path: Path, seed: int) -> None:
    noise(seed=seed).convert("CMYK").save(path, format="JPEG")


def png_16bit(path: Path, seed: int) -> None:
    values = np.random.default_rng(seed).integers(0, 65536, (24, 24), dtype=np.uint16)
    Image.fromarray(values).save(path)


def palette_transparent(path: Path, seed: int) -> None:
    image = noise(seed=seed).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    image.save(path, transparency=0)


def la_png(path: Path, seed: int) -> None:
    noise(seed=seed).convert("LA").save(path)


def rgba_png(path: Path, seed: int) -> None:
    image = noise(seed=seed).convert("RGBA")
    image.putalpha(128)
    image.save(path)


def exif_rotated(path: Path, seed: int) -> None:
    image = noise((20, 10), seed)
    exif = image.getexif()
    exif[0x0112] = 6  # displayed rotated by 90 degrees
    image.save(path, exif=exif)


def one_pixel(path: Path, seed: int) -> None:
    noise((1, 1), seed).save(path)


def panorama(path: Path, seed: int) -> None:
    """20000 x 10: resizing its short side to 224 would make a 448000 x 224 image."""
    Image.new("RGB", (20000, 10), tuple(int(v) for v in np.random.default_rng(seed).integers(0, 256, 3))).save(path)


def decompression_bomb(path: Path, seed: int) -> None:
    """A 1 x 1 PNG whose header declares 30000 x 30000 pixels (a few dozen bytes on disk)."""
    buffer = io.BytesIO()
    noise((1, 1), seed).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    data[16:24] = struct.pack(">II", 30000, 30000)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])) & 0xFFFFFFFF)
    path.write_bytes(bytes(data))


def animated_gif(path: Path, seed: int) -> None:
    frames = [Image.new("RGB", (16, 16), (200, seed % 256, i * 60)) for i in range(3)]
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)


def symlink_loop(path: Path, seed: int) -> None:
    """``path`` -> ``path.loop`` -> ``path`` (the second name has no image suffix)."""
    os.symlink(path.name + ".loop", path)
    os.symlink(path.name, path.with_name(path.name + ".loop"))


def unreadable(path: Path, seed: int) -> None:
    good(path, seed)
    path.chmod(0)


def dangling_link(path: Path, seed: int) -> None:
    os.symlink("nowhere.jpg", path)


Writer = Callable[[Path, int], None]

# case -> (file name, writer, reason it is skipped for, or None: kept and converted)
CASES: dict[str, tuple[str, Writer, str | None]] = {
    "zero-byte": ("zero.jpg", zero_byte, "empty"),
    "truncated JPEG": ("truncated.jpg", truncated_jpeg, "corrupt"),
    "text file named .jpg": ("text.jpg", text_named_jpg, "not_an_image"),
    "PNG with a .jpg name": ("png.jpg", png_named_jpg, None),
    "CMYK JPEG": ("cmyk.jpg", cmyk_jpeg, None),
    "16-bit PNG": ("16bit.png", png_16bit, None),
    "palette PNG with transparency": ("palette.png", palette_transparent, None),
    "LA PNG": ("la.png", la_png, None),
    "RGBA PNG": ("rgba.png", rgba_png, None),
    "EXIF-rotated JPEG": ("exif.jpg", exif_rotated, None),
    "1x1 pixel": ("pixel.png", one_pixel, None),
    "20000x10 panorama": ("panorama.png", panorama, None),
    "decompression bomb": ("bomb.png", decompression_bomb, "decompression_bomb"),
    "animated GIF": ("animated.gif", animated_gif, None),
    "symlink loop": ("loop.jpg", symlink_loop, "symlink_loop"),
    "link to nothing": ("dangling.jpg", dangling_link, "missing"),
    "non-ASCII and space name": ("çà et là 1.png", good, None),
}


def write_case(root: Path, label: str, split: str, case: str, seed: int) -> str:
    """Write one case's file under root/<label>/<split>/ and return its id."""
    name, writer, _ = CASES[case]
    folder = root / label / split
    folder.mkdir(parents=True, exist_ok=True)
    writer(folder / name, seed)
    return f"{label}/{split}/{name}"


def without_file_access_override() -> None:
    """preexec_fn: root normally reads a chmod-000 file (CAP_DAC_OVERRIDE). Dropping that
    capability and CAP_DAC_READ_SEARCH from the bounding set before exec makes the child a root
    that file permissions apply to, so "permission denied" really happens."""
    if os.geteuid() != 0:
        return
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):  # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP) failed")
