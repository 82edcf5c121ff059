"""The MT10 / multi-task SAC configuration: one pydantic model for the CLI, sweeps and the worker.

The defaults are a small CPU setting (2 x 400, many small updates). ``preset="paper"`` fills
every field it does not set from :data:`PAPER_PRESET`: the settings of Numenta's MT10 runs as
read from their code (numenta/nupic.embodied @ 5a960b99, ``projects/multitask``: the
``experiments/`` configs over ``args_parser.py`` defaults, wired in
``nupic/embodied/multitask/trainer.py`` and ``algorithms/custom_mtsac.py``, on garage @ 0e9f32b1),
audited in the lab's reference notes. Values given explicitly override the preset.

- 2 x 2800 hidden units, dendrites on hidden layer 1 only (``layers_modulated=(1,)``), 10
  segments, signed absolute-max gating, kWTA 25% after both hidden layers, dense segments.
- ``weight_sparsity`` 0.1 means **10% of the feed-forward weights are zero** (90% dense): the
  reference passes ``weight_sparsity=(1-0.90)`` to nupic.torch ``SparseWeights(sparsity=...)``,
  whose ``sparsity`` is the fraction of zeros. The MLP arm's ``weight_sparsity=1.0`` is unused
  there (its MLP classes are dense); ours is dense too.
- Schedule: each epoch collects 500 steps on each of the 10 tasks (5000 env steps), then makes
  250 gradient steps (``update_every`` 5000, ``updates_per_step`` 0.05) on batches of 2560
  drawn uniformly from one shared 1M buffer (garage ``PathBuffer``: not stratified per task, so
  about 256 per task only in expectation); updates start once 5000 transitions are stored and
  the first data comes from the untrained policy (no random warm-up).
- Evaluation every 50K env steps, 3 episodes per task with the **stochastic** policy (the
  reference's deterministic-eval path is dead code), success = ``info['success']`` at any step;
  a run's score is the mean of its last 10 evaluations (``success_rate_last10``).
- Fixed goals: one Meta-World task (object/goal positions) per env class for the whole run,
  shared by training and evaluation (``task_update_frequency=1e12``).
- Dendritic arm only (:data:`PAPER_DENDRITIC_PRESET`): the "modified" init (feed-forward
  bounds ``1/sqrt(input_density * weight_density * fan_in)``, the input density being the kWTA
  density 0.25 after a hidden layer) and a 10%-sparse output head.
- Actor log-std clamped to [-20, 2]; mixed precision (autocast + GradScaler) on CUDA only.
- ``gamma`` 0.99, ``tau`` 5e-3 every gradient step, one learned temperature per task
  (initial 1), target entropy ``-action_dim``, Adam at 3e-4 for actor, critics and temperatures.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from dendrites.config import MAX_LAYERS, HiddenSizes, KWTADensity, NetworkConfig, Segments, Sparsity
from workers.torch_runtime import MAX_SEED

MT_BENCHMARKS = {"MT10": 10, "MT50": 50}

PAPER_PRESET: dict[str, Any] = {
    "env": "MT10", "hidden_sizes": [2800, 2800], "dendritic_layers": [1], "num_segments": 10,
    "gating": "absolute_max", "kw_percent_on": 0.25, "weight_sparsity": 0.1,
    "dendrite_sparsity": 0.0, "actor_lr": 3e-4, "critic_lr": 3e-4, "alpha_lr": 3e-4,
    "gamma": 0.99, "tau": 5e-3, "initial_alpha": 1.0, "batch_size": 2560,
    "buffer_size": 1_000_000, "learning_starts": 5_000, "random_warmup": False,
    "update_every": 5_000, "updates_per_step": 0.05, "total_steps": 15_000_000,
    "eval_every": 50_000, "eval_episodes": 3, "eval_deterministic": False,
    "max_episode_steps": 500, "fixed_goals": True, "log_std_bounds": "clamp",
    "mixed_precision": True,
}
"""Numenta's MT10 settings (see the module docstring); ``preset="paper"`` applies them."""
PAPER_DENDRITIC_PRESET: dict[str, Any] = {"init": "modified", "sparse_head": True}
"""What the paper preset adds for the dendritic arm only: Numenta's ``weight_init`` and
``dendrite_init`` = ``modified`` (``args_parser.py`` defaults, kept by every MT10 config) and an
output head with the hidden layers' 10% weight sparsity (``dendritic_mlp.py``: the output
``SparseWeights(sparsity=weight_sparsity)``). Their ``context_percent_on`` is left at 1.0, so
the segment bound stays ``1/sqrt(context_dim)``. The MLP arm (garage's dense MLPs) keeps a dense
head and PyTorch's default init."""
PRESETS = {"paper": PAPER_PRESET}


