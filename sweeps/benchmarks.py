"""The benchmark registry: each name maps to a worker's config model, its Ray Tune trainable and
fixed defaults. New benchmarks register here (no if-chains elsewhere)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from sweeps.trainables import continual_trainable, mt_sac_trainable
from workers.continual_config import ContinualConfig
from workers.rl.config import MTSACConfig


@dataclass(frozen=True)
class Benchmark:
    """A sweepable workload."""

    name: str
    description: str
    config_model: type[BaseModel]
    trainable: Callable[[dict[str, Any]], None]
    defaults: dict[str, Any] = field(default_factory=dict)
    default_metric: str = "mean_accuracy"
    iterations_param: str = "num_tasks"  # the config field giving the number of reports


BENCHMARKS: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    """Add a benchmark to the registry."""
    BENCHMARKS[benchmark.name] = benchmark
    return benchmark


def get_benchmark(name: str) -> Benchmark:
    """Look a benchmark up by name; the error lists the known ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}") from None


register(Benchmark("permuted_digits", "continual learning on permuted 8x8 digits (bundled)",
                   ContinualConfig, continual_trainable, {"dataset": "digits"}))
register(Benchmark("permuted_mnist5k", "continual learning on 5,000 permuted MNIST digits (bundled)",
                   ContinualConfig, continual_trainable, {"dataset": "mnist5k"}))
register(Benchmark("permuted_mnist", "continual learning on permuted MNIST (local files)",
                   ContinualConfig, continual_trainable, {"dataset": "mnist"}))
register(Benchmark("metaworld_mt10", "Meta-World MT10 multi-task SAC (one-hot task context)",
                   MTSACConfig, mt_sac_trainable, {"env": "MT10"}, default_metric="success_rate",
                   iterations_param="num_evaluations"))
register(Benchmark("metaworld_mt50", "Meta-World MT50 multi-task SAC (one-hot task context)",
                   MTSACConfig, mt_sac_trainable, {"env": "MT50"}, default_metric="success_rate",
                   iterations_param="num_evaluations"))
