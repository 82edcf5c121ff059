"""Configuration of one continual-learning trial (validated before any training starts)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from workers.datasets import DATASETS


class ContinualConfig(BaseModel):
    """One permuted-task continual-learning run. Defaults are the paper's 10-task permuted-MNIST
    configuration (Numenta's public experiment configs), on the embedded ``digits`` dataset."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field("digits", description="dataset: digits, mnist5k or mnist")
    data_dir: str | None = Field(None, description="directory holding the dataset files (mnist)")
    download: bool = Field(False, description="download MNIST into data_dir when missing")
    num_tasks: int = Field(10, ge=1, description="number of permuted tasks")
    model: Literal["dendritic", "mlp", "sparse_mlp"] = Field(
        "dendritic",
        description="dendritic network, plain dense ReLU MLP, or MLP with kWTA and sparse weights",
    )
    context: Literal["prototype", "onehot"] = Field(
        "prototype",
        description="dendritic context: inferred task prototype, or the true task id (oracle)",
    )
    num_segments: int | None = Field(
        None, ge=1, description="dendritic segments per unit (default: num_tasks)"
    )
    kw_percent_on: float = Field(0.05, gt=0.0, le=1.0, description="kWTA activation density")
    weight_sparsity: float = Field(0.5, ge=0.0, lt=1.0, description="feed-forward weight sparsity")
    dendrite_sparsity: float = Field(0.0, ge=0.0, lt=1.0, description="segment weight sparsity")
    gating: Literal["absolute_max", "max", "bias"] = Field(
        "absolute_max", description="how segments modulate a unit"
    )
    hidden_sizes: list[int] = Field([2048, 2048], min_length=1, description="hidden layer widths")
    epochs: int = Field(3, ge=1, description="epochs per task")
    lr: float = Field(5e-4, gt=0.0, description="Adam learning rate")
    batch_size: int = Field(256, ge=1, description="training batch size")
    eval_batch_size: int = Field(4096, ge=1, description="evaluation batch size")
    reset_optimizer: bool = Field(False, description="new Adam state at the start of each task")
    consolidation: Literal["none", "si", "ewc"] = Field(
        "none", description="consolidation regulariser: Synaptic Intelligence or EWC"
    )
    consolidation_strength: float | None = Field(
        None, ge=0.0, description="SI c (default 0.1) or EWC lambda (default 100)"
    )
    si_damping: float = Field(0.1, gt=0.0, description="SI damping xi")
    context_dedup: bool = Field(True, description="evaluate segments once per distinct context")
    sparse_segment_updates: bool = Field(
        False,
        description="lazy Adam on winning segments only (faster; needs context_dedup, no consolidation)",
    )
    seed: int = Field(0, description="random seed (permutations, init, batches)")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")

    @field_validator("dataset")
    @classmethod
    def _known_dataset(cls, value: str) -> str:
        if value not in DATASETS:
            raise ValueError(f"unknown dataset {value!r}; choose one of {sorted(DATASETS)}")
        return value

    @field_validator("hidden_sizes")
    @classmethod
    def _positive_widths(cls, value: list[int]) -> list[int]:
        if any(width < 1 for width in value):
            raise ValueError(f"hidden layer widths must be >= 1, got {value}")
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
