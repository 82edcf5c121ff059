"""The Meta-World multi-task worker: MT10 / MT50 (or one task) through gymnasium's vector API,
trained with multi-task SAC; evaluation every ``eval_every`` env steps reports per-task success
through the :mod:`workers.workload` protocol (``report(metrics, checkpoint)``).

    dlab run mt10 --total-steps 20000 --num-segments 10 --kw-percent-on 0.25
    dlab run mt10 --preset paper --json out.json      # Numenta's MT10 settings (config.py)

Time limits: every vector env auto-resets in the same step (gymnasium ``SAME_STEP``), so the
stored transition of an episode's last step ends in its real final observation (``final_obs``)
and no transition spans a reset. Only a termination stops bootstrapping; a time-limit
truncation is bootstrapped. Meta-World never terminates here (terminate-on-success is off), so
as in Numenta's runs (garage ``TimeStepBatch``: a TIMEOUT is not terminal) every stored step
bootstraps. Success at an episode's last step is read from ``final_info``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from workers.memory import reporting_peak_memory
from workers.metaworld.config import MT_BENCHMARKS, MTSACConfig
from workers.metaworld.replay import MultiTaskReplay
from workers.metaworld.sac import MultiTaskSAC
from workers.metaworld.subnetworks import subnetwork_metrics
from workers.torch_runtime import resolve_device, rng_state, seed_everything, set_rng_state
from workers.workload import ProgressFn, ReportFn


def task_names(config: MTSACConfig) -> list[str]:
    """Task names in env order (env ``i`` runs task ``i``)."""
    if config.env in MT_BENCHMARKS:
        import metaworld.env_dict as env_dict

        return list(getattr(env_dict, f"{config.env}_V3"))
    return [config.env]


EnvFactory = Callable[[MTSACConfig, int], tuple[gym.vector.VectorEnv, np.ndarray]]
"""``(config, seed) -> (vector env, task id of each sub-env)``, e.g. :func:`make_envs`."""


def make_envs(config: MTSACConfig, seed: int) -> tuple[gym.vector.VectorEnv, np.ndarray]:
    """The vector env and each sub-env's task id: one env per task for MT10/MT50, else
    ``num_envs`` copies of the single task."""
    import metaworld  # noqa: F401  (registers the Meta-World/* ids)

    same_step = gym.vector.AutoresetMode.SAME_STEP
    if config.env in MT_BENCHMARKS:
        envs = gym.make_vec(f"Meta-World/{config.env}", vector_strategy=config.vector, seed=seed,
                            max_episode_steps=config.max_episode_steps, autoreset_mode=same_step)
        return envs, np.arange(envs.num_envs)
    vector = gym.vector.AsyncVectorEnv if config.vector == "async" else gym.vector.SyncVectorEnv
    makers = [lambda i=i: gym.make("Meta-World/MT1", env_name=config.env, seed=seed + i, env_id=i,
                                   max_episode_steps=config.max_episode_steps)
              for i in range(config.num_envs)]
    return vector(makers, autoreset_mode=same_step), np.zeros(config.num_envs, np.int64)


def fix_goals(envs: gym.vector.VectorEnv, seed: int) -> list:
    """Pick one Meta-World task (object and goal positions) per sub-env, drawn with ``seed``, and
    keep it for every reset: each env's task list becomes that one task (``set_task`` freezes the
    random reset vector). Returns the chosen tasks, for :func:`set_tasks` on other envs."""
    rng = np.random.default_rng(seed)
    chosen = [tasks[rng.integers(len(tasks))] for tasks in envs.get_attr("tasks")]
    set_tasks(envs, chosen)
    return chosen


def set_tasks(envs: gym.vector.VectorEnv, tasks: list) -> None:
    """Give sub-env ``i`` the single task ``tasks[i]`` for every later reset."""
    envs.set_attr("tasks", [[task] for task in tasks])


def step_success(infos: dict) -> np.ndarray:
    """``info['success']`` per sub-env for this step, the last step of an episode included (with
    same-step autoreset it is only in ``final_info``)."""
    success = np.asarray(infos.get("success", np.zeros(0)), dtype=float) > 0
    final = infos.get("final_info")
    if final is not None and "success" in final:
        ended = np.asarray(infos["_final_info"], bool)
        success = success.copy() if success.size else np.zeros(ended.shape, bool)
        success[ended] = np.asarray(final["success"], dtype=float)[ended] > 0
    return success


@dataclass
class EvalReport:
    """One evaluation: ``eval_episodes`` episodes per task. ``success_rate_last10`` is the mean
    success rate of the last 10 evaluations so far (this one included): Numenta's run score
    (``mv_avg_window=10`` in nupic.embodied ``notebooks/wandb_data_export.ipynb``)."""

    env_steps: int
    grad_steps: int
    success_rate: float
    success_rate_last10: float
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
    """Owns the envs, agent, replay buffer and counters; ``state_dict`` round-trips a run.
    ``env_factory`` and ``tasks`` replace the Meta-World envs (e.g. a toy suite in tests)."""

    def __init__(self, config: MTSACConfig, env_factory: EnvFactory = make_envs,
                 tasks: list[str] | None = None) -> None:
        self.config = config
        self.device = resolve_device(config.device)
        seed_everything(config.seed)
        self.tasks = tasks or task_names(config)
        self.env_factory = env_factory
        self.envs, self.env_tasks = env_factory(config, config.seed)
        self.fixed_tasks = fix_goals(self.envs, config.seed) if config.fixed_goals else None
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
        self.success_history: list[float] = []
        self.losses: dict[str, torch.Tensor] = {}
        self.started = False

    # -- acting and learning -----------------------------------------------------------------
    def collect_and_learn(self, obs: np.ndarray, episode_returns: np.ndarray) -> np.ndarray:
        """One vector step (random actions before ``learning_starts`` with ``random_warmup``),
        then the updates owed, paid every ``update_every`` env steps (else every vector step)."""
        if self.config.random_warmup and self.env_steps < self.config.learning_starts:
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
        self._learn()
        return next_obs

    def _learn(self) -> None:
        """Pay the gradient steps owed. Per vector step: owed from ``learning_starts`` on. With
        ``update_every`` (an epoch): owed for every step of the epoch, paid at its end once
        learning has started (the reference trains already after its first 5000-step epoch)."""
        config, num = self.config, self.envs.num_envs
        started = self.env_steps >= config.learning_starts and self.replay.size >= config.batch_size
        if config.update_every is None:
            if not started:
                return
            self.update_debt += num * config.updates_per_step
        else:
            self.update_debt += num * config.updates_per_step
            if self.env_steps % config.update_every >= num:
                return
            if not started:
                self.update_debt = 0.0
                return
        while self.update_debt >= 1:
            self.losses = self.agent.update(self.replay.sample(config.batch_size, self.device))
            self.update_debt -= 1
            self.grad_steps += 1

    @property
    def eval_envs(self) -> gym.vector.VectorEnv:
        """Evaluation envs (their own seed); with fixed goals, the training envs' tasks."""
        if self._eval_envs is None:
            self._eval_envs, _ = self.env_factory(self.config, self.config.seed + 10_000)
            if self.fixed_tasks is not None:
                set_tasks(self._eval_envs, self.fixed_tasks)
        return self._eval_envs

    def evaluate(self) -> tuple[dict[str, float], float]:
        """Per-task success (``info['success']`` at any step of an episode, the last included)
        and mean return, with the mean action or (``eval_deterministic=False``) sampled ones."""
        envs = self.eval_envs
        deterministic = self.config.eval_deterministic
        successes = np.zeros(envs.num_envs)
        returns = np.zeros(envs.num_envs)
        for episode in range(self.config.eval_episodes):
            obs, _ = envs.reset(seed=self.config.seed + 10_000 + episode)
            success = np.zeros(envs.num_envs, bool)
            alive = np.ones(envs.num_envs, bool)
            for _ in range(self.config.max_episode_steps):
                obs, rewards, terminated, truncated, infos = envs.step(
                    self.agent.act(obs, self.env_tasks, deterministic=deterministic))
                success |= alive & step_success(infos)
                returns += rewards * alive
                alive &= ~(terminated | truncated)
                if not alive.any():
                    break
            successes += success
        per_env = successes / self.config.eval_episodes
        task_success = {name: float(per_env[self.env_tasks == t].mean()) for t, name in enumerate(self.tasks)}
        return task_success, float(returns.mean() / self.config.eval_episodes)

    def report(self, task_success: dict[str, float], mean_return: float, eval_time_s: float) -> EvalReport:
        """This evaluation's report (the losses of the last update reach the host only here)."""
        success_rate = float(np.mean(list(task_success.values())))
        self.success_history.append(success_rate)
        return EvalReport(
            env_steps=self.env_steps, grad_steps=self.grad_steps,
            success_rate=success_rate, success_rate_last10=float(np.mean(self.success_history[-10:])),
            task_success=task_success, mean_return=mean_return,
            train_return=float(np.mean(self.recent_returns)) if self.recent_returns else None,
            losses={name: float(value) for name, value in self.losses.items()},
            alpha_mean=float(self.agent.log_alpha.detach().exp().mean()),
            wall_time_s=self.wall_time_s, env_steps_per_s=self.env_steps / max(self.wall_time_s, 1e-9),
            eval_time_s=eval_time_s, evaluation=self.evaluations,
        )

    # -- checkpoints -------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue: agent and optimisers, counters, RNGs (Python, NumPy,
        torch CPU/CUDA, each sub-env's and the vector action space's), fixed tasks (and replay)."""
        return {
            "config": self.config.model_dump(), "agent": self.agent.full_state(),
            "replay": self.replay.state_dict() if self.config.checkpoint_replay else None,
            "counters": {"env_steps": self.env_steps, "grad_steps": self.grad_steps,
                         "evaluations": self.evaluations, "update_debt": self.update_debt,
                         "wall_time_s": self.wall_time_s, "next_eval": self.next_eval},
            "recent_returns": list(self.recent_returns), "success_history": list(self.success_history),
            "fixed_tasks": self.fixed_tasks,
            "rng": {**rng_state(), "envs": list(self.envs.call("get_checkpoint")),
                    "action_space": self.envs.action_space.np_random.bit_generator.state},
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.agent.load_full_state(state["agent"])
        if state["replay"] is not None:
            self.replay.load_state_dict(state["replay"])
        for name, value in state["counters"].items():
            setattr(self, name, value)
        self.recent_returns = list(state["recent_returns"])
        self.success_history = list(state.get("success_history", []))
        if state.get("fixed_tasks") is not None:
            self.fixed_tasks = state["fixed_tasks"]
            set_tasks(self.envs, self.fixed_tasks)
            if self._eval_envs is not None:
                set_tasks(self._eval_envs, self.fixed_tasks)
        rng = state["rng"]
        set_rng_state(rng)
        if "envs" in rng:
            self.envs.call("load_checkpoint", rng["envs"])
            self.envs.action_space.np_random.bit_generator.state = rng["action_space"]
        self.started = True

    def close(self) -> None:
        self.envs.close()
        if self._eval_envs is not None:
            self._eval_envs.close()

    # -- the loop ------------------------------------------------------------------------------
    def run(self, report: ReportFn | None = None, progress: ProgressFn | None = None) -> list[EvalReport]:
        """Train until ``total_steps``, evaluating every ``eval_every`` env steps (and at the end).
        After a restore the envs start fresh episodes from their restored RNG states (at an
        epoch boundary with the paper schedule, where episodes end anyway); every learned
        quantity continues."""
        reports = []
        obs, _ = self.envs.reset(seed=None if self.started else self.config.seed)
        self.started = True
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
            metrics: dict[str, Any] = evaluation.metrics()
            if self.env_steps >= self.config.total_steps:  # the trained actor's subnetworks (issue 12)
                metrics.update(subnetwork_metrics(self))
            report(metrics, self.state_dict)
        return evaluation


def train_mtsac(config: MTSACConfig, report: ReportFn | None = None,
                resume_state: dict[str, Any] | None = None,
                progress: ProgressFn | None = None) -> list[EvalReport]:
    """Run multi-task SAC from ``config``; ``resume_state`` (a ``state_dict``) continues a run.
    Every report carries the run's peak memory so far (:mod:`workers.memory`)."""
    report = reporting_peak_memory(report)
    trainer = MTSACTrainer(config)
    if resume_state is not None:
        trainer.load_state_dict(resume_state)
    try:
        return trainer.run(report, progress)
    finally:
        trainer.close()
