"""Checks of a spec against the world it will run in, made before anything starts: a trial's
resources against the cluster's nodes, and the dataset files a trial will read."""

from __future__ import annotations

from sweeps.spec import SweepSpec

Problem = tuple[tuple[str, ...], str]
"""(field location in the spec, message naming the field)."""


def resource_problems(spec: SweepSpec, nodes: list[dict[str, float]]) -> list[Problem]:
    """A trial runs on one node: it may not ask for more CPUs or GPUs than the largest node has."""
    problems: list[Problem] = []
    for field, key in (("cpu", "CPU"), ("gpu", "GPU")):
        wanted = getattr(spec.resources, field)
        largest = max((node.get(key, 0.0) for node in nodes), default=0.0)
        if wanted > largest:
            problems.append((("resources", field),
                             f"resources.{field}: a trial asks for {wanted:g} {key} but the largest "
                             f"node of the cluster has {largest:g}"))
    return problems


def data_problems(spec: SweepSpec) -> list[Problem]:
    """Dataset files a continual-learning trial needs but this machine does not have."""
    if spec.benchmark_entry.workload_name != "continual":
        return []
    from workers.continual.datasets import dataset_missing

    base = spec.base_config
    datasets = [("params", base.dataset, base.data_dir, base.download)]
    for name in ("dataset", "data_dir"):
        if name in spec.search_space:
            for value in spec.search_space[name].probe_values():
                config = {"dataset": base.dataset, "data_dir": base.data_dir, name: value}
                datasets.append((f"search_space.{name}", config["dataset"], config["data_dir"],
                                 base.download))
    problems: list[Problem] = []
    for where, dataset, data_dir, download in datasets:
        missing = dataset_missing(dataset, data_dir, download)
        if missing:
            field = "data_dir" if where == "params" else where.split(".")[1]
            loc = ("params", "data_dir") if where == "params" else ("search_space", field)
            problems.append((loc, f"{'.'.join(loc)}: {missing}"))
    return problems
