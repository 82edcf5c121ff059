"""Configuration of one continual-learning trial (validated before any training starts)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from dendrites.config import NetworkConfig, Segments
from workers.continual.datasets import DATASETS
from workers.torch_runtime import MAX_SEED


class ContinualConfig(NetworkConfig):
    """One permuted-task continual-learning run on a dataset of the registry; the network fields
    (``model``, ``hidden_sizes``, ``num_segments``, ``kw_percent_on``, ...) are
    :class:`dendrites.config.NetworkConfig`'s."""

    dataset: str = Field("digits", description="dataset: digits, mnist5k or mnist")
    data_dir: str | None = Field(None, description="directory holding the dataset files (mnist)")
    download: bool = Field(False, description="download MNIST into data_dir when missing")
    num_tasks: int = Field(10, ge=1, le=1000, description="number of permuted tasks")
    context: Literal["prototype", "onehot"] = Field(
        "prototype",
        description="dendritic context: inferred task prototype, or the true task id (oracle)",
    )
    num_segments: Segments | None = Field(
        None, ge=1, description="dendritic segments per unit (default: num_tasks)"
    )
    epochs: int = Field(3, ge=1, le=1000, description="epochs per task")
    lr: float = Field(5e-4, gt=0.0, le=10.0, description="Adam learning rate")
    batch_size: int = Field(256, ge=1, le=65_536, description="training batch size, samples")
    eval_batch_size: int = Field(4096, ge=1, le=65_536, description="evaluation batch size, samples")
    reset_optimizer: bool = Field(False, description="new Adam state at the start of each task")
    consolidation: Literal["none", "si", "ewc"] = Field(
        "none", description="consolidation regulariser: Synaptic Intelligence or EWC"
    )
    consolidation_strength: float | None = Field(
        None, ge=0.0, le=1e9, description="SI c (default 0.1) or EWC lambda (default 100)"
    )
    si_damping: float = Field(0.1, gt=0.0, le=1e3, description="SI damping xi")
    context_dedup: bool = Field(True, description="evaluate segments once per distinct context")
    sparse_segment_updates: bool = Field(
        False,
        description="lazy Adam on winning segments only (faster; needs context_dedup, no consolidation)",
    )
    seed: int = Field(0, ge=0, le=MAX_SEED, description="random seed (permutations, init, batches)")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")

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
        return self

    @model_validator(mode="after")
    def _sparse_updates_compatible(self) -> ContinualConfig:
        if self.sparse_segment_updates and not self.context_dedup:
            raise ValueError("sparse_segment_updates needs context_dedup")
        if self.sparse_segment_updates and self.consolidation != "none":
            raise ValueError("sparse_segment_updates cannot be combined with a consolidation "
                             "regulariser (its penalty gives segments dense gradients)")
        return self
