"""Unsupervised data sharing (UDS, "online CDS"): the training batch of `uds_dnc` and `qmp_uds_dnc`.

For task i: B own transitions, plus B // (T-1) transitions from each other task's buffer whose reward
is relabelled to the env's minimum ("assume the worst"), or with `--unsupervised false` (CDS) to task
i's own reward of the transition, where the env computes it from (s, a, s'). With `sharing_quantile`
q > 0 a shared transition is kept only if Q1_i(s, a) exceeds the empirical q-quantile of Q1_i on the own batch
(the element at index floor(B q) of [-inf, sorted own Q1]). Dropped rows get weight 0, so every
task keeps a fixed-shape batch. Next states and termination flags stay those of the source task.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from qmp.learning.buffer import Batch, MultiTaskReplayBuffer
from qmp.learning.nets import DoubleQ


def quantile_threshold(own_q: Tensor, quantile: float) -> Tensor:
    """(T, B) own Q1 values -> (T,) thresholds; quantile 0 gives -inf (keep everything)."""
    t, b = own_q.shape
    padded = torch.cat([torch.full((t, 1), -math.inf, device=own_q.device), own_q.sort(-1).values], dim=1)
    return padded[:, min(int(math.floor(b * quantile)), b)]


class UDSSharing:
    """`reward` (supervised sharing, CDS): task i's reward function (task index, obs, act, next_obs) -> rewards,
    used instead of the constant `min_reward`."""

    def __init__(self, num_tasks: int, batch_size: int, min_reward: float, quantile: float, device: torch.device,
                 reward: Callable[[Tensor, Tensor, Tensor, Tensor], Tensor] | None = None) -> None:
        if num_tasks < 2:
            raise ValueError("data sharing needs at least 2 tasks")
        per_source = max(1, batch_size // (num_tasks - 1))
        rows = [[j for j in range(num_tasks) if j != i] * per_source for i in range(num_tasks)]
        self.sources = torch.tensor(rows, device=device)  # (T, (T-1) * per_source)
        self.min_reward, self.quantile, self.reward = min_reward, quantile, reward
        self.receivers = torch.arange(num_tasks, device=device).unsqueeze(1)  # row i is relabelled for task i

    @torch.no_grad()
    def build(self, buffer: MultiTaskReplayBuffer, critic: DoubleQ, own: Batch) -> tuple[Batch, Tensor, Tensor]:
        """Returns (own + shared batch, row weights (T, B + S), kept fraction of shared rows (T,))."""
        shared = buffer.sample_from(self.sources)
        if self.reward is None:
            shared.rew = torch.full_like(shared.rew, self.min_reward)
        else:
            shared.rew = self.reward(self.receivers, shared.obs, shared.act, shared.next_obs).to(shared.rew.dtype)
        if self.quantile > 0:
            threshold = quantile_threshold(critic(own.obs, own.act)[0], self.quantile)
            keep = (critic(shared.obs, shared.act)[0] > threshold.unsqueeze(1)).float()
        else:
            keep = torch.ones_like(shared.rew)
        weights = torch.cat([torch.ones_like(own.rew), keep], dim=1)
        return Batch.cat(own, shared), weights, keep.mean(-1)
