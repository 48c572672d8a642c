"""Batched ("ensemble") networks over tasks: every tensor is task-major, (T, B, features).

`TaskNet` runs the per-task networks of one architecture in a few large batched matmuls instead of a
Python loop over tasks. Row k of the input is always processed by task k's network (or head), which
is what lets the Q-switch evaluate policy j on task i's states: put those states in row j.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from qmp.methods import ARCHITECTURES

LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0


class _SingleOutput(torch.autograd.Function):
    """b + x @ w for one output unit (a critic's last layer): (n, B, in) -> (n, B, 1).

    A batched matmul with one output column runs at ~2 GFLOP/s on CPU (x @ w, and worse its weight
    gradient x^T @ g); computing it as w^T @ x^T, the input gradient as a broadcast product and the weight
    gradient as g^T @ x is 2.4x (fwd+bwd, 2,560 rows) to 3.6x (32 rows) faster (docs/performance.md)."""

    @staticmethod
    def forward(ctx, x: Tensor, weight: Tensor, bias: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, weight)
        return torch.baddbmm(bias, weight.transpose(1, 2), x.transpose(1, 2)).transpose(1, 2)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor | None, Tensor | None]:  # type: ignore[override]
        x, weight = ctx.saved_tensors
        need_x, need_w, need_b = ctx.needs_input_grad
        grad_x = grad * weight.transpose(1, 2) if need_x else None
        grad_w = torch.bmm(grad.transpose(1, 2), x).transpose(1, 2) if need_w else None
        grad_b = grad.sum(1, keepdim=True) if need_b else None
        return grad_x, grad_w, grad_b


class EnsembleLinear(nn.Module):
    """n independent linear layers in one batched matmul: (n, B, in) -> (n, B, out)."""

    def __init__(self, n: int, in_features: int, out_features: int, init: str = "xavier_uniform") -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(n, in_features, out_features))
        self.bias = nn.Parameter(torch.zeros(n, 1, out_features))
        if init == "xavier_uniform":  # garage's policy init
            bound = math.sqrt(6.0 / (in_features + out_features))
            nn.init.uniform_(self.weight, -bound, bound)
        elif init == "xavier_normal":  # garage's Q-function init
            nn.init.normal_(self.weight, 0.0, math.sqrt(2.0 / (in_features + out_features)))
        else:
            raise ValueError(f"unknown init {init!r}; valid: xavier_uniform, xavier_normal")

    def forward(self, x: Tensor, members: slice | None = None) -> Tensor:
        """`members`: a contiguous range of the n layers, for x (len(range), B, in). All layers are used
        unsliced: the backward of a slice writes its gradient into a zeroed full-size tensor (8% of a
        small-batch gradient step)."""
        weight, bias = (self.weight, self.bias) if members is None else (self.weight[members], self.bias[members])
        if weight.shape[-1] == 1:
            return _SingleOutput.apply(x, weight, bias)
        return torch.baddbmm(bias, x, weight)


class EnsembleMLP(nn.Module):
    """n independent ReLU MLPs: (n, B, in) -> (n, B, out). The output layer is linear unless
    `activate_output` (used for a multihead trunk, whose output feeds the heads)."""

    def __init__(
        self,
        n: int,
        in_features: int,
        hidden_sizes: list[int],
        out_features: int | None,
        layer_norm: bool = False,
        init: str = "xavier_uniform",
    ) -> None:
        super().__init__()
        sizes = [in_features, *hidden_sizes]
        self.hidden = nn.ModuleList(EnsembleLinear(n, a, b, init) for a, b in zip(sizes[:-1], sizes[1:], strict=True))
        # garage's placement: each hidden layer's input is normalised (the raw input too), the output layer's not
        self.norm_shapes = [(h,) for h in sizes[:-1]] if layer_norm else []
        self.norm_weight = (nn.ParameterList(nn.Parameter(torch.ones(n, 1, h)) for h in sizes[:-1])
                            if layer_norm else None)
        self.norm_bias = (nn.ParameterList(nn.Parameter(torch.zeros(n, 1, h)) for h in sizes[:-1])
                          if layer_norm else None)
        self.out = EnsembleLinear(n, sizes[-1], out_features, init) if out_features is not None else None

    def forward(self, x: Tensor, members: slice | None = None) -> Tensor:
        x = self.features(x, members)
        return self.out(x, members) if self.out is not None else x

    def features(self, x: Tensor, members: slice | None = None) -> Tensor:
        """The last hidden layer's activations (DnC's representation penalty)."""
        for k, layer in enumerate(self.hidden):
            if self.norm_weight is not None:
                weight, bias = self.norm_weight[k], self.norm_bias[k]
                if members is not None:
                    weight, bias = weight[members], bias[members]
                x = F.layer_norm(x, self.norm_shapes[k]) * weight + bias
            x = layer(x, members)
            # in place: the layer's backward needs its input, not its output; not after a one-unit layer, whose
            # kernel (_SingleOutput) returns a view that autograd forbids modifying in place
            x = F.relu(x, inplace=layer.weight.shape[-1] != 1)
        return x


class TaskNet(nn.Module):
    """`copies` x T networks of one architecture: (T, B, in) -> (copies, T, B, out).

    separate:  copies*T independent MLPs.
    multihead: per copy one shared trunk and T linear heads (the trunk sees all tasks' rows).
    shared:    per copy one MLP for every task; with `include_task_id` the task one-hot is appended.
    `include_task_id` appends the one-hot for the other architectures too (the original's flag).
    """

    def __init__(
        self,
        arch: str,
        num_tasks: int,
        in_features: int,
        hidden_sizes: list[int],
        out_features: int,
        copies: int = 1,
        include_task_id: bool = False,
        layer_norm: bool = False,
        init: str = "xavier_uniform",
    ) -> None:
        super().__init__()
        if arch not in ARCHITECTURES:
            raise ValueError(f"unknown architecture {arch!r}; valid: {', '.join(ARCHITECTURES)}")
        self.arch, self.num_tasks, self.copies = arch, num_tasks, copies
        self.include_task_id = include_task_id
        in_features += num_tasks if include_task_id else 0
        if arch == "separate":
            self.body = EnsembleMLP(copies * num_tasks, in_features, hidden_sizes, out_features, layer_norm, init)
        elif arch == "multihead":
            self.body = EnsembleMLP(copies, in_features, hidden_sizes, None, layer_norm, init)
            self.heads = EnsembleLinear(copies * num_tasks, hidden_sizes[-1], out_features, init)
        else:
            self.body = EnsembleMLP(copies, in_features, hidden_sizes, out_features, layer_norm, init)

    def forward(self, x: Tensor, tasks: slice | None = None) -> Tensor:
        """`tasks`: only these tasks' networks, on x (len(tasks), B, in) (separate architecture only:
        the gradient step splits large batches into task chunks so activations stay in cache)."""
        if tasks is not None:
            return self._forward_tasks(x, tasks)
        t, b, _ = x.shape
        x = self._with_task_id(x)
        c = self.copies
        if self.arch == "separate":
            y = self.body(torch.cat([x] * c) if c > 1 else x)  # cat: a few times cheaper than repeat on small inputs
            return y.view(c, t, b, -1)
        flat = x.reshape(1, t * b, -1).expand(c, t * b, x.shape[-1])
        y = self.body(flat)
        if self.arch == "multihead":
            y = self.heads(y.reshape(c * t, b, -1))
        return y.reshape(c, t, b, -1)

    def _with_task_id(self, x: Tensor) -> Tensor:
        """Checks the task rows; appends row k's one-hot with `include_task_id`."""
        t, b, _ = x.shape
        if t != self.num_tasks:
            raise ValueError(f"expected {self.num_tasks} task rows, got {t}")
        if self.include_task_id:
            onehot = torch.eye(t, device=x.device, dtype=x.dtype).unsqueeze(1).expand(t, b, t)
            x = torch.cat([x, onehot], dim=-1)
        return x

    def features(self, x: Tensor) -> Tensor:
        """Each task network's last hidden layer, (T, B, H): separate networks, one copy."""
        if self.arch != "separate" or self.copies != 1:
            raise ValueError("hidden features are defined for one copy of separate networks")
        return self.body.features(self._with_task_id(x))

    def is_task_major(self, parameter: str) -> bool:
        """Whether the first axis of this parameter (a name of `named_parameters`) runs over tasks, so a
        NaN in it can be blamed on one task: every tensor of separate networks, the heads of a multihead one."""
        return self.arch == "separate" or (self.arch == "multihead" and parameter.startswith("heads."))

    def first_copy(self, x: Tensor) -> Tensor:
        """forward(x)[0] without computing the other copies where they are separate networks (the
        Q-switch scores with Q1 alone: half the weights to read on every env step)."""
        if self.arch == "separate" and not self.include_task_id:
            return self.body(x, slice(0, self.num_tasks))
        return self.forward(x)[0]

    def _forward_tasks(self, x: Tensor, tasks: slice) -> Tensor:
        if self.arch != "separate" or self.include_task_id:
            raise ValueError("a task range is only supported by the separate architecture without the task one-hot")
        n = self.num_tasks
        start, stop, _ = tasks.indices(n)
        copies = [self.body(x, slice(k * n + start, k * n + stop)) for k in range(self.copies)]
        return torch.stack(copies) if self.copies > 1 else copies[0].unsqueeze(0)


class TanhGaussianPolicy(nn.Module):
    """Per-task tanh-squashed Gaussian policies: obs (T, B, obs_dim) -> actions (T, B, A) in [-1, 1].

    `double_tanh` reproduces the original's multihead policy, whose Gaussian was centred on the already
    squashed tanh(mu): its samples were tanh(tanh(mu) + sigma * eps), with the log-probability of that
    distribution, while its deterministic action stayed tanh(mu)."""

    def __init__(self, arch: str, num_tasks: int, obs_dim: int, act_dim: int, hidden_sizes: list[int],
                 include_task_id: bool, double_tanh: bool = False) -> None:
        super().__init__()
        self.net = TaskNet(arch, num_tasks, obs_dim, hidden_sizes, 2 * act_dim, include_task_id=include_task_id)
        self.double_tanh = double_tanh

    def distribution(self, obs: Tensor, tasks: slice | None = None) -> tuple[Tensor, Tensor]:
        """Pre-tanh mean and log-std, each (T, B, A)."""
        mean, log_std = self.net(obs, tasks)[0].chunk(2, dim=-1)
        return mean, log_std.clamp(LOG_STD_MIN, LOG_STD_MAX)

    def representation(self, obs: Tensor) -> Tensor:
        """The last hidden layer, (T, B, H), where DnC's --regularize_representation compares policies."""
        return self.net.features(obs)

    def act(self, obs: Tensor, deterministic: bool = False, single_tanh: bool = False) -> tuple[Tensor, Tensor]:
        """(executed action, mean action tanh(mu)), each (T, B, A), without the log-probability that
        acting never needs (a quarter of the ops of a behaviour step). Draws the same noise as forward.
        `single_tanh` samples tanh(mu + sigma * eps) even with `double_tanh` (the original's Q-switch
        drew its candidates that way)."""
        mean, log_std = self.distribution(obs)
        mean_action = torch.tanh(mean)
        if deterministic:
            return mean_action, mean_action
        centre = mean_action if self.double_tanh and not single_tanh else mean
        return torch.tanh(centre + log_std.exp() * torch.randn_like(mean)), mean_action

    def forward(self, obs: Tensor, noise: Tensor | None = None, tasks: slice | None = None) -> tuple[Tensor, Tensor]:
        """The training sample: (action (T, B, A), log_prob (T, B)), reparameterised. `noise` (T, B, A):
        the standard normal draw, if the caller made it (default: drawn here). Acting uses `act`."""
        mean, log_std = self.distribution(obs, tasks)
        if noise is None:
            noise = torch.randn_like(mean)
        centre = torch.tanh(mean) if self.double_tanh else mean
        action = torch.tanh(centre + log_std.exp() * noise)
        return action, tanh_gaussian_log_prob(noise, log_std, action)


def tanh_gaussian_log_prob(noise: Tensor, log_std: Tensor, action: Tensor) -> Tensor:
    """log pi(action) of action = tanh(mu + sigma * noise), each (..., A) -> (...): the Gaussian density of
    the noise, corrected by tanh's Jacobian (clipped as garage's TanhNormal: log(1 - a^2 + 1e-6))."""
    gauss = (-0.5 * noise.pow(2) - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)
    return gauss - torch.log(1.0 - action.pow(2) + 1e-6).sum(-1)


class DoubleQ(nn.Module):
    """Twin per-task critics: (obs (T, B, O), act (T, B, A)) -> (2, T, B)."""

    def __init__(
        self,
        arch: str,
        num_tasks: int,
        obs_dim: int,
        act_dim: int,
        hidden_sizes: list[int],
        include_task_id: bool,
        layer_norm: bool,
    ) -> None:
        super().__init__()
        self.net = TaskNet(arch, num_tasks, obs_dim + act_dim, hidden_sizes, 1, 2, include_task_id, layer_norm,
                           "xavier_normal")

    def forward(self, obs: Tensor, act: Tensor, tasks: slice | None = None) -> Tensor:
        return self.net(torch.cat([obs, act], dim=-1), tasks).squeeze(-1)

    def q1(self, obs: Tensor, act: Tensor) -> Tensor:
        """forward(obs, act)[0], (T, B), computing Q1 only where the architecture allows it."""
        return self.net.first_copy(torch.cat([obs, act], dim=-1)).squeeze(-1)
