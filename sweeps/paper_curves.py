"""The paper's published curves, to draw and tabulate beside a sweep's own results: final mean
accuracy on permuted **MNIST** against the swept parameter, in percent, means over 8 runs.

Source: Numenta's figure notebook, ``numenta/nupic.research``,
``projects/dendrites/permutedMNIST/figures/figures.ipynb`` ("averaged over 8 independent trials
in all figures"); the 14-segment point is from the segment search's own data
(``data_hyperparameter_search/segment_search_lasttask.csv``), which the notebook leaves out.
These are MNIST numbers: beside a Fashion-MNIST sweep they show the shape of the curve, not its
level."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

BENCHMARKS = frozenset({"permuted_mnist", "permuted_fashion_mnist"})
"""The full-size benchmarks the curves are drawn beside (the bundled toy data sets are not)."""
METRIC = "mean_accuracy"
"""What every curve measures: the final mean accuracy over the tasks seen."""


@dataclass(frozen=True)
class PaperCurve:
    """One published curve: accuracy (%) at each value of ``axis``."""

    axis: str
    label: str
    points: dict[float, float]
    fixed: dict[str, Any] = field(default_factory=dict)
    """The parameters the curve was measured at, which a sweep must fix alike to be drawn beside
    it (a 10-task curve is no reference for a 3-task sweep)."""


PAPER_CURVES: dict[str, tuple[PaperCurve, ...]] = {
    "num_segments": (PaperCurve("num_segments", "paper, MNIST, 10 tasks", {
        2: 93.58, 3: 93.77, 5: 94.23, 7: 94.41, 10: 94.51, 14: 94.81, 20: 94.95, 30: 94.99,
        50: 94.82, 100: 95.11}, {"num_tasks": 10}),),
    "kw_percent_on": (PaperCurve("kw_percent_on", "paper, MNIST, 10 tasks", {
        0.01: 93.41, 0.05: 94.90, 0.1: 94.29, 0.2: 90.14, 0.4: 76.01, 0.6: 73.15, 0.8: 73.91,
        0.9: 69.65, 0.99: 57.12}, {"num_tasks": 10}),),
    "num_tasks": (
        PaperCurve("num_tasks", "paper, MNIST, Active Dendrites, segments = tasks", {
            2: 97.47, 5: 96.36, 10: 94.55, 25: 92.09, 50: 87.05, 100: 81.42}),
        PaperCurve("num_tasks", "paper, MNIST, Active Dendrites, 10 segments", {
            2: 97.53, 5: 96.47, 10: 94.55, 25: 91.31, 50: 86.28, 100: 78.47}),
        PaperCurve("num_tasks", "paper, MNIST, 3-layer dense MLP", {10: 82.03, 100: 48.31}),
    ),
}
"""The paper's curves by the parameter they vary."""


def paper_curves(axis: str) -> tuple[PaperCurve, ...]:
    """The published curves against ``axis`` (none for a parameter the paper did not vary)."""
    return PAPER_CURVES.get(axis, ())


def curves_beside(benchmark: str, metric: str, axis: str,
                  params: Mapping[str, Any]) -> tuple[PaperCurve, ...]:
    """The published curves to draw beside a sweep of ``benchmark`` drawing ``metric`` against
    ``axis`` whose fixed parameters are ``params``: those measured at the same fixed values."""
    if benchmark not in BENCHMARKS or metric != METRIC:
        return ()
    return tuple(c for c in paper_curves(axis) if all(params.get(k) == v for k, v in c.fixed.items()))
