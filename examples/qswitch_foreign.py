"""The Q-switch around plain torch.nn.Module policies and critics this project did not build (yours would be
trained). Run from the repository root: python -m examples.qswitch_foreign (or after pip install ., as a script)."""

import torch
from torch import nn

from qmp import CriticList, PolicyList, QSwitchMixture

OBS, ACT, TASKS = 4, 2, 3


class Actor(nn.Module):  # any policy: obs (N, O) -> (sampled action, mean action), each (N, A) in [-1, 1]
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(OBS, 32), nn.ReLU(), nn.Linear(32, ACT))
        self.log_std = nn.Parameter(-torch.ones(ACT))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu = self.body(obs)
        return torch.tanh(mu + self.log_std.exp() * torch.randn_like(mu)), torch.tanh(mu)


class Critic(nn.Module):  # any critic: (obs (N, O), act (N, A)) -> Q (N, 1)
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(OBS + ACT, 32), nn.ReLU(), nn.Linear(32, 1))

    def forward(self, obs: torch.Tensor, act: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([obs, act], -1))


if __name__ == "__main__":
    torch.manual_seed(0)
    policies, critics = [Actor() for _ in range(TASKS)], [Critic() for _ in range(TASKS)]
    switch = QSwitchMixture(PolicyList(policies), CriticList(critics), TASKS)
    obs = torch.randn(TASKS, OBS)  # the current state of each task, one row per task
    actions, chosen = switch.act(obs)  # (T, A) to execute, and which policy each task used (T,)
    print("actions", actions.numpy().round(3).tolist(), "chosen policies", chosen.tolist())