class MTSACConfig(NetworkConfig):
    """Multi-task SAC on Meta-World (MT10, MT50, or one task such as ``reach-v3``); actor and
    critics are built from the shared :class:`dendrites.config.NetworkConfig` fields."""

    env: str = Field("MT10", description="MT10, MT50, or a Meta-World v3 task name (e.g. reach-v3)")
    num_envs: int = Field(4, ge=1, le=64, description="parallel copies for a single-task env")
    vector: Literal["sync", "async"] = Field("sync", description="gymnasium vector env strategy")
    total_steps: int = Field(1_000_000, ge=1, le=1_000_000_000,
                             description="environment steps over all tasks")
    preset: Literal["paper"] | None = Field(
        None, description="fill every field not given from a preset: paper = Numenta's MT10 runs")
    hidden_sizes: HiddenSizes = [400, 400]
    dendritic_layers: list[Annotated[int, Field(ge=0, le=MAX_LAYERS)]] | None = Field(
        None, max_length=MAX_LAYERS,
        description="hidden layers (0-based) that have dendrites; null: all of them")
    num_segments: Segments = 10
    kw_percent_on: KWTADensity = 0.25
    weight_sparsity: Sparsity = 0.1
    actor_lr: float = Field(3e-4, gt=0, le=10, description="actor Adam learning rate")
    critic_lr: float = Field(3e-4, gt=0, le=10, description="critics' Adam learning rate")
    alpha_lr: float = Field(3e-4, gt=0, le=10,
                            description="learning rate of the per-task entropy temperatures")
    gamma: float = Field(0.99, gt=0, le=1, description="discount factor per env step")
    tau: float = Field(5e-3, gt=0, le=1, description="Polyak rate of the target critics per gradient step")
    initial_alpha: float = Field(1.0, gt=0, le=1e3, description="initial entropy temperature of every task")
    batch_size: int = Field(256, ge=2, le=65_536, description="transitions per gradient step (all tasks)")
    buffer_size: int = Field(1_000_000, ge=100, le=20_000_000,
                             description="replay buffer capacity, transitions")
    learning_starts: int = Field(5_000, ge=0, le=1_000_000_000,
                                 description="env steps stored before the first update")
    random_warmup: bool = Field(True, description="uniform random actions before learning_starts "
                                                  "(else the untrained policy acts)")
    updates_per_step: float = Field(0.5, gt=0, le=100, description="gradient steps per env step (all envs)")
    update_every: int | None = Field(
        None, ge=1, le=1_000_000_000, description="env steps (all envs) between bursts of the updates owed; "
                                "null: after every vector step")
    eval_every: int = Field(50_000, ge=1, le=1_000_000_000, description="env steps between evaluations")
    eval_episodes: int = Field(1, ge=1, le=1_000, description="episodes per task per evaluation")
    eval_deterministic: bool = Field(True, description="evaluate the mean action (else sample)")
    max_episode_steps: int = Field(500, ge=1, le=100_000, description="env steps per episode (time limit)")
    fixed_goals: bool = Field(False, description="one Meta-World task (goal/object positions) per "
                                                 "env for the whole run, shared with evaluation")
    log_std_bounds: Literal["tanh", "clamp"] = Field(
        "tanh", description="actor log-std: tanh-squashed into [-5, 2], or clamped to [-20, 2]")
    mixed_precision: bool = Field(False, description="autocast + GradScaler (CUDA only; ignored on CPU)")
    checkpoint_replay: bool = Field(True, description="keep the replay buffer in checkpoints")
    seed: int = Field(0, ge=0, le=MAX_SEED, description="random seed (init, envs, replay sampling)")
    device: str = Field("auto", description="auto, cpu, cuda or cuda:N")

    @model_validator(mode="before")
    @classmethod
    def _apply_preset(cls, values: Any) -> Any:
        """Fill the fields not given from the named preset; given values win."""
        if isinstance(values, dict) and values.get("preset") in PRESETS:
            preset = PRESETS[values["preset"]]
            if values.get("model", cls.model_fields["model"].default) == "dendritic":
                preset = {**preset, **PAPER_DENDRITIC_PRESET}
            return {**preset, **values}
        return values

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
        if self.dendritic_layers is not None and not all(
                0 <= i < len(self.hidden_sizes) for i in self.dendritic_layers):
            raise ValueError(f"dendritic_layers must index the {len(self.hidden_sizes)} hidden layers")
        return self

    @property
    def num_evaluations(self) -> int:
        """How many reports a run makes (the sweep scheduler's iteration budget)."""
        return -(-self.total_steps // self.eval_every)

    @property
    def num_tasks(self) -> int:
        return MT_BENCHMARKS.get(self.env, 1)
