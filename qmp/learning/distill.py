"""DnC's distillation (--distillation_period P, --distillation_n_epochs N), as the original ran it.

A central policy starts as a copy of task 0's policy. After the evaluation of every P-th epoch (not epoch
0) it is fit by maximum likelihood to the actions stored in all task buffers (N Adam steps, each on a
fresh batch drawn from every buffer as the DnC penalty draws its states), and then every task's policy
is overwritten with it. The central policy and its optimiser persist from one distillation to the next;
the task policies keep their optimiser states.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from qmp.learning.buffer import MultiTaskReplayBuffer
from qmp.learning.nets import TanhGaussianPolicy

TANH_EPS = 1e-6  # garage's TanhNormal: pre-tanh value of a stored action, and its Jacobian term


def tanh_gaussian_log_prob(mean: Tensor, log_std: Tensor, action: Tensor) -> Tensor:
    """log pi(a) of tanh-squashed Gaussians for given actions in [-1, 1] (summed over the last axis), with
    the pre-tanh value recovered as garage did: atanh with an epsilon, so actions at +-1 stay finite."""
    pre = 0.5 * torch.log((1 + TANH_EPS + action) / (1 + TANH_EPS - action))
    gauss = (-0.5 * ((pre - mean) / log_std.exp()).pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    return gauss - torch.log((1 - action.pow(2)).clamp(0.0, 1.0) + TANH_EPS).sum(-1)


class Distillation:
    """The central policy, its optimiser and the schedule; `run()` distills and overwrites the task policies."""

    def __init__(self, policy: TanhGaussianPolicy, buffer: MultiTaskReplayBuffer, obs_dim: int, act_dim: int,
                 hidden_sizes: list[int], period: int, steps: int, states_per_task: int, lr: float) -> None:
        if policy.net.arch != "separate" or policy.net.include_task_id:
            raise ValueError("distillation needs separate task policies without the task one-hot")
        self.policy, self.buffer = policy, buffer
        self.period, self.steps, self.states_per_task = period, steps, states_per_task
        device = next(policy.parameters()).device
        self.centroid = TanhGaussianPolicy("separate", 1, obs_dim, act_dim, hidden_sizes, False).to(device)
        self.centroid.load_state_dict({k: v[:1].clone() for k, v in policy.state_dict().items()})
        self.optimizer = torch.optim.Adam(self.centroid.parameters(), lr=lr)

    def due(self, epoch: int) -> bool:
        return epoch > 0 and epoch % self.period == 0

    def run(self) -> dict[str, float]:
        """Fit the central policy, copy it into every task's policy; returns the mean distillation loss."""
        total = 0.0
        for _ in range(self.steps):
            batch = self.buffer.sample(self.states_per_task)  # (T, n, ...): n from every buffer
            obs = batch.obs.reshape(1, -1, batch.obs.shape[-1])
            act = batch.act.reshape(1, -1, batch.act.shape[-1])
            mean, log_std = self.centroid.distribution(obs)
            loss = -tanh_gaussian_log_prob(mean, log_std, act).mean()
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()
            total += loss.item()
        with torch.no_grad():
            for task_param, central in zip(self.policy.parameters(), self.centroid.parameters(), strict=True):
                task_param.copy_(central.expand_as(task_param))
        return {"train/distillation_loss": total / max(self.steps, 1)}

    def state_dict(self) -> dict:
        return {"centroid": self.centroid.state_dict(), "optimizer": self.optimizer.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        self.centroid.load_state_dict(state["centroid"])
        self.optimizer.load_state_dict(state["optimizer"])
