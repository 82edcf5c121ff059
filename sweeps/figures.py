"""Figures of sweeps and trials, made to be read at a glance: metric vs a swept parameter (mean
with a ± std band over seeds, ticks at the swept values, a log axis where they span decades, the
baseline model as a line), the paper's two panels with its published curves beside them, and
per-trial heatmaps (accuracy matrix,
task-by-task overlap of the kWTA winners)."""

from __future__ import annotations

from collections.abc import Sequence
from itertools import pairwise
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.ticker import FixedLocator, Formatter, NullLocator
from matplotlib.transforms import ScaledTranslation

from sweeps.files import replace_atomically
from sweeps.paper_curves import PaperCurve

BASELINES = ("mlp", "sparse_mlp")
"""Values of the ``model`` parameter drawn as baselines (a line per value, not a curve)."""
FORMATS = ("png", "svg")


def spans_decades(values: Sequence[float]) -> bool:
    """Whether positive ``values`` span at least a factor of 20 (then a log axis reads better)."""
    positive = [v for v in values if v > 0]
    return len(positive) == len(values) and len(values) > 2 and max(positive) / min(positive) >= 20


def _tick_label(value: float) -> str:
    return f"{value:g}"


def set_value_axis(ax: Axes, values: Sequence[float]) -> None:
    """x ticks at exactly the swept ``values``; log scale when they span decades. A tick too close
    to its labelled neighbours for its label to fit (0.8 and 0.9 beside 0.99 on a log axis from
    0.01) keeps its mark but not its label; the first and last values are always labelled."""
    values = sorted(set(values))
    if spans_decades(values):
        ax.set_xscale("log")
    ax.xaxis.set_major_locator(FixedLocator(values))
    ax.xaxis.set_minor_locator(NullLocator())
    ax.xaxis.set_major_formatter(SpacedFormatter())


class SpacedFormatter(Formatter):
    """Tick labels (``%g``) that leave out any label that would not clear the last one shown, or
    the final one (always shown): measured when the figure is drawn, at the axis' drawn width
    and its tick labels' font size, a third of a character apart."""

    def __call__(self, x: float, pos: int | None = None) -> str:
        return _tick_label(x)

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        axes = self.axis.axes
        scale = np.log10 if axes.get_xscale() == "log" else np.asarray  # positions as drawn
        at = scale(np.asarray(values, dtype=float))
        low, high = scale(np.asarray(axes.get_xlim(), dtype=float))
        width_pt = axes.get_window_extent().width * 72 / axes.figure.dpi
        size = FontProperties(size=matplotlib.rcParams["xtick.labelsize"]).get_size_in_points()
        texts = [_tick_label(v) for v in values]

        def clear(i: int, j: int) -> bool:
            room = abs(at[j] - at[i]) / (abs(high - low) or 1.0) * width_pt
            return room >= 0.6 * size * (len(texts[i]) + len(texts[j])) / 2 + 0.3 * size

        labels, last = [], None
        for index in range(len(values)):
            final = index == len(values) - 1
            shown = final or last is None or (clear(last, index) and clear(index, len(values) - 1))
            labels.append(texts[index] if shown else "")
            last = index if shown else last
        return labels


def _label(keys: Sequence[str], values: Sequence[Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))


def draw_metric_vs(ax: Axes, summary: pd.DataFrame, x: str, metric: str, group_by: Sequence[str], *,
                   baseline_key: str = "model", seeds_word: str = "seeds") -> None:
    """Mean ± std of ``metric`` against ``x`` (columns ``<metric>_mean``, ``<metric>_std``, ``count``),
    a curve per combination of the other ``group_by`` columns; rows whose ``model`` is a baseline
    are a horizontal line each (their mean over all ``x``)."""
    mean, std = f"{metric}_mean", f"{metric}_std"
    others = [g for g in group_by if g != x]
    is_baseline = (summary[baseline_key].isin(BASELINES) if baseline_key in summary.columns
                   else pd.Series(False, index=summary.index))
    curves, baselines = summary[~is_baseline], summary[is_baseline]
    groups = list(curves.groupby(others, dropna=False)) if others else [((), curves)]
    for key, frame in groups:
        frame = frame.sort_values(x)
        key = key if isinstance(key, tuple) else (key,)
        n = _seeds_text(frame["count"], seeds_word)
        label = f"{_label(others, key)} (mean ± std, {n})" if others else f"mean ± std, {n}"
        xs, ys = frame[x].to_numpy(float), frame[mean].to_numpy(float)
        sd = frame[std].fillna(0).to_numpy(float)
        line, = ax.plot(xs, ys, marker="o", label=label)
        ax.fill_between(xs, ys - sd, ys + sd, color=line.get_color(), alpha=0.2, linewidth=0)
    for name, frame in baselines.groupby(baseline_key) if not baselines.empty else []:
        level = float(frame[mean].mean())
        spread = float(frame[std].fillna(0).mean())
        line = ax.axhline(level, linestyle="--", color="0.3" if name == "mlp" else "0.55",
                          label=f"{name} baseline (mean ± std, {_seeds_text(frame['count'], seeds_word)})")
        ax.axhspan(level - spread, level + spread, color=line.get_color(), alpha=0.1, linewidth=0)
    set_value_axis(ax, summary[x].astype(float).tolist())
    ax.grid(alpha=0.3)


