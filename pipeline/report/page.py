"""The label-free report: one self-contained HTML page and one PNG a person reads to check the predictions.

Everything is embedded (figures as PNG, images as small thumbnails, both base64): the page opens
offline, from an e-mail attachment or a CI artifact, and loads nothing from the network. Figures
carry no timestamp, so the same inputs give the same bytes.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.core.artifacts import output_set
from pipeline.data.images import load_rgb
from pipeline.report.evaluation import METHODS
from pipeline.report.summary_plot import COLOURS, pyplot
from pipeline.report.summary_plot import METHODS as TITLES


@dataclass
class ReportInputs:
    """What the report shows; ``metrics`` / ``confusion`` are empty for a collection without labels."""

    dataset: str
    classes: list[str]
    predictions: pd.DataFrame
    pseudo_labels: list[int]
    training: list[dict]
    skipped: list[dict]
    metrics: dict = field(default_factory=dict)
    confusion: list[dict] = field(default_factory=list)


def agreement_matrix(predictions: pd.DataFrame) -> np.ndarray:
    """Fraction of images on which two classifiers give the same top class (methods in METHODS order)."""
    top = [predictions[f"{m}_class_1"].to_numpy() for m in METHODS]
    if not len(predictions):
        return np.eye(len(METHODS))
    return np.array([[float((a == b).mean()) for b in top] for a in top])


def class_counts(predictions: pd.DataFrame, classes: list[str]) -> dict[str, list[int]]:
    """Per method, how many images it puts in each class (every class listed, zeros included)."""
    return {
        m: [int(v) for v in predictions[f"{m}_class_1"].value_counts().reindex(classes, fill_value=0)] for m in METHODS
    }


def confident_examples(predictions: pd.DataFrame, cls: str, n: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The ``n`` most and ``n`` least confident images NoLA assigns to ``cls`` (ties by id)."""
    mine = predictions[predictions["nola_class_1"] == cls].sort_values(["nola_prob_1", "id"], ascending=[False, True])
    most = mine.head(n)
    least = mine.drop(most.index).sort_values(["nola_prob_1", "id"]).head(n)
    return most, least


def without_pseudo_labels(classes: list[str], labels: list[int]) -> list[str]:
    """Classes that got no pseudo-label: the DL network and NoLA never trained on them."""
    present = set(labels)
    return [c for i, c in enumerate(classes) if i not in present]


def confusion_matrix(rows: list[dict], classes: list[str]) -> np.ndarray:
    index = {c: i for i, c in enumerate(classes)}
    matrix = np.zeros((len(classes), len(classes)), dtype=int)
    for r in rows:
        matrix[index[r["actual"]], index[r["predicted"]]] += 1
    return matrix


def thumbnail(path: Path, size: int) -> str:
    """A data: URI of a PNG thumbnail (longest side ``size``); an image that no longer opens gets none."""
    try:
        image = load_rgb(path)
    except Exception:  # the page still renders; the caption names the file
        return ""
    image.thumbnail((size, size))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode()


def _png(fig) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, metadata={"Software": None})
    pyplot().close(fig)
    return buffer.getvalue()


def _heatmap(ax, matrix: np.ndarray, labels: list[str], title: str, fmt: str) -> None:
    ax.imshow(matrix, cmap="Greens", vmin=0)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    if len(labels) <= 20:
        for (i, j), v in np.ndenumerate(matrix):
            ax.text(j, i, format(v, fmt), ha="center", va="center", fontsize=7)
    ax.set_title(title)


def _draw_agreement(ax, inputs: ReportInputs) -> None:
    _heatmap(ax, agreement_matrix(inputs.predictions), [TITLES[m] for m in METHODS], "top-1 agreement", ".2f")


