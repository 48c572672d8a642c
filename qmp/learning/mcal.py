"""Multi-Critic Actor Learning (`mcal`, `qmp_mcal`): one multihead actor, one temperature, a twin critic per task.

The original trained task after task: a gradient step of task i updated critic i on B transitions of
buffer i, then the shared actor on an "all tasks" batch whose rows from buffer k are scored by critic k,
then the temperature, then critic i's target. So every cycle gave each critic G/T steps and the actor G.
Here each gradient step updates every critic at once, then takes T actor and temperature steps (each on
a fresh all-task batch, batched over tasks), then every target: the same counts and batch sizes.

`MinOwnProbability` is QMP-MCAL's --min_task_probs: task i executes its own policy with probability at
least p_i (at each re-selection of the Q-switch), otherwise the Q-switch's choice.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from qmp.learning.buffer import Batch
from qmp.learning.policies import QSwitchMixture
from qmp.learning.sac import MultiTaskSAC, ordered_metrics


class MultiCriticActor(MultiTaskSAC):
    """MCAL's update; the policy must be multihead (row k = head k), the critics separate."""

    def update(self, batch: Batch, weights: Tensor | None = None, kl_obs: Tensor | None = None,
               actor_states: Tensor | None = None) -> dict[str, Tensor]:
        """`actor_states` (S, T, n, O): the all-task batches of S actor steps, n states from every buffer k
        (head k acts on them, critic k scores). Returns per-task metrics, the actor's averaged over its steps."""
        if actor_states is None:
            raise ValueError("MCAL's update needs the actor's all-task batches (actor_states)")
        alpha = self.log_alpha.detach().exp().unsqueeze(-1)
        noise_next = torch.randn_like(batch.act)
        critic = self._critic_step(batch, weights, alpha, noise_next, [None])
        sums: dict[str, Tensor] = {}
        for states in actor_states:  # sequential Adam steps of the one actor, each batched over tasks
            alpha = self.log_alpha.detach().exp().unsqueeze(-1)
            noise = torch.randn(*states.shape[:-1], batch.act.shape[-1], device=states.device)
            for key, value in self._actor_and_alpha_step(states, None, alpha, noise, [None], None).items():
                sums[key] = sums[key] + value if key in sums else value
        self._polyak()
        return ordered_metrics(critic, {key: value / len(actor_states) for key, value in sums.items()})


class MinOwnProbability:
    """A Q-switch behaviour policy in which task i keeps its own policy with probability >= probs[i]."""

    def __init__(self, mixture: QSwitchMixture, probs: list[float]) -> None:
        self.mixture = mixture
        self.probs = torch.tensor(probs, dtype=torch.float32).expand(mixture.num_tasks).clone()

    @torch.no_grad()
    def act(self, obs: Tensor, elapsed: np.ndarray | None = None, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """As QSwitchMixture.act; in training, a coin per task at each re-selection may force the own policy."""
        action, choice = self.mixture.act(obs, elapsed, deterministic)
        if deterministic:
            return action, choice
        t, device = self.mixture.num_tasks, obs.device
        own = torch.arange(t, device=device)
        coin = torch.rand(t, device=device) < self.probs.to(device)
        freq = self.mixture.sampling_freq
        if elapsed is not None and freq > 1:
            coin &= torch.as_tensor(elapsed % freq == 0, device=device)
        # a fresh sample of pi_i(s_i), drawn as the Q-switch draws its candidates
        own_action = self.mixture.policy.act(obs.unsqueeze(1), single_tanh=True)[0].squeeze(1)
        action = torch.where(coin.unsqueeze(-1), own_action, action)
        choice = torch.where(coin, own, choice)
        self.mixture.choice = choice.clone()  # kept until the next re-selection, as a Q-switch choice is
        return action, choice

    def episodes_ended(self, episodes: list) -> None:
        """Passed on to the wrapped Q-switch (the collector reports every finished training episode)."""
        self.mixture.episodes_ended(episodes)

    def state_dict(self) -> dict:
        return self.mixture.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.mixture.load_state_dict(state)
