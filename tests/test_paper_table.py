"""The paper-table collector on fake metrics files, and the summary PNG's content."""

from __future__ import annotations

import json

import pytest
from PIL import Image

from pipeline.report.paper_table import TableError, from_exp_show, from_files, from_workspace, markdown
from pipeline.report.summary_plot import class_gains, render_summary, shown_gains

pytestmark = pytest.mark.unit


def _metrics(path, zero_shot, cde, dl, nola):
    path.write_text(
        json.dumps(
            {"accuracy": {"zero_shot": zero_shot, "cde": cde, "dl": dl, "nola": nola}, "nola_gain": nola - zero_shot}
        )
    )
    return path


def test_table_from_metrics_files(tmp_path):
    rows = from_files(
        [
            str(_metrics(tmp_path / "dtd.json", 0.44, 0.50, 0.55, 0.60)),
            "eurosat=" + str(_metrics(tmp_path / "m.json", 0.50, 0.55, 0.70, 0.75)),
        ]
    )
    assert rows["dtd"] == pytest.approx({"zero_shot": 44.0, "cde": 50.0, "dl": 55.0, "nola": 60.0})
    table = markdown(rows)
    lines = table.splitlines()
    assert lines[2] == "| dtd | 44.0 | 50.0 | 55.0 | 60.0 | +16.0 | 44.4 |"
    assert lines[3] == "| eurosat | 50.0 | 55.0 | 70.0 | 75.0 | +25.0 | 50.4 |"
    assert lines[4] == "| **average (2)** | **47.0** | **52.5** | **62.5** | **67.5** | **+20.5** | |"
    assert "+11.9 points over zero-shot CLIP and +3.6 over LaFTer" in table
    assert "This run (2 datasets): NoLA +20.5 points over zero-shot CLIP on average (+8.6 against" in table


def test_bad_metrics_file_is_named(tmp_path):
    (tmp_path / "x.json").write_text(json.dumps({"nola": {"accuracy": 0.5}}))
    with pytest.raises(TableError, match="x.json: not a metrics.json"):
        from_files([str(tmp_path / "x.json")])
    with pytest.raises(TableError, match="no metrics"):
        markdown({})


def _exp(name, datasets):
    return {
        "rev": name,
        "name": name,
        "data": {
            "metrics": {
                f"artifacts/{ds}/evaluate/metrics.json": {
                    "data": {"accuracy": {"zero_shot": 0.5, "cde": 0.5, "dl": 0.5, "nola": nola}}
                }
                for ds, nola in datasets.items()
            }
        },
        "experiments": None,
    }


def test_exp_show_reads_every_datasets_metrics_later_revisions_winning():
    baseline = _exp("main", {"eurosat": 0.9, "dtd": 0.4})
    baseline["experiments"] = [{"revs": [_exp("exp-1", {"dtd": 0.6})]}]
    rows = from_exp_show([baseline])
    assert rows["eurosat"]["nola"] == 90.0 and rows["dtd"]["nola"] == 60.0
    with pytest.raises(TableError, match="exp show"):
        from_exp_show({"not": "a list"})


def test_workspace_metrics(tmp_path):
    for ds, nola in (("dtd", 0.6), ("eurosat", 0.75)):
        (tmp_path / "artifacts" / ds / "evaluate").mkdir(parents=True)
        _metrics(tmp_path / "artifacts" / ds / "evaluate" / "metrics.json", 0.5, 0.5, 0.5, nola)
    rows = from_workspace(tmp_path)
    assert sorted(rows) == ["dtd", "eurosat"] and rows["eurosat"]["nola"] == 75.0


def test_class_gains_sorted_and_trimmed():
    gains = class_gains(["a", "b", "c", "d"], [0.5, None, 0.9, 0.2], [0.7, 0.3, 0.4, 0.2])
    assert gains == [("a", pytest.approx(20.0)), ("d", 0.0), ("c", pytest.approx(-50.0))]
    many = [(f"c{i}", float(100 - i)) for i in range(100)]
    shown = shown_gains(many, limit=10)
    assert [c for c, _ in shown] == ["c0", "c1", "c2", "c3", "c4", "c95", "c96", "c97", "c98", "c99"]


def test_summary_png_is_reproducible(tmp_path):
    args = (
        "NoLA on test",
        {"zero_shot": 0.4, "cde": 0.5, "dl": 0.6, "nola": 0.7},
        ["x", "y"],
        {"zero_shot": [0.2, 0.6], "nola": [0.9, 0.5]},
    )
    render_summary(tmp_path / "a.png", *args)
    render_summary(tmp_path / "b.png", *args)
    assert (tmp_path / "a.png").read_bytes() == (tmp_path / "b.png").read_bytes()
    with Image.open(tmp_path / "a.png") as im:
        assert im.format == "PNG" and "Software" not in im.info
