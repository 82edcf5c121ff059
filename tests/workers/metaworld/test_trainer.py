"""Meta-World multi-task SAC: MT10 end to end on CPU (dendritic and MLP), fixed goals, the paper
preset, time-limit handling, checkpoint/restore with every RNG, sweep registration, and (slow)
learning on reach-v3. Learning itself is checked fast in ``test_learning.py``."""

from __future__ import annotations

import json
import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from dendrites.sparse import SparseWeights
from dlab.cli import main as dlab_main
from sweeps.spec import SweepSpec
from workers.metaworld import MTSACConfig, MTSACTrainer, make_envs, task_names, train_mtsac
from workers.metaworld.config import PAPER_PRESET
from workers.metaworld.networks import QNetwork, TanhGaussianActor


def train(values: dict, report=None, resume_state=None):
    return train_mtsac(MTSACConfig(**values), report, resume_state)

SMOKE = {"env": "MT10", "total_steps": 2000, "learning_starts": 500, "eval_every": 1000,
         "max_episode_steps": 40, "hidden_sizes": [48, 48], "batch_size": 64, "buffer_size": 5000,
         "updates_per_step": 0.25}
METRIC_KEYS = {"env_steps", "grad_steps", "success_rate", "mean_return", "wall_time_s", "env_steps_per_s",
               "critic_loss", "actor_loss", "alpha_loss", "alpha_mean"}


@pytest.mark.parametrize("model", ["dendritic", "mlp"])
def test_mt10_end_to_end_every_task_steps_learns_and_evaluates(model):
    trainer = MTSACTrainer(MTSACConfig(**{**SMOKE, "model": model, "fixed_goals": True}))
    try:
        reports = trainer.run()
        tasks = np.bincount(trainer.replay.tasks[:trainer.replay.size], minlength=10)
        # fixed goals: every reset of every env shows the same goal (last 3 obs entries), and
        # evaluation uses the training goals
        goals = [trainer.envs.reset()[0][:, -3:] for _ in range(2)] + [trainer.eval_envs.reset()[0][:, -3:]]
        assert np.allclose(goals[0], goals[1]) and np.allclose(goals[0], goals[2])
        assert len({tuple(g) for g in goals[0].round(4)}) > 1
        assert trainer.envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
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
    assert final.success_rate_last10 == pytest.approx(np.mean([r.success_rate for r in reports]))


def test_checkpoint_restore_continues_from_the_same_step():
    config = {**SMOKE, "total_steps": 1000}
    saved = {}
    train(config, lambda metrics, checkpoint: saved.update(state=checkpoint(), grad=metrics["grad_steps"],
                                                           peak=metrics["peak_memory_mb"]))
    assert saved["state"]["counters"]["env_steps"] == 1000
    assert saved["peak"] > 300  # the run's peak resident set, MiB (torch, 10 MuJoCo envs, ...)
    rng = saved["state"]["rng"]
    assert {"python", "numpy", "torch", "envs", "action_space"} <= set(rng)
    assert len(rng["envs"]) == 10  # each sub-env's RNGs (Meta-World's CheckpointWrapper)
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


def test_paper_preset_resolves_to_the_reference_settings(capsys):
    """``preset="paper"`` fills unset fields with Numenta's MT10 settings; given values win; the
    CLI prints the resolved config. Parameter counts match the reference networks (dense count,
    nupic.embodied dendritic policy/Q: 8,257,208 / 8,248,801; garage MLPs: 8,005,208 / 7,996,801)."""
    paper = MTSACConfig(preset="paper")
    assert paper.model_dump(include=set(PAPER_PRESET)) == PAPER_PRESET
    assert paper.hidden_sizes == [2800, 2800] and paper.dendritic_layers == [1]
    assert paper.batch_size == 2560 and paper.update_every * paper.updates_per_step == 250
    assert MTSACConfig(preset="paper", batch_size=256).batch_size == 256
    counts = {}
    for model in ("dendritic", "mlp"):
        config = MTSACConfig(preset="paper", model=model)
        counts[model] = [sum(p.numel() for p in net.parameters())
                         for net in (TanhGaussianActor(config, 39, 4, 10), QNetwork(config, 39, 4, 10))]
    assert counts == {"dendritic": [8_257_208, 8_248_801], "mlp": [8_005_208, 7_996_801]}
    assert dlab_main(["run", "mt10", "--preset", "paper", "--model", "mlp", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["model"] == "mlp" and printed["hidden_sizes"] == [2800, 2800]
    assert printed["fixed_goals"] and printed["update_every"] == 5000


def masked_weights(net: torch.nn.Module) -> int:
    """Weights a network's static sparsity masks hold at zero."""
    return sum(int((~m.mask).sum()) for m in net.modules() if isinstance(m, SparseWeights))


def test_paper_preset_gives_the_dendritic_arm_the_modified_init_and_a_sparse_head(capsys):
    """Numenta's MT10 dendritic networks (nupic.embodied ``dendritic_mlp.py``): modified init,
    ``U(+-1/sqrt(input_density * 0.9 * fan_in))`` with input density 0.25 after a kWTA layer,
    biases at PyTorch's default, and an output head with 10% of its weights zero per unit. The
    MLP arm stays dense with PyTorch's init. ``--dry-run`` shows both settings."""
    dendritic = MTSACConfig(preset="paper")
    assert (dendritic.init, dendritic.sparse_head) == ("modified", True)
    mlp = MTSACConfig(preset="paper", model="mlp")
    assert (mlp.init, mlp.sparse_head) == ("project", False)
    assert MTSACConfig(preset="paper", init="project").init == "project"  # given values win
    actor, critic = TanhGaussianActor(dendritic, 39, 4, 10), QNetwork(dendritic, 39, 4, 10)
    for net, head_rows in ((actor, 8), (critic, 1)):
        body = net.body.net
        head = body.head.weight
        assert ((head == 0).sum(1) == 280).all() and head.shape == (head_rows, 2800)
        modified = 1 / math.sqrt(0.25 * 0.9 * 2800)  # project init: 1/sqrt(0.9 * 2800)
        for weight in (body.layers[1].linear.weight, head):
            assert 0.97 * modified < weight.abs().max() <= modified
        assert body.head.bias.abs().max() <= 1 / math.sqrt(2800)
    # weights left to train once the masks are applied: 10% per unit of layers 0, 1 and the head
    assert [sum(p.numel() for p in n.parameters()) - masked_weights(n) for n in (actor, critic)] \
        == [8_257_208 - 797_440, 8_248_801 - 795_480]
    mlp_actor = TanhGaussianActor(mlp, 39, 4, 10)
    assert masked_weights(mlp_actor) == 0
    assert dlab_main(["run", "mt10", "--preset", "paper", "--dry-run"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert (printed["init"], printed["sparse_head"]) == ("modified", True)


def test_single_task_envs_autoreset_in_the_same_step():
    """No final -> reset transition: the step that ends an episode returns its final obs in
    ``final_obs`` (gymnasium's default next-step autoreset would make the next step a fake one)."""
    envs, _ = make_envs(MTSACConfig(env="reach-v3", num_envs=2, max_episode_steps=3), seed=0)
    try:
        assert envs.metadata["autoreset_mode"] == gym.vector.AutoresetMode.SAME_STEP
        envs.reset(seed=0)
        for _ in range(2):
            envs.step(envs.action_space.sample())
        *_, truncated, infos = envs.step(envs.action_space.sample())
        assert truncated.all() and infos["_final_obs"].all()
    finally:
        envs.close()


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
