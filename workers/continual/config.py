"""Configuration of one continual-learning trial (validated before any training starts)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from dendrites.config import MAX_LAYERS, NetworkConfig, Segments
from workers.continual.datasets import DATASETS
from workers.continual.presets import apply_preset
from workers.torch_runtime import MAX_SEED

SPEED_FIELDS = {"cuda_graphs", "device"}
"""Config fields that change where and how fast a run trains, not what it computes (a run
resumed on another device, e.g. a retried trial on another node, goes on from its checkpoint)."""


class ContinualConfig(NetworkConfig):
    """One permuted-task continual-learning run on a dataset of the registry; the network fields
    (``model``, ``hidden_sizes``, ``num_segments``, ``kw_percent_on``, ...) are
    :class:`dendrites.config.NetworkConfig`'s. A ``preset`` fills the fields left unset
    (:mod:`workers.continual.presets`); the resolved config shows every value."""

    preset: Literal["paper", "project"] | None = Field(
        None, description="fill unset fields from a named preset: paper (Numenta's reference "
                          "protocol) or project (the field defaults)")
    variant: Literal["active_dendrites", "online_prototypes", "dendrites_si", "si", "xdg",
                     "xdg_si", "dendrites_relu", "sparse_only", "mlp"] | None = Field(
        None, description="a row of the paper's table: sets model, context, consolidation "
                          "(and kw_percent_on) where not given")
    model: Literal["dendritic", "mlp", "sparse_mlp", "xdg"] = Field(
        "dendritic",
        description="dendritic network; dense ReLU MLP; MLP with kWTA and sparse weights (no "
                    "dendrites); or XdG (fixed random per-task gating of hidden units, task id given)",
    )
    dataset: str = Field("digits", description="dataset: digits, mnist5k, mnist or fashion_mnist")
    data_dir: str | None = Field(None, description="directory holding the dataset files (mnist)")
    download: bool = Field(False, description="download MNIST into data_dir when missing")
    num_tasks: int = Field(10, ge=1, le=1000, description="number of permuted tasks")
    permutation_seed: int = Field(
        42, ge=0, le=MAX_SEED,
        description="seed of the task permutations (task 0 is unpermuted), independent of seed")
    context: Literal["prototype", "onehot", "online_prototype"] = Field(
        "prototype",
        description="dendritic context: task prototype (nearest at test time), the true task id "
                    "(oracle), or prototypes clustered online without task boundaries",
    )
    cluster_pixels: int = Field(256, ge=1, le=65_536,
                                description="online_prototype: random pixels the clusters use")
    prototype_pixels: int | None = Field(
        None, ge=1, le=65_536,
        description="prototype context: the task prototypes use this many random pixels, the "
                    "same ones online prototypes' cluster_pixels draw with the same seed (to "
                    "compare the two contexts on equal pixels); none: every pixel")
    cluster_alpha: float = Field(0.1, gt=0.0, lt=1.0,
                                 description="online_prototype: Hotelling T^2 test level")
    context_percent_on: float | None = Field(
        None, gt=0.0, le=1.0,
        description="context density assumed by the segment init (default: 0.1 with the "
                    "modified init, else 1)")
    layer_input_densities: list[Annotated[float, Field(gt=0.0, le=1.0)]] | None = Field(
        None, max_length=MAX_LAYERS + 1,
        description="input density per layer for the modified init (default: 1, then the "
                          "kWTA density; 1, 0.5, ... for the modified-init dense MLP)")
    xdg_keep: float = Field(0.2, gt=0.0, le=1.0,
                            description="xdg: fraction of hidden units each task keeps")
    num_segments: Segments | None = Field(
        None, ge=1, description="dendritic segments per unit (default: num_tasks)"
    )
    epochs: int = Field(3, ge=1, le=1000, description="epochs per task")
    lr: float = Field(5e-4, gt=0.0, le=10.0, description="Adam learning rate")
    batch_size: int = Field(256, ge=1, le=65_536, description="training batch size, samples")
    eval_batch_size: int = Field(4096, ge=1, le=65_536, description="evaluation batch size, samples")
    eval_tasks: list[Annotated[int, Field(ge=0, le=999)]] | None = Field(
        None, max_length=1000,
        description="task indices (0-based) after which every task seen is evaluated, and "
                    "always after the last task; after the others only the task just trained "
                    "(null: every task seen after every task)")
    drop_last: bool = Field(False, description="drop each epoch's last partial training batch")
    reset_optimizer: bool = Field(False, description="new Adam state at the start of each task")
    consolidation: Literal["none", "si", "ewc"] = Field(
        "none", description="consolidation regulariser: Synaptic Intelligence or EWC"
    )
    consolidation_strength: float | None = Field(
        None, ge=0.0, le=1e9, description="SI c (default 0.1) or EWC lambda (default 100)"
    )
    si_damping: float = Field(0.1, gt=0.0, le=1e3, description="SI damping xi")
    consolidate_segments: bool = Field(
        True, description="the consolidation penalty covers dendritic segments too")
    consolidation_start_task: int = Field(
        1, ge=1, le=1000, description="first task (0-based) trained with the consolidation penalty")
    ewc_fisher_samples: int = Field(256, ge=1, le=1_000_000,
                                    description="EWC: samples for the per-sample empirical Fisher")
    context_dedup: bool = Field(True, description="evaluate segments once per distinct context")
    sparse_segment_updates: bool = Field(
        False,
        description="lazy Adam on winning segments only (faster; needs context_dedup, no consolidation)",
    )
    seed: int = Field(0, ge=0, le=MAX_SEED,
                      description="random seed (init, batches; not the task permutations)")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")
    precision: Literal["fp32", "bf16"] = Field(
        "fp32", description="bf16: forward passes and losses under torch.autocast(bfloat16) on "
                            "CUDA (weights, gradients and Adam stay fp32); ignored on CPU")

    cuda_graphs: bool = Field(
        True, description="on CUDA, replay each task's full training batches from a captured "
                          "CUDA graph (after 3 eager warm-up steps) where the run allows it "
                          "(dendritic or MLP model, prototype or one-hot context, no "
                          "consolidation, no sparse_segment_updates); ignored on CPU")

    def evaluates_all_seen(self, task: int) -> bool:
        """Whether every task seen is evaluated after training ``task`` (the schedule of
        ``eval_tasks``, as the reference's ``tasks_to_validate``; the last task always)."""
        return self.eval_tasks is None or task in self.eval_tasks or task == self.num_tasks - 1

    def context_dim(self, input_dim: int) -> int:
        """The size of the dendrites' context: the input-sized prototype (or its pixel subset),
        the task one-hot, or the online clusters' pixel subset."""
        return {"prototype": min(self.prototype_pixels or input_dim, input_dim),
                "onehot": self.num_tasks,
                "online_prototype": min(self.cluster_pixels, input_dim)}[self.context]

    def run_identity(self) -> dict[str, Any]:
        """The fields that decide what a run computes: a checkpoint resumes under any config with
        the same identity (``SPEED_FIELDS`` only change where and how fast it trains)."""
        return self.model_dump(exclude=SPEED_FIELDS)

    @model_validator(mode="before")
    @classmethod
    def _fill_from_preset(cls, data: Any) -> Any:
        if isinstance(data, dict) and (data.get("preset") or data.get("variant")) is not None:
            return apply_preset(data)
        return data

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value not in DATASETS:
            raise ValueError(f"unknown dataset {value!r}; choose one of {sorted(DATASETS)}")
        return value

    @field_validator("device")
    @classmethod
    def _known_device(cls, value: str) -> str:
        if value not in ("auto", "cpu") and not value.startswith("cuda"):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {value!r}")
        return value

    @model_validator(mode="after")
    def _segments_default(self) -> ContinualConfig:
        if self.num_segments is None:
            self.num_segments = self.num_tasks
        if self.context_percent_on is None:
            self.context_percent_on = 0.1 if self.init == "modified" else 1.0
        if (self.model == "mlp" and self.init == "modified"
                and self.layer_input_densities is None):
            # ModifiedInitStandardMLP (nupic.research pytorch/models/common_models.py): input
            # density 1 for the first layer, 0.5 after each ReLU layer
            self.layer_input_densities = [1.0] + [0.5] * len(self.hidden_sizes)
        if self.model == "xdg" and self.context != "onehot":
            self.context = "onehot"  # XdG is given the task id
        return self

    @model_validator(mode="after")
    def _sparse_updates_compatible(self) -> ContinualConfig:
        if self.sparse_segment_updates and not self.context_dedup:
            raise ValueError("sparse_segment_updates needs context_dedup")
        if self.sparse_segment_updates and self.consolidation != "none":
            raise ValueError("sparse_segment_updates cannot be combined with a consolidation "
                             "regulariser (its penalty gives segments dense gradients)")
        return self
