"""The Meta-World multi-task worker: MT10 / MT50 (or one task) through gymnasium's vector API,
trained with multi-task SAC; deterministic evaluation every ``eval_every`` env steps reports
per-task success through the :mod:`workers.workload` protocol (``report(metrics, checkpoint)``).

    dlab run mt10 --total-steps 20000 --num-segments 10 --kw-percent-on 0.25
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from workers.metaworld.config import MT_BENCHMARKS, MTSACConfig
from workers.metaworld.replay import MultiTaskReplay
from workers.metaworld.sac import MultiTaskSAC
from workers.torch_runtime import resolve_device, seed_everything
from workers.workload import ProgressFn, ReportFn


def task_names(config: MTSACConfig) -> list[str]:
    """Task names in env order (env ``i`` runs task ``i``)."""
    if config.env in MT_BENCHMARKS:
        import metaworld.env_dict as env_dict

        return list(getattr(env_dict, f"{config.env}_V3"))
    return [config.env]


def make_envs(config: MTSACConfig, seed: int) -> tuple[gym.vector.VectorEnv, np.ndarray]:
    """The vector env and each sub-env's task id: one env per task for MT10/MT50, else
    ``num_envs`` copies of the single task."""
    import metaworld  # noqa: F401  (registers the Meta-World/* ids)

    if config.env in MT_BENCHMARKS:
        envs = gym.make_vec(f"Meta-World/{config.env}", vector_strategy=config.vector, seed=seed,
                            max_episode_steps=config.max_episode_steps)
        return envs, np.arange(envs.num_envs)
    vector = gym.vector.AsyncVectorEnv if config.vector == "async" else gym.vector.SyncVectorEnv
    makers = [lambda i=i: gym.make("Meta-World/MT1", env_name=config.env, seed=seed + i,
                                   max_episode_steps=config.max_episode_steps)
              for i in range(config.num_envs)]
    return vector(makers), np.zeros(config.num_envs, np.int64)


@dataclass
class EvalReport:
    """One evaluation: deterministic policy, ``eval_episodes`` episodes per task."""

    env_steps: int
    grad_steps: int
    success_rate: float
    task_success: dict[str, float]
    mean_return: float
    train_return: float | None
    losses: dict[str, float]
    alpha_mean: float
    wall_time_s: float
    env_steps_per_s: float
    eval_time_s: float
    evaluation: int = 0

    def metrics(self) -> dict[str, float]:
        """Flat numeric metrics for Ray Tune / MLflow."""
        flat = {k: v for k, v in asdict(self).items()
                if isinstance(v, int | float) and not isinstance(v, bool) and v is not None}
        flat.update({f"success_{name}": value for name, value in self.task_success.items()})
        flat.update(self.losses)
        return flat


class MTSACTrainer:
    """Owns the envs, agent, replay buffer and counters; ``state_dict`` round-trips a run."""

    def __init__(self, config: MTSACConfig) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        seed_everything(config.seed)
        self.tasks = task_names(config)
        self.envs, self.env_tasks = make_envs(config, config.seed)
        self._eval_envs: gym.vector.VectorEnv | None = None
        obs_dim = self.envs.single_observation_space.shape[0]
        action_dim = self.envs.single_action_space.shape[0]
        self.envs.action_space.seed(config.seed)
        self.agent = MultiTaskSAC(config, obs_dim, action_dim, len(self.tasks), self.device)
        self.replay = MultiTaskReplay(config.buffer_size, obs_dim, action_dim, seed=config.seed)
        self.env_steps = self.grad_steps = self.evaluations = 0
        self.update_debt = 0.0
        self.wall_time_s = 0.0
        self.next_eval = config.eval_every
        self.recent_returns: list[float] = []
        self.losses: dict[str, float] = {}

    # -- acting and learning -----------------------------------------------------------------
    def collect_and_learn(self, obs: np.ndarray, episode_returns: np.ndarray) -> np.ndarray:
        """One vector step (random actions before ``learning_starts``), then the updates owed."""
        if self.env_steps < self.config.learning_starts:
            actions = self.envs.action_space.sample()
        else:
            actions = self.agent.act(obs, self.env_tasks)
        next_obs, rewards, terminated, truncated, infos = self.envs.step(actions)
        stored_next = next_obs.copy()
        if "_final_obs" in infos:
            for i in np.flatnonzero(infos["_final_obs"]):
                stored_next[i] = infos["final_obs"][i]
        self.replay.add(obs, actions, rewards, stored_next, terminated, self.env_tasks)
        episode_returns += rewards
        for i in np.flatnonzero(terminated | truncated):
            self.recent_returns = [*self.recent_returns[-99:], float(episode_returns[i])]
            episode_returns[i] = 0.0
        self.env_steps += self.envs.num_envs
        if self.env_steps >= self.config.learning_starts and self.replay.size >= self.config.batch_size:
            self.update_debt += self.envs.num_envs * self.config.updates_per_step
            losses = None
            while self.update_debt >= 1:
                losses = self.agent.update(self.replay.sample(self.config.batch_size, self.device))
                self.update_debt -= 1
                self.grad_steps += 1
            if losses is not None:
                self.losses = {k: float(v) for k, v in losses.items()}
        return next_obs

    @property
    def eval_envs(self) -> gym.vector.VectorEnv:
        if self._eval_envs is None:
            self._eval_envs, _ = make_envs(self.config, self.config.seed + 10_000)
        return self._eval_envs

    def evaluate(self) -> tuple[dict[str, float], float]:
        """Per-task success (``info['success']`` at any step) and mean return, deterministic."""
        envs = self.eval_envs
        successes = np.zeros(envs.num_envs)
        returns = np.zeros(envs.num_envs)
        for episode in range(self.config.eval_episodes):
            obs, _ = envs.reset(seed=self.config.seed + 10_000 + episode)
            success = np.zeros(envs.num_envs, bool)
            alive = np.ones(envs.num_envs, bool)
            for _ in range(self.config.max_episode_steps):
                obs, rewards, terminated, truncated, infos = envs.step(
                    self.agent.act(obs, self.env_tasks, deterministic=True))
                success |= alive & (np.asarray(infos.get("success", 0.0)) > 0)
                returns += rewards * alive
                alive &= ~(terminated | truncated)
                if not alive.any():
                    break
            successes += success
        per_env = successes / self.config.eval_episodes
        task_success = {name: float(per_env[self.env_tasks == t].mean()) for t, name in enumerate(self.tasks)}
        return task_success, float(returns.mean() / self.config.eval_episodes)

    def report(self, task_success: dict[str, float], mean_return: float, eval_time_s: float) -> EvalReport:
        return EvalReport(
            env_steps=self.env_steps, grad_steps=self.grad_steps,
            success_rate=float(np.mean(list(task_success.values()))), task_success=task_success,
            mean_return=mean_return,
            train_return=float(np.mean(self.recent_returns)) if self.recent_returns else None,
            losses=self.losses, alpha_mean=float(self.agent.log_alpha.detach().exp().mean()),
            wall_time_s=self.wall_time_s, env_steps_per_s=self.env_steps / max(self.wall_time_s, 1e-9),
            eval_time_s=eval_time_s, evaluation=self.evaluations,
        )

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: agent and optimisers, counters, RNGs (and replay)."""
        return {
            "config": self.config.model_dump(), "agent": self.agent.full_state(),
            "replay": self.replay.state_dict() if self.config.checkpoint_replay else None,
            "counters": {"env_steps": self.env_steps, "grad_steps": self.grad_steps,
                         "evaluations": self.evaluations, "update_debt": self.update_debt,
                         "wall_time_s": self.wall_time_s, "next_eval": self.next_eval},
            "recent_returns": list(self.recent_returns),
            "rng": {"torch": torch.get_rng_state(), "numpy": np.random.get_state()},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_full_state(state["agent"])
        if state["replay"] is not None:
            self.replay.load_state_dict(state["replay"])
        for name, value in state["counters"].items():
            setattr(self, name, value)
        self.recent_returns = list(state["recent_returns"])
        torch.set_rng_state(state["rng"]["torch"])
        np.random.set_state(state["rng"]["numpy"])

    def close(self) -> None:
        self.envs.close()
        if self._eval_envs is not None:
            self._eval_envs.close()

    # -- the loop ------------------------------------------------------------------------------
    def run(self, report: ReportFn | None = None, progress: ProgressFn | None = None) -> list[EvalReport]:
        """Train until ``total_steps``, evaluating every ``eval_every`` env steps (and at the end).
        After a restore the envs start fresh episodes; every learned quantity continues."""
        reports = []
        obs, _ = self.envs.reset(seed=self.config.seed + self.env_steps)
        episode_returns = np.zeros(self.envs.num_envs)
        while self.env_steps < self.config.total_steps:
            start = time.perf_counter()
            obs = self.collect_and_learn(obs, episode_returns)
            self.wall_time_s += time.perf_counter() - start
            if progress is not None:
                progress(self.envs.num_envs, self.config.total_steps)
            if self.env_steps >= self.next_eval or self.env_steps >= self.config.total_steps:
                reports.append(self._evaluate_and_report(report))
        return reports

    def _evaluate_and_report(self, report: ReportFn | None) -> EvalReport:
        start = time.perf_counter()
        task_success, mean_return = self.evaluate()
        self.evaluations += 1
        self.next_eval += self.config.eval_every * math.ceil(
            max(self.env_steps - self.next_eval + 1, 1) / self.config.eval_every)
        evaluation = self.report(task_success, mean_return, time.perf_counter() - start)
        if report is not None:
            report(evaluation.metrics(), self.state_dict)
        return evaluation


def train_mtsac(config: MTSACConfig, report: ReportFn | None = None,
                resume_state: dict[str, Any] | None = None,
                progress: ProgressFn | None = None) -> list[EvalReport]:
    """Run multi-task SAC from ``config``; ``resume_state`` (a ``state_dict``) continues a run."""
    trainer = MTSACTrainer(config)
    if resume_state is not None:
        trainer.load_state_dict(resume_state)
    try:
        return trainer.run(report, progress)
    finally:
        trainer.close()
