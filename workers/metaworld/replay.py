"""A uniform replay buffer that keeps each transition's task id (for the one-hot context)."""

from __future__ import annotations

import numpy as np
import torch


class MultiTaskReplay:
    """Ring buffer of ``(obs, action, reward, next_obs, terminated, task)`` in NumPy."""

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), np.float32)
        self.next_obs = np.zeros((capacity, obs_dim), np.float32)
        self.actions = np.zeros((capacity, action_dim), np.float32)
        self.rewards = np.zeros(capacity, np.float32)
        self.terminated = np.zeros(capacity, np.float32)
        self.tasks = np.zeros(capacity, np.int64)
        self.position = 0
        self.size = 0
        self.rng = np.random.default_rng(seed)

    def add(self, obs, actions, rewards, next_obs, terminated, tasks) -> None:
        """Add a batch of transitions (one per env)."""
        n = len(obs)
        index = (self.position + np.arange(n)) % self.capacity
        self.obs[index], self.next_obs[index], self.actions[index] = obs, next_obs, actions
        self.rewards[index], self.terminated[index], self.tasks[index] = rewards, terminated, tasks
        self.position = int((self.position + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int, device: torch.device) -> dict[str, torch.Tensor]:
        index = self.rng.integers(0, self.size, batch_size)
        as_tensor = lambda a: torch.as_tensor(a[index], device=device)  # noqa: E731
        return {"obs": as_tensor(self.obs), "actions": as_tensor(self.actions),
                "rewards": as_tensor(self.rewards), "next_obs": as_tensor(self.next_obs),
                "terminated": as_tensor(self.terminated), "tasks": as_tensor(self.tasks)}

    def state_dict(self) -> dict:
        filled = slice(0, self.size)
        return {"obs": self.obs[filled].copy(), "next_obs": self.next_obs[filled].copy(),
                "actions": self.actions[filled].copy(), "rewards": self.rewards[filled].copy(),
                "terminated": self.terminated[filled].copy(), "tasks": self.tasks[filled].copy(),
                "position": self.position, "size": self.size, "rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        size = state["size"]
        for name in ("obs", "next_obs", "actions", "rewards", "terminated", "tasks"):
            getattr(self, name)[:size] = state[name]
        self.position, self.size = state["position"], size
        self.rng.bit_generator.state = state["rng"]
