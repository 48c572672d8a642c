"""PCGrad ("Gradient Surgery for Multi-Task Learning"), as the original applied it to sac, mtsac and qmp_sac.

Each task's loss gives its own gradient g_i. Every g_i is then projected, against the tasks in a fresh
random order (itself included), off each *original* g_j it conflicts with (g_i . g_j < 0):
g_i <- g_i - (g_i . g_j) / |g_j|^2 g_j. The projected gradients are summed over tasks.

Batched over tasks: the T per-task gradients come from one vectorised backward (`is_grads_batched`),
and the sequential projections run on the T x T Gram matrix (every projected g_i is a combination of
the original gradients), so the only per-step work over the parameters is two matrix products.
"""

from __future__ import annotations

import torch
from torch import Tensor


def project_conflicting(grads: Tensor, order: Tensor) -> Tensor:
    """grads (C, T, P): per-task gradients of C independent groups; order (C, T, T): order[c, i] is the
    sequence of tasks g_i is projected against. Returns the projected gradients (C, T, P)."""
    c, t, _ = grads.shape
    gram = grads @ grads.transpose(1, 2)  # (C, T, T)
    coef = torch.eye(t, dtype=grads.dtype, device=grads.device).expand(c, t, t).clone()  # g_i = coef[i] @ grads
    rows = torch.arange(t, device=grads.device).expand(c, t)
    groups = torch.arange(c, device=grads.device).unsqueeze(1).expand(c, t)
    for step in range(t):  # sequential by definition; each step is batched over groups and tasks
        j = order[:, :, step]  # (C, T)
        dot = (coef * gram[groups, j]).sum(-1)  # g_i . g_j, (C, T)
        norm = gram[groups, j, j]
        scale = torch.where(dot < 0, dot / norm.clamp_min(torch.finfo(grads.dtype).tiny), torch.zeros_like(dot))
        coef[groups, rows, j] -= scale
    return coef @ grads


def pc_backward(losses: Tensor, params: list[Tensor], copies: int = 1) -> None:
    """Write the PCGrad gradient of the per-task `losses` (T,) into `params`' .grad (replacing it).

    `copies`: the leading axis of every parameter holds this many independent networks (the twin
    critics), projected separately as the original's one optimiser per critic did. The projection
    order is drawn from torch's global RNG, so a resumed run continues identically."""
    t = losses.shape[0]
    eye = torch.eye(t, dtype=losses.dtype, device=losses.device)
    grads = torch.autograd.grad(losses, params, grad_outputs=eye, is_grads_batched=True, allow_unused=True,
                                materialize_grads=True)
    flat = torch.cat([g.reshape(t, copies, -1) for g in grads], dim=-1).transpose(0, 1)  # (C, T, P)
    order = torch.rand(copies, t, t, device=losses.device).argsort(-1)
    merged = project_conflicting(flat, order).sum(1)  # (C, P)
    offset = 0
    for param in params:
        size = param.numel() // copies
        param.grad = merged[:, offset : offset + size].reshape(param.shape).clone()
        offset += size
