"""The sweep spec: one pydantic model shared by the CLI, the REST service and the runner.

A spec names a benchmark, fixes some of its parameters, and searches others, e.g.::

    name: segments-vs-accuracy
    benchmark: permuted_digits
    params: {num_tasks: 5, hidden_sizes: [512, 512]}
    search_space:
      num_segments: {type: grid, values: [1, 2, 5]}
      seed: {type: grid, values: [0, 1, 2]}

Validation happens before Ray starts: unknown benchmark or parameter names, bad distributions
and out-of-range values (checked by the benchmark's own config model) name the offending field.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sweeps.benchmarks import Benchmark, benchmark_enum, get_benchmark
from sweeps.errors import field_messages

STORED_SPEC = "stored_spec"
"""Validation context key: the spec is a recorded one (:meth:`SweepSpec.stored`)."""


class _Dimension(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def probe_values(self) -> list[Any]:
        """Values that stand for the dimension when checking it against the config model."""
        raise NotImplementedError


class GridDimension(_Dimension):
    """Every value is tried (cartesian product with the other grid dimensions)."""

    type: Literal["grid"]
    values: list[Any] = Field(min_length=1, max_length=1000)

    def probe_values(self) -> list[Any]:
        return self.values


class ChoiceDimension(_Dimension):
    """One value drawn uniformly per sample."""

    type: Literal["choice"]
    values: list[Any] = Field(min_length=1, max_length=1000)

    def probe_values(self) -> list[Any]:
        return self.values


class CasesDimension(_Dimension):
    """Named settings, each a set of parameter values, every one tried (crossed with the grid
    dimensions): e.g. the ``paper`` preset's own values (``{}``) against a setting a search
    found. The dimension's name labels the setting in results and reports; it is no parameter."""

    type: Literal["cases"]
    values: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")],
                 dict[str, Any]] = Field(min_length=1, max_length=100)

    def probe_values(self) -> list[Any]:
        return list(self.values)


class _RangeDimension(_Dimension):
    low: float = Field(allow_inf_nan=False, ge=-1e12, le=1e12)
    high: float = Field(allow_inf_nan=False, ge=-1e12, le=1e12)

    @model_validator(mode="after")
    def _ordered(self):
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        return self

    def probe_values(self) -> list[Any]:
        return [self.low, self.high]


class UniformDimension(_RangeDimension):
    """A float drawn uniformly in [low, high]."""

    type: Literal["uniform"]


class LogUniformDimension(_RangeDimension):
    """A float drawn log-uniformly in [low, high] (both > 0)."""

    type: Literal["loguniform"]

    @field_validator("low")
    @classmethod
    def _positive(cls, value: float) -> float:
        if value <= 0:
            raise ValueError("loguniform needs low > 0")
        return value


class RandIntDimension(_RangeDimension):
    """An integer drawn uniformly in [low, high) (high exclusive, as in Ray Tune)."""

    type: Literal["randint"]
    low: int = Field(ge=-(2**62), le=2**62)
    high: int = Field(ge=-(2**62), le=2**62)

    def probe_values(self) -> list[Any]:
        return [self.low, self.high - 1]


Dimension = Annotated[
    GridDimension | ChoiceDimension | CasesDimension | UniformDimension | LogUniformDimension
    | RandIntDimension,
    Field(discriminator="type"),
]


MIN_TRIAL_CPUS = 1
"""Fewest CPUs a trial may ask for (one torch thread each: no oversubscribed cores)."""


