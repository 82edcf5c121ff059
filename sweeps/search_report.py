"""The picture of a whole search: its trials (as MLflow holds them) rebuilt as an Optuna study over
the spec's distributions, then Optuna's own figures and importances of it: parallel coordinates
(a line per trial across the parameter axes, coloured by the metric, log axes where the space is
log), parameter importances, the metric against trial index with the running best and, for several
objectives, the Pareto front; beside them the best trials and how many trials early stopping
ended at which step.

Trials enter the study in the order the search created them (``dlab.trial_index``): full-budget
trials as COMPLETE, trials early stopping ended as PRUNED (their last value at the step they
reached), failed ones as FAIL. Works for any search (grid, random, optuna) and after a resume:
nothing is read from the searcher's own state."""

from __future__ import annotations

import json
import math
import warnings
from pathlib import Path
from typing import Any

import optuna
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.trial import TrialState
from pydantic import BaseModel, Field

from sweeps import figures as fig
from sweeps.files import write_text_atomically
from sweeps.plan import SweepPlan
from sweeps.spec import Objective

BEST_ROWS = 5
"""Trials in the best-trials table of a single-objective search."""

SEARCH_JSON = "search.json"


class SearchTrial(BaseModel):
    """One trial of the search as the report lists it."""

    index: int
    run_name: str
    params: dict[str, Any]
    values: dict[str, float]


class HistoryPoint(BaseModel):
    index: int
    value: float
    best: float = Field(description="the best value of the full-budget trials up to this index")


class SearchSummary(BaseModel):
    """What the report says about the search as a whole."""

    objectives: list[Objective]
    trials_complete: int = Field(description="trials that ran their full budget")
    trials_stopped: int = Field(description="trials early stopping ended")
    stopped_at: dict[str, int] = Field(default_factory=dict,
                                       description="step (tasks seen, env steps) -> trials stopped there")
    best: list[SearchTrial] = Field(default_factory=list, description="best full-budget trials, best first")
    pareto_front: list[SearchTrial] = Field(default_factory=list,
                                            description="multi-objective: the non-dominated trials")
    importances: dict[str, dict[str, float]] = Field(
        default_factory=dict, description="objective -> parameter -> importance (Optuna's fANOVA, sums to 1)")
    history: list[HistoryPoint] = Field(default_factory=list,
                                        description="first objective against trial index, running best")


def _choice(value: Any) -> Any:
    """A categorical value as Optuna stores it (lists and mappings as JSON text)."""
    return value if value is None or isinstance(value, bool | int | float | str) else json.dumps(value)


def distributions(plan: SweepPlan) -> dict[str, BaseDistribution]:
    """The spec's search space as Optuna distributions (grid and choice values categorical)."""
    out: dict[str, BaseDistribution] = {}
    for name, dim in plan.spec.search_space.items():
        if dim.type in ("grid", "choice", "cases"):  # (cases: their labels)
            out[name] = CategoricalDistribution([_choice(v) for v in dim.values])
        elif dim.type == "randint":
            out[name] = IntDistribution(dim.low, dim.high - 1)
        else:
            out[name] = FloatDistribution(dim.low, dim.high, log=dim.type == "loguniform")
    return out


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and math.isfinite(value)


