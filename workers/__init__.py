"""Trainable workloads behind one protocol (:mod:`workers.workload`): continual learning on
permuted images (:mod:`workers.continual`) and multi-task RL on Meta-World (:mod:`workers.metaworld`).

Workloads are imported on first use, so asking for one does not import the other's stack."""

from __future__ import annotations

import importlib

from workers.workload import Workload

WORKLOADS = {"continual": "workers.continual:CONTINUAL", "metaworld": "workers.metaworld:METAWORLD"}


def get_workload(name: str) -> Workload:
    """A registered workload by name."""
    try:
        module, attribute = WORKLOADS[name].split(":")
    except KeyError:
        raise ValueError(f"unknown workload {name!r}; choose one of {sorted(WORKLOADS)}") from None
    return getattr(importlib.import_module(module), attribute)
