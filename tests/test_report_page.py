"""The report's library: what it counts and what the page holds, on small hand-made predictions."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from pipeline.report.page import (
    ReportInputs,
    agreement_matrix,
    class_counts,
    confident_examples,
    render_html,
    without_pseudo_labels,
)
from pipeline.report.predictions import export_csv, predictions_table, write_predictions

pytestmark = pytest.mark.unit

CLASSES = ["cat", "dog", "owl"]


def _probs() -> dict[str, np.ndarray]:
    nola = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.6, 0.3, 0.1], [0.4, 0.4, 0.2]])
    return {"zero_shot": nola[:, ::-1].copy(), "cde": nola, "dl": nola, "nola": nola}


def _frame() -> pd.DataFrame:
    return predictions_table(["a.png", "b.png", "c.png", "d.png"], ["pool"] * 4, _probs(), CLASSES, 2).to_pandas()


def test_predictions_keep_the_top_classes_in_order_ties_to_the_earlier_class():
    frame = _frame()
    assert list(frame.columns[:6]) == [
        "id",
        "split",
        "zero_shot_class_1",
        "zero_shot_prob_1",
        "zero_shot_class_2",
        "zero_shot_prob_2",
    ]
    assert list(frame["nola_class_1"]) == ["cat", "dog", "cat", "cat"]
    assert list(frame["nola_class_2"]) == ["dog", "owl", "dog", "dog"]
    assert frame["nola_prob_1"].tolist() == pytest.approx([0.7, 0.5, 0.6, 0.4])


def test_agreement_counts_and_examples():
    frame = _frame()
    agree = agreement_matrix(frame)
    assert agree.shape == (4, 4) and np.allclose(np.diag(agree), 1.0)
    assert agree[1, 3] == 1.0  # cde and nola have the same probabilities
    assert agree[0, 3] == 0.25  # zero-shot (classes reversed) agrees with NoLA on b.png only
    assert class_counts(frame, CLASSES)["nola"] == [3, 1, 0]
    most, least = confident_examples(frame, "cat", 1)
    assert list(most["id"]) == ["a.png"] and list(least["id"]) == ["d.png"]
    assert confident_examples(frame, "owl", 2)[0].empty
    assert without_pseudo_labels(CLASSES, [0, 0, 1]) == ["owl"]


def test_the_page_is_self_contained_and_names_every_class(tmp_path):
    for name in ("a.png", "b.png", "c.png", "d.png"):
        Image.new("RGB", (40, 30), (200, 10, 10)).save(tmp_path / name)
    inputs = ReportInputs(
        dataset="pets",
        classes=CLASSES,
        predictions=_frame(),
        pseudo_labels=[0, 1],
        training=[{"epoch": "1", "loss": "1.2", "agreement": "0.5"}, {"epoch": "2", "loss": "0.9", "agreement": "0.7"}],
        skipped=[{"id": "x.jpg", "reason": "empty", "detail": ""}],
    )
    page = render_html(inputs, tmp_path, 2, 16)
    assert all(f"<h3>{c}</h3>" in page for c in CLASSES)
    assert '<p class="warn">owl</p>' in page and "x.jpg" in page and "No labels" in page
    assert "http" not in page and page.count("data:image/png;base64,") == 4 + 4  # 4 figures, 4 thumbnails
    assert render_html(inputs, tmp_path, 2, 16) == page
    inputs.metrics = {"evaluated": True, "accuracy": dict.fromkeys(("zero_shot", "cde", "dl", "nola"), 0.5)}
    inputs.confusion = [{"actual": "cat", "predicted": "dog"}]
    labeled = render_html(inputs, tmp_path, 2, 16)
    assert "No labels" not in labeled and "<td>NoLA</td><td>0.500</td>" in labeled
    assert 'alt="confusion matrix"' in labeled


def test_export_csv_writes_every_row(tmp_path):
    write_predictions(
        tmp_path / "p.parquet",
        predictions_table(
            ["a.png"],
            ["pool"],
            {m: np.array([[0.2, 0.8, 0.0]]) for m in ("zero_shot", "cde", "dl", "nola")},
            CLASSES,
            2,
        ),
        CLASSES,
    )
    assert export_csv(tmp_path / "p.parquet", tmp_path / "p.csv") == 1
    lines = (tmp_path / "p.csv").read_text().splitlines()
    assert lines[1].startswith("a.png,pool,dog,0.800000,cat,0.200000")


def _unlabeled_split(tmp_path):
    import pyarrow as pa
    import yaml

    from pipeline.core.artifacts import write_table
    from pipeline.data.datasets import Collection, write_split

    root = tmp_path / "img"
    root.mkdir()
    ids = ["a.png", "b.png", "c.png", "d.png"]
    for i in ids:
        Image.new("RGB", (8, 8)).save(root / i)
    write_split(Collection(root, CLASSES, ids, [], []), tmp_path / "split")
    write_predictions(tmp_path / "p.parquet", predictions_table(ids, ["pool"] * 4, _probs(), CLASSES, 2), CLASSES)
    write_table(tmp_path / "pl.parquet", pa.table({"id": ["a.png"], "label": pa.array([0], pa.int32())}))
    data = {"source": "folder", "root": str(root), "classes": CLASSES}
    params = {"datasets": {"mine": {"data": data}}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    return params


def _evaluate(tmp_path):
    import json

    from stages.evaluate import main

    main(
        "mine",
        tmp_path / "split",
        tmp_path / "p.parquet",
        tmp_path / "pl.parquet",
        tmp_path / "ev",
        tmp_path / "params.yaml",
    )
    return json.loads((tmp_path / "ev/metrics.json").read_text())


def test_evaluate_without_labels_says_so_and_with_eval_labels_scores_those_images(tmp_path):
    import yaml

    params = _unlabeled_split(tmp_path)
    assert _evaluate(tmp_path)["evaluated"] is False
    assert (tmp_path / "ev/confusion.csv").read_text().strip() == "actual,predicted"
    (tmp_path / "few.csv").write_text("path,label\na.png,cat\nb.png,owl\n")
    params["datasets"]["mine"]["data"]["eval_labels"] = str(tmp_path / "few.csv")
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    metrics = _evaluate(tmp_path)
    assert metrics["evaluated"] is True and metrics["scored_on"] == "images of data.eval_labels"
    assert metrics["accuracy"]["nola"] == 0.5 and metrics["data"]["test_images"] == 2  # a.png right, b.png wrong
    assert metrics["pseudo_labels"]["precision"] == 1.0
