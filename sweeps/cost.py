"""What a sweep will cost before it runs: each trial's resolved config and an estimate of its
size, in parameter-sample passes (a forward and backward pass of one sample through one
parameter counts 1):

- continual learning: network parameters x training samples per task x epochs x tasks;
- Meta-World SAC: (actor + two critics) parameters x environment steps.

The network count is the trainable one: feed-forward weights and biases, plus for a dendritic
network ``num_segments x context_dim`` segment weights per hidden unit (on every hidden layer,
an upper bound where only some layers have dendrites). A service compares these estimates with
its per-trial and per-sweep budgets; ``dry_run`` shows them.

A search (``search_alg: random`` or ``optuna``) is priced at ``num_samples`` x its costliest
possible trial: the bound. Early stopping (``scheduler: asha``) usually ends most trials sooner;
what it would save if it stopped trials at its rungs as its reduction factor intends is stated
beside the bound (``early_stopping``), never in its place: ASHA stops a trial only when others
at its rung did better, and may stop none."""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, Field

from sweeps.benchmarks import get_benchmark
from sweeps.plan import ASHA_REDUCTION, SweepPlan
from sweeps.spec import SweepSpec

MT_OBS_DIM, MT_ACTION_DIM = 39, 4
"""Meta-World v3 observation and action sizes."""
TRAINED_PARAMETER_BYTES = 16
"""fp32 weight, gradient and Adam's two moments (an upper bound: on CPU the segments' gradients
are row-sparse; measured 11 bytes per segment weight, 2 x 2048 units, 10 vs 40 segments)."""
PROCESS_BASE_MB = {"continual": 500.0, "metaworld": 1000.0}
"""A trial process before its network and data: measured peak resident set of a tiny trial, 460
MiB (continual, digits, 2 x 16 units) and 951 MiB (MT10, 2 x 48 units, 10 train + 10 eval envs)."""
DATA_COPIES = 4
"""Copies of a continual trial's data set at its peak: the data set (cached by the worker), a
task's permuted copy, a test split's during evaluation and the load's standardisation
temporaries, with what the allocator keeps of them. Measured on full-size permuted
Fashion-MNIST, 10 tasks, one thread per trial, in fresh processes: kWTA + sparse weights without
dendrites peaked at 1,339 MiB, Active Dendrites at 1,568-1,597 MiB; with 2 copies the estimate
was 1,032 and 1,523 MiB, with 4 it is 1,450 and 1,942. Workers that had run a trial before
peaked higher (1,563 and 1,810 MiB) before they released the last trial's freed memory
(``workers.memory.release_freed_memory``)."""
ACTIVATION_COPIES = 3
"""Hidden activations held per layer and sample (pre-activation, output, gradient)."""
REPLAY_BYTES = 4 * (2 * MT_OBS_DIM + MT_ACTION_DIM + 2) + 8
"""One stored transition: obs and next obs, action, reward and termination (fp32), task (int64)."""
MAX_PROBES = 64
"""Most combinations of sampled-dimension values priced one by one per grid point; beyond it
the costliest draw is found by coordinate ascent (``_worst_draw``)."""


class TrialEstimate(BaseModel):
    """One resolved grid point: its config (sampled dimensions as their distributions), the cost
    of its costliest possible draw and the most memory one of its draws needs."""

    config: dict[str, Any]
    samples: int
    cost: float
    memory_mb: float = Field(description="peak memory of one trial, MiB (trial_memory_mb)")


class EarlyStoppingEstimate(BaseModel):
    """What ASHA would save if it stopped trials at its rungs as its reduction factor intends: all
    trials reach the first rung, 1/rf of them the next, ... (not a bound: it may stop none)."""

    step_metric: str
    rungs: list[int] = Field(description="steps (tasks seen, env steps) at which ASHA may stop a trial")
    reduction_factor: float
    full_budget: int
    expected_cost: float = Field(description="total_cost x the share of the budget ASHA would let run")
    expected_saving: float = Field(description="1 - expected_cost / total_cost")


class SweepEstimate(BaseModel):
    """Every grid point of a sweep and what the whole sweep costs at most."""

    trials: list[TrialEstimate]
    expected_trials: int
    max_trial_cost: float
    max_trial_memory_mb: float = Field(description="the most memory one trial needs, MiB")
    total_cost: float = Field(description="the bound: every trial run to its full budget")
    early_stopping: EarlyStoppingEstimate | None = None


