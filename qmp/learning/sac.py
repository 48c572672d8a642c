"""One multi-task SAC update for every method: twin Q, Polyak targets, per-task temperature.

Per-task losses are summed over tasks (mean over the batch), so one Adam over the batched ensemble is
element-wise the same as T separate Adams, as the original's per-task optimisers were.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import Tensor

from qmp.learning.buffer import Batch
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy


@dataclass
class SACConfig:
    lr: float = 3e-4
    discount: float = 0.99
    tau: float = 5e-3
    reward_scale: float = 1.0
    target_entropy: float | None = None  # None -> -dim(A)
    alpha_loss: str = "log"  # "log": -log(a)(logp + H) (DnC family); "exp": -a(logp + H) (SAC/MTSAC)
    shared_alpha: bool = False  # `sac`: one temperature for all tasks
    kl_coeff: list[float] = field(default_factory=lambda: [0.0])  # DnC: one value or T*T values


def weighted_mean(x: Tensor, weights: Tensor | None) -> Tensor:
    """Mean over the last (batch) axis; with weights (T, B) a weighted mean (UDS drops rows by weight 0)."""
    if weights is None:
        return x.mean(-1)
    return (x * weights).sum(-1) / weights.sum(-1).clamp_min(1.0)


def td_target(rew: Tensor, terminated: Tensor, next_q: Tensor, next_logp: Tensor, alpha: Tensor, discount: float, reward_scale: float) -> Tensor:
    """Soft TD target; only a real termination stops bootstrapping (a time-limit truncation does not)."""
    return reward_scale * rew + (1.0 - terminated) * discount * (next_q - alpha * next_logp)


def kl_matrix(coeff: list[float], num_tasks: int, device: torch.device) -> Tensor | None:
    """beta[i, j] = weight of KL(pi_j || pi_i) in policy i's loss; the original's flat order is
    1->1, 2->1, ..., N->1, 1->2, ... (source varies fastest). None when every weight is 0."""
    if not any(coeff):
        return None
    values = torch.tensor(coeff, dtype=torch.float32, device=device)
    beta = values.expand(num_tasks * num_tasks).clone() if len(coeff) == 1 else values
    beta = beta.view(num_tasks, num_tasks)
    return beta * (1.0 - torch.eye(num_tasks, device=device))


class MultiTaskSAC:
    """Owns the per-task policies, critics, targets, temperatures and their optimisers."""

    def __init__(self, policy: TanhGaussianPolicy, critic: DoubleQ, num_tasks: int, act_dim: int, cfg: SACConfig, device: torch.device) -> None:
        self.cfg, self.num_tasks, self.device = cfg, num_tasks, device
        self.policy = policy.to(device)
        self.critic = critic.to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.log_alpha = torch.zeros(1 if cfg.shared_alpha else num_tasks, device=device, requires_grad=True)
        self.policy_opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.lr)
        self.kl_beta = kl_matrix(cfg.kl_coeff, num_tasks, device)
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())

    @torch.no_grad()
    def act(self, obs: Tensor, deterministic: bool = False) -> Tensor:
        """Each task's own policy: obs (T, N, O) -> actions (T, N, A)."""
        return self.policy(obs, deterministic)[0]

    def update(self, batch: Batch, weights: Tensor | None = None, kl_obs: Tensor | None = None) -> dict[str, Tensor]:
        """One gradient step for every task. `weights` (T, B) masks rows (UDS); `kl_obs` (S, O) are
        the states of the DnC KL penalty. Returns detached per-task metrics, each (T,)."""
        cfg = self.cfg
        alpha = self.log_alpha.detach().exp().unsqueeze(-1)  # (T or 1, 1)

        with torch.no_grad():
            next_act, next_logp, _ = self.policy(batch.next_obs)
            next_q = self.critic_target(batch.next_obs, next_act).min(0).values
            target = td_target(batch.rew, batch.terminated, next_q, next_logp, alpha, cfg.discount, cfg.reward_scale)
        q = self.critic(batch.obs, batch.act)  # (2, T, B)
        qf_losses = weighted_mean((q - target).pow(2), weights)  # (2, T)
        self.critic_opt.zero_grad(set_to_none=True)
        qf_losses.sum().backward()
        self.critic_opt.step()

        self.critic.requires_grad_(False)  # the actor's loss must not leave gradients in the critic
        act, logp, _ = self.policy(batch.obs)
        q_pi = self.critic(batch.obs, act).min(0).values
        policy_losses = weighted_mean(alpha * logp - q_pi, weights)
        kl = self._kl_penalty(kl_obs) if self.kl_beta is not None and kl_obs is not None else None
        self.policy_opt.zero_grad(set_to_none=True)
        (policy_losses.sum() + (kl.sum() if kl is not None else 0.0)).backward()
        self.policy_opt.step()
        self.critic.requires_grad_(True)

        gap = logp.detach() + self.target_entropy
        scale = self.log_alpha if cfg.alpha_loss == "log" else self.log_alpha.exp()
        alpha_losses = weighted_mean(-scale.unsqueeze(-1) * gap, weights)
        self.alpha_opt.zero_grad(set_to_none=True)
        alpha_losses.sum().backward()
        self.alpha_opt.step()

        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._critic_params, cfg.tau)
        metrics = {
            "qf1_loss": qf_losses[0].detach(),
            "qf2_loss": qf_losses[1].detach(),
            "policy_loss": policy_losses.detach(),
            "alpha_loss": alpha_losses.detach(),
            "alpha": alpha.squeeze(-1).expand(self.num_tasks),
            "entropy": -weighted_mean(logp.detach(), weights),
            "q1": weighted_mean(q[0].detach(), weights),
            "q_target": weighted_mean(target, weights),
        }
        if kl is not None:
            metrics["kl_penalty"] = kl.detach()
        return metrics

    def _kl_penalty(self, states: Tensor) -> Tensor:
        """Per task i: sum_j beta_ij * mean KL(pi_j || pi_i) over states, pi_j held fixed (T,)."""
        t = self.num_tasks
        mean, log_std = self.policy.distribution(states.unsqueeze(0).expand(t, *states.shape))
        mu_i, ls_i = mean.unsqueeze(1), log_std.unsqueeze(1)  # (T_i, 1, S, A)
        mu_j, ls_j = mean.detach().unsqueeze(0), log_std.detach().unsqueeze(0)  # (1, T_j, S, A)
        kl = ls_i - ls_j + ((2 * ls_j).exp() + (mu_j - mu_i).pow(2)) / (2 * (2 * ls_i).exp()) - 0.5
        return (self.kl_beta * kl.mean(-1).mean(-1)).sum(-1)

    def state_dict(self) -> dict:
        return {
            "policy": self.policy.state_dict(),
            "critic": self.critic.state_dict(),
            "critic_target": self.critic_target.state_dict(),
            "log_alpha": self.log_alpha.detach().clone(),
            "policy_opt": self.policy_opt.state_dict(),
            "critic_opt": self.critic_opt.state_dict(),
            "alpha_opt": self.alpha_opt.state_dict(),
        }

    def load_state_dict(self, state: dict) -> None:
        self.policy.load_state_dict(state["policy"])
        self.critic.load_state_dict(state["critic"])
        self.critic_target.load_state_dict(state["critic_target"])
        with torch.no_grad():
            self.log_alpha.copy_(state["log_alpha"])  # the original's resume reset alpha to 1: we keep it
        self.policy_opt.load_state_dict(state["policy_opt"])
        self.critic_opt.load_state_dict(state["critic_opt"])
        self.alpha_opt.load_state_dict(state["alpha_opt"])
