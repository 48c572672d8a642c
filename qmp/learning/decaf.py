"""DECAF critics (`decaf`): task i's Q is a state-action-dependent mixture of every task's Q.

    Q_i^DECAF(s, a) = sum_k w_ik(s, a) Q_k(s, a),   w_i(s, a) = softmax(f_i(s, a)) over the T tasks,

separately for Q1 and Q2 (each with its own mixing network f_i). As in the original, the gradient of
task i's losses reaches only f_i and task i's own Q_i: the other tasks' Q_k enter as constants. All T x T
Q_k(s_i, a_i) come from one forward pass of the per-task critics (row k holds every task's rows).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from qmp.learning.nets import DoubleQ, TaskNet


class DECAFCritic(nn.Module):
    """Twin DECAF critics over per-task twin critics: (obs (T, B, O), act (T, B, A)) -> (2, T, B).

    Its deep copy is the target: every Q_k inside it is Polyak-averaged (the original's target kept
    frozen copies of the other tasks' Qs, never updated)."""

    arch = "decaf"  # never split into task chunks: task i's value reads every task's critic

    def __init__(self, num_tasks: int, obs_dim: int, act_dim: int, hidden_sizes: list[int], layer_norm: bool,
                 include_task_id: bool = False) -> None:
        """`include_task_id`: every Q_k and mixer f_k also reads the one-hot of k, as TaskNet appends it."""
        super().__init__()
        self.num_tasks, self.include_task_id = num_tasks, include_task_id
        self.base = DoubleQ("separate", num_tasks, obs_dim, act_dim, hidden_sizes, include_task_id, layer_norm)
        # garage's MLPModule: xavier-normal weights, softmax output over the tasks
        self.mixer = TaskNet("separate", num_tasks, obs_dim + act_dim, hidden_sizes, num_tasks, 2,
                             include_task_id=include_task_id, layer_norm=layer_norm, init="xavier_normal")

    @property
    def net(self) -> DECAFCritic:
        """What the loop inspects for NaNs and task chunking (a TaskNet elsewhere)."""
        return self

    def is_task_major(self, parameter: str) -> bool:
        return True  # every tensor is a (copies * T, ...) ensemble

    def weights(self, obs: Tensor, act: Tensor) -> Tensor:
        """w_ik(s, a): (2, T_i, B, T_k), each row a softmax over the tasks k."""
        return torch.softmax(self.mixer(torch.cat([obs, act], dim=-1)), dim=-1)

    def forward(self, obs: Tensor, act: Tensor, tasks: slice | None = None) -> Tensor:
        if tasks is not None:
            raise ValueError("DECAF critics mix every task's critic: they are never split into task chunks")
        t, b, _ = obs.shape
        own = self.base(obs, act)  # (2, T, B): Q_i(s_i, a_i), the only Q with a gradient
        with torch.no_grad():  # Q_k(s_i, a_i) for every k: row k of the input holds every task's rows
            pooled_obs = obs.reshape(1, t * b, -1).expand(t, t * b, obs.shape[-1])
            pooled_act = act.reshape(1, t * b, -1).expand(t, t * b, act.shape[-1])
            every = self.base(pooled_obs, pooled_act).view(2, t, t, b).permute(0, 2, 3, 1)  # (2, T_i, B, T_k)
        diagonal = torch.eye(t, dtype=torch.bool, device=obs.device).view(1, t, 1, t)
        values = torch.where(diagonal, own.unsqueeze(-1), every)
        return (self.weights(obs, act) * values).sum(-1)

    def q1(self, obs: Tensor, act: Tensor) -> Tensor:
        return self.forward(obs, act)[0]
