"""The Q-switch around networks this project did not build (qmp.PolicyList / qmp.CriticList)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
from torch import nn

from qmp import CriticList, PolicyList, QSwitchMixture

ROOT = Path(__file__).resolve().parents[1]
T, OBS, ACT = 4, 3, 2


class Fixed(nn.Module):
    """A policy that proposes the same action in every state: (sampled = action + 0.5, mean = action)."""

    def __init__(self, action: torch.Tensor) -> None:
        super().__init__()
        self.action = action

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean = self.action.expand(obs.shape[0], ACT)
        return mean + 0.5, mean


class Distance(nn.Module):
    """Q(s, a) = -|a - target|^2 - offset, shape (N, 1)."""

    def __init__(self, target: torch.Tensor, offset: float = 0.0) -> None:
        super().__init__()
        self.target, self.offset = target, offset

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return -((act - self.target) ** 2).sum(-1, keepdim=True) - self.offset


def brute_force(actions: torch.Tensor, critics: list, obs: torch.Tensor) -> list[int]:
    """For each task i: the first j that maximises critic i's value of policy j's mean action."""
    chosen = []
    for i in range(T):
        scores = [float(critics[i](obs[i : i + 1], actions[j : j + 1]).reshape(())) for j in range(T)]
        chosen.append(max(range(T), key=lambda j, s=scores: (s[j], -j)))
    return chosen


@pytest.mark.parametrize("seed", range(5))
def test_each_task_executes_the_sample_of_the_policy_its_own_critic_scores_best(seed: int) -> None:
    gen = torch.Generator().manual_seed(seed)
    actions = torch.rand(T, ACT, generator=gen) * 2 - 1
    targets = torch.rand(T, ACT, generator=gen) * 2 - 1
    critics = [Distance(t) for t in targets]
    switch = QSwitchMixture(PolicyList([Fixed(a) for a in actions]), CriticList(critics), T)
    obs = torch.randn(T, OBS, generator=gen)
    executed, chosen = switch.act(obs)
    expected = brute_force(actions, critics, obs)
    assert chosen.tolist() == expected
    torch.testing.assert_close(executed, actions[expected] + 0.5)  # the winner's sampled action is executed
    executed, chosen = switch.act(obs, deterministic=True)
    torch.testing.assert_close(executed, actions[expected])


def test_twin_critics_are_scored_as_the_batched_ones_are() -> None:
    """score='min' takes the lower twin: a pessimistic second twin changes the choice."""
    actions = torch.tensor([[0.0, 0.0], [0.5, 0.5], [-0.5, 0.5], [0.8, -0.8]])
    near0 = Distance(torch.zeros(ACT))
    pairs = [(near0, Distance(torch.tensor([0.9, -0.9]), offset=-10.0)) for _ in range(T)]  # q2 prefers policy 3
    pairs[0] = (near0, Distance(torch.zeros(ACT), offset=5.0))  # task 0's q2 agrees with q1, lower
    policies = PolicyList([Fixed(a) for a in actions])
    obs = torch.zeros(T, OBS)
    assert QSwitchMixture(policies, CriticList(pairs), T, score="q1").act(obs)[1].tolist() == [0, 0, 0, 0]
    assert QSwitchMixture(policies, CriticList(pairs), T, score="min").act(obs)[1].tolist() == [0, 0, 0, 0]
    assert QSwitchMixture(policies, CriticList(pairs), T, score="mean").act(obs)[1].tolist() == [0, 3, 3, 3]


def test_a_policy_that_returns_one_tensor_is_deterministic_and_shapes_are_checked() -> None:
    modules = [nn.Sequential(nn.Linear(OBS, ACT), nn.Tanh()) for _ in range(T)]
    sample, mean = PolicyList(modules).act(torch.randn(T, 5, OBS))
    assert sample.shape == (T, 5, ACT) and torch.equal(sample, mean)
    with pytest.raises(ValueError, match="obs has 3 rows, expected one per policy \\(4\\)"):
        PolicyList(modules).act(torch.randn(3, 5, OBS))
    with pytest.raises(ValueError, match="at least one"):
        CriticList([])
    with pytest.raises(ValueError, match="entropy term needs the batched TanhGaussianPolicy"):
        QSwitchMixture(PolicyList(modules), CriticList([Distance(torch.zeros(ACT))] * T), T, entropy=True,
                       log_alpha=torch.zeros(T))


def test_the_example_runs_and_stays_under_40_lines() -> None:
    example = ROOT / "examples" / "qswitch_foreign.py"
    assert len(example.read_text().splitlines()) < 40
    done = subprocess.run([sys.executable, "-m", "examples.qswitch_foreign"], cwd=ROOT, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "chosen policies [" in done.stdout