def _draw_counts(ax, inputs: ReportInputs) -> None:
    counts = class_counts(inputs.predictions, inputs.classes)
    x = np.arange(len(inputs.classes))
    width = 0.8 / len(METHODS)
    for i, m in enumerate(METHODS):
        ax.bar(x + i * width, counts[m], width, label=TITLES[m], color=COLOURS[m])
    ax.set_xticks(x + 0.4 - width / 2, inputs.classes, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("images")
    ax.set_title("predicted class counts")
    ax.legend(fontsize=7)


def _draw_confidence(ax, inputs: ReportInputs) -> None:
    bins = np.linspace(0, 1, 21)
    for m in METHODS:
        ax.hist(inputs.predictions[f"{m}_prob_1"], bins=bins, histtype="step", label=TITLES[m], color=COLOURS[m])
    ax.set_xlabel("probability of the top class")
    ax.set_ylabel("images")
    ax.set_title("confidence")
    ax.legend(fontsize=7)


def _draw_training(ax, inputs: ReportInputs) -> None:
    epochs = [int(r["epoch"]) for r in inputs.training]
    ax.plot(epochs, [float(r["loss"]) for r in inputs.training], marker="o", label="loss")
    ax.plot(epochs, [float(r["agreement"]) for r in inputs.training], marker="s", label="agreement with DL labels")
    ax.set_xlabel("epoch")
    ax.set_title("tuning of NoLA")
    ax.legend(fontsize=7)


def figure(draw, inputs: ReportInputs, size: tuple[float, float] = (6, 4)) -> bytes:
    fig, ax = pyplot().subplots(figsize=size)
    draw(ax, inputs)
    fig.tight_layout()
    return _png(fig)


def summary_png(inputs: ReportInputs) -> bytes:
    """The four label-free panels on one PNG."""
    fig, axes = pyplot().subplots(2, 2, figsize=(12, 9))
    for ax, draw in zip(axes.flat, (_draw_counts, _draw_agreement, _draw_confidence, _draw_training)):
        draw(ax, inputs)
    fig.suptitle(f"NoLA on {inputs.dataset}: {len(inputs.predictions)} images, {len(inputs.classes)} classes")
    fig.tight_layout()
    return _png(fig)


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'


def _table(header: list[str], rows: list[list]) -> str:
    head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _examples(inputs: ReportInputs, root: Path, n: int, size: int) -> str:
    parts = []
    for cls in inputs.classes:
        most, least = confident_examples(inputs.predictions, cls, n)
        cells = []
        for title, rows in (("most confident", most), ("least confident", least)):
            tiles = "".join(
                f'<figure><img alt="{html.escape(r.id)}" src="{thumbnail(root / r.id, size)}">'
                f"<figcaption>{html.escape(r.id)}<br>{r.nola_prob_1:.3f}</figcaption></figure>"
                for r in rows.itertuples()
            )
            cells.append(f"<div><h4>{title}</h4>{tiles or '<p>none</p>'}</div>")
        parts.append(f'<section class="class"><h3>{html.escape(cls)}</h3>{"".join(cells)}</section>')
    return "".join(parts)


STYLE = """
body{font-family:sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;margin:.5em 0}td,th{border:1px solid #ccc;padding:2px 8px;text-align:right}
th:first-child,td:first-child{text-align:left}
figure{display:inline-block;margin:4px;text-align:center;font-size:11px;max-width:120px;word-break:break-all}
section.class{border-top:1px solid #ddd;margin-top:1em}section.class>div{display:inline-block;vertical-align:top}
.warn{color:#b00}
"""


def render_html(inputs: ReportInputs, root: Path, examples: int, thumb: int) -> str:
    """The whole page as one string."""
    n, classes = len(inputs.predictions), inputs.classes
    counts = class_counts(inputs.predictions, classes)
    agreement = agreement_matrix(inputs.predictions)
    missing = without_pseudo_labels(classes, inputs.pseudo_labels)
    body = [
        f"<h1>NoLA on {html.escape(inputs.dataset)}</h1>",
        f"<p>{n} images, {len(classes)} classes, {len(inputs.pseudo_labels)} pseudo-labels, "
        f"{len(inputs.skipped)} files skipped.</p>",
    ]
    if inputs.metrics.get("evaluated"):
        acc = inputs.metrics["accuracy"]
        body += [
            f"<h2>Accuracy ({html.escape(str(inputs.metrics.get('scored_on', 'test images')))})</h2>",
            _table(["classifier", "top-1 accuracy"], [[TITLES[m], f"{acc[m]:.3f}"] for m in METHODS]),
        ]
        if inputs.confusion:
            matrix = confusion_matrix(inputs.confusion, classes)
            fig, ax = pyplot().subplots(figsize=(6, 5))
            _heatmap(ax, matrix, classes, "NoLA confusion (rows: actual)", "d")
            fig.tight_layout()
            body.append(_img(_png(fig), "confusion matrix"))
    else:
        body.append("<p>No labels: the numbers below describe the predictions, not their accuracy.</p>")
    body += [
        "<h2>Predicted class counts</h2>",
        _table(
            ["class", *(TITLES[m] for m in METHODS)],
            [[c, *(counts[m][i] for m in METHODS)] for i, c in enumerate(classes)],
        ),
        _img(figure(_draw_counts, inputs, (8, 4)), "predicted class counts"),
        "<h2>How often the classifiers agree</h2>",
        _table(
            ["", *(TITLES[m] for m in METHODS)],
            [[TITLES[a], *(f"{v:.3f}" for v in row)] for a, row in zip(METHODS, agreement)],
        ),
        _img(figure(_draw_agreement, inputs, (5, 4)), "agreement matrix"),
        "<h2>Confidence</h2>",
        _img(figure(_draw_confidence, inputs), "confidence histograms"),
        "<h2>Training curve</h2>",
        _img(figure(_draw_training, inputs), "training curve"),
        "<h2>Classes with no pseudo-label</h2>",
        f'<p class="warn">{html.escape(", ".join(missing))}</p>'
        if missing
        else "<p>none: every class got pseudo-labels</p>",
        "<h2>Skipped files</h2>",
        _table(["file", "reason", "detail"], [[s["id"], s["reason"], s["detail"]] for s in inputs.skipped])
        if inputs.skipped
        else "<p>none</p>",
        "<h2>Per class: the most and least confident images under NoLA</h2>",
        _examples(inputs, root, examples, thumb),
    ]
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>NoLA report: {html.escape(inputs.dataset)}</title><style>{STYLE}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )


def write_report(out_dir: str | Path, inputs: ReportInputs, root: Path, examples: int, thumb: int) -> None:
    """report.html and summary.png, all or nothing (the page last)."""
    page = render_html(inputs, root, examples, thumb)
    with output_set(out_dir, last="report.html") as staging:
        (staging / "summary.png").write_bytes(summary_png(inputs))
        (staging / "report.html").write_text(page, encoding="utf-8")
