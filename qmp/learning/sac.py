"""One multi-task SAC update for every method: twin Q, Polyak targets, per-task temperature.

Per-task losses are summed over tasks (mean over the batch), so one Adam over the batched ensemble is
element-wise the same as T separate Adams, as the original's per-task optimisers were.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from qmp.learning.buffer import Batch
from qmp.learning.decaf import DECAFCritic
from qmp.learning.dnc import KL_STATE_TYPES, PolicyRegulariser, kl_matrix, kl_states_per_task
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.learning.pcgrad import pc_backward

__all__ = ["KL_STATE_TYPES", "MultiTaskSAC", "SACConfig", "kl_matrix", "kl_states_per_task", "td_target"]


@dataclass(frozen=True)
class SACConfig:
    lr: float = 3e-4
    """Adam learning rate of policies, critics and temperatures."""
    discount: float = 0.99
    """Discount factor of the TD target."""
    tau: float = 5e-3
    """Polyak step of the target critics, every gradient step."""
    reward_scale: float = 1.0
    """Multiplies the reward in the TD target."""
    target_entropy: float | None = None
    """SAC's entropy target; None: -dim(A)."""
    alpha_loss: str = "log"
    """"log": -log(alpha)(logp + H), the DnC family's; "exp": -alpha(logp + H), sac/mtsac's."""
    shared_alpha: bool = False
    """One temperature for all tasks (`sac`)."""
    kl_coeff: list[float] = field(default_factory=lambda: [0.0])
    """DnC KL weights: one value for every pair, or T*T values (source task varies fastest)."""
    kl_states: str = "all"
    """Which buffers' states score the KL of pair (i, j): all, j or i+j (KL_STATE_TYPES)."""
    kl_representation: bool = False
    """DnC: penalise the squared difference of the last hidden layers instead of the KL."""
    max_update_rows: int = 8192
    """Tasks x batch per chunk of a gradient step of separate networks (0: never split)."""
    pc_grad: bool = False
    """PCGrad: project conflicting per-task gradients of the critics and the policy (sac family)."""
    pc_grad_alpha: bool = False
    """PCGrad on the temperature loss too (--skip_alpha_pc_grad false)."""


def weighted_mean(x: Tensor, weights: Tensor | None) -> Tensor:
    """Mean over the last (batch) axis; with weights (T, B) a weighted mean (UDS drops rows by weight 0)."""
    if weights is None:
        return x.mean(-1)
    return (x * weights).sum(-1) / weights.sum(-1).clamp_min(1.0)


def td_target(rew: Tensor, terminated: Tensor, next_q: Tensor, next_logp: Tensor, alpha: Tensor, discount: float,
              reward_scale: float) -> Tensor:
    """Soft TD target; only a real termination stops bootstrapping (a time-limit truncation does not)."""
    return reward_scale * rew + (1.0 - terminated) * discount * (next_q - alpha * next_logp)


METRIC_ORDER = ("qf1_loss", "qf2_loss", "policy_loss", "alpha_loss", "alpha", "entropy", "q1", "q_target",
                "kl_penalty")  # the columns of progress.csv keep this order


def ordered_metrics(*parts: dict[str, Tensor]) -> dict[str, Tensor]:
    """The metrics of a step's parts in METRIC_ORDER (then any others)."""
    merged = {k: v for part in parts for k, v in part.items()}
    return {k: merged[k] for k in (*METRIC_ORDER, *merged) if k in merged}


