"""Your own networks behind the Q-switch: T plain `torch.nn.Module` policies and critics that this project
did not build, given the two methods `QSwitchMixture` calls, so the switch rule stays in one place.

`PolicyList.act` and `CriticList.q1` / `__call__` loop over the T modules in Python: a user's separate
modules cannot be batched for them. For speed, use this project's batched `TanhGaussianPolicy` / `DoubleQ`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class PolicyList:
    """T policies. Module j maps obs (N, O) to an action (N, A) in [-1, 1], or to a pair (sampled action,
    mean action) of that shape; a single action serves as both (a deterministic policy)."""

    double_tanh = False
    """Your modules squash as they like: the Q-switch never squashes their actions again on held steps."""

    def __init__(self, modules: Sequence[nn.Module]) -> None:
        if not modules:
            raise ValueError("PolicyList needs at least one policy module")
        self.modules = list(modules)

    def act(self, obs: Tensor, deterministic: bool = False, single_tanh: bool = True) -> tuple[Tensor, Tensor]:
        """obs (T_j, N, O), row j for policy j -> (sampled (T_j, N, A), mean (T_j, N, A)).

        `single_tanh` is part of the interface of the batched policy; your modules squash as they like."""
        if obs.shape[0] != len(self.modules):
            raise ValueError(f"obs has {obs.shape[0]} rows, expected one per policy ({len(self.modules)})")
        outputs = [module(rows) for module, rows in zip(self.modules, obs, strict=True)]
        if isinstance(outputs[0], tuple):
            sample, mean = torch.stack([out[0] for out in outputs]), torch.stack([out[1] for out in outputs])
        else:
            sample = mean = torch.stack(outputs)
        return (mean if deterministic else sample), mean


class CriticList:
    """T critics. Entry i is one module or a (Q1, Q2) pair of modules mapping (obs (N, O), act (N, A)) to
    Q (N,) or (N, 1). With one module per task, both "twins" are that module."""

    def __init__(self, critics: Sequence[nn.Module | tuple[nn.Module, nn.Module]]) -> None:
        if not critics:
            raise ValueError("CriticList needs at least one critic")
        self.pairs = [entry if isinstance(entry, tuple) else (entry, entry) for entry in critics]

    def _values(self, twin: int, obs: Tensor, act: Tensor) -> Tensor:
        if obs.shape[0] != len(self.pairs):
            raise ValueError(f"obs has {obs.shape[0]} rows, expected one per critic ({len(self.pairs)})")
        rows = zip(self.pairs, obs, act, strict=True)
        return torch.stack([pair[twin](o, a).reshape(o.shape[0]) for pair, o, a in rows])

    def q1(self, obs: Tensor, act: Tensor) -> Tensor:
        """obs (T, N, O), act (T, N, A), row i for task i's critic -> Q1 (T, N)."""
        return self._values(0, obs, act)

    def __call__(self, obs: Tensor, act: Tensor) -> Tensor:
        """obs (T, N, O), act (T, N, A) -> both twins (2, T, N)."""
        return torch.stack([self._values(0, obs, act), self._values(1, obs, act)])
