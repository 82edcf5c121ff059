"""Meta-World multi-task SAC: MT10 end to end on CPU (dendritic and MLP), checkpoint/restore,
sweep registration, and (slow) learning on reach-v3."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from dlab.cli import main as dlab_main
from sweeps.spec import SweepSpec
from workers.metaworld import MTSACConfig, MTSACTrainer, make_envs, task_names, train_mtsac


def train(values: dict, report=None, resume_state=None):
    return train_mtsac(MTSACConfig(**values), report, resume_state)

SMOKE = {"env": "MT10", "total_steps": 2000, "learning_starts": 500, "eval_every": 1000,
         "max_episode_steps": 40, "hidden_sizes": [48, 48], "batch_size": 64, "buffer_size": 5000,
         "updates_per_step": 0.25}
METRIC_KEYS = {"env_steps", "grad_steps", "success_rate", "mean_return", "wall_time_s", "env_steps_per_s",
               "critic_loss", "actor_loss", "alpha_loss", "alpha_mean"}


@pytest.mark.parametrize("model", ["dendritic", "mlp"])
def test_mt10_end_to_end_every_task_steps_learns_and_evaluates(model):
    trainer = MTSACTrainer(MTSACConfig(**{**SMOKE, "model": model}))
    try:
        reports = trainer.run()
        tasks = np.bincount(trainer.replay.tasks[:trainer.replay.size], minlength=10)
    finally:
        trainer.close()
    assert [r.env_steps for r in reports] == [1000, 2000]
    assert (tasks == 200).all()  # every one of the 10 tasks stepped equally
    final = reports[-1]
    assert abs(final.grad_steps - (2000 - 500) * 0.25) <= 3  # updates start on the step reaching 500
    metrics = final.metrics()
    assert set(metrics) >= METRIC_KEYS
    assert {f"success_{name}" for name in task_names(MTSACConfig(**SMOKE))} <= set(metrics)
    assert all(math.isfinite(v) for v in metrics.values())
    assert 0.0 <= final.success_rate <= 1.0


def test_checkpoint_restore_continues_from_the_same_step():
    config = {**SMOKE, "total_steps": 1000}
    saved = {}
    train(config, lambda metrics, checkpoint: saved.update(state=checkpoint(), grad=metrics["grad_steps"]))
    assert saved["state"]["counters"]["env_steps"] == 1000
    restored = MTSACTrainer(MTSACConfig(**{**config, "total_steps": 2000}))
    restored.load_state_dict(saved["state"])
    for name, tensor in restored.agent.state_dict().items():
        assert torch.equal(tensor, saved["state"]["agent"]["modules"][name]), name
    assert restored.replay.size == 1000 and restored.env_steps == 1000
    restored.close()
    reports = train({**config, "total_steps": 2000}, resume_state=saved["state"])
    assert [r.env_steps for r in reports] == [2000]
    assert reports[0].grad_steps == saved["grad"] + 1000 * SMOKE["updates_per_step"]
    assert reports[0].evaluation == 2


def test_mt10_is_a_sweep_benchmark_with_validated_params():
    spec = SweepSpec.model_validate({
        "name": "mt10", "benchmark": "metaworld_mt10", "params": {"total_steps": 1000},
        "search_space": {"num_segments": {"type": "grid", "values": [1, 5, 10]},
                         "model": {"type": "grid", "values": ["dendritic", "mlp"]}},
    })
    assert spec.resolved_metric == "success_rate" and spec.expected_trials == 6
    with pytest.raises(ValueError, match="num_segments"):
        SweepSpec.model_validate({"name": "bad", "benchmark": "metaworld_mt10",
                                  "search_space": {"num_segments": {"type": "grid", "values": [0]}}})
    with pytest.raises(ValueError, match="unknown Meta-World env"):
        MTSACConfig(env="MT11")


def test_cli_rejects_bad_flags_with_exit_2(capsys):
    assert dlab_main(["run", "mt10", "--segments", "0", "--quiet"]) == 2
    assert "num_segments" in capsys.readouterr().out
    assert dlab_main(["run", "mt10", "--env", "fly-v3", "--quiet"]) == 2


def random_policy_success(env: str, episodes: int, steps: int) -> float:
    envs, _ = make_envs(MTSACConfig(env=env, num_envs=4, max_episode_steps=steps), seed=10_000)
    hits = 0.0
    for episode in range(episodes):
        envs.reset(seed=10_000 + episode)
        success = np.zeros(envs.num_envs, bool)
        for _ in range(steps):
            *_, infos = envs.step(envs.action_space.sample())
            success |= np.asarray(infos["success"]) > 0
        hits += success.mean()
    envs.close()
    return hits / episodes


@pytest.mark.slow
def test_sac_learns_reach_well_above_a_random_policy():
    """About 10 minutes on 2 CPU cores: ``pytest -m slow tests/workers/metaworld`` (the README's
    reach-v3 command). In our runs success went from 0 to 0.2-1.0 between 24k and 40k steps."""
    config = {"env": "reach-v3", "num_envs": 1, "total_steps": 40_000, "learning_starts": 2000,
              "eval_every": 4000, "eval_episodes": 5, "max_episode_steps": 200, "hidden_sizes": [256, 256],
              "model": "mlp", "updates_per_step": 1.0, "buffer_size": 100_000}
    reports = train(config)
    best_late = max(r.success_rate for r in reports if r.env_steps >= 24_000)
    random_rate = random_policy_success("reach-v3", 5, 200)
    assert best_late >= random_rate + 0.5, ([r.success_rate for r in reports], random_rate)