def ordered(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials in the order the search created them (``trial_index``; unknown ones last)."""
    if "trial_index" not in trials.columns:
        return trials.reset_index(drop=True)
    return trials.sort_values("trial_index", kind="stable", na_position="last").reset_index(drop=True)


def study_of(trials: pd.DataFrame, plan: SweepPlan) -> optuna.Study:
    """The sweep's trials as an in-memory Optuna study (see the module doc)."""
    objectives = plan.spec.all_objectives
    space = distributions(plan)
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no line per study
    study = optuna.create_study(
        directions=["maximize" if o.mode == "max" else "minimize" for o in objectives],
        sampler=optuna.samplers.RandomSampler(seed=0))  # never asked: a container for trials
    metric = objectives[0].metric
    for position, row in ordered(trials).iterrows():
        params = {name: _choice(row[name]) for name in space}
        values = [row.get(o.metric) for o in objectives]
        stopped = pd.notna(row.get("stopped_at"))
        index = row.get("trial_index")
        attrs = {"run_name": row["run_name"], "index": int(index) if pd.notna(index) else int(position)}
        if row["status"] == "FINISHED" and not stopped and all(_finite(v) for v in values):
            state, kept, steps = TrialState.COMPLETE, [float(v) for v in values], None
        elif row["status"] == "FINISHED" and stopped:
            state, kept, attrs["stopped_at"] = TrialState.PRUNED, None, int(row["stopped_at"])
            steps = {int(row["stopped_at"]): float(row[metric])} if _finite(row.get(metric)) else None
        elif row["status"] == "FAILED":
            state, kept, steps = TrialState.FAIL, None, None
        else:
            continue
        try:
            trial = optuna.trial.create_trial(state=state, values=kept, params=params, distributions=space,
                                              intermediate_values=steps, user_attrs=attrs)
        except ValueError:  # a value outside the spec's space (a spec edited since): not drawn
            continue
        study.add_trial(trial)
    return study


def _listed(trial: optuna.trial.FrozenTrial, objectives: list[Objective]) -> SearchTrial:
    return SearchTrial(index=trial.user_attrs["index"], run_name=trial.user_attrs.get("run_name", ""),
                       params=trial.params,
                       values={o.metric: v for o, v in zip(objectives, trial.values, strict=True)})


def summarise_search(study: optuna.Study, plan: SweepPlan) -> SearchSummary:
    """The search's counts, best trials, Pareto front, importances and running best."""
    objectives = plan.spec.all_objectives
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    pruned = study.get_trials(deepcopy=False, states=(TrialState.PRUNED,))
    steps = sorted(trial.user_attrs["stopped_at"] for trial in pruned)
    sign = 1.0 if objectives[0].mode == "max" else -1.0
    ranked = sorted(complete, key=lambda t: -sign * t.values[0])[:BEST_ROWS]
    summary = SearchSummary(
        objectives=objectives, trials_complete=len(complete), trials_stopped=len(pruned),
        stopped_at={str(step): steps.count(step) for step in sorted(set(steps))},
        best=[_listed(t, objectives) for t in ranked],
        pareto_front=([_listed(t, objectives)
                       for t in sorted(study.best_trials, key=lambda t: t.number)]
                      if len(objectives) > 1 and complete else []),
        importances=importances(study, objectives),
    )
    best = None
    for trial in complete:
        value = trial.values[0]
        best = value if best is None or sign * value > sign * best else best
        summary.history.append(HistoryPoint(index=trial.user_attrs["index"], value=value, best=best))
    return summary


def importances(study: optuna.Study, objectives: list[Objective]) -> dict[str, dict[str, float]]:
    """Per objective, each searched parameter's importance (seeded fANOVA); empty with fewer than
    two full-budget trials or no parameter that varies."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    varying = [p for p in (complete[0].params if complete else {})
               if len({json.dumps(t.params[p]) for t in complete}) > 1]
    if len(complete) < 2 or not varying:
        return {}
    out = {}
    for i, objective in enumerate(objectives):
        found = optuna.importance.get_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0), params=varying,
            target=lambda t, i=i: t.values[i])
        out[objective.metric] = {k: float(v) for k, v in found.items()}
    return out


def _slices(axes: Any) -> Any:
    """``plot_slice``'s Axes (one per parameter, or one), log axes labelled at their decades only
    (the minor labels overlap on a narrow panel); the first stands for the figure."""
    panels = list(axes.flat) if hasattr(axes, "flat") else [axes]
    for panel in panels:
        if panel.get_xscale() == "log":
            panel.xaxis.set_minor_formatter(NullFormatter())
    return panels[0]


def draw_search(study: optuna.Study, summary: SearchSummary, plan: SweepPlan,
                labels: dict[str, str]) -> dict[str, Figure]:
    """Optuna's figures of the study, by file stem: parallel coordinates, importances (when there
    are any), history with the running best, the metric against each parameter (slices), the
    Pareto front (2 or 3 objectives)."""
    from optuna.visualization import matplotlib as ovm

    objectives = plan.spec.all_objectives
    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        return {}
    first = objectives[0].metric
    name = labels.get(first, first)
    target = (lambda t: t.values[0]) if len(objectives) > 1 else None
    drawings = {"search_parallel_coordinates": lambda: ovm.plot_parallel_coordinate(
                    study, target=target, target_name=name),
                "search_history": lambda: ovm.plot_optimization_history(
                    study, target=target, target_name=name),
                "search_slices": lambda: _slices(ovm.plot_slice(study, target=target, target_name=name))}
    if summary.importances:
        drawings["search_importances"] = lambda: ovm.plot_param_importances(
            study, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0),
            params=list(summary.importances[first]), target=target, target_name=name)
    if len(objectives) in (2, 3):
        drawings["search_pareto"] = lambda: ovm.plot_pareto_front(
            study, target_names=[labels.get(o.metric, o.metric) for o in objectives])
    figures = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        for stem, draw in drawings.items():
            figure = draw().figure
            per_parameter = 2.4 if stem == "search_slices" else 1.6
            figure.set_size_inches(max(6.4, per_parameter * (len(plan.searched) + 1)), 4.6)
            figure.suptitle(f"{plan.spec.benchmark}: {plan.sweep_id}", fontsize=9, y=1.02)
            figures[stem] = figure
    return figures


def search_report(trials: pd.DataFrame, plan: SweepPlan, labels: dict[str, str],
                  out_dir: Path) -> tuple[SearchSummary, list[Path]]:
    """The search's summary (also written as ``search.json``) and its figures."""
    study = study_of(trials, plan)
    summary = summarise_search(study, plan)
    write_text_atomically(out_dir / SEARCH_JSON, summary.model_dump_json(indent=2))
    written: list[Path] = []
    for stem, figure in draw_search(study, summary, plan, labels).items():
        written += fig.save(figure, out_dir / stem)
    return summary, written