def draw_paper_curves(ax: Axes, curves: Sequence[PaperCurve], percent_per_unit: float = 100.0) -> None:
    """Published curves (accuracy in %) on a right-hand axis of their own, grey and dashed, over
    the x range ``ax`` already shows, each in a band of ± its runs' standard deviation where that
    is public: beside a sweep on another data set they give the shape to compare, not the level.
    Both axes get the same scale (``percent_per_unit``: a left-axis unit in percent; a
    fraction's is 100), so a rise of one point is as tall on either side. One legend holds both
    axes' lines."""
    low, high = ax.get_xlim()
    shown = [(curve, sorted(x for x in curve.points if low <= x <= high)) for curve in curves]
    shown = [(curve, xs) for curve, xs in shown if xs]
    if not shown:
        return
    twin = ax.twinx()
    for (curve, xs), style in zip(shown, ("--", ":", "-."), strict=False):
        twin.plot(xs, [curve.points[x] for x in xs], linestyle=style, marker="s", markersize=3,
                  color="0.45", label=f"{curve.label} (%, n = {curve.runs}, right axis)")
        if curve.spread:
            lows = [curve.points[x] - curve.spread[x] for x in xs]
            highs = [curve.points[x] + curve.spread[x] for x in xs]
            if len(xs) > 1:
                twin.fill_between(xs, lows, highs, color="0.45", alpha=0.12, linewidth=0)
            else:  # one point in view: a band would have no width
                twin.vlines(xs, lows, highs, color="0.45", alpha=0.5)
    twin.set_xlim(low, high)
    published = [curve.points[x] + sign * curve.spread.get(x, 0.0)
                 for curve, xs in shown for x in xs for sign in (-1, 1)]
    bottom, top = ax.get_ylim()
    span = max((top - bottom) * percent_per_unit, (max(published) - min(published)) * 1.1, 1.0)
    middle = (bottom + top) / 2
    ax.set_ylim(middle - span / percent_per_unit / 2, middle + span / percent_per_unit / 2)
    middle = (max(published) + min(published)) / 2
    twin.set_ylim(middle - span / 2, middle + span / 2)
    twin.set_ylabel("paper: final accuracy (%, same scale)")
    lines, labels = ax.get_legend_handles_labels()
    more, more_labels = twin.get_legend_handles_labels()
    if ax.get_legend() is not None:
        ax.get_legend().remove()
    legend_clear_of_lines(twin, lines + more, labels + more_labels)  # on top: no line crosses it


LEGEND_PLACES = ("upper right", "upper left", "lower left", "lower right", "center right", "center left",
                 "lower center", "upper center")


def legend_clear_of_lines(ax: Axes, handles: Sequence[Any], labels: Sequence[str]) -> None:
    """A legend on ``ax`` where it covers no point of the lines drawn on ``ax`` and on the axes
    that share its x (a twin's: matplotlib's ``best`` sees only its own axes' lines); where every
    place inside would cover one, below the axes."""
    renderer = ax.figure.canvas.get_renderer()
    steps = np.linspace(0.0, 1.0, 20)[:, None]  # points along each segment, not just its ends
    points = []
    for axes in ax.get_shared_x_axes().get_siblings(ax):
        for line in axes.get_lines():
            xy = line.get_transform().transform(np.asarray(line.get_xydata(), dtype=float))
            points += [a + steps * (b - a) for a, b in pairwise(xy)] or [xy]
    points = np.concatenate(points) if points else np.empty((0, 2))
    covered = {}
    for place in LEGEND_PLACES:
        box = ax.legend(handles, labels, fontsize=7, loc=place).get_window_extent(renderer)
        covered[place] = int(((points[:, 0] >= box.x0) & (points[:, 0] <= box.x1)
                              & (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1)).sum())
    place = min(LEGEND_PLACES, key=covered.__getitem__)
    if covered[place] == 0:
        ax.legend(handles, labels, fontsize=7, loc=place)
        return
    # under the x axis (its tick labels and label), a fixed distance from the axes whatever the
    # layout does to them, and out of the layout: the panels keep one size, the saved file grows
    axis_boxes = [box for a in ax.get_shared_x_axes().get_siblings(ax)
                  if (box := a.xaxis.get_tightbbox(renderer)) is not None]
    depth = ax.get_window_extent(renderer).y0 - min(box.y0 for box in axis_boxes)
    below = ScaledTranslation(0, -(depth / ax.figure.dpi + 0.05), ax.figure.dpi_scale_trans)
    ax.legend(handles, labels, fontsize=7, loc="upper center", bbox_to_anchor=(0.5, 0),
              bbox_transform=ax.transAxes + below).set_in_layout(False)


