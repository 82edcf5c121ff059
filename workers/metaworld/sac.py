"""Multi-task SAC (Yu et al. 2019): twin Q critics with Polyak-averaged targets, a tanh-Gaussian
actor and one learned entropy temperature per task. Written in the CleanRL style: one update
function, losses returned for logging (as tensors: no host sync per update).

With ``mixed_precision`` on CUDA the loss computations run under ``torch.autocast`` (fp16) and
each optimiser steps through its own ``GradScaler`` (master weights stay fp32), as Numenta's
``CustomMTSAC.optimize_policy_with_autocast`` does (it has four scalers because its two critics
have separate optimisers; ours share one). On CPU it is off."""

from __future__ import annotations

import copy
import math
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F

from dendrites.layers import compute_path_state, load_compute_path_state
from dendrites.optim import dendritic_adam
from workers.metaworld.config import MTSACConfig
from workers.metaworld.networks import QNetwork, TanhGaussianActor


class MultiTaskSAC(nn.Module):
    """Actor, twin critics and their targets, per-task ``log_alpha``, and their optimisers."""

    def __init__(self, config: MTSACConfig, obs_dim: int, action_dim: int, num_tasks: int,
                 device: torch.device) -> None:
        super().__init__()
        self.config = config
        self.actor = TanhGaussianActor(config, obs_dim, action_dim, num_tasks)
        self.critics = nn.ModuleList([QNetwork(config, obs_dim, action_dim, num_tasks) for _ in range(2)])
        self.target_critics = copy.deepcopy(self.critics).requires_grad_(False)
        self.log_alpha = nn.Parameter(torch.full((num_tasks,), math.log(config.initial_alpha)))
        self.target_entropy = -float(action_dim)
        self.to(device)
        self.device = device
        self.actor_optimizer = dendritic_adam(self.actor, lr=config.actor_lr)
        self.critic_optimizer = dendritic_adam(self.critics, lr=config.critic_lr)
        self.alpha_optimizer = torch.optim.Adam([self.log_alpha], lr=config.alpha_lr)
        self.amp = config.mixed_precision and device.type == "cuda"
        self.scalers = {name: torch.amp.GradScaler("cuda", enabled=self.amp)
                        for name in ("critic", "actor", "alpha")}

    def _autocast(self):
        return torch.autocast("cuda", dtype=torch.float16, enabled=self.amp)

    def _step(self, name: str, loss: torch.Tensor, optimizer: torch.optim.Optimizer) -> None:
        scaler = self.scalers[name]
        optimizer.zero_grad()
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()

    @torch.no_grad()
    def act(self, obs, tasks, deterministic: bool = False):
        """Actions for a batch of observations (NumPy in, NumPy out)."""
        obs_t = torch.as_tensor(obs, dtype=torch.float32, device=self.device)
        tasks_t = torch.as_tensor(tasks, dtype=torch.long, device=self.device)
        if deterministic:
            action = self.actor.deterministic(obs_t, tasks_t)
        else:
            action = self.actor.sample(obs_t, tasks_t)[0]
        return action.cpu().numpy()

    def update(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """One gradient step on critics, actor and temperatures; returns detached losses."""
        obs, actions, tasks = batch["obs"], batch["actions"], batch["tasks"]
        alpha = self.log_alpha.exp().detach()[tasks]
        with torch.no_grad(), self._autocast():
            next_actions, next_log_prob = self.actor.sample(batch["next_obs"], tasks)
            next_q = torch.min(*(q(batch["next_obs"], next_actions, tasks) for q in self.target_critics))
            # Bootstrap through time-limit truncations; only a true termination cuts the return.
            target = batch["rewards"] + self.config.gamma * (1 - batch["terminated"]) * (
                next_q - alpha * next_log_prob)
        with self._autocast():
            critic_loss = sum(F.mse_loss(q(obs, actions, tasks), target) for q in self.critics)
        self._step("critic", critic_loss, self.critic_optimizer)

        with self._autocast():
            new_actions, log_prob = self.actor.sample(obs, tasks)
            self.critics.requires_grad_(False)
            q_new = torch.min(*(q(obs, new_actions, tasks) for q in self.critics))
            self.critics.requires_grad_(True)
            actor_loss = (alpha * log_prob - q_new).mean()
        self._step("actor", actor_loss, self.actor_optimizer)

        with self._autocast():
            alpha_loss = -(self.log_alpha[tasks] * (log_prob.detach() + self.target_entropy)).mean()
        self._step("alpha", alpha_loss, self.alpha_optimizer)

        with torch.no_grad():
            for online, target_net in zip(self.critics, self.target_critics, strict=True):
                torch._foreach_lerp_(list(target_net.parameters()), list(online.parameters()),
                                     self.config.tau)
        return {"critic_loss": critic_loss.detach(), "actor_loss": actor_loss.detach(),
                "alpha_loss": alpha_loss.detach(), "q_mean": q_new.detach().mean()}

    def full_state(self) -> dict[str, Any]:
        """Networks, targets, temperatures, all optimiser states and which products the dendritic
        layers compute next (:func:`~dendrites.layers.compute_path_state`)."""
        return {"modules": self.state_dict(), "compute_path": compute_path_state(self),
                "actor_optimizer": self.actor_optimizer.state_dict(),
                "critic_optimizer": self.critic_optimizer.state_dict(),
                "alpha_optimizer": self.alpha_optimizer.state_dict(),
                "scalers": {name: scaler.state_dict() for name, scaler in self.scalers.items()}}

    def load_full_state(self, state: dict[str, Any]) -> None:
        self.load_state_dict(state["modules"])
        load_compute_path_state(self, state.get("compute_path", {}))  # (absent: saved before)
        self.actor_optimizer.load_state_dict(state["actor_optimizer"])
        self.critic_optimizer.load_state_dict(state["critic_optimizer"])
        self.alpha_optimizer.load_state_dict(state["alpha_optimizer"])
        for name, scaler_state in state.get("scalers", {}).items():
            if scaler_state:
                self.scalers[name].load_state_dict(scaler_state)