class MultiTaskSAC:
    """Owns the per-task policies, critics, targets, temperatures and their optimisers."""

    def __init__(self, policy: TanhGaussianPolicy, critic: DoubleQ | DECAFCritic, num_tasks: int, act_dim: int,
                 cfg: SACConfig, device: torch.device,
                 kl_state_weight: Callable[[Tensor], Tensor] | None = None) -> None:
        """`kl_state_weight`: states (T, n, O) -> weights (T, n) of each state in the DnC penalty (--stagewise)."""
        self.cfg, self.num_tasks, self.device = cfg, num_tasks, device
        self.policy = policy.to(device)
        self.critic = critic.to(device)
        self.critic_target = copy.deepcopy(self.critic).requires_grad_(False)
        self.target_entropy = float(-act_dim if cfg.target_entropy is None else cfg.target_entropy)
        self.log_alpha = torch.zeros(1 if cfg.shared_alpha else num_tasks, device=device, requires_grad=True)
        # fused Adam: one kernel per step instead of a Python loop over parameters; element-wise the
        # same update, 20-25% faster for small nets (docs/performance.md)
        fused = {"fused": True} if device.type in ("cpu", "cuda") else {}
        self.policy_opt = torch.optim.Adam(self.policy.parameters(), lr=cfg.lr, **fused)
        self.critic_opt = torch.optim.Adam(self.critic.parameters(), lr=cfg.lr, **fused)
        self.alpha_opt = torch.optim.Adam([self.log_alpha], lr=cfg.lr, **fused)
        beta = kl_matrix(cfg.kl_coeff, num_tasks, device)
        self.regulariser = (None if beta is None else
                            PolicyRegulariser(beta, cfg.kl_states, cfg.kl_representation, kl_state_weight))
        self._critic_params = list(self.critic.parameters())
        self._target_params = list(self.critic_target.parameters())

    def update(self, batch: Batch, weights: Tensor | None = None, kl_obs: Tensor | None = None) -> dict[str, Tensor]:
        """One gradient step for every task. `weights` (T, B) masks rows (UDS); `kl_obs` (T, n, O) are the
        states of the DnC KL penalty, n from each task buffer. Returns detached per-task metrics, each (T,).

        Large batches of separate networks run in task chunks (`max_update_rows`): the gradients of
        the chunks add up to the same step, and each chunk's activations stay in the CPU cache."""
        alpha = self.log_alpha.detach().exp().unsqueeze(-1)  # (T or 1, 1)
        noise_next = torch.randn_like(batch.act)  # drawn up front (same stream as drawing them in turn)
        noise_now = torch.randn_like(batch.act)
        use_kl = self.regulariser is not None and kl_obs is not None
        chunks = self._chunks(batch.act.shape[1], use_kl)
        critic = self._critic_step(batch, weights, alpha, noise_next, chunks)
        kl = self._kl_penalty(kl_obs) if use_kl else None
        actor = self._actor_and_alpha_step(batch.obs, weights, alpha, noise_now, chunks, kl)
        self._polyak()
        return ordered_metrics(critic, actor)

    def _critic_step(self, batch: Batch, weights: Tensor | None, alpha: Tensor, noise: Tensor,
                     chunks: list[slice | None]) -> dict[str, Tensor]:
        """One step of the twin critics on `batch`; their metrics."""
        self.critic_opt.zero_grad(set_to_none=True)
        critic_parts = [self._critic_chunk(batch, weights, alpha, noise, tasks) for tasks in chunks]
        # (2, T), (T,), (T,)
        qf_losses, q1, target = (torch.cat(part, dim=-1) for part in zip(*critic_parts, strict=True))
        self.critic_opt.step()
        return {"qf1_loss": qf_losses[0], "qf2_loss": qf_losses[1], "q1": q1, "q_target": target}

    def _actor_and_alpha_step(self, obs: Tensor, weights: Tensor | None, alpha: Tensor, noise: Tensor,
                              chunks: list[slice | None], kl: Tensor | None) -> dict[str, Tensor]:
        """One step of the policies on the states `obs` (T, B, O) (plus the DnC penalty `kl`), then of the
        temperatures on the same samples; their metrics."""
        cfg = self.cfg
        self.critic.requires_grad_(False)  # the actor's loss must not leave gradients in the critic
        self.policy_opt.zero_grad(set_to_none=True)
        actor_parts = [self._actor_chunk(obs, weights, alpha, noise, tasks, kl) for tasks in chunks]
        policy_losses, logp = (torch.cat(part, dim=0) for part in zip(*actor_parts, strict=True))  # (T,), (T, B)
        self.policy_opt.step()
        self.critic.requires_grad_(True)

        gap = logp + self.target_entropy
        scale = self.log_alpha if cfg.alpha_loss == "log" else self.log_alpha.exp()
        alpha_losses = weighted_mean(-scale.unsqueeze(-1) * gap, weights)
        self.alpha_opt.zero_grad(set_to_none=True)
        if cfg.pc_grad and cfg.pc_grad_alpha:
            pc_backward(alpha_losses, [self.log_alpha])
        else:
            alpha_losses.sum().backward()
        self.alpha_opt.step()
        metrics = {"policy_loss": policy_losses, "alpha_loss": alpha_losses.detach(),
                   "alpha": alpha.squeeze(-1).expand(self.num_tasks), "entropy": -weighted_mean(logp, weights)}
        if kl is not None:
            metrics["kl_penalty"] = kl.detach()
        return metrics

    def _polyak(self) -> None:
        with torch.no_grad():
            torch._foreach_lerp_(self._target_params, self._critic_params, self.cfg.tau)

    def _chunks(self, batch_size: int, use_kl: bool) -> list[slice | None]:
        """Task ranges of one gradient step: [None] (all tasks at once) unless the batch is large and
        every task's networks are independent (separate, no task one-hot, no KL coupling)."""
        per_chunk = max(1, self.cfg.max_update_rows // batch_size) if self.cfg.max_update_rows > 0 else self.num_tasks
        nets = (self.policy.net, self.critic.net)
        separable = all(n.arch == "separate" and not n.include_task_id for n in nets) and not use_kl
        if per_chunk >= self.num_tasks or not separable:
            return [None]
        return [slice(i, min(i + per_chunk, self.num_tasks)) for i in range(0, self.num_tasks, per_chunk)]

    @staticmethod
    def _rows(x: Tensor | None, tasks: slice | None) -> Tensor | None:
        return x if x is None or tasks is None or x.shape[0] == 1 else x[tasks]

    def _critic_chunk(self, batch: Batch, weights: Tensor | None, alpha: Tensor, noise: Tensor,
                      tasks: slice | None) -> tuple[Tensor, Tensor, Tensor]:
        """Backward of the twin-Q losses of `tasks`; returns their losses (2, t), mean Q1 and target (t,)."""
        r = lambda x: self._rows(x, tasks)  # noqa: E731
        obs, next_obs, w = r(batch.obs), r(batch.next_obs), r(weights)
        with torch.no_grad():
            next_act, next_logp = self.policy(next_obs, noise=r(noise), tasks=tasks)
            next_q = self.critic_target(next_obs, next_act, tasks).min(0).values
            target = td_target(r(batch.rew), r(batch.terminated), next_q, next_logp, r(alpha), self.cfg.discount,
                               self.cfg.reward_scale)
        q = self.critic(obs, r(batch.act), tasks)  # (2, t, B)
        qf_losses = weighted_mean((q - target).pow(2), w)  # (2, t)
        if self.cfg.pc_grad:  # Q1's and Q2's gradients projected apart, as by the original's two optimisers
            pc_backward(qf_losses.sum(0), self._critic_params, copies=2)
        else:
            qf_losses.sum().backward()
        return qf_losses.detach(), weighted_mean(q[0].detach(), w), weighted_mean(target, w)

    def _actor_chunk(self, obs: Tensor, weights: Tensor | None, alpha: Tensor, noise: Tensor, tasks: slice | None,
                     kl: Tensor | None) -> tuple[Tensor, Tensor]:
        """Backward of the policy losses of `tasks` (plus the KL penalty, never chunked); returns the
        losses (t,) and log-probabilities (t, B)."""
        r = lambda x: self._rows(x, tasks)  # noqa: E731
        obs = r(obs)
        act, logp = self.policy(obs, noise=r(noise), tasks=tasks)
        q_pi = self.critic(obs, act, tasks).min(0).values
        policy_losses = weighted_mean(r(alpha) * logp - q_pi, r(weights))
        if self.cfg.pc_grad:
            pc_backward(policy_losses, list(self.policy.parameters()))
        else:
            (policy_losses.sum() + (kl.sum() if kl is not None else 0.0)).backward()
        return policy_losses.detach(), logp.detach()

    def _kl_penalty(self, states: Tensor) -> Tensor:
        """Per task i: DnC's penalty on `states` (T_k, n, O), n from every buffer k (qmp/learning/dnc.py). (T,)"""
        assert self.regulariser is not None
        return self.regulariser(self.policy, states)

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
