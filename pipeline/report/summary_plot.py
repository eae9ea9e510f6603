"""One PNG per dataset that a person reads at a glance: the four methods' accuracy side by side,
and where NoLA gained or lost against zero-shot CLIP, class by class."""

from __future__ import annotations

from pathlib import Path

from pipeline.core.artifacts import atomic_path

METHODS = {"zero_shot": "zero-shot CLIP", "cde": "CDE", "dl": "DINO labeller", "nola": "NoLA"}
COLOURS = {"zero_shot": "#9e9e9e", "cde": "#64b5f6", "dl": "#ffb74d", "nola": "#2e7d32"}
MAX_CLASSES = 30


def pyplot():
    """matplotlib's pyplot on the Agg backend (no display), imported on first use so that stages
    which draw nothing do not pay for it."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    return plt


def save_png(fig, path: str | Path) -> None:
    """Write and close ``fig``: no timestamp or software tag in it, so the bytes are reproducible."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, metadata={"Software": None})
    pyplot().close(fig)


def class_gains(classes: list[str], zero_shot: list[float | None], nola: list[float | None]) -> list[tuple[str, float]]:
    """Per-class gain of NoLA over zero-shot in points, largest first; classes with no test image left out."""
    gains = [(c, 100.0 * (n - z)) for c, z, n in zip(classes, zero_shot, nola) if z is not None and n is not None]
    return sorted(gains, key=lambda g: (-g[1], g[0]))


def shown_gains(gains: list[tuple[str, float]], limit: int = MAX_CLASSES) -> list[tuple[str, float]]:
    """All gains, or for many classes the largest and smallest ``limit / 2`` of each."""
    return gains if len(gains) <= limit else gains[: limit // 2] + gains[-(limit // 2) :]


def render_summary(
    path: str | Path,
    title: str,
    accuracy: dict[str, float],
    classes: list[str],
    per_class: dict[str, list[float | None]],
) -> None:
    """Write the summary PNG (no timestamps or software tag in it, so the bytes are reproducible)."""
    plt = pyplot()
    gains = class_gains(classes, per_class["zero_shot"], per_class["nola"])
    shown = shown_gains(gains)
    height = max(3.5, 0.28 * len(shown) + 1.5)
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, height), gridspec_kw={"width_ratios": [1, 1.4]})
    names = [m for m in METHODS if m in accuracy]
    values = [100.0 * accuracy[m] for m in names]
    bars = left.bar([METHODS[m] for m in names], values, color=[COLOURS[m] for m in names])
    left.bar_label(bars, labels=[f"{v:.1f}" for v in values], padding=2)
    left.set_ylim(0, 105)
    left.set_ylabel("top-1 test accuracy (%)")
    left.set_title("accuracy by method")
    left.tick_params(axis="x", labelrotation=15)

    labels = [c for c, _ in shown][::-1]
    deltas = [g for _, g in shown][::-1]
    gain_bars = right.barh(labels, deltas, color=["#2e7d32" if d >= 0 else "#c62828" for d in deltas])
    right.bar_label(gain_bars, labels=[f"{d:+.1f}" for d in deltas], padding=2, fontsize=8)
    reach = max([5.0, *(abs(d) for d in deltas)]) * 1.2
    right.set_xlim(-reach, reach)
    right.axvline(0, color="black", linewidth=0.8)
    right.set_xlabel("NoLA minus zero-shot, per class (points)")
    note = f"\n(top and bottom {len(shown) // 2} of {len(gains)} classes)" if len(shown) < len(gains) else ""
    right.set_title("per-class gain of NoLA over zero-shot" + note)
    right.tick_params(axis="y", labelsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    save_png(fig, path)


def render_no_labels(path: str | Path, title: str) -> None:
    """The summary PNG of a collection without labels: it says why there are no accuracies."""
    plt = pyplot()
    fig = plt.figure(figsize=(8, 1.5))
    fig.text(0.5, 0.5, title + "\n(the predictions and the report are the outputs)", ha="center", va="center")
    save_png(fig, path)
