"""The real multi-task SAC must learn a tiny multi-task reaching suite on CPU in seconds, for both
networks, and must not when the learner is broken (actor loss sign flipped, critics untrained,
temperatures shared across tasks, task context withheld).

The suite: a point in the plane starts near the origin and must reach its task's goal; the goal is
NOT in the observation (only the task one-hot tells the tasks apart), so a policy without context
can serve at most one goal.
"""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

from workers.metaworld import MTSACConfig, MTSACTrainer
from workers.metaworld.sac import MultiTaskSAC
from workers.metaworld.trainer import step_success

GOALS = [np.array([0.6 * np.cos(a), 0.6 * np.sin(a)]) for a in np.deg2rad([90.0, 210.0, 330.0])]
TASKS = [f"goal{i}" for i in range(len(GOALS))]
HORIZON = 12
SUCCESS_RADIUS = 0.15


class GoalReach(gym.Env):
    """Move a point by ``0.25 * action`` per step; reward ``-distance to goal``; success within
    ``SUCCESS_RADIUS``; truncated after ``horizon`` steps (never terminated)."""

    def __init__(self, goal: np.ndarray, horizon: int = HORIZON, success_only_at_end: bool = False) -> None:
        self.goal, self.horizon, self.success_only_at_end = goal, horizon, success_only_at_end
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (2,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.1, 0.1, 2)
        self.t = 0
        return self.pos.astype(np.float32), {}

    def step(self, action):
        self.pos = np.clip(self.pos + 0.25 * np.asarray(action, float), -1.0, 1.0)
        self.t += 1
        distance = float(np.linalg.norm(self.pos - self.goal))
        success = distance < SUCCESS_RADIUS
        if self.success_only_at_end:
            success = self.t == self.horizon
        truncated = self.t >= self.horizon
        return self.pos.astype(np.float32), -distance, False, truncated, {"success": float(success)}