def _seeds_text(counts: pd.Series, word: str) -> str:
    low, high = int(counts.min()), int(counts.max())
    return f"n = {low} {word}" if low == high else f"n = {low}-{high} {word}"


def save(fig: Figure, stem: Path) -> list[Path]:
    """Save ``fig`` as ``<stem>.png`` and ``<stem>.svg`` (each written whole, then renamed into
    place); return the paths."""
    paths = [stem.with_suffix(f".{fmt}") for fmt in FORMATS]
    outside = [legend for ax in fig.axes if (legend := ax.get_legend()) is not None
               and not legend.get_in_layout()]  # a legend below its axes: in the file all the same
    artists = fig.get_default_bbox_extra_artists() + outside
    for path, fmt in zip(paths, FORMATS, strict=True):
        replace_atomically(path, lambda temporary, fmt=fmt: fig.savefig(
            temporary, format=fmt, bbox_inches="tight", bbox_extra_artists=artists))
    plt.close(fig)
    return paths


def metric_panels(summary: pd.DataFrame, x: str, metrics: Sequence[str], group_by: Sequence[str],
                  labels: dict[str, str], x_label: str, title: str) -> Figure:
    """One panel per metric (e.g. accuracy beside forgetting) against ``x``."""
    fig, axes = plt.subplots(1, len(metrics), figsize=(5.2 * len(metrics), 4), dpi=120, squeeze=False)
    for ax, metric in zip(axes[0], metrics, strict=True):
        draw_metric_vs(ax, summary, x, metric, group_by)
        ax.set_xlabel(x_label)
        ax.set_ylabel(labels.get(metric, metric))
        ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return fig


MAX_TICK_LABELS = 12
"""A heat map's labels per side at most (50 tasks' names would overlap): every n-th beyond."""


def _every_nth(count: int) -> list[int]:
    return list(range(0, count, -(-count // MAX_TICK_LABELS)))


def heatmap(ax: Axes, matrix: np.ndarray, row_labels: Sequence[str], col_labels: Sequence[str],
            vmin: float = 0.0, vmax: float = 1.0, annotate: bool = True):
    """A matrix as a colour map with its values written in (NaN cells left blank)."""
    image = ax.imshow(np.ma.masked_invalid(matrix), vmin=vmin, vmax=vmax, cmap="viridis")
    xs, ys = _every_nth(len(col_labels)), _every_nth(len(row_labels))
    ax.set_xticks(xs, [col_labels[i] for i in xs], rotation=45, ha="right", fontsize=7)
    ax.set_yticks(ys, [row_labels[i] for i in ys], fontsize=7)
    if annotate and matrix.size <= 400:
        for (i, j), value in np.ndenumerate(matrix):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=6,
                        color="white" if value < (vmin + vmax) / 2 else "black")
    return image


def accuracy_matrix_figure(matrix: Sequence[Sequence[float]], title: str) -> Figure:
    """R[i][j]: test accuracy on task j after training task i (blank for tasks not yet seen)."""
    n = len(matrix)
    grid = np.full((n, max((len(r) for r in matrix), default=0)), np.nan)
    for i, row in enumerate(matrix):
        grid[i, : len(row)] = row
    fig, ax = plt.subplots(figsize=(2.6 + 0.55 * grid.shape[1], 1.6 + 0.45 * n), dpi=120,
                           layout="constrained")
    image = heatmap(ax, grid, [f"after {i}" for i in range(n)], [f"task {j}" for j in range(grid.shape[1])])
    ax.set_xlabel("evaluated on")
    ax.set_ylabel("after training task")
    fig.colorbar(image, ax=ax, label="test accuracy (fraction correct)")
    ax.set_title(title, fontsize=8)
    return fig


def subnetwork_figure(analysis: dict, title: str) -> Figure:
    """One task-by-task overlap heatmap per hidden layer (``dendrites.analysis`` numbers)."""
    layers, tasks = analysis["layers"], analysis["tasks"]
    fig, axes = plt.subplots(1, len(layers), figsize=(1.2 + 3.6 * len(layers), 4.2), dpi=120, squeeze=False,
                             layout="constrained")
    image = None
    for index, (ax, layer) in enumerate(zip(axes[0], layers, strict=True)):
        image = heatmap(ax, np.asarray(layer["overlap"], float), tasks, tasks)
        ax.set_title(f"hidden layer {index + 1}: mean overlap {layer['mean_overlap']:.2f}\n"
                     f"{layer['units']} units, {layer['winners_per_input']:.0f} winners per input",
                     fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), label="overlap of kWTA winners (weighted Jaccard)")
    fig.suptitle(title, fontsize=9)
    return fig


TRIAL_FIGURES = {"accuracy_matrix": accuracy_matrix_figure, "subnetworks": subnetwork_figure}
"""Per-trial figures, by the workload artifact they draw."""
