"""Named presets for :class:`workers.continual.config.ContinualConfig`.

A preset fills the fields a config leaves unset; explicit values always win.

- ``project``: the field defaults (this project's own settings); fills nothing.
- ``paper``: Numenta's permuted-MNIST protocol as read from nupic.research
  (``projects/dendrites/permutedMNIST/experiments/*.py``, audited in /work/notes/ref_continual.md):
  Adam reset after every task (not with SI), the "modified" init with context_percent_on 0.1, a
  sparse output head, task 0 unpermuted, permutations seeded with 42, the last partial batch
  dropped, batch 256 / eval batch 512, and epochs / learning rate per model and task count from
  the reference configs. Not reference settings: XdG and SI+XdG (no reference code exists), and
  task counts a config family lacks (the nearest listed task count is used).
"""

from __future__ import annotations

import math
from typing import Any

PRESETS = ("paper", "project")

# The rows of the paper's permuted-MNIST table, as the fields each sets (``variant: <name>`` in a
# config or sweep spec; explicit fields still win). XdG rows are not Numenta code.
VARIANTS: dict[str, dict[str, Any]] = {
    "active_dendrites": {"model": "dendritic", "context": "prototype", "consolidation": "none"},
    "online_prototypes": {"model": "dendritic", "context": "online_prototype",
                          "consolidation": "none"},
    "dendrites_si": {"model": "dendritic", "context": "prototype", "consolidation": "si"},
    "si": {"model": "mlp", "consolidation": "si"},
    "xdg": {"model": "xdg", "consolidation": "none"},
    "xdg_si": {"model": "xdg", "consolidation": "si"},
    "dendrites_relu": {"model": "dendritic", "context": "prototype", "consolidation": "none",
                       "kw_percent_on": None},
    "sparse_only": {"model": "sparse_mlp", "consolidation": "none"},
    "mlp": {"model": "mlp", "consolidation": "none"},
}

# (epochs, lr) per number of tasks, from the reference config of each row (notes Q3 / Q7).
PROTOTYPE = {2: (1, 5e-4), 5: (1, 5e-4), 10: (3, 5e-4), 25: (5, 3e-4), 50: (3, 3e-4),
             100: (3, 1e-4)}  # E/prototype.py
ONLINE_PROTOTYPE = {2: (5, 1e-3), 5: (5, 1e-3), 10: (3, 1e-3), 25: (1, 3e-4), 50: (3, 1e-4),
                    100: (3, 1e-4)}  # E/cluster.py (construct_prototype_*)
DENDRITES_RELU = {2: (5, 5e-4), 5: (10, 1e-3), 10: (5, 5e-6), 25: (5, 5e-6), 50: (5, 1e-5),
                  100: (5, 5e-6)}  # E/dendrites_xor_sparsity.py (active_dendrites_only_*)
SPARSE_ONLY = {2: (3, 1e-3), 5: (10, 5e-5), 10: (5, 1e-4), 25: (10, 1e-5), 50: (10, 1e-5),
               100: (5, 1e-4)}  # E/dendrites_xor_sparsity.py (sparse_representations_only_*)
THREE_LAYER_MLP = {10: (5, 3e-6), 100: (3, 1e-6)}  # E/mlp.py (three_layer_mlp_*)
SI_PROTOTYPE = {10: (20, 5e-4), 50: (20, 5e-4), 100: (20, 5e-4)}  # E/si_prototype.py
SI_ONLY = {5: (20, 1e-3), 10: (20, 1e-3)}  # vernon_continual/experiments/si.py
# Not from Numenta's code (none exists, notes Q5): Masse et al. 2018's permuted-MNIST setting as
# commonly described (2 x 2000 units, Adam lr 1e-3, 20 epochs per task); unverified here.
XDG = {10: (20, 1e-3)}


def _nearest(table: dict[int, tuple[int, float]], num_tasks: int) -> tuple[int, float]:
    """The entry for ``num_tasks``, else for the nearest listed count (log scale)."""
    key = min(table, key=lambda t: (abs(math.log(t) - math.log(max(num_tasks, 1))), t))
    return table[key]


def _row(values: dict[str, Any]) -> tuple[dict[int, tuple[int, float]], dict[str, Any]]:
    """The reference row a config describes: its (epochs, lr) table and its other settings."""
    model = values.get("model", "dendritic")
    consolidation = values.get("consolidation", "none")
    context = values.get("context", "prototype")
    relu = "kw_percent_on" in values and values["kw_percent_on"] is None
    si = consolidation == "si"
    if model == "dendritic" and si:
        return SI_PROTOTYPE, {"hidden_sizes": [2000, 2000], "reset_optimizer": False,
                              "consolidation_strength": 0.1, "si_damping": 0.1,
                              "consolidate_segments": False, "consolidation_start_task": 2}
    if model == "dendritic" and context == "online_prototype":
        return ONLINE_PROTOTYPE, {"cluster_pixels": 256, "cluster_alpha": 0.1}
    if model == "dendritic" and relu:
        return DENDRITES_RELU, {}
    if model == "dendritic":
        return PROTOTYPE, {}
    if model == "sparse_mlp":
        return SPARSE_ONLY, {}
    if model == "xdg":
        settings = {"hidden_sizes": [2000, 2000], "kw_percent_on": None, "weight_sparsity": 0.0,
                    "init": "project", "xdg_keep": 0.2}
        if si:
            settings.update(reset_optimizer=False, consolidation_strength=0.1, si_damping=0.1,
                            consolidation_start_task=2)
        return XDG, settings
    if si:  # SI alone: SINetwork, dense 2000-2000 ReLU, PyTorch default init
        return SI_ONLY, {"hidden_sizes": [2000, 2000], "kw_percent_on": None,
                         "weight_sparsity": 0.0, "init": "project", "reset_optimizer": False,
                         "consolidation_strength": 0.1, "si_damping": 0.1,
                         "consolidation_start_task": 2}
    # three_layer_mlp_*: ModifiedInitStandardMLP, dense ReLU
    return THREE_LAYER_MLP, {"kw_percent_on": None, "weight_sparsity": 0.0}


def paper_values(values: dict[str, Any]) -> dict[str, Any]:
    """The ``paper`` preset's value for every field it sets, given the explicit ``values``
    (which select the row: model, context, consolidation, kw_percent_on, num_tasks)."""
    table, settings = _row(values)
    epochs, lr = _nearest(table, int(values.get("num_tasks", 10)))
    return {
        "hidden_sizes": [2048, 2048], "kw_percent_on": 0.05, "weight_sparsity": 0.5,
        "dendrite_sparsity": 0.0, "gating": "absolute_max", "init": "modified",
        "context_percent_on": 0.1, "sparse_head": True, "reset_optimizer": True,
        "drop_last": True, "batch_size": 256, "eval_batch_size": 512, "permutation_seed": 42,
        "epochs": epochs, "lr": lr, **settings,
    }


def apply_preset(values: dict[str, Any]) -> dict[str, Any]:
    """``values`` with the fields its ``variant`` and then its ``preset`` set and it leaves
    unset filled in."""
    variant = values.get("variant")
    if variant is not None:
        if variant not in VARIANTS:
            raise ValueError(f"unknown variant {variant!r}; choose one of {sorted(VARIANTS)}")
        values = {**VARIANTS[variant], **values}
    preset = values.get("preset")
    if preset is None or preset == "project":
        return values
    if preset != "paper":
        raise ValueError(f"unknown preset {preset!r}; choose one of {list(PRESETS)}")
    return {**paper_values(values), **values}