def network_parameters(config: Any, input_dim: int, output_dim: int, context_dim: int) -> int:
    """Trainable parameters of the network a :class:`dendrites.config.NetworkConfig` names."""
    sizes = [input_dim, *config.hidden_sizes, output_dim]
    params = sum(a * b + b for a, b in itertools.pairwise(sizes))
    if config.model == "dendritic":
        params += sum(config.hidden_sizes) * config.num_segments * context_dim
    elif getattr(config, "context_to_input", False):
        params += config.hidden_sizes[0] * context_dim
    return params


def _dataset_shape(config: Any) -> tuple[int, int, int]:
    """(input features, training samples, classes) of a continual config's dataset, known
    without loading it (MNIST's for a dataset not listed)."""
    from workers.continual.datasets import DATASET_SHAPES

    return DATASET_SHAPES.get(config.dataset, (784, 60_000, 10))


def trial_work(workload: str, config: Any) -> float:
    """What a trial's training time grows with, whatever its network: the samples it trains on,
    every epoch of every task counted (continual), or its environment steps (SAC)."""
    if workload == "continual":
        _, samples, _ = _dataset_shape(config)
        return float(samples * config.epochs * config.num_tasks)
    if workload == "metaworld":
        return float(config.total_steps)
    return 0.0


def trial_cost(workload: str, config: Any) -> float:
    """The estimated size of one trial of ``workload`` with ``config`` (see the module doc): its
    network's parameters x its :func:`trial_work`."""
    if workload == "continual":
        features, _, classes = _dataset_shape(config)
        context = config.context_dim(features)
        return float(network_parameters(config, features, classes, context) * trial_work(workload, config))
    if workload == "metaworld":
        tasks = config.num_tasks
        actor = network_parameters(config, MT_OBS_DIM, 2 * MT_ACTION_DIM, tasks)
        critic = network_parameters(config, MT_OBS_DIM + MT_ACTION_DIM, 1, tasks)
        return float((actor + 2 * critic) * trial_work(workload, config))
    return 0.0


