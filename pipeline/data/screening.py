"""Screening every listed image once, in the split stage, so that no later stage meets a bad one.

Each file is hashed (the split records the hash) and decoded exactly as the features, tune and
evaluate stages will decode it (:func:`pipeline.data.images.load_rgb`). A file that cannot be used is
skipped, or stops the run, as ``data.bad_images`` says; either way the answer names the file and
the reason, and ``skipped.json`` lists every skipped file. Readable odd formats (CMYK, 16-bit,
palette, alpha, EXIF rotation, animations, panoramas) pass: ``load_rgb`` converts them.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from pipeline.core.artifacts import file_sha256
from pipeline.core.errors import NolaError
from pipeline.core.params import DataParams
from pipeline.data.datasets import Collection, drop_images
from pipeline.data.images import load_rgb

REASONS = {
    "missing": "no such file, or a link to nothing",
    "unreadable": "no permission to read it",
    "symlink_loop": "a loop of symbolic links",
    "not_a_file": "not a regular file",
    "empty": "an empty file (0 bytes)",
    "not_an_image": "not an image format Pillow can identify",
    "decompression_bomb": f"declares more than {2 * Image.MAX_IMAGE_PIXELS:,} pixels (a decompression bomb)",
    "corrupt": "image data that cannot be decoded (truncated or corrupt)",
    "duplicate": "the same bytes as another listed image, which is kept",
}
SHOWN = 20  # problems quoted in an error message; the report lists all


class BadImageError(NolaError, ValueError):
    """Image files that stop the run, worded for the user."""


@dataclass(frozen=True)
class Skipped:
    id: str
    split: str
    reason: str
    detail: str


@dataclass
class Screened:
    """A collection with its unusable files taken out, and what was taken out."""

    collection: Collection
    hashes: dict[str, str]
    skipped: list[Skipped]
    listed: dict[str, int]

    def report(self, policy: str) -> dict:
        """The skipped.json document."""
        kept = {"pool": len(self.collection.pool), "test": len(self.collection.test)}
        return {
            "policy": policy,
            "counts": {
                s: {"listed": self.listed[s], "kept": kept[s], "skipped": self.listed[s] - kept[s]}
                for s in ("pool", "test")
            },
            "reasons": dict(sorted(Counter(s.reason for s in self.skipped).items())),
            "empty_classes": self.empty_classes(),
            "skipped": [asdict(s) for s in self.skipped],
        }

    def empty_classes(self) -> list[str]:
        """Classes left without any image known to belong to them (none for an unlabeled collection)."""
        if not self.collection.labeled:
            return []
        present = {*self.collection.pool_labels.values(), *self.collection.test_labels}
        return [c for i, c in enumerate(self.collection.classes) if i not in present]

    def summary(self) -> str:
        c = self.collection
        text = f"{len(c.classes)} classes, {len(c.pool)} pool and {len(c.test)} test images"
        if not self.skipped:
            return text + ", no file skipped"
        reasons = ", ".join(f"{n} {r}" for r, n in sorted(Counter(s.reason for s in self.skipped).items()))
        return f"{text}; {len(self.skipped)} of {sum(self.listed.values())} files skipped ({reasons}: see skipped.json)"


def _reason(err: Exception) -> str:
    if isinstance(err, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return "decompression_bomb"
    if isinstance(err, FileNotFoundError):
        return "missing"
    if isinstance(err, PermissionError):
        return "unreadable"
    if isinstance(err, OSError) and err.errno == errno.ELOOP:
        return "symlink_loop"
    if isinstance(err, UnidentifiedImageError):
        return "not_an_image"
    return "corrupt"


def inspect_file(root: Path, image_id: str) -> tuple[str | None, str, str]:
    """``(sha256, "", "")`` for a usable image, else ``(None, reason, detail)``."""
    path = root / image_id
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):  # a FIFO named x.jpg would block its reader forever
            return None, "not_a_file", ""
        if info.st_size == 0:
            return None, "empty", ""
        digest = file_sha256(path)
        load_rgb(path)
    except Exception as err:  # whatever stops reading or decoding makes the file unusable
        detail = err.strerror if isinstance(err, OSError) and err.errno else str(err)
        return None, _reason(err), f"{type(err).__name__}: {(detail or '').replace(str(path), image_id)}"
    return digest, "", ""


def _duplicates(collection: Collection, hashes: dict[str, str]) -> dict[str, str]:
    """Later copies -> the copy kept: a given test split keeps its copy, otherwise the first id."""
    test = set(collection.test) if not collection.seeded_split else set()
    first: dict[str, str] = {}
    copies = {}
    for image_id in sorted(hashes, key=lambda i: (i not in test, i)):
        kept = first.setdefault(hashes[image_id], image_id)
        if kept != image_id:
            copies[image_id] = kept
    return copies


def screen(collection: Collection, params: DataParams, workers: int | None = None) -> Screened:
    """Inspect every listed file (in parallel threads: decoding releases the GIL)."""
    split_of = {**{i: "test" for i in collection.test}, **{i: "pool" for i in collection.pool}}
    ids = sorted(split_of)
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        results = list(pool.map(lambda i: inspect_file(collection.root, i), ids))
    hashes = {i: digest for i, (digest, _, _) in zip(ids, results) if digest}
    skipped = {
        i: Skipped(i, split_of[i], reason, detail) for i, (digest, reason, detail) in zip(ids, results) if not digest
    }
    for image_id, kept in _duplicates(collection, hashes).items():
        skipped[image_id] = Skipped(image_id, split_of[image_id], "duplicate", f"same bytes as {kept}")
        del hashes[image_id]
    return Screened(
        collection=drop_images(collection, set(skipped), params),
        hashes=hashes,
        skipped=sorted(skipped.values(), key=lambda s: (s.split, s.id)),
        listed={"pool": len(collection.pool), "test": len(collection.test)},
    )


def enforce(screened: Screened, policy: str, report: Path) -> None:
    """Stop the run when ``data.bad_images`` is 'fail' and files were skipped, or when a split is empty."""
    if policy == "fail" and screened.skipped:
        lines = [
            f"  {s.id} ({s.split}): {REASONS[s.reason]}" + (f" [{s.detail}]" if s.detail else "")
            for s in screened.skipped[:SHOWN]
        ]
        more = len(screened.skipped) - SHOWN
        raise BadImageError(
            f"{len(screened.skipped)} unusable image files under {screened.collection.root} "
            "(data.bad_images = 'fail'):\n"
            + "\n".join(lines)
            + (f"\n  ... and {more} more" if more > 0 else "")
            + f"\nall are listed in {report}; fix or remove them, or set data.bad_images: skip to leave them out"
        )
    for split, what in (("pool", "nothing to tune on"), ("test", "evaluate needs labeled test images")):
        if not getattr(screened.collection, split) and (split == "pool" or screened.listed[split]):
            listed = screened.listed[split]
            raise BadImageError(
                f"the {split} split has no usable image ({listed} listed, {listed} skipped): {what}; "
                f"see {report} and check data.root / data.manifest"
            )
