"""The paper's published curves, to draw and tabulate beside a sweep's own results: final mean
accuracy on permuted **MNIST** against the swept parameter, in percent.

Source: Numenta's figure notebook, ``numenta/nupic.research``,
``projects/dendrites/permutedMNIST/figures/figures.ipynb``. The task-count curves are its
numbers, "averaged over 8 independent trials" (no spread published). The segment and density
curves are the hyperparameter searches' means, which the notebook copies; their data
(``projects/dendrites/permutedMNIST/experiments/data_hyperparameter_search/
{segment,kw_sparsity}_search_lasttask.csv``, removed in commit ``f0cadf574``, read at its parent)
hold 10 runs per value, each with its own seed, so those curves carry their standard deviation
over the 10 runs, and the 14-segment point the notebook leaves out. These are MNIST numbers:
beside a Fashion-MNIST sweep they show the shape of the curve, not its level."""

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
    runs: int = 8
    """How many runs each point is the mean of."""
    spread: dict[float, float] = field(default_factory=dict)
    """The standard deviation (%) over those runs at each value, where the data are public (then
    at every value the curve has)."""

    def __post_init__(self) -> None:
        if self.runs < 1 or (self.spread and set(self.spread) != set(self.points)):
            raise ValueError(f"{self.label}: a spread needs a value per point, over at least one run")


PAPER_CURVES: dict[str, tuple[PaperCurve, ...]] = {
    "num_segments": (PaperCurve("num_segments", "paper, MNIST, 10 tasks", {
        2: 93.58, 3: 93.77, 5: 94.23, 7: 94.41, 10: 94.51, 14: 94.81, 20: 94.95, 30: 94.99,
        50: 94.82, 100: 95.11}, {"num_tasks": 10}, runs=10, spread={
        2: 0.38, 3: 0.44, 5: 0.33, 7: 0.43, 10: 0.37, 14: 0.43, 20: 0.24, 30: 0.32, 50: 0.41,
        100: 0.43}),),
    "kw_percent_on": (PaperCurve("kw_percent_on", "paper, MNIST, 10 tasks", {
        0.01: 93.41, 0.05: 94.90, 0.1: 94.29, 0.2: 90.14, 0.4: 76.01, 0.6: 73.15, 0.8: 73.91,
        0.9: 69.65, 0.99: 57.12}, {"num_tasks": 10}, runs=10, spread={
        0.01: 0.25, 0.05: 0.23, 0.1: 0.34, 0.2: 0.67, 0.4: 1.01, 0.6: 1.48, 0.8: 0.97, 0.9: 1.09,
        0.99: 1.39}),),
    "num_tasks": (
        PaperCurve("num_tasks", "paper, MNIST, Active Dendrites, segments = tasks", {
            2: 97.47, 5: 96.36, 10: 94.55, 25: 92.09, 50: 87.05, 100: 81.42}),
        PaperCurve("num_tasks", "paper, MNIST, Active Dendrites, 10 segments", {
            2: 97.53, 5: 96.47, 10: 94.55, 25: 91.31, 50: 86.28, 100: 78.47}),
        PaperCurve("num_tasks", "paper, MNIST, 3-layer dense MLP", {10: 82.03, 100: 48.31}),
    ),
}
"""The paper's curves by the parameter they vary."""
MEASURED_AT = frozenset(key for curves in PAPER_CURVES.values() for curve in curves for key in curve.fixed)
"""The parameters some curve was measured at a fixed value of (a sweep that leaves one to its
benchmark's default is compared at that default)."""


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