def trial_memory_mb(workload: str, config: Any) -> float:
    """A trial's estimated peak memory, MiB: the process (:data:`PROCESS_BASE_MB`), the trained
    parameters with their gradients and Adam state, the data (continual: the dataset and a
    permuted copy; SAC: the full replay buffer) and the activations of the largest batch. The
    parameter term is what grows: a 2 x 2048 dendritic network with 100 segments on a 784-d
    context holds 321M segment weights, 4.9 GiB with Adam."""
    if workload == "continual":
        features, samples, classes = _dataset_shape(config)
        context = config.context_dim(features)
        trained = network_parameters(config, features, classes, context) * TRAINED_PARAMETER_BYTES
        data = DATA_COPIES * (samples * 7 // 6) * features * 4  # train + test (~1/6) in fp32
        batch = max(config.batch_size, config.eval_batch_size)
        activations = batch * sum(config.hidden_sizes) * 4 * ACTIVATION_COPIES
        if config.model == "dendritic":  # segment activations of every prototype at evaluation
            activations += config.num_tasks * sum(config.hidden_sizes) * config.num_segments * 4
    elif workload == "metaworld":
        tasks = config.num_tasks
        actor = network_parameters(config, MT_OBS_DIM, 2 * MT_ACTION_DIM, tasks)
        critic = network_parameters(config, MT_OBS_DIM + MT_ACTION_DIM, 1, tasks)
        trained = (actor + 2 * critic) * TRAINED_PARAMETER_BYTES + 2 * critic * 4  # + targets
        data = config.buffer_size * REPLAY_BYTES
        activations = config.batch_size * sum(config.hidden_sizes) * 4 * ACTIVATION_COPIES * 5
    else:
        return 0.0
    return PROCESS_BASE_MB[workload] + (trained + data + activations) / 2**20


def _worst_draw(dimensions: dict[str, list[Any]], measure: Callable[[dict[str, Any]], float]) -> float:
    """The largest ``measure`` over draws of ``dimensions``: every combination of their probe
    values when there are at most :data:`MAX_PROBES`, else coordinate ascent from the first
    values, one dimension at a time until no change raises it (exact for these estimates:
    products of factors each growing with its own parameter, such as epochs x segments)."""
    names, values = list(dimensions), list(dimensions.values())
    if math.prod(len(v) for v in values) <= MAX_PROBES:
        return max(measure(dict(zip(names, combo, strict=True))) for combo in itertools.product(*values))
    draw = {name: options[0] for name, options in dimensions.items()}
    best = measure(draw)
    improved = True
    while improved:
        improved = False
        for name, options in dimensions.items():
            for option in options:
                trial = measure({**draw, name: option})
                if trial > best:
                    best, draw, improved = trial, {**draw, name: option}, True
    return best


def estimate(spec: SweepSpec) -> SweepEstimate:
    """Each grid point of ``spec`` with its worst-case cost and memory over the draws of its
    sampled dimensions, and the sweep's total (grid points x ``num_samples``)."""
    benchmark = spec.benchmark_entry
    model, workload = benchmark.config_model, benchmark.workload_name
    base = {**benchmark.defaults, **spec.params}
    sampled = spec.sampled
    grid = {n: list(d.values) for n, d in spec.search_space.items() if n not in sampled}
    dimensions = {n: d.probe_values() for n, d in sampled.items()}  # a range's ends, every choice
    distributions = {n: d.model_dump() for n, d in sampled.items()}
    trials = []
    for point in itertools.product(*grid.values()):
        fixed = dict(zip(grid, point, strict=True))

        def config_of(draw: dict[str, Any], fixed: dict[str, Any] = fixed) -> Any:
            return model.model_validate({**base, **spec.expand({**fixed, **draw})})

        def worst(size: Callable[[str, Any], float]) -> float:
            return _worst_draw(dimensions, lambda draw: size(workload, config_of(draw)))

        trials.append(TrialEstimate(config={**fixed, **distributions}, samples=spec.num_samples,
                                    cost=worst(trial_cost), memory_mb=worst(trial_memory_mb)))
    total = sum(t.cost * t.samples for t in trials)
    return SweepEstimate(trials=trials, expected_trials=spec.expected_trials,
                         max_trial_cost=max(t.cost for t in trials),
                         max_trial_memory_mb=max(t.memory_mb for t in trials), total_cost=total,
                         early_stopping=early_stopping(spec, total) if spec.scheduler == "asha" else None)


def planned_work(spec: SweepSpec) -> list[float] | None:
    """The :func:`trial_work` of every trial a grid sweep runs, in the order Ray Tune starts them
    (its variant generator's order over the grid, the whole grid once per sample); None where
    trials' sizes are not known before they start: a search draws them, and ASHA may stop any of
    them early."""
    if spec.sampled or spec.scheduler == "asha":
        return None
    from ray.tune.search.variant_generator import generate_variants

    entry = spec.benchmark_entry
    configs = [config for _, config in generate_variants(SweepPlan.resolve(spec, "work").param_space())]
    works = [trial_work(entry.workload_name, entry.config_model.model_validate(spec.expand(config)))
             for config in configs]
    return works * spec.num_samples


def config_work(benchmark: str, config: dict[str, Any]) -> float:
    """The :func:`trial_work` of a trial whose resolved config is ``config`` (as a trial reports
    it: case labels beside the fields); raises if it no longer validates."""
    entry = get_benchmark(benchmark)
    model = entry.config_model
    fields = {k: v for k, v in config.items() if k in model.model_fields}
    return trial_work(entry.workload_name, model.model_validate({**entry.defaults, **fields}))


def asha_rungs(grace: int, full_budget: int, reduction_factor: float) -> list[int]:
    """The steps at which ASHA may stop a trial: grace x rf^k below the full budget."""
    rungs, rung = [], float(grace)
    while rung < full_budget:
        rungs.append(int(rung))
        rung *= reduction_factor
    return rungs


def budget_share(rungs: list[int], full_budget: int, reduction_factor: float) -> float:
    """The share of the trials' full budgets run when 1/rf of the trials at each rung go on."""
    run, start, survivors = 0.0, 0, 1.0
    for rung in [*rungs, full_budget]:
        run += survivors * (rung - start)
        start, survivors = rung, survivors / reduction_factor
    return run / full_budget


def early_stopping(spec: SweepSpec, total_cost: float) -> EarlyStoppingEstimate:
    """ASHA's intended saving on a sweep whose bound is ``total_cost`` (trial cost taken as
    proportional to progress: tasks, env steps)."""
    plan = SweepPlan.resolve(spec, "estimate")
    grace, budget = plan.asha_grace, plan.step_range[1]
    rungs = asha_rungs(grace, budget, ASHA_REDUCTION)
    share = budget_share(rungs, budget, ASHA_REDUCTION)
    return EarlyStoppingEstimate(step_metric=plan.workload.step_metric, rungs=rungs,
                                 reduction_factor=ASHA_REDUCTION, full_budget=budget,
                                 expected_cost=total_cost * share, expected_saving=1 - share)