class Resources(BaseModel):
    """Resources per trial (fractional GPUs share a device)."""

    model_config = ConfigDict(extra="forbid")

    cpu: float = Field(1.0, ge=MIN_TRIAL_CPUS, le=1024,
                       description="CPUs per trial, at least 1: a trial runs torch with floor(cpu) "
                                   "threads, so a fraction would let more trials run at once than "
                                   "there are cores")

    @field_validator("cpu", mode="before")
    @classmethod
    def _whole_cpu_at_least(cls, value: object) -> object:
        if isinstance(value, int | float) and not isinstance(value, bool) and value < MIN_TRIAL_CPUS:
            raise ValueError(f"a trial needs at least {MIN_TRIAL_CPUS} CPU (got {value}): each trial runs at "
                             "least one torch thread, so fractions of a CPU would oversubscribe the "
                             "machine's cores; share GPUs with fractional `gpu` instead")
        return value
    gpu: float = Field(0.0, ge=0, le=64)
    memory_mb: float | None = Field(
        None, gt=0, le=2**24,
        description="memory Ray reserves per trial, MiB, so a node runs only as many trials at "
                    "once as its memory holds; at least the trial's estimate (sweeps/cost.py, "
                    "shown by the dry run); null: the estimate")


class Objective(BaseModel):
    """A further objective of a multi-objective search (``search_alg: optuna``)."""

    model_config = ConfigDict(extra="forbid")

    metric: str = Field(description="a metric the benchmark reports, e.g. forgetting")
    mode: Literal["max", "min"] = "max"