def goal_suite(copies: int = 2, **env_kwargs):
    """An :data:`workers.metaworld.trainer.EnvFactory` for :class:`GoalReach`, ``copies`` envs per task."""

    def factory(config: MTSACConfig, seed: int):
        goals = [(task, goal) for _ in range(copies) for task, goal in enumerate(GOALS)]
        envs = gym.vector.SyncVectorEnv([lambda g=g: GoalReach(g, **env_kwargs) for _, g in goals],
                                        autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        return envs, np.array([task for task, _ in goals])

    return factory


LEARN = {"hidden_sizes": [64, 64], "kw_percent_on": 0.25, "weight_sparsity": 0.1, "total_steps": 4_800,
         "learning_starts": 480, "batch_size": 128, "updates_per_step": 0.5, "eval_every": 2_400,
         "eval_episodes": 3, "max_episode_steps": HORIZON, "buffer_size": 10_000, "gamma": 0.9,
         "actor_lr": 1e-3, "critic_lr": 1e-3, "alpha_lr": 1e-3, "device": "cpu",
         "eval_deterministic": False, "log_std_bounds": "clamp", "seed": 0}


def learn(model: str, **overrides) -> list:
    torch.set_num_threads(1)
    config = MTSACConfig(**{**LEARN, "model": model, **overrides})
    trainer = MTSACTrainer(config, env_factory=goal_suite(), tasks=TASKS)
    try:
        return trainer.run()
    finally:
        trainer.close()


@pytest.mark.parametrize("model", ["dendritic", "mlp"])
def test_sac_learns_every_task_of_a_toy_multitask_suite(model):
    """Random actions reach a goal in about 5% of episodes; the context-free optimum is one goal
    in three. Breaking the actor loss sign, the critic updates or the context fails this."""
    final = learn(model)[-1]
    assert final.success_rate >= 0.6, final.task_success  # healthy 0.78-1.0, sabotaged <= 0.17
    assert min(final.task_success.values()) >= 0.5, final.task_success
    assert final.mean_return > -4.5, final.mean_return  # context-free optimum: about -7


def batch_of(task: int, size: int = 64) -> dict[str, torch.Tensor]:
    return {"obs": torch.randn(size, 2), "actions": torch.rand(size, 2) * 2 - 1,
            "rewards": torch.randn(size), "next_obs": torch.randn(size, 2),
            "terminated": torch.zeros(size), "tasks": torch.full((size,), task)}


def agent_for(model: str, log_alpha: list[float] | None = None) -> MultiTaskSAC:
    torch.manual_seed(0)
    agent = MultiTaskSAC(MTSACConfig(**{**LEARN, "model": model}), 2, 2, 3, torch.device("cpu"))
    if log_alpha is not None:
        with torch.no_grad():
            agent.log_alpha.copy_(torch.tensor(log_alpha))
    return agent


def actor_after_update(agent: MultiTaskSAC, batch: dict[str, torch.Tensor]) -> list[torch.Tensor]:
    torch.manual_seed(1)
    agent.update(batch)
    return [p.detach().clone() for p in agent.actor.parameters()]


@pytest.mark.parametrize("model", ["dendritic", "mlp"])
def test_each_task_has_its_own_temperature(model):
    """An update on task 1's transitions moves task 1's temperature only, and the critic target
    and actor loss on a task's samples use that task's temperature (another task's does not
    change the update; its own does)."""
    agent = agent_for(model)
    before = agent.log_alpha.detach().clone()
    agent.update(batch_of(1))
    assert (agent.log_alpha.detach() != before).tolist() == [False, True, False], agent.log_alpha
    torch.manual_seed(2)
    batch = batch_of(0)
    reference = actor_after_update(agent_for(model), batch)
    other_task_hot = actor_after_update(agent_for(model, [0.0, 0.0, 5.0]), batch)
    own_task_hot = actor_after_update(agent_for(model, [5.0, 0.0, 0.0]), batch)
    assert all(torch.equal(a, b) for a, b in zip(reference, other_task_hot, strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(reference, own_task_hot, strict=True))


def test_final_step_success_is_counted_in_evaluation():
    """Success reported only on an episode's last step (``final_info`` after the autoreset)."""
    config = MTSACConfig(**{**LEARN, "model": "mlp", "eval_episodes": 1})
    trainer = MTSACTrainer(config, env_factory=goal_suite(success_only_at_end=True), tasks=TASKS)
    try:
        task_success, _ = trainer.evaluate()
    finally:
        trainer.close()
    assert task_success == {name: 1.0 for name in TASKS}


def test_step_success_reads_final_info():
    infos = {"success": np.array([0.0, 0.0]), "final_info": {"success": np.array([0.0, 1.0])},
             "_final_info": np.array([False, True])}
    assert step_success(infos).tolist() == [False, True]
    assert step_success({"success": np.array([1.0, 0.0])}).tolist() == [True, False]


def test_no_transition_spans_an_autoreset():
    """Each stored next_obs is the true successor: within an episode it is the next obs; at a
    time-out it is the final obs, not the reset obs, and no final -> reset transition is stored."""
    config = MTSACConfig(**{**LEARN, "model": "mlp", "learning_starts": 10_000})
    trainer = MTSACTrainer(config, env_factory=goal_suite(copies=1), tasks=TASKS)
    try:
        obs, _ = trainer.envs.reset(seed=0)
        returns = np.zeros(trainer.envs.num_envs)
        for _ in range(2 * HORIZON):
            obs = trainer.collect_and_learn(obs, returns)
        replay = trainer.replay
        assert replay.size == 2 * HORIZON * 3
        env0 = np.flatnonzero(replay.tasks[:replay.size] == 0)
        o, nxt = replay.obs[env0], replay.next_obs[env0]
        for t in range(len(env0) - 1):
            continues = np.allclose(nxt[t], o[t + 1])
            assert continues == ((t + 1) % HORIZON != 0), t
        assert (replay.terminated[:replay.size] == 0).all()  # time-outs are bootstrapped
        assert len(trainer.recent_returns) == 2 * 3
    finally:
        trainer.close()


def test_epoch_schedule_updates_after_each_epoch():
    """``update_every``: the updates owed for a whole epoch are made at its end, from the first
    epoch that fills ``learning_starts`` on (the paper: 250 after each 5000-step epoch)."""
    config = MTSACConfig(**{**LEARN, "model": "mlp", "hidden_sizes": [8, 8], "learning_starts": 600,
                            "update_every": 600, "updates_per_step": 0.05, "batch_size": 64})
    trainer = MTSACTrainer(config, env_factory=goal_suite(), tasks=TASKS)
    try:
        obs, _ = trainer.envs.reset(seed=0)
        returns = np.zeros(trainer.envs.num_envs)
        seen = []
        while trainer.env_steps < 1800:
            obs = trainer.collect_and_learn(obs, returns)
            seen.append((trainer.env_steps, trainer.grad_steps))
    finally:
        trainer.close()
    assert [grad for steps, grad in seen if steps % 600 == 0] == [30, 60, 90]
    assert {grad for steps, grad in seen if steps < 600} == {0}
