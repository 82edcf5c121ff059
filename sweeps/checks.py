"""Checks of a spec against the world it will run in, made before anything starts: a trial's
resources (and estimated memory) against the cluster's nodes, and the dataset files a trial will
read."""

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


def memory_problems(spec: SweepSpec, nodes: list[dict[str, float]],
                    trial_memory_mb: float) -> list[Problem]:
    """Against a trial's estimated peak memory (:func:`sweeps.cost.trial_memory_mb`): a
    reservation (``resources.memory_mb``) below it would let the trials a node runs at once
    oversubscribe its memory, and what is reserved must fit the largest node's memory (Ray's
    ``memory`` resource, bytes; not checked where the nodes do not say)."""
    problems: list[Problem] = []
    loc = ("resources", "memory_mb")
    reserved = spec.resources.memory_mb
    if reserved is not None and reserved < trial_memory_mb:
        problems.append((loc, f"resources.memory_mb: {reserved:g} MiB per trial is below a trial's "
                              f"estimated peak of {trial_memory_mb:.0f} MiB, so the trials a node runs "
                              "at once could oversubscribe its memory; reserve at least the estimate"))
    wanted = max(reserved or 0.0, trial_memory_mb)
    memory = [node["memory"] / 2**20 for node in nodes if "memory" in node]
    if memory and wanted > max(memory):
        problems.append((loc, f"resources.memory_mb: a trial needs about {wanted:.0f} MiB (estimated "
                              f"peak, with its parameters' gradients and Adam state) but the largest "
                              f"node of the cluster has {max(memory):.0f} MiB for trials; reduce "
                              "hidden_sizes, num_segments or the batch sizes"))
    return problems


def data_problems(spec: SweepSpec) -> list[Problem]:
    """Dataset files a continual-learning trial needs but this machine does not have."""
    if spec.benchmark_entry.workload_name != "continual":
        return []
    from workers.continual.datasets import dataset_missing

    base = spec.base_config
    datasets = [(("params", "data_dir"), base.dataset, base.data_dir, base.download)]
    for where, values in spec.probes():
        if {"dataset", "data_dir"} & values.keys():
            config = {"dataset": base.dataset, "data_dir": base.data_dir, **values}
            loc = tuple(where.split(".")[:2])  # (search_space, the dimension)
            datasets.append((loc, config["dataset"], config["data_dir"], base.download))
    problems: list[Problem] = []
    for loc, dataset, data_dir, download in datasets:
        missing = dataset_missing(dataset, data_dir, download)
        if missing:
            problems.append((loc, f"{'.'.join(loc)}: {missing}"))
    return problems
