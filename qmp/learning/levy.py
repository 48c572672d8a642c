"""MT-Levy (Lee, Cho and Kim, "Leveraging Temporally Extended Behavior Sharing for Multi-task Reinforcement
Learning", IROS 2025): a behaviour policy that, now and then, hands task i to another task's policy for a
heavy-tailed number of steps. No critic: the switch target comes from the tasks' training success.

For every task not already in a switch, each step draws x from a Pareto II (Lomax) law with exponent
alpha_i, P(x > y) = (1 + y)^-alpha_i. If x >= 1 (probability 2^-alpha_i) a switch starts: task i executes
policy j for 1 + floor(x) steps (at most `max_hold`), j drawn uniformly from the `top_n` tasks of highest
success rate and i itself. alpha_i = alpha_min - 1 + obs_dim^rho_i, so a task that succeeds (rho_i -> 1)
all but stops switching. rho_i is a moving average of task i's training-episode success. A switch ends
with its episode. Deterministic acting (evaluation) is each task's own policy.

The state (success rates, held targets, steps left) lives on the host; the draws use torch's global CPU
generator, which checkpoints hold, so a resumed run continues exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from qmp.environments.multitask import Episode
from qmp.learning.nets import TanhGaussianPolicy

NO_CAP = 2**30  # hold lengths are capped here when --mtlevy_max_hold is unset (x is unbounded)


class LevyMixture:
    """MT-Levy's collection: task i executes its own policy, or the policy its current switch holds."""

    def __init__(self, policy: TanhGaussianPolicy, num_tasks: int, obs_dim: int, top_n: int = 5,
                 alpha_min: float = 3.0, max_hold: int | None = None, success_ema: float = 0.01) -> None:
        self.policy, self.num_tasks, self.obs_dim = policy, num_tasks, obs_dim
        self.top_n, self.alpha_min, self.success_ema = min(top_n, num_tasks), alpha_min, success_ema
        self.max_hold = NO_CAP if max_hold is None else max_hold
        self.success = torch.zeros(num_tasks, dtype=torch.float64)  # rho_i
        self.target = torch.arange(num_tasks)
        self.remaining = torch.zeros(num_tasks, dtype=torch.int64)  # steps the held target still acts

    def exponents(self) -> Tensor:
        """alpha_i (T,): the power law of task i's next hold length."""
        return self.alpha_min - 1.0 + float(self.obs_dim) ** self.success

    def candidates(self) -> Tensor:
        """(T, T) bool: the policies a switch of task i may pick (the top_n by success, ties to the lower
        index, and i itself)."""
        order = torch.sort(-self.success, stable=True).indices[: self.top_n]
        allowed = torch.zeros(self.num_tasks, self.num_tasks, dtype=torch.bool)
        allowed[:, order] = True
        allowed.fill_diagonal_(True)
        return allowed

    def select(self, u: Tensor, v: Tensor, elapsed: np.ndarray | None = None) -> Tensor:
        """One step of the switch from uniforms u, v (T,) in [0, 1): the policy each task executes (T,)."""
        if elapsed is not None:
            self.remaining[torch.as_tensor(elapsed == 0)] = 0  # a switch ends with its episode
        x = (1.0 - u.double()) ** (-1.0 / self.exponents()) - 1.0  # Lomax(alpha_i) by inversion
        start = (self.remaining <= 0) & (x >= 1.0)
        allowed = self.candidates()
        k = (v.double() * allowed.sum(1)).long().clamp(max=self.num_tasks - 1)  # uniform among the allowed
        pick = ((allowed.cumsum(1) > k.unsqueeze(1)) & allowed).long().argmax(1)
        hold = (1.0 + x.clamp(max=float(self.max_hold)).floor()).long().clamp(max=self.max_hold)
        self.target = torch.where(start, pick, self.target)
        self.remaining = torch.where(start, hold, self.remaining)
        executing = torch.where(self.remaining > 0, self.target, torch.arange(self.num_tasks))
        self.remaining = (self.remaining - 1).clamp(min=0)
        return executing

    @torch.no_grad()
    def act(self, obs: Tensor, elapsed: np.ndarray | None = None, deterministic: bool = False) -> tuple[Tensor, Tensor]:
        """obs (T, O) -> executed actions (T, A) and the policy used per task (T,)."""
        t, own = self.num_tasks, torch.arange(self.num_tasks)
        executing = own if deterministic else self.select(*torch.rand(2, t), elapsed)
        if bool((executing == own).all()):  # nobody switched: each policy on its own task's state only
            action = self.policy.act(obs.unsqueeze(1), deterministic)[0].squeeze(1)
            return action, own.to(obs.device)
        proposals = obs.unsqueeze(0).expand(t, t, obs.shape[-1])  # row j: every task's state for pi_j
        sample = self.policy.act(proposals)[0].transpose(0, 1)  # (T_i, T_j, A), each policy as it acts
        executing = executing.to(obs.device)
        return sample[torch.arange(t, device=obs.device), executing], executing

    def episodes_ended(self, episodes: list[Episode]) -> None:
        """rho_i <- (1 - w) rho_i + w * success of task i's finished training episode (one per task and step)."""
        tasks = torch.tensor([e.task for e in episodes])
        won = torch.tensor([float(e.success) for e in episodes], dtype=torch.float64)
        self.success[tasks] = (1.0 - self.success_ema) * self.success[tasks] + self.success_ema * won

    def state_dict(self) -> dict:
        return {"success": self.success.clone(), "target": self.target.clone(), "remaining": self.remaining.clone()}

    def load_state_dict(self, state: dict) -> None:
        self.success, self.target = state["success"].clone(), state["target"].clone()
        self.remaining = state["remaining"].clone()
