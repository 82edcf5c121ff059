"""The benchmark registry: each name is a workload plus fixed defaults (the dataset, the env).
New benchmarks register here; everything workload-specific (metrics, artifacts, figure axes)
comes from the workload (:mod:`workers.workload`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel

from workers import get_workload
from workers.workload import Workload


@dataclass(frozen=True)
class Benchmark:
    """A sweepable workload with some parameters fixed."""

    name: str
    description: str
    workload_name: str
    defaults: dict[str, Any] = field(default_factory=dict)

    @property
    def workload(self) -> Workload:
        return get_workload(self.workload_name)

    @property
    def config_model(self) -> type[BaseModel]:
        return self.workload.config_model


BENCHMARKS: dict[str, Benchmark] = {}


def register(benchmark: Benchmark) -> Benchmark:
    """Add a benchmark to the registry."""
    BENCHMARKS[benchmark.name] = benchmark
    return benchmark


def benchmark_enum(schema: dict[str, Any]) -> None:
    """``json_schema_extra`` for a benchmark-name field: the registered names as its enum."""
    schema["enum"] = sorted(BENCHMARKS)


def get_benchmark(name: str) -> Benchmark:
    """Look a benchmark up by name; the error lists the known ones."""
    try:
        return BENCHMARKS[name]
    except KeyError:
        raise ValueError(f"unknown benchmark {name!r}; choose one of {sorted(BENCHMARKS)}") from None


register(Benchmark("permuted_digits", "continual learning on permuted 8x8 digits (bundled)",
                   "continual", {"dataset": "digits"}))
register(Benchmark("permuted_mnist5k", "continual learning on 5,000 permuted MNIST digits (bundled)",
                   "continual", {"dataset": "mnist5k"}))
register(Benchmark("permuted_mnist", "continual learning on permuted MNIST (local files)",
                   "continual", {"dataset": "mnist"}))
register(Benchmark("permuted_fashion_mnist",
                   "continual learning on permuted Fashion-MNIST, full size (dataset-fashion-mnist)",
                   "continual", {"dataset": "fashion_mnist"}))
register(Benchmark("metaworld_mt10", "Meta-World MT10 multi-task SAC (one-hot task context)",
                   "metaworld", {"env": "MT10"}))
register(Benchmark("metaworld_mt50", "Meta-World MT50 multi-task SAC (one-hot task context)",
                   "metaworld", {"env": "MT50"}))
