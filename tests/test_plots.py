"""dvc.yaml's plot templates (plots/*.json), filled the way DVC fills them and rendered offline by
Vega-Lite itself (vl-convert): the training curve has a loss and an agreement panel, the per-class
plot a bar for each of the four methods."""

from __future__ import annotations

import json
import re

import pytest
import vl_convert
import yaml

from pipeline.report.evaluation import METHODS

from helpers import PROJECT

pytestmark = pytest.mark.unit
# DVC 3.67's page loads Vega-Lite 5.2.0 from its CDN; the oldest version vl-convert bundles is 5.8
OLDEST_VEGA_LITE = "5.8"


def _stage_plots() -> dict[str, dict]:
    stages = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]
    return {
        path.rsplit("/", 2)[-2] + "/" + path.rsplit("/", 1)[-1]: spec
        for stage in stages.values()
        for entry in stage.get("do", stage).get("plots", [])
        for path, spec in entry.items()
    }


def _render(template: str, rows: list[dict]) -> str:
    spec = json.loads((PROJECT / template).read_text())
    assert spec["data"]["values"] == "<DVC_METRIC_DATA>", "DVC fills the data at this anchor"
    spec["data"]["values"] = [{**r, "rev": "workspace"} for r in rows]  # DVC's rows: CSV strings plus rev
    return vl_convert.vegalite_to_svg(spec, vl_version=OLDEST_VEGA_LITE)


def _texts(svg: str) -> set[str]:
    return set(re.findall(r"<text[^>]*>([^<]+)</text>", svg))


def test_training_curve_shows_loss_and_agreement_per_epoch():
    template = _stage_plots()["tune/log.csv"]["template"]
    rows = [{"epoch": str(e), "loss": str(2.0 - e / 4), "agreement": str(0.5 + e / 10), "lr": "0.1"} for e in (1, 2, 3)]
    texts = _texts(_render(template, rows))
    assert {"loss", "agreement", "epoch"} <= texts


def test_per_class_plot_shows_the_four_methods_side_by_side():
    template = _stage_plots()["evaluate/per_class.csv"]["template"]
    rows = [{"class": c, **{m: str(0.1 * (i + 1)) for i, m in enumerate(METHODS)}} for c in ("forest", "river")]
    rows[1]["cde"] = ""  # a class absent from the test split: no accuracy
    svg = _render(template, rows)
    assert set(METHODS) | {"forest", "river"} <= _texts(svg)
    bars = re.findall(r'aria-roledescription="bar"', svg)
    assert len(bars) == 2 * len(METHODS) - 1, "one bar per class and method, none for the missing accuracy"
