"""DECAF critics: task i's value is the softmax-weighted sum of every task's Q on task i's (s, a), checked
by a loop over tasks; task i's loss moves only its own Q and mixing network; the targets follow every Q."""

from __future__ import annotations

import copy

import pytest
import torch

from qmp.cli import ConfigError, parse_args
from qmp.learning.buffer import Batch
from qmp.learning.decaf import DECAFCritic
from qmp.learning.nets import TanhGaussianPolicy
from qmp.learning.sac import MultiTaskSAC, SACConfig

T, O, A, B = 3, 4, 2, 5


def make_critic() -> DECAFCritic:
    torch.manual_seed(0)
    return DECAFCritic(T, O, A, [8, 8], False)


def test_value_is_the_weighted_sum_of_every_tasks_q() -> None:
    critic = make_critic()
    obs, act = torch.randn(T, B, O), torch.rand(T, B, A) * 2 - 1
    expected = torch.zeros(2, T, B)
    with torch.no_grad():
        for i in range(T):
            # task i's (s, a) in every row: row k of the base critics is task k's Q, of the mixers task k's f
            rows_obs, rows_act = obs[i].expand(T, B, O), act[i].expand(T, B, A)
            q = critic.base(rows_obs, rows_act)  # (2, T_k, B)
            weights = torch.softmax(critic.mixer(torch.cat([rows_obs, rows_act], -1))[:, i], dim=-1)  # (2, B, T_k)
            for c in range(2):
                for b in range(B):
                    expected[c, i, b] = sum(weights[c, b, k] * q[c, k, b] for k in range(T))
        torch.testing.assert_close(critic(obs, act), expected)


def test_task_i_loss_moves_only_its_own_q_and_mixer() -> None:
    critic = make_critic()
    obs, act = torch.randn(T, B, O), torch.rand(T, B, A) * 2 - 1
    critic(obs, act)[:, 1].pow(2).mean().backward()  # task 1's loss alone
    for name, param in critic.named_parameters():
        rows = param.grad.flatten(1).abs().sum(1).view(2, T) > 0  # (copy, task)
        assert rows[:, 1].all() and not rows[:, [0, 2]].any(), name


def test_the_actor_gradient_does_not_pass_through_other_tasks_q() -> None:
    critic = make_critic()
    obs = torch.randn(T, B, O)
    act = (torch.rand(T, B, A) * 2 - 1).requires_grad_(True)
    critic(obs, act).sum().backward()
    full = act.grad.clone()
    act.grad = None
    with torch.no_grad():
        every = critic.base(obs.reshape(1, -1, O).expand(T, -1, O), act.reshape(1, -1, A).expand(T, -1, A))
    every = every.view(2, T, T, B).permute(0, 2, 3, 1)  # (2, T_i, B, T_k), constants
    own = critic.base(obs, act)
    values = torch.where(torch.eye(T, dtype=torch.bool).view(1, T, 1, T), own.unsqueeze(-1), every)
    (critic.weights(obs, act) * values).sum().backward()
    torch.testing.assert_close(act.grad, full)


def test_targets_follow_every_tasks_q() -> None:
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("separate", T, O, A, [8, 8], False)
    agent = MultiTaskSAC(policy, make_critic(), T, A, SACConfig(lr=1e-2, tau=0.5), torch.device("cpu"))
    before = copy.deepcopy(agent.critic_target.state_dict())
    g = torch.Generator().manual_seed(1)
    agent.update(Batch(torch.randn(T, B, O, generator=g), torch.rand(T, B, A, generator=g) * 2 - 1,
                       torch.randn(T, B, generator=g), torch.randn(T, B, O, generator=g), torch.zeros(T, B)))
    for name, value in agent.critic_target.state_dict().items():
        moved = (value != before[name]).flatten(1).any(1)
        assert moved.all(), name  # every task's Q inside the targets is Polyak-averaged


def test_flags() -> None:
    assert parse_args(["decaf", "--env=JacoReachMT5-v1", "--distillation_period", "5"]).distillation_period == 5
    with pytest.raises(ConfigError, match="decaf does not take --kl_coeff"):
        parse_args(["decaf", "--env=JacoReachMT5-v1", "--kl_coeff", "0.1"])
    with pytest.raises(ConfigError, match="decaf needs --Q_architecture in"):
        parse_args(["decaf", "--env=JacoReachMT5-v1", "--Q_architecture", "multihead"])


def test_include_task_id_reaches_every_critic_and_mixer() -> None:
    """decaf --include_task_id true: the critics read the task one-hot as the policies do (it was dropped)."""
    from qmp.build import build
    from qmp.environments import make_spec
    from qmp.settings import Settings

    cfg = parse_args(["decaf", "--env=ToyReach-v0", "--include_task_id", "true", "--num_evaluation_episodes", "0"])
    spec = make_spec(cfg.env)
    parts = build(Settings.from_config(cfg, spec.num_tasks), spec, torch.device("cpu"))
    try:
        critic, t = parts.agent.critic, spec.num_tasks
        obs_dim, act_dim = parts.env.obs_dim, parts.env.act_dim
        obs, act = torch.randn(t, B, obs_dim), torch.rand(t, B, act_dim) * 2 - 1
        for net in (critic.base.net, critic.mixer):
            first = net.body.hidden[0]
            assert first.weight.shape[1] == obs_dim + act_dim + t
            with torch.no_grad():
                before = critic(obs, act)
                first.weight[:, obs_dim + act_dim:] += 1.0  # the rows that read the one-hot
                assert not torch.allclose(critic(obs, act), before)
    finally:
        parts.close()
