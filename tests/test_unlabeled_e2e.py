"""A collection with no labels anywhere: a flat folder (or a path-only manifest) plus class names,
through real `dvc repro` to predictions for every image and the report, checked in a real browser."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from pipeline.data import synthetic

from helpers import make_dvc_project, sh, smoke_params

pytestmark = pytest.mark.e2e

CLASSES = ["circle", "square", "triangle", "stripes"]


def _flat_images(root: Path) -> list[str]:
    """Synthetic images with their class folders taken away: numbered files, some in dated sub-folders."""
    scratch = root.parent / "scratch"
    synthetic.generate(scratch, 4, 10, 64, 0)
    root.mkdir(parents=True)
    ids = []
    for n, image in enumerate(sorted(p for p in scratch.rglob("*") if p.is_file())):
        rel = f"img_{n:03d}{image.suffix}" if n % 3 else f"2024/06/img_{n:03d}{image.suffix}"
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(image, root / rel)
        ids.append(rel)
    shutil.rmtree(scratch)
    (root / "broken.jpg").write_bytes(b"")  # skipped by split, listed in the report
    return sorted(ids)


def _project(base: Path, layout: str) -> tuple[Path, list[str]]:
    params = smoke_params()
    data = {"source": "folder", "root": "data/photos", "classes_file": "classes.txt"}
    if layout == "manifest":
        data = {**data, "source": "manifest", "manifest": "data/photos.csv"}
    params["datasets"] = {"photos": {"data": data, "domain": "generic", "templates": ["a photo of a {}."]}}
    project = make_dvc_project(base / "project", params)
    ids = _flat_images(project / "data/photos")
    if layout == "manifest":
        (project / "data/photos.csv").write_text("path\n" + "".join(f"{i}\n" for i in [*ids, "broken.jpg"]))
    (project / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    return project, ids


@pytest.fixture(scope="module")
def unlabeled_run(tmp_path_factory):
    project, ids = _project(tmp_path_factory.mktemp("unlabeled"), "folder")
    start = time.monotonic()
    out = sh("dvc", "repro", cwd=project).stdout
    return project, ids, out, time.monotonic() - start


def _check_run(project: Path, ids: list[str], out: str) -> None:
    a = project / "artifacts/photos"
    for stage in ("split", "tune", "predict", "evaluate", "report"):
        assert f"Running stage '{stage}@photos'" in out
    assert pq.read_table(a / "split/test.parquet").num_rows == 0
    assert pq.read_table(a / "split/labels.parquet").num_rows == 0
    predictions = pq.read_table(a / "predict/predictions.parquet").to_pandas()
    assert sorted(predictions["id"]) == ids and set(predictions["split"]) == {"pool"}
    for method in ("zero_shot", "cde", "dl", "nola"):
        assert set(predictions[f"{method}_class_1"]) <= set(CLASSES)
        top = predictions[[f"{method}_prob_{j}" for j in (1, 2, 3)]].to_numpy()
        assert (np.diff(top, axis=1) <= 0).all() and ((top > 0) & (top <= 1)).all()
    assert json.loads((a / "evaluate/metrics.json").read_text())["evaluated"] is False
    skipped = json.loads((a / "split/skipped.json").read_text())["skipped"]
    assert [s["id"] for s in skipped] == ["broken.jpg"]
    page = (a / "report/report.html").read_text()
    assert all(f"<h3>{c}</h3>" in page for c in CLASSES) and "broken.jpg" in page
    assert "http://" not in page and "https://" not in page and "<script" not in page
    assert page.count('src="data:image/png;base64,') >= len(CLASSES)
    assert (a / "report/summary.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "Running stage" not in sh("dvc", "repro", cwd=project).stdout


def test_a_flat_folder_without_labels_ends_with_predictions_and_a_report(unlabeled_run):
    project, ids, out, seconds = unlabeled_run
    _check_run(project, ids, out)
    exported = project / "predictions.csv"
    shown = sh("python", "-m", "pipeline", "predictions", "--csv", str(exported), cwd=project).stdout
    assert f"{len(ids)} images" in shown
    assert exported.read_text().splitlines()[0].startswith("id,split,zero_shot_class_1,zero_shot_prob_1")
    size = (project / "artifacts/photos/report/report.html").stat().st_size
    print(f"unlabeled e2e: dvc repro {seconds:.0f} s, report.html {size} bytes")


def test_a_path_only_manifest_without_labels(tmp_path):
    project, ids = _project(tmp_path, "manifest")
    _check_run(project, ids, sh("dvc", "repro", cwd=project).stdout)


def test_the_report_renders_in_a_headless_browser(unlabeled_run, tmp_path):
    """Chromium (Debian's chromium + chromium-driver): no console error, every class shown, not blank."""
    from PIL import Image
    from selenium import webdriver
    from selenium.webdriver.common.by import By

    project, _, _, _ = unlabeled_run
    options = webdriver.ChromeOptions()
    options.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    service = webdriver.ChromeService(executable_path=shutil.which("chromedriver") or "/usr/bin/chromedriver")
    driver = webdriver.Chrome(options=options, service=service)
    try:
        driver.get((project / "artifacts/photos/report/report.html").as_uri())
        errors = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
        assert errors == []
        headings = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "section.class h3")]
        assert headings == CLASSES
        broken = driver.execute_script(
            "return [...document.images].filter(i => !i.complete || i.naturalWidth === 0).map(i => i.alt)"
        )
        assert broken == []
        driver.save_screenshot(str(tmp_path / "page.png"))
    finally:
        driver.quit()
    pixels = np.asarray(Image.open(tmp_path / "page.png").convert("L"), dtype=np.float32)
    assert pixels.std() > 5.0, "the screenshot is blank"