class SweepSpec(BaseModel):
    """A declarative sweep over one benchmark's parameters."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$", description="sweep name")
    benchmark: str = Field(description="registered benchmark, e.g. permuted_digits",
                           json_schema_extra=benchmark_enum)
    description: str = ""
    params: dict[str, Any] = Field(default_factory=dict, description="fixed trainable parameters")
    search_space: dict[str, Dimension] = Field(default_factory=dict)
    num_samples: int = Field(1, ge=1, le=10_000, description="samples of the random dimensions")
    metric: str | None = Field(None, description="metric to optimise (default: the benchmark's)")
    mode: Literal["max", "min"] = "max"
    scheduler: Literal["fifo", "asha"] = "fifo"
    grace_period: int | None = Field(
        None, ge=1, le=10**9,
        description="asha only: the progress (tasks seen, env steps) every trial reaches before it "
                    "may be stopped; its rungs are grace x 3^k (default: the trial's first report)")
    search_alg: Literal["grid", "random", "optuna"] = Field(
        "grid", description="grid: grid dimensions crossed, random ones sampled; random: all sampled; "
                            "optuna: num_samples trials suggested by Optuna's TPE (model-based; grid "
                            "dimensions become choices)"
    )
    search_seed: int | None = Field(None, ge=0, le=2**32 - 1,
                                    description="seed of the optuna search's sampler (a repeatable search)")
    objectives: list[Objective] = Field(
        default_factory=list, max_length=4,
        description="further objectives beside metric/mode (optuna only, with scheduler fifo): a "
                    "multi-objective search whose report carries the Pareto front")
    resources: Resources = Field(default_factory=Resources)
    max_concurrent_trials: int | None = Field(None, ge=1, le=10_000)
    time_budget_s: float | None = Field(None, gt=0, le=90 * 86_400, description="seconds, at most 90 days")
    max_failures: int = Field(2, ge=0, le=100, description="retries of a failed trial (from its checkpoint)")
    keep_checkpoints: bool = Field(
        False, description="keep each trial's last checkpoint (its trained network and optimizer "
                           "state) once the sweep has ended; by default they are deleted then, as "
                           "nothing resumes from them (a 10-task paper trial's is 0.1-0.6 GB)")

    _base_config: BaseModel | None = PrivateAttr(None)

    @field_validator("benchmark")
    @classmethod
    def _known_benchmark(cls, value: str) -> str:
        get_benchmark(value)
        return value

    @classmethod
    def stored(cls, data: dict[str, Any]) -> SweepSpec:
        """A spec as recorded when it was submitted, rebuilt to report on its sweep: every field
        parsed into its model (dimensions, resources, objectives), without the submission's
        cross-checks, so a rule added since cannot hide a recorded sweep's results."""
        return cls.model_validate(data, context={STORED_SPEC: True})

    @model_validator(mode="after")
    def _parameters_valid_for_benchmark(self, info: ValidationInfo) -> SweepSpec:
        benchmark = get_benchmark(self.benchmark)
        if info.context and info.context.get(STORED_SPEC):
            self._base_config = _check_config(benchmark.config_model, {**benchmark.defaults, **self.params},
                                              "params")
            return self
        fields = benchmark.config_model.model_fields
        overlap = set(self.params) & set(self.search_space)
        if overlap:
            raise ValueError(f"parameters both fixed and searched: {sorted(overlap)}")
        searched = {name for name, dim in self.search_space.items() if dim.type != "cases"}
        for section, names in (("params", self.params), ("search_space", searched)):
            unknown = sorted(set(names) - set(fields))
            if unknown:
                raise ValueError(f"{section}: unknown parameter(s) {unknown} for benchmark "
                                 f"{self.benchmark!r}")
        self._check_cases(fields)
        base = {**benchmark.defaults, **self.params}
        self._base_config = _check_config(benchmark.config_model, base, "params")
        for where, values in self.probes():
            _check_config(benchmark.config_model, {**base, **values}, where)
        self._check_devices()
        if self.metric is not None and self.metric not in benchmark.workload.metric_names:
            raise ValueError(f"metric: {self.benchmark!r} never reports {self.metric!r}; it reports "
                             f"{sorted(benchmark.workload.metric_names)}")
        self._check_search(benchmark)
        return self

    def _check_cases(self, fields: dict[str, Any]) -> None:
        """A cases dimension: a grid search's, named apart from every parameter, its settings
        made of known parameters that neither params nor another dimension sets."""
        for name, dimension in self.cases.items():
            where = f"search_space.{name}"
            if self.search_alg != "grid":
                raise ValueError(f"{where}: cases are tried in turn by a grid search (search_alg is "
                                 f"{self.search_alg!r})")
            if name in fields:
                raise ValueError(f"{where}: a cases dimension labels settings; {name!r} is a parameter, "
                                 "name it otherwise (e.g. setting)")
            for case, values in dimension.values.items():
                unknown = sorted(set(values) - set(fields))
                clash = sorted(set(values) & (set(self.params) | set(self.search_space)))
                if unknown:
                    raise ValueError(f"{where}.{case}: unknown parameter(s) {unknown}")
                if clash:
                    raise ValueError(f"{where}.{case}: {clash} also fixed in params or searched")

    @property
    def cases(self) -> dict[str, CasesDimension]:
        """The search space's cases dimensions."""
        return {n: d for n, d in self.search_space.items() if isinstance(d, CasesDimension)}

    @property
    def sampled(self) -> dict[str, Dimension]:
        """The dimensions each trial draws: all of a random or optuna search's, a grid search's
        distributions (its grid and cases dimensions are crossed instead)."""
        return {n: d for n, d in self.search_space.items()
                if self.search_alg != "grid" or d.type not in ("grid", "cases")}

    def expand(self, values: dict[str, Any]) -> dict[str, Any]:
        """Trial parameters with each case label replaced by its case's values (:func:`expand_cases`)."""
        return expand_cases(values, self.cases)

    def probes(self) -> list[tuple[str, dict[str, Any]]]:
        """Each dimension's probe values as parameters (cases expanded), with where they come
        from (``search_space.<name>``): what validation tries against the config model."""
        cases = self.cases
        return [(f"search_space.{name}" + (f".{value}" if name in cases else ""), self.expand({name: value}))
                for name, dimension in self.search_space.items() for value in dimension.probe_values()]

    def _check_search(self, benchmark: Benchmark) -> None:
        """What a model-based search needs: something to search, and objectives it can read; a
        grace period only for early stopping."""
        if self.grace_period is not None and self.scheduler != "asha":
            raise ValueError(f"grace_period: only scheduler asha stops trials early "
                             f"(scheduler is {self.scheduler!r})")
        if self.search_alg != "optuna":
            for field in ("objectives", "search_seed"):
                if getattr(self, field) not in (None, []):
                    raise ValueError(f"{field}: only an optuna search takes {field} "
                                     f"(search_alg is {self.search_alg!r})")
            return
        if not self.search_space:
            raise ValueError("search_space: an optuna search needs at least one searched parameter")
        if self.objectives and self.scheduler == "asha":
            raise ValueError("objectives: Optuna's multi-objective TPE cannot learn from the trials an "
                             "early-stopping scheduler stops (their values are incomplete; "
                             "optuna#5260): search one objective with scheduler asha, or several "
                             "with scheduler fifo")
        seen = {self.resolved_metric}
        for index, objective in enumerate(self.objectives):
            if objective.metric not in benchmark.workload.metric_names:
                raise ValueError(f"objectives.{index}.metric: {self.benchmark!r} never reports "
                                 f"{objective.metric!r}; it reports "
                                 f"{sorted(benchmark.workload.metric_names)}")
            if objective.metric in seen:
                raise ValueError(f"objectives.{index}.metric: {objective.metric!r} is already an objective")
            seen.add(objective.metric)

    def _check_devices(self) -> None:
        """A trial sees only the GPUs Ray gives it (``resources.gpu``, renumbered from 0): a CUDA
        device needs a GPU per trial, and ``cuda:N`` needs N below the GPUs a trial gets."""
        values = [("params.device", self.params["device"])] if "device" in self.params else []
        if "device" in self.search_space:
            values += [("search_space.device", v) for v in self.search_space["device"].probe_values()]
        gpus = max(1, math.ceil(self.resources.gpu))
        for where, value in values:
            match = re.fullmatch(r"cuda(?::(\d+))?", str(value))
            if str(value) in ("auto", "cpu"):
                continue
            if match is None:
                raise ValueError(f"{where}: device must be auto, cpu, cuda or cuda:N, got {value!r}")
            if self.resources.gpu <= 0:
                raise ValueError(f"{where}: {value!r} needs a GPU per trial; set resources.gpu")
            if match.group(1) is not None and int(match.group(1)) >= gpus:
                raise ValueError(f"{where}: a trial gets {gpus} GPU(s) (resources.gpu = "
                                 f"{self.resources.gpu:g}), numbered from 0; {value!r} does not exist")

    @property
    def benchmark_entry(self) -> Benchmark:
        return get_benchmark(self.benchmark)

    @property
    def base_config(self) -> BaseModel:
        """The benchmark's config with the fixed params, as validated with the spec."""
        assert self._base_config is not None
        return self._base_config

    @property
    def expected_trials(self) -> int:
        """Trials the sweep runs in full: grid points (grid search) times ``num_samples``."""
        if self.search_alg != "grid":
            return self.num_samples
        points = 1
        for dimension in self.search_space.values():
            if dimension.type in ("grid", "cases"):
                points *= len(dimension.values)
        return points * self.num_samples

    @property
    def resolved_metric(self) -> str:
        return self.metric or get_benchmark(self.benchmark).workload.default_metric

    @property
    def all_objectives(self) -> list[Objective]:
        """The search's objectives: ``metric``/``mode`` first, then ``objectives``."""
        return [Objective(metric=self.resolved_metric, mode=self.mode), *self.objectives]

    def spec_hash(self) -> str:
        """A short content hash of the spec (stable across key order)."""
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(canonical.encode()).hexdigest()[:12]


def expand_cases(values: dict[str, Any], cases: dict[str, CasesDimension]) -> dict[str, Any]:
    """``values`` with each case label (``setting: found``) replaced by that case's parameter
    values."""
    out = {k: v for k, v in values.items() if k not in cases}
    for name in cases.keys() & values.keys():
        out.update(cases[name].values[values[name]])
    return out


def _check_config(model: type[BaseModel], values: dict[str, Any], where: str) -> BaseModel:
    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise ValueError(f"{where}: {'; '.join(field_messages(err, 'config'))}") from None


def read_spec_data(path: str | Path) -> dict[str, Any]:
    """A spec file's YAML or JSON as data (not yet validated)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"sweep spec not found: {path}")
    text = path.read_text()
    data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    if not isinstance(data, dict):
        raise ValueError(f"{path}: a sweep spec must be a mapping, got {type(data).__name__}")
    return data


def load_spec(path: str | Path, overrides: dict[str, Any] | None = None) -> SweepSpec:
    """Read and validate a spec from YAML or JSON; ``overrides`` replace top-level keys."""
    return SweepSpec.model_validate({**read_spec_data(path), **(overrides or {})})
