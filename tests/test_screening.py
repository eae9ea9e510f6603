"""The bad-image gauntlet: every case in the unlabeled pool and in the test split, screened once by
the split stage (pipeline.data.screening); readable odd formats kept and converted, the rest skipped
with a reason, or the run stopped under data.bad_images = 'fail'."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from PIL import Image
from torchvision import transforms as T

from pipeline.core.artifacts import file_sha256
from pipeline.data import datasets, screening
from pipeline.data.datasets import create_dataset
from pipeline.data.images import ImageError, Preprocess, load_rgb, load_screened
from pipeline.encode.features import ImageList

from bad_images import CASES, good, noise, unreadable, without_file_access_override, write_case
from helpers import PROJECT, smoke_params

LABELS = ("café au lait", "dog")  # a non-ASCII class name with spaces
PREPROCESS = Preprocess(size=32, mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))


def manifest_collection(root: Path, bad: dict[str, list[str]], params_extra: dict | None = None):
    """Two classes with three good images per split, plus ``bad`` ids: split -> ids (label = folder)."""
    rows = []
    for n, (label, split, i) in enumerate((lab, s, i) for lab in LABELS for s in ("pool", "test") for i in range(3)):
        folder = root / label / split
        folder.mkdir(parents=True, exist_ok=True)
        good(folder / f"good {i}.png", seed=1000 + n)  # seeds no gauntlet file uses: no accidental duplicate
        rows.append((f"{label}/{split}/good {i}.png", label, "train" if split == "pool" else "test"))
    for split, ids in bad.items():
        rows += [(i, i.split("/")[0], "train" if split == "pool" else "test") for i in ids]
    with (root / "manifest.csv").open("w", newline="", encoding="utf-8") as f:
        csv.writer(f).writerows([("path", "label", "split"), *rows])
    params = datasets.DataParams(
        source="manifest", root=str(root), manifest=str(root / "manifest.csv"), **(params_extra or {})
    )
    return create_dataset(params), params


@pytest.mark.unit
@pytest.mark.parametrize("case", list(CASES))
def test_each_case_in_the_pool_and_in_the_test_split(tmp_path, case):
    root = tmp_path / "images"
    pool_id = write_case(root, "dog", "pool", case, seed=1)
    test_id = write_case(root, "café au lait", "test", case, seed=2)
    collection, params = manifest_collection(root, {"pool": [pool_id], "test": [test_id]})
    screened = screening.screen(collection, params)
    reason = CASES[case][2]
    report = screened.report("skip")
    if reason is None:
        assert pool_id in screened.collection.pool and test_id in screened.collection.test
        assert screened.skipped == []
        for image_id in (pool_id, test_id):
            image = load_rgb(root / image_id)
            assert image.mode == "RGB"
            view = PREPROCESS.normalize(PREPROCESS.pixels()(image)[None])[0]
            assert view.shape == (3, 32, 32) and torch.isfinite(view).all()
    else:
        assert pool_id not in screened.collection.pool and test_id not in screened.collection.test
        assert [(s["id"], s["split"], s["reason"]) for s in report["skipped"]] == [
            (pool_id, "pool", reason),
            (test_id, "test", reason),
        ]
        assert report["reasons"] == {reason: 2}
        assert report["counts"]["pool"] == {"listed": 7, "kept": 6, "skipped": 1}
        assert str(root) not in json.dumps(report), "the report holds ids, not machine-specific paths"
    assert len(screened.collection.pool) + len(screened.collection.test) == 12 + 2 * (reason is None)


@pytest.mark.unit
def test_converted_pixels_are_what_the_file_shows(tmp_path):
    """Odd formats are converted the way a viewer shows them, not just made loadable."""
    for case in ("EXIF-rotated JPEG", "palette PNG with transparency", "RGBA PNG", "16-bit PNG", "animated GIF"):
        write_case(tmp_path, "x", "pool", case, seed=3)
    folder = tmp_path / "x" / "pool"
    assert load_rgb(folder / "exif.jpg").size == (10, 20)
    palette = Image.open(folder / "palette.png")
    transparent = np.asarray(palette) == palette.info["transparency"]
    assert transparent.any() and (np.asarray(load_rgb(folder / "palette.png"))[transparent] == 255).all()
    rgba = np.asarray(Image.open(folder / "rgba.png")).astype(float)
    expected = rgba[..., :3] * 128 / 255 + 255 * (1 - 128 / 255)
    assert np.abs(np.asarray(load_rgb(folder / "rgba.png")).astype(float) - expected).max() <= 1.0
    assert np.asarray(load_rgb(folder / "16bit.png")).max() > 200
    assert tuple(np.asarray(load_rgb(folder / "animated.gif"))[0, 0]) == (200, 3, 0), "the first frame"


@pytest.mark.unit
def test_panorama_is_cropped_before_the_resize(tmp_path):
    """Same view as resize + center crop would give, without the 448000 x 224 intermediate image."""
    image = noise((9000, 30), seed=4)
    cropped = PREPROCESS.pixels()(image)
    full = T.Compose(PREPROCESS.pixels().transforms[1:])  # resize + crop without the aspect limit
    torch.testing.assert_close(cropped.float(), full(image).float(), atol=3, rtol=0)
    square = noise((40, 30), seed=5)
    assert torch.equal(PREPROCESS.pixels()(square), full(square)), "ordinary images are untouched"


@pytest.mark.unit
def test_duplicates_keep_one_copy(tmp_path):
    root = tmp_path / "images"
    for split, name in (("pool", "a.png"), ("pool", "b.png"), ("test", "c.png")):
        (root / "dog" / split).mkdir(parents=True, exist_ok=True)
        noise(seed=42).save(root / "dog" / split / name)
    (root / "dog" / "test" / "d.png").write_bytes((root / "dog" / "pool" / "a.png").read_bytes())
    ids = {"pool": ["dog/pool/a.png", "dog/pool/b.png"], "test": ["dog/test/c.png", "dog/test/d.png"]}
    collection, params = manifest_collection(root, ids)
    screened = screening.screen(collection, params)
    skipped = {s.id: (s.split, s.reason, s.detail) for s in screened.skipped}
    # a given test split keeps its first copy; the pool copies of a test image go
    assert skipped == {
        "dog/pool/a.png": ("pool", "duplicate", "same bytes as dog/test/c.png"),
        "dog/pool/b.png": ("pool", "duplicate", "same bytes as dog/test/c.png"),
        "dog/test/d.png": ("test", "duplicate", "same bytes as dog/test/c.png"),
    }
    assert "dog/test/c.png" in screened.collection.test


def folder_tree(root: Path, bad: bool) -> Path:
    """root/<class>/<images> with 8 good images per class; ``bad`` adds unusable files and noise."""
    for c, label in enumerate(("café_au lait", "dog", "empty class")):
        (root / label).mkdir(parents=True, exist_ok=True)
        if label == "empty class":
            continue
        for i in range(8):
            good(root / label / f"{i}.png", seed=10 * c + i)
    if bad:
        for label, case in (
            ("dog", "zero-byte"),
            ("dog", "symlink loop"),
            ("café_au lait", "truncated JPEG"),
            ("café_au lait", "link to nothing"),
            ("empty class", "decompression bomb"),
        ):
            name, writer, _ = CASES[case]
            writer(root / label / name, 7)
        (root / "dog" / "copy.png").write_bytes((root / "dog" / "3.png").read_bytes())
        (root / "dog" / ".DS_Store").write_bytes(b"\0\0\0\1Bud1")
        (root / "dog" / "._0.png").write_bytes(b"\0\5\26\7 AppleDouble")
        (root / "dog" / ".thumbnails").mkdir()
        good(root / "dog" / ".thumbnails" / "0.png", seed=99)
        (root / "dog" / "notes.txt").write_text("not listed: no image suffix")
    return root


@pytest.mark.unit
def test_folder_source_bad_files_do_not_move_the_good_ones(tmp_path):
    params = {"source": "folder", "test_fraction": 0.25, "seed": 3}
    clean_params = datasets.DataParams(root=str(folder_tree(tmp_path / "clean", bad=False)), **params)
    dirty_params = datasets.DataParams(root=str(folder_tree(tmp_path / "dirty", bad=True)), **params)
    clean = screening.screen(create_dataset(clean_params), clean_params)
    dirty = screening.screen(create_dataset(dirty_params), dirty_params)
    for field in ("classes", "pool", "test", "test_labels", "pool_labels"):
        assert getattr(dirty.collection, field) == getattr(clean.collection, field), field
    assert clean.collection.classes == ["café au lait", "dog", "empty class"]
    reasons = {s.id: s.reason for s in dirty.skipped}
    assert reasons == {
        "dog/zero.jpg": "empty",
        "dog/loop.jpg": "symlink_loop",
        "dog/copy.png": "duplicate",
        "café_au lait/truncated.jpg": "corrupt",
        "café_au lait/dangling.jpg": "missing",
        "empty class/bomb.png": "decompression_bomb",
    }, "hidden files and non-images are not listed"
    report = dirty.report("skip")
    assert report["empty_classes"] == ["empty class"] and clean.empty_classes() == ["empty class"]
    assert sum(c["listed"] for c in report["counts"].values()) == 16 + 6
    out_clean, out_dirty = tmp_path / "split_clean", tmp_path / "split_dirty"
    datasets.write_split(clean.collection, out_clean, clean.hashes)
    datasets.write_split(dirty.collection, out_dirty, dirty.hashes)
    for name in ("pool.parquet", "test.parquet", "labels.parquet", "classes.json"):
        assert (out_clean / name).read_bytes() == (out_dirty / name).read_bytes(), name
    assert pq.read_table(out_clean / "pool.parquet").column("sha256").to_pylist() == [
        file_sha256(tmp_path / "clean" / i) for i in clean.collection.pool
    ]


@pytest.mark.unit
def test_fail_policy_names_every_bad_file(tmp_path):
    root = tmp_path / "images"
    ids = [write_case(root, "dog", "pool", case, seed=1) for case in ("zero-byte", "decompression bomb")]
    collection, params = manifest_collection(root, {"pool": ids}, {"bad_images": "fail"})
    screened = screening.screen(collection, params)
    with pytest.raises(screening.BadImageError) as err:
        screening.enforce(screened, "fail", tmp_path / "skipped.json")
    message = str(err.value)
    assert "2 unusable image files" in message and "data.bad_images: skip" in message
    assert "dog/pool/zero.jpg (pool): an empty file" in message
    assert "dog/pool/bomb.png (pool): declares more than" in message and "900000000 pixels" in message
    screening.enforce(screened, "skip", tmp_path / "skipped.json")


@pytest.mark.unit
def test_a_split_with_nothing_usable_stops_the_run(tmp_path):
    root = tmp_path / "images"
    for name in ("cat", "dog"):
        (root / name).mkdir(parents=True)
        for i in range(4):
            (root / name / f"{i}.jpg").write_bytes(b"")
    params = datasets.DataParams(source="folder", root=str(root))
    screened = screening.screen(create_dataset(params), params)
    with pytest.raises(screening.BadImageError, match=r"the pool split has no usable image \(6 listed, 6 skipped\)"):
        screening.enforce(screened, "skip", tmp_path / "skipped.json")


@pytest.mark.unit
def test_a_file_broken_after_the_split_is_named_not_a_traceback(tmp_path):
    good(tmp_path / "a.png", seed=0)
    images = ImageList(tmp_path, ["a.png"], PREPROCESS.pixels())
    assert images[0].shape == (3, 32, 32)
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"a.png: no longer decodes .*rerun split \(dvc repro split\)"):
        images[0]
    with pytest.raises(ImageError):
        load_screened(tmp_path / "missing.png")


@pytest.mark.e2e
def test_a_worker_that_meets_a_broken_file_gives_one_clean_message(tmp_path):
    """DataLoader workers re-raise errors with their traceback as text; the stage prints the message."""
    from pipeline.data.synthetic import generate

    root = generate(tmp_path / "images", classes=2, per_class=4, size=16)
    params = datasets.DataParams(source="folder", root=str(root), test_fraction=0.25)
    datasets.write_split(create_dataset(params), tmp_path / "split")
    broken = sorted(root.rglob("*.png"))[0]
    broken.write_bytes(broken.read_bytes()[:40])
    config = {
        **smoke_params(),
        "datasets": {"x": {"data": params.model_dump()}},
        "features": {"batch_size": 2, "num_workers": 2},
    }
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(config))
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "stages.features",
            "clip",
            "x",
            str(tmp_path / "split"),
            str(tmp_path / "out"),
            "--params",
            str(tmp_path / "params.yaml"),
        ],
        cwd=PROJECT,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2 and "Traceback" not in result.stderr
    error = result.stderr[result.stderr.index("error: ") :].rstrip()
    assert error.startswith(f"error: {broken}: no longer decodes (") and "\n" not in error
    assert error.endswith("rerun split (dvc repro split)")


def run_split(project: Path, params: dict, *, unprivileged: bool) -> subprocess.CompletedProcess:
    (project / "params.yaml").write_text(yaml.safe_dump(params, allow_unicode=True))
    return subprocess.run(
        [sys.executable, "-m", "stages.split", "x", str(project / "out"), "--params", str(project / "params.yaml")],
        cwd=PROJECT,
        capture_output=True,
        text=True,
        env={**os.environ, "NOLA_LOG": "INFO"},
        preexec_fn=without_file_access_override if unprivileged else None,
    )


@pytest.mark.e2e
def test_split_stage_runs_the_whole_gauntlet(tmp_path):
    """The real stage on every case at once, in both splits, as a process that file permissions
    apply to (root is made to lose its read-anything capability): exit 0, a summary with counts,
    skipped.json with every bad file and its reason, no traceback. Then the same with 'fail'."""
    root = tmp_path / "images"
    ids: dict[str, list[str]] = {"pool": [], "test": []}
    for n, case in enumerate(CASES):
        for split, label in (("pool", "dog"), ("test", "café au lait")):
            ids[split].append(write_case(root, label, split, case, seed=2 * n + (split == "test")))
    for split, label in (("pool", "dog"), ("test", "café au lait")):
        (root / label / split).mkdir(parents=True, exist_ok=True)
        unreadable(root / label / split / "secret.jpg", seed=5)
        ids[split].append(f"{label}/{split}/secret.jpg")
    collection, params = manifest_collection(root, ids)
    data = params.model_dump()

    result = run_split(tmp_path, {"datasets": {"x": {"data": data}}}, unprivileged=True)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    bad = {c: r for c, (_, _, r) in CASES.items() if r} | {"no read permission": "unreadable"}
    n_bad, n_listed = 2 * len(bad), 2 * (len(CASES) + 1) + 12
    assert f"{n_bad} of {n_listed} files skipped" in result.stderr
    report = json.loads((tmp_path / "out" / "skipped.json").read_text())
    assert report["policy"] == "skip"
    assert sorted(report["reasons"].items()) == sorted((r, 2 * list(bad.values()).count(r)) for r in set(bad.values()))
    assert {(s["split"], s["id"].split("/")[-1], s["reason"]) for s in report["skipped"]} == {
        (split, CASES[c][0] if c in CASES else "secret.jpg", r) for c, r in bad.items() for split in ("pool", "test")
    }
    kept = pq.read_table(tmp_path / "out" / "pool.parquet").column("id").to_pylist()
    assert len(kept) == n_listed // 2 - len(bad) and not {s["id"] for s in report["skipped"]} & set(kept)

    data["bad_images"] = "fail"
    result = run_split(tmp_path, {"datasets": {"x": {"data": data}}}, unprivileged=True)
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.startswith(f"error: {n_bad} unusable image files")
    assert "dog/pool/secret.jpg (pool): no permission to read it" in result.stderr
    assert "café au lait/test/loop.jpg (test): a loop of symbolic links" in result.stderr
    assert json.loads((tmp_path / "out" / "skipped.json").read_text())["policy"] == "fail"
