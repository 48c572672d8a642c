"""MCAL: one step updates every critic once and the shared actor and temperature T times, each actor step
scoring head k's actions on buffer k's states with critic k (checked against a loop over tasks); QMP-MCAL's
--min_task_probs keeps the own policy at least that often; the flags act only where they apply."""

from __future__ import annotations

import copy

import pytest
import torch

from qmp.cli import ConfigError, parse_args
from qmp.learning.buffer import Batch
from qmp.learning.mcal import MinOwnProbability, MultiCriticActor
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.learning.policies import QSwitchMixture
from qmp.learning.sac import SACConfig

T, O, A, B, N = 3, 4, 2, 8, 5


def make_agent() -> MultiCriticActor:
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("multihead", T, O, A, [16, 16], False)
    critic = DoubleQ("separate", T, O, A, [16, 16], False, False)
    return MultiCriticActor(policy, critic, T, A, SACConfig(lr=1e-2, shared_alpha=True), torch.device("cpu"))


def test_update_matches_a_loop_over_tasks_and_steps() -> None:
    g = torch.Generator().manual_seed(1)
    batch = Batch(torch.randn(T, B, O, generator=g), torch.rand(T, B, A, generator=g) * 2 - 1,
                  torch.randn(T, B, generator=g), torch.randn(T, B, O, generator=g), torch.zeros(T, B))
    actor_states = torch.randn(T, T, N, O, generator=g)  # T actor steps, N states of every buffer
    agent, reference = make_agent(), make_agent()

    torch.manual_seed(5)
    agent.update(copy.deepcopy(batch), actor_states=actor_states)

    torch.manual_seed(5)
    alpha = reference.log_alpha.detach().exp().unsqueeze(-1)
    reference._critic_step(batch, None, alpha, torch.randn_like(batch.act), [None])  # the plain twin-critic step
    for states in actor_states:
        noise = torch.randn(T, N, A)
        act, logp = reference.policy(states, noise=noise)  # row k: head k on buffer k's states
        reference.critic.requires_grad_(False)
        alpha = reference.log_alpha.detach().exp()
        loss = torch.zeros(())
        for k in range(T):  # task k's states, head k's action, task k's critic
            q = torch.minimum(reference.critic(states, act)[0, k], reference.critic(states, act)[1, k])
            loss = loss + (alpha * logp[k] - q).mean()
        reference.policy_opt.zero_grad()
        loss.backward()
        reference.policy_opt.step()
        reference.critic.requires_grad_(True)
        alpha_loss = sum((-reference.log_alpha * (logp[k].detach() + reference.target_entropy)).mean()
                         for k in range(T))
        reference.alpha_opt.zero_grad()
        alpha_loss.backward()
        reference.alpha_opt.step()
    reference._polyak()

    for module in ("policy", "critic", "critic_target"):
        for name, value in getattr(reference, module).state_dict().items():
            torch.testing.assert_close(getattr(agent, module).state_dict()[name], value, msg=f"{module}.{name}")
    torch.testing.assert_close(agent.log_alpha, reference.log_alpha)
    steps = {name: next(iter(opt.state.values()))["step"].item() for name, opt in
             (("critic", agent.critic_opt), ("policy", agent.policy_opt), ("alpha", agent.alpha_opt))}
    assert steps == {"critic": 1, "policy": T, "alpha": T}  # each critic once, the actor and temperature T times


def rigged_mixture(freq: int = 1) -> QSwitchMixture:
    """A Q-switch whose critic always prefers the next task's policy: never the own one."""
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("multihead", T, O, A, [8], False)
    critic = DoubleQ("separate", T, O, A, [8], False, False)
    mixture = QSwitchMixture(policy, critic, T, sampling_freq=freq)
    prefer_next = torch.eye(T).roll(1, dims=1)  # row i: 1 at (i + 1) % T
    mixture.scores = lambda obs, candidates, log_prob=None: prefer_next  # type: ignore[method-assign]
    return mixture


def test_min_task_probs_keeps_the_own_policy_that_often() -> None:
    behaviour = MinOwnProbability(rigged_mixture(), [0.0, 0.3, 1.0])
    own = torch.zeros(T)
    steps = 3000
    for _ in range(steps):
        _, choice = behaviour.act(torch.randn(T, O))
        forced = choice == torch.arange(T)
        assert torch.all(forced | (choice == (torch.arange(T) + 1) % T))  # own, or the Q-switch's choice
        own += forced.float()
    frac = own / steps
    assert frac[0] == 0.0 and frac[2] == 1.0 and abs(frac[1].item() - 0.3) < 0.04
    _, choice = behaviour.act(torch.randn(T, O), deterministic=True)  # evaluation: the Q-switch alone
    assert torch.equal(choice, (torch.arange(T) + 1) % T)


def test_a_forced_choice_is_held_until_the_next_reselection() -> None:
    import numpy as np

    behaviour = MinOwnProbability(rigged_mixture(freq=2), [1.0])
    _, first = behaviour.act(torch.randn(T, O), np.zeros(T, dtype=np.int64))
    assert torch.equal(first, torch.arange(T))
    behaviour.probs[:] = 0.0
    _, held = behaviour.act(torch.randn(T, O), np.ones(T, dtype=np.int64))  # no re-selection at step 1
    assert torch.equal(held, torch.arange(T))
    _, next_choice = behaviour.act(torch.randn(T, O), np.full(T, 2, dtype=np.int64))
    assert torch.equal(next_choice, (torch.arange(T) + 1) % T)


def parse(*argv: str):  # noqa: ANN201
    return parse_args(list(argv))


def test_flags() -> None:
    cfg = parse("qmp_mcal", "--env=JacoReachMT5-v1", "--policy_architecture", "multihead", "--min_task_probs", "0.2")
    assert cfg.min_task_probs == [0.2]
    assert parse("mcal", "--env=JacoReachMT5-v1", "--policy_architecture", "multihead", "--sampling_type",
                 "j").sampling_type == "j"  # it sizes the actor's all-task batch
    for argv, message in [
        (["mcal", "--env=JacoReachMT5-v1"], "mcal needs --policy_architecture in {multihead}"),
        (["mcal", "--env=JacoReachMT5-v1", "--policy_architecture", "multihead", "--Q_architecture", "multihead"],
         "mcal needs --Q_architecture in {separate}"),
        (["mcal", "--env=JacoReachMT5-v1", "--policy_architecture", "multihead", "--min_task_probs", "0.2"],
         "--min_task_probs does nothing for mcal"),
        (["qmp_mcal", "--env=JacoReachMT5-v1", "--policy_architecture", "multihead", "--min_task_probs", "1.5"],
         "--min_task_probs takes 1 or n_policies = 5 probabilities in"),
    ]:
        with pytest.raises(ConfigError, match=message.replace("{", r"\{").replace("}", r"\}")):
            parse(*argv)
