"""Actor and critic networks over (input, task one-hot): a :class:`DendriticMLP` with the one-hot
on its dendrites, or the paper's MLP baseline with the one-hot concatenated to the input."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from dendrites.config import build_network
from dendrites.context import one_hot_context
from workers.metaworld.config import MTSACConfig

LOG_STD_MIN, LOG_STD_MAX = -5.0, 2.0
CLAMP_LOG_STD_MIN, CLAMP_LOG_STD_MAX = -20.0, 2.0
"""``log_std_bounds="clamp"``: garage's ``min_std``/``max_std`` as Numenta's MT10 policy passes
them (``policy_min_log_std``/``policy_max_log_std``, applied to the log-std;
nupic.embodied ``modules/gaussian_mlp_module.py``)."""


class TaskConditionedNet(nn.Module):
    """``f(x, task)``: the task id becomes a one-hot context."""

    def __init__(self, config: MTSACConfig, input_dim: int, output_dim: int, num_tasks: int) -> None:
        super().__init__()
        self.num_tasks = num_tasks
        options = {} if config.dendritic_layers is None else {"dendritic_layers": config.dendritic_layers}
        self.net = build_network(config, input_dim, output_dim, num_tasks, context_to_input=True,
                                 **options)

    def forward(self, x: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        return self.net(x, one_hot_context(tasks, self.num_tasks))


class TanhGaussianActor(nn.Module):
    """The SAC policy: a Gaussian squashed by tanh (action bounds [-1, 1], as in Meta-World)."""

    def __init__(self, config: MTSACConfig, obs_dim: int, action_dim: int, num_tasks: int) -> None:
        super().__init__()
        self.body = TaskConditionedNet(config, obs_dim, 2 * action_dim, num_tasks)
        self.clamp_log_std = config.log_std_bounds == "clamp"

    def _distribution(self, obs: torch.Tensor, tasks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, log_std = self.body(obs, tasks).float().chunk(2, dim=-1)
        if self.clamp_log_std:
            return mean, log_std.clamp(CLAMP_LOG_STD_MIN, CLAMP_LOG_STD_MAX)
        log_std = LOG_STD_MIN + 0.5 * (LOG_STD_MAX - LOG_STD_MIN) * (torch.tanh(log_std) + 1)
        return mean, log_std

    def sample(self, obs: torch.Tensor, tasks: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A reparameterised action and its log-probability (tanh change of variables)."""
        mean, log_std = self._distribution(obs, tasks)
        std = log_std.exp()
        pre_tanh = mean + std * torch.randn_like(mean)
        action = torch.tanh(pre_tanh)
        log_prob = (-0.5 * ((pre_tanh - mean) / std) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
        log_prob = log_prob - (2 * (math.log(2) - pre_tanh - F.softplus(-2 * pre_tanh))).sum(-1)
        return action, log_prob

    def deterministic(self, obs: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self._distribution(obs, tasks)[0])


class QNetwork(nn.Module):
    """``Q(s, a | task)``."""

    def __init__(self, config: MTSACConfig, obs_dim: int, action_dim: int, num_tasks: int) -> None:
        super().__init__()
        self.body = TaskConditionedNet(config, obs_dim + action_dim, 1, num_tasks)

    def forward(self, obs: torch.Tensor, actions: torch.Tensor, tasks: torch.Tensor) -> torch.Tensor:
        return self.body(torch.cat([obs, actions], dim=-1), tasks).squeeze(-1).float()
