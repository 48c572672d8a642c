"""Behaviour policies: which action is executed in task i. Training never looks here.

`OwnPolicy`: task i runs pi_i (every non-QMP method, and all headline evaluation).
`QSwitchMixture`: the QMP behaviour policy. For task i every policy j proposes an action for s_i,
task i's critic scores the proposals and the best one is executed.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from qmp.learning.foreign import CriticList, PolicyList
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.methods import QSWITCH_ACTIONS, QSWITCH_SCORES


class OwnPolicy:
    """Task i acts with pi_i."""

    def __init__(self, policy: TanhGaussianPolicy) -> None:
        self.policy = policy

    @torch.no_grad()
    def act(self, obs: Tensor, elapsed: np.ndarray | None = None, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """obs (T, O) -> actions (T, A) and the policy used per task (T,) (always its own)."""
        action = self.policy.act(obs.unsqueeze(1), deterministic)[0].squeeze(1)
        return action, torch.arange(obs.shape[0], device=obs.device)

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class QSwitchMixture:
    """The Q-switch, with all T x T candidates in one policy and one critic forward pass.

    Default = the original's shipped rule: score_j = Q1_i(s_i, tanh(mu_j(s_i))), hard argmax (ties to
    the lowest index), execute the winner's *sampled* action. `score` ("q1" | "min" | "mean" of the
    twin critics) and `score_action` ("mean" | "sample") select the alternatives. With
    `sampling_freq` k > 1 the choice is re-made every k steps of an episode and kept in between,
    drawing fresh actions from the chosen policy. Deterministic mode executes the winner's mean.
    `PolicyList` / `CriticList` put your own per-task modules in place of the batched networks.
    """

    def __init__(
        self,
        policy: TanhGaussianPolicy | PolicyList,
        critic: DoubleQ | CriticList,
        num_tasks: int,
        sampling_freq: int = 1,
        score: str = "q1",
        score_action: str = "mean",
    ) -> None:
        if score not in QSWITCH_SCORES:
            raise ValueError(f"unknown Q-switch score {score!r}; valid: {', '.join(QSWITCH_SCORES)}")
        if score_action not in QSWITCH_ACTIONS:
            raise ValueError(f"unknown Q-switch action {score_action!r}; valid: {', '.join(QSWITCH_ACTIONS)}")
        self.policy, self.critic, self.num_tasks = policy, critic, num_tasks
        self.sampling_freq, self.score, self.score_action = sampling_freq, score, score_action
        self.choice = torch.arange(num_tasks)

    @torch.no_grad()
    def scores(self, obs: Tensor, candidates: Tensor) -> Tensor:
        """Q_i(s_i, a_ji) for candidates (T_j, T_i, A) -> scores (T_i, T_j)."""
        t = self.num_tasks
        states = obs.unsqueeze(1).expand(t, t, obs.shape[-1])  # row i: s_i once per candidate
        if self.score == "q1":
            return self.critic.q1(states, candidates.transpose(0, 1))
        q = self.critic(states, candidates.transpose(0, 1))  # (2, T_i, T_j)
        return q.min(0).values if self.score == "min" else q.mean(0)

    @torch.no_grad()
    def act(self, obs: Tensor, elapsed: np.ndarray | None = None, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """obs (T, O) -> executed actions (T, A) and the chosen policy per task (T,)."""
        t = self.num_tasks
        self.choice = self.choice.to(obs.device)
        proposals = obs.unsqueeze(0).expand(t, t, obs.shape[-1])  # row j: every task's state for pi_j
        sample, mean = self.policy.act(proposals, deterministic, single_tanh=True)  # (T_j, T_i, A)
        if elapsed is None or self.sampling_freq == 1:  # decided on the host: no device sync per step
            reselect: np.ndarray | None = None
        else:
            reselect = elapsed % self.sampling_freq == 0
        if reselect is None or reselect.any():
            scored = mean if (self.score_action == "mean" or deterministic) else sample
            best = self.scores(obs, scored).argmax(-1)
            self.choice = (best if reselect is None
                           else torch.where(torch.as_tensor(reselect, device=obs.device), best, self.choice))
        executed = (mean if deterministic else sample).transpose(0, 1)  # (T_i, T_j, A)
        action = executed[torch.arange(t, device=obs.device), self.choice]
        return action, self.choice.clone()

    def state_dict(self) -> dict:
        return {"choice": self.choice.cpu().clone()}

    def load_state_dict(self, state: dict) -> None:
        self.choice = state["choice"].clone()
