"""DnC's regulariser in policy i's loss: sum_j beta_ij * D(pi_j || pi_i) on states of the task buffers, pi_j fixed.

D is the KL between the Gaussians before the tanh, averaged over action dimensions (the default), or with
`representation` the squared difference of the policies' last hidden layers, averaged over units (the
original's --regularize_representation). `state_weight` (the original's --stagewise) weighs each state's
divergence, e.g. 0 on the states of late stages, before the mean over states.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from qmp.learning.nets import TanhGaussianPolicy

KL_STATE_TYPES = ("all", "j", "i+j")  # the original's --sampling_type values that ran ("i" crashed there)
STAGEWISE_STAGES = 2  # --stagewise: only states in the first two stages count, as the original's mask "stage < 2"


def first_stages(stage_of: Callable[[Tensor], Tensor]) -> Callable[[Tensor], Tensor]:
    """The state weight of --stagewise: 1 on states whose stage is below STAGEWISE_STAGES, else 0."""
    return lambda states: stage_of(states) < STAGEWISE_STAGES


def kl_matrix(coeff: list[float], num_tasks: int, device: torch.device) -> Tensor | None:
    """beta[i, j] = weight of KL(pi_j || pi_i) in policy i's loss; the original's flat order is
    1->1, 2->1, ..., N->1, 1->2, ... (source varies fastest). None when every weight is 0."""
    if not any(coeff):
        return None
    values = torch.tensor(coeff, dtype=torch.float32, device=device)
    beta = values.expand(num_tasks * num_tasks).clone() if len(coeff) == 1 else values
    beta = beta.view(num_tasks, num_tasks)
    return beta * (1.0 - torch.eye(num_tasks, device=device))


def kl_states_per_task(kl_states: str, batch_size: int, num_tasks: int) -> int:
    """States drawn from EACH task buffer for the DnC KL term, as the original sized them: all -> B/T
    (pooled: B in total), j -> B, i+j -> B/2."""
    sizes = {"all": batch_size // num_tasks, "j": batch_size, "i+j": batch_size // 2}
    if kl_states not in sizes:
        raise ValueError(f"unknown KL state type {kl_states!r}; valid: {', '.join(KL_STATE_TYPES)}")
    return max(1, sizes[kl_states])


def kl_sources(kl_states: str, num_tasks: int, device: torch.device) -> Tensor:
    """(T_i, T_j, m): the buffers whose states score KL(pi_j || pi_i): every buffer (all), buffer j (j),
    or buffers i and j (i+j), each contributing equally many states."""
    t = num_tasks
    i = torch.arange(t, device=device).view(t, 1, 1).expand(t, t, 1)
    j = torch.arange(t, device=device).view(1, t, 1).expand(t, t, 1)
    if kl_states == "all":
        return torch.arange(t, device=device).view(1, 1, t).expand(t, t, t)
    if kl_states == "j":
        return j
    if kl_states == "i+j":
        return torch.cat([i, j], dim=-1)
    raise ValueError(f"unknown KL state type {kl_states!r}; valid: {', '.join(KL_STATE_TYPES)}")


class PolicyRegulariser:
    """The per-task penalty (T,) of DnC (reg.), every pair (i, j) in a few batched gathers."""

    def __init__(self, beta: Tensor, kl_states: str, representation: bool = False,
                 state_weight: Callable[[Tensor], Tensor] | None = None) -> None:
        self.beta, self.num_tasks = beta, beta.shape[0]
        self.sources = kl_sources(kl_states, self.num_tasks, beta.device)  # (T_i, T_j, m)
        self.representation, self.state_weight = representation, state_weight

    def __call__(self, policy: TanhGaussianPolicy, states: Tensor) -> Tensor:
        """states (T_k, n, O) holds n states of every buffer k; returns the penalty of each policy i (T,)."""
        t, n, o = self.num_tasks, states.shape[1], states.shape[-1]
        pooled = states.reshape(1, t * n, o).expand(t, t * n, o)  # every policy sees every state
        src = self.sources
        rows_i = torch.arange(t, device=src.device).view(t, 1, 1)
        rows_j = torch.arange(t, device=src.device).view(1, t, 1)
        if self.representation:
            features = policy.representation(pooled).view(t, t, n, -1)  # (T_policy, T_k, n, H)
            h_i, h_j = features[rows_i, src], features.detach()[rows_j, src]  # (T_i, T_j, m, n, H)
            divergence = (h_j - h_i).pow(2)
        else:
            mean, log_std = (x.view(t, t, n, -1) for x in policy.distribution(pooled))  # (T_policy, T_k, n, A)
            mu_i, ls_i = mean[rows_i, src], log_std[rows_i, src]  # (T_i, T_j, m, n, A)
            mu_j, ls_j = mean.detach()[rows_j, src], log_std.detach()[rows_j, src]
            divergence = ls_i - ls_j + ((2 * ls_j).exp() + (mu_j - mu_i).pow(2)) / (2 * (2 * ls_i).exp()) - 0.5
        if self.state_weight is None:
            per_pair = divergence.mean(dim=(-1, -2, -3))
        else:
            weight = self.state_weight(states).to(divergence.dtype)[src]  # (T_i, T_j, m, n)
            per_pair = (divergence.mean(-1) * weight).mean(dim=(-1, -2))
        return (self.beta * per_pair).sum(-1)
