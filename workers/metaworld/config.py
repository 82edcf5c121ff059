"""The MT10 / multi-task SAC configuration: one pydantic model for the CLI, sweeps and the worker.

Hyperparameters and where they come from:

- ``hidden_sizes`` (paper scale 1950 x 2), ``num_segments`` 10, ``kw_percent_on`` 0.25,
  ``weight_sparsity`` 0.1, ``actor_lr`` = ``critic_lr`` = 3e-4: Numenta's public MT10
  experiment configs for the paper (nupic.research, ``projects/multitask``). The CPU default
  width is 400 so a laptop run is feasible; the paper-scale spec sets 1950.
- ``gamma`` 0.99, ``tau`` 5e-3, target entropy ``-action_dim``, learned per-task temperatures
  (initial 1.0), twin Q critics, tanh-Gaussian actor: SAC (Haarnoja et al. 2018) and MT-SAC
  (Yu et al. 2019, Meta-World), as in the paper's Sec. 4.1.
- episode length 500: Meta-World v3's ``max_path_length``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from dendrites.config import HiddenSizes, KWTADensity, NetworkConfig, Segments, Sparsity
from workers.torch_runtime import MAX_SEED

MT_BENCHMARKS = {"MT10": 10, "MT50": 50}


class MTSACConfig(NetworkConfig):
    """Multi-task SAC on Meta-World (MT10, MT50, or one task such as ``reach-v3``); actor and
    critics are built from the shared :class:`dendrites.config.NetworkConfig` fields."""

    env: str = Field("MT10", description="MT10, MT50, or a Meta-World v3 task name (e.g. reach-v3)")
    num_envs: int = Field(4, ge=1, le=64, description="parallel copies for a single-task env")
    vector: Literal["sync", "async"] = Field("sync", description="gymnasium vector env strategy")
    total_steps: int = Field(1_000_000, ge=1, le=1_000_000_000,
                             description="environment steps over all tasks")
    hidden_sizes: HiddenSizes = [400, 400]
    num_segments: Segments = 10
    kw_percent_on: KWTADensity = 0.25
    weight_sparsity: Sparsity = 0.1
    actor_lr: float = Field(3e-4, gt=0)
    critic_lr: float = Field(3e-4, gt=0)
    alpha_lr: float = Field(3e-4, gt=0)
    gamma: float = Field(0.99, gt=0, le=1)
    tau: float = Field(5e-3, gt=0, le=1)
    initial_alpha: float = Field(1.0, gt=0)
    batch_size: int = Field(256, ge=2, le=65_536)
    buffer_size: int = Field(1_000_000, ge=100, le=20_000_000)
    learning_starts: int = Field(5_000, ge=0, description="random-action env steps before updates")
    updates_per_step: float = Field(0.5, gt=0, description="gradient steps per env step (all envs)")
    eval_every: int = Field(50_000, ge=1, description="env steps between evaluations")
    eval_episodes: int = Field(1, ge=1, description="deterministic episodes per task per evaluation")
    max_episode_steps: int = Field(500, ge=1)
    checkpoint_replay: bool = Field(True, description="keep the replay buffer in checkpoints")
    seed: int = Field(0, ge=0, le=MAX_SEED)
    device: str = "auto"

    @field_validator("env")
    @classmethod
    def _known_env(cls, value: str) -> str:
        if value in MT_BENCHMARKS:
            return value
        from metaworld import ALL_V3_ENVIRONMENTS

        if value not in ALL_V3_ENVIRONMENTS:
            raise ValueError(f"unknown Meta-World env {value!r}: use MT10, MT50 or a v3 task name "
                             f"such as reach-v3")
        return value

    @model_validator(mode="after")
    def _batch_fits_buffer(self) -> MTSACConfig:
        if self.batch_size > self.buffer_size:
            raise ValueError("batch_size must not exceed buffer_size")
        return self

    @property
    def num_evaluations(self) -> int:
        """How many reports a run makes (the sweep scheduler's iteration budget)."""
        return -(-self.total_steps // self.eval_every)

    @property
    def num_tasks(self) -> int:
        return MT_BENCHMARKS.get(self.env, 1)
