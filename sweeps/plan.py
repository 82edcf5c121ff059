"""A sweep plan: everything a sweep needs, resolved once from a validated spec: the benchmark and
its workload, the validated base config, the Ray Tune parameter space, the metric, the scheduler
and the expected number of trials. The driver runs a plan; tracking and reports read it."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel
from ray import tune
from ray.tune.schedulers import ASHAScheduler, FIFOScheduler, TrialScheduler
from ray.tune.search import Searcher

from sweeps.benchmarks import Benchmark
from sweeps.search import EarlyStoppedOptunaSearch
from sweeps.spec import SweepSpec
from workers.workload import Workload

ASHA_REDUCTION = 3
"""ASHA keeps the best third of the trials at each rung (rungs at grace x 3^k)."""
PLAN_ENV = "DLAB_SWEEP_PLAN"
"""The environment variable a driver reads its plan from (JSON: ``{"sweep_id", "spec"}``)."""


def tune_domain(dimension, search_alg: str):
    """A spec dimension as a Ray Tune search-space domain."""
    if dimension.type == "cases":  # (a grid search's only) the labels; the trial expands them
        return tune.grid_search(list(dimension.values))
    if dimension.type == "grid":
        return tune.grid_search(dimension.values) if search_alg == "grid" else tune.choice(dimension.values)
    if dimension.type == "choice":
        return tune.choice(dimension.values)
    if dimension.type == "uniform":
        return tune.uniform(dimension.low, dimension.high)
    if dimension.type == "loguniform":
        return tune.loguniform(dimension.low, dimension.high)
    return tune.randint(dimension.low, dimension.high)


@dataclass(frozen=True)
class SweepPlan:
    """One sweep, resolved: what runs, how it is scored and how many trials to expect."""

    sweep_id: str
    spec: SweepSpec

    @classmethod
    def resolve(cls, spec: SweepSpec, sweep_id: str | None = None) -> SweepPlan:
        """The plan of a validated spec (``sweep_id`` defaults to ``<name>-<random>``)."""
        return cls(sweep_id=sweep_id or f"{spec.name}-{uuid.uuid4().hex[:8]}", spec=spec)

    # -- what the sweep is -----------------------------------------------------------------
    @property
    def benchmark(self) -> Benchmark:
        return self.spec.benchmark_entry

    @property
    def workload(self) -> Workload:
        return self.benchmark.workload

    @property
    def base_config(self) -> BaseModel:
        return self.spec.base_config

    @property
    def metric(self) -> str:
        return self.spec.resolved_metric

    @property
    def mode(self) -> str:
        return self.spec.mode

    @property
    def searched(self) -> list[str]:
        return list(self.spec.search_space)

    @property
    def group_by(self) -> list[str]:
        """The searched parameters results are grouped by (seeds are pooled)."""
        return [name for name in self.searched if name != "seed"]

    def defaulted(self, names: Iterable[str]) -> dict[str, Any]:
        """Each of ``names`` that is a field of the benchmark's config and that the spec leaves
        alone (no parameter, no search dimension, no case sets it), with its value in the
        resolved base config: the value every trial runs with."""
        fields = type(self.base_config).model_fields
        set_by_spec = set(self.spec.params) | set(self.searched) | {
            key for cases in self.spec.cases.values() for values in cases.values.values() for key in values}
        return {name: getattr(self.base_config, name) for name in names
                if name in fields and name not in set_by_spec}

    @property
    def expected_trials(self) -> int:
        return self.spec.expected_trials

    @property
    def reports_per_trial(self) -> int:
        return max(int(self.workload.reports_per_run(self.base_config)), 1)

    @property
    def step_range(self) -> tuple[int, int]:
        """The workload's progress (``step_metric``: tasks seen, env steps) at a trial's first and
        last report; early stopping's grace period and full budget."""
        first, last = self.workload.step_range(self.base_config)
        return max(int(first), 1), max(int(last), int(first), 1)

    @property
    def asha_grace(self) -> int:
        """Progress every trial reaches before ASHA may stop it: the spec's ``grace_period``, else
        the trial's first report."""
        first, _ = self.step_range
        return self.spec.grace_period or first

    # -- how Ray Tune runs it --------------------------------------------------------------
    def _domains(self) -> dict[str, Any]:
        return {name: tune_domain(dim, self.spec.search_alg) for name, dim in self.spec.search_space.items()}

    def param_space(self) -> dict[str, Any]:
        """Benchmark defaults and fixed params, and (unless a searcher holds them) the searched
        domains, merged."""
        space: dict[str, Any] = {**self.benchmark.defaults, **self.spec.params}
        if self.spec.search_alg != "optuna":
            space.update(self._domains())
        return space

    def searcher(self) -> Searcher | None:
        """The model-based searcher (``search_alg: optuna``: seeded TPE over the searched domains,
        one objective or several), else None (Tune's grid/random variant generator)."""
        if self.spec.search_alg != "optuna":
            return None
        objectives = self.spec.all_objectives
        metric: str | list[str] = [o.metric for o in objectives] if len(objectives) > 1 else self.metric
        mode: str | list[str] = [o.mode for o in objectives] if len(objectives) > 1 else self.mode
        return EarlyStoppedOptunaSearch(
            space=EarlyStoppedOptunaSearch.convert_search_space(self._domains()), metric=metric,
            mode=mode, seed=self.spec.search_seed)

    def scheduler(self) -> TrialScheduler:
        """FIFO, or ASHA on the workload's progress (a trial behind its rung's best after k tasks
        stops); ASHA scores the first objective."""
        if self.spec.scheduler == "asha":
            grace, budget = self.asha_grace, self.step_range[1]
            return ASHAScheduler(time_attr=self.workload.step_metric, max_t=budget, grace_period=grace,
                                 reduction_factor=ASHA_REDUCTION)
        return FIFOScheduler()

    # -- handing it to a driver ------------------------------------------------------------
    def to_json(self) -> str:
        return json.dumps({"sweep_id": self.sweep_id, "spec": self.spec.model_dump(mode="json")})

    @classmethod
    def from_json(cls, text: str) -> SweepPlan:
        """Read a plan written by :meth:`to_json`, validating its spec (once, in the driver)."""
        data = json.loads(text)
        if not isinstance(data, dict) or not isinstance(data.get("sweep_id"), str):
            raise ValueError("a sweep plan is a JSON object with 'sweep_id' and 'spec'")
        return cls(sweep_id=data["sweep_id"], spec=SweepSpec.model_validate(data.get("spec")))

    @classmethod
    def from_environment(cls, plan_file: str | Path | None = None) -> SweepPlan:
        """The plan in ``plan_file``, else in ``$DLAB_SWEEP_PLAN``."""
        if plan_file is not None:
            return cls.from_json(Path(plan_file).read_text())
        text = os.environ.get(PLAN_ENV)
        if not text:
            raise ValueError(f"no sweep plan: give a plan file or set {PLAN_ENV}")
        return cls.from_json(text)
