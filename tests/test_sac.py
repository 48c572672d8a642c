"""The one SAC update: TD target, task separation, temperatures, targets, KL penalty, state round trip."""

from __future__ import annotations

import copy

import pytest
import torch

from qmp.learning.buffer import Batch
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.learning.sac import KL_STATE_TYPES, MultiTaskSAC, SACConfig, kl_matrix, kl_states_per_task, td_target

T, O, A, B = 3, 4, 2, 16


def make_agent(arch: str = "separate", **cfg: object) -> MultiTaskSAC:
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(arch, T, O, A, [16, 16], False)
    critic = DoubleQ(arch, T, O, A, [16, 16], False, False)
    return MultiTaskSAC(policy, critic, T, A, SACConfig(lr=1e-2, **cfg), torch.device("cpu"))


def make_batch(seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch(
        torch.randn(T, B, O, generator=g), torch.rand(T, B, A, generator=g) * 2 - 1, torch.randn(T, B, generator=g),
        torch.randn(T, B, O, generator=g), (torch.rand(T, B, generator=g) < 0.2).float(),
    )


def test_td_target_bootstraps_unless_terminated() -> None:
    rew = torch.tensor([1.0, 1.0])
    terminated = torch.tensor([0.0, 1.0])  # row 0 may be a time-limit truncation: it still bootstraps
    target = td_target(rew, terminated, torch.tensor([10.0, 10.0]), torch.tensor([-1.0, -1.0]), torch.tensor(0.5),
                       0.9, 2.0)
    torch.testing.assert_close(target, torch.tensor([2.0 + 0.9 * (10.0 + 0.5), 2.0]))


def test_initial_temperature_and_target_entropy() -> None:
    agent = make_agent()
    assert torch.all(agent.log_alpha.exp() == 1.0) and agent.log_alpha.shape == (T,)
    assert agent.target_entropy == -A
    assert make_agent(shared_alpha=True).log_alpha.shape == (1,)
    assert make_agent(target_entropy=-0.5).target_entropy == -0.5


def test_update_changes_every_task_and_returns_per_task_metrics() -> None:
    agent = make_agent()
    before = copy.deepcopy(agent.state_dict())
    metrics = agent.update(make_batch())
    for key in ("qf1_loss", "qf2_loss", "policy_loss", "alpha_loss", "alpha", "entropy", "q1", "q_target"):
        assert metrics[key].shape == (T,) and torch.isfinite(metrics[key]).all()
    for name, value in agent.policy.state_dict().items():
        changed = (value != before["policy"][name]).flatten(1).any(1)
        assert changed.all(), name
    assert torch.all(agent.log_alpha != 0)


def test_separated_tasks_do_not_influence_each_other() -> None:
    """Changing task 1's data leaves tasks 0 and 2 bit-identical after an update (Adam included)."""
    agent_a, agent_b = make_agent(), make_agent()
    batch_a, batch_b = make_batch(0), make_batch(0)
    other = make_batch(1)
    for field in ("obs", "act", "rew", "next_obs", "terminated"):
        getattr(batch_b, field)[1] = getattr(other, field)[1]
    for _ in range(3):
        torch.manual_seed(5)
        agent_a.update(batch_a)
        torch.manual_seed(5)
        agent_b.update(batch_b)
    for module in ("policy", "critic", "critic_target"):
        for name, a in getattr(agent_a, module).state_dict().items():
            b = getattr(agent_b, module).state_dict()[name]
            rows = (a != b).flatten(1).any(1)
            if len(rows) == 2 * T:  # twin critics: copies are stacked before tasks
                rows = rows.view(2, T).any(0)
            assert rows.tolist() == [False, True, False], (module, name)
    assert agent_a.log_alpha[0] == agent_b.log_alpha[0] and agent_a.log_alpha[1] != agent_b.log_alpha[1]


def test_polyak_update_of_the_targets() -> None:
    agent = make_agent(tau=0.25)
    old_target = copy.deepcopy(agent.critic_target.state_dict())
    agent.update(make_batch())
    for name, new in agent.critic.state_dict().items():
        torch.testing.assert_close(agent.critic_target.state_dict()[name], 0.75 * old_target[name] + 0.25 * new)


def test_actor_loss_sends_no_gradient_into_the_critic() -> None:
    agent = make_agent()
    calls = []
    for param in agent.critic.parameters():
        param.register_hook(lambda grad: calls.append(1))
    agent.update(make_batch())
    assert len(calls) == len(list(agent.critic.parameters()))  # the critic loss alone reached them
    assert all(p.requires_grad for p in agent.critic.parameters())


@pytest.mark.parametrize("form", ["log", "exp"])
def test_temperature_falls_when_entropy_exceeds_the_target(form: str) -> None:
    agent = make_agent(alpha_loss=form, target_entropy=-50.0)  # far below the initial entropy
    agent.update(make_batch())
    assert torch.all(agent.log_alpha < 0)


def test_weights_drop_rows() -> None:
    """A weighted update with zero weights equals an update on the kept rows alone (critic loss)."""
    agent_a, agent_b = make_agent(), make_agent()
    batch = make_batch()
    weights = torch.ones(T, B)
    weights[:, B // 2 :] = 0
    half = Batch(*(getattr(batch, f)[:, : B // 2] for f in ("obs", "act", "rew", "next_obs", "terminated")))
    torch.manual_seed(3)
    m_a = agent_a.update(batch, weights)
    torch.manual_seed(3)
    m_b = agent_b.update(half)
    assert torch.allclose(m_a["q1"], m_b["q1"])
    assert not torch.allclose(m_a["qf1_loss"], agent_a.update(batch)["qf1_loss"])


def test_kl_matrix_layout_and_penalty() -> None:
    beta = kl_matrix([float(k) for k in range(T * T)], T, torch.device("cpu"))
    assert beta[1, 0] == 1 * T + 0 and beta[0, 2] == 2 and torch.all(beta.diagonal() == 0)
    assert kl_matrix([0.0], T, torch.device("cpu")) is None
    agent = make_agent(kl_coeff=[1.0])
    states = torch.randn(T, 5, O)
    penalty = agent._kl_penalty(states)
    assert penalty.shape == (T,) and torch.all(penalty > 0)
    with torch.no_grad():  # identical policies: no divergence
        for layer in [*agent.policy.net.body.hidden, agent.policy.net.body.out]:
            layer.weight[:] = layer.weight[0]
            layer.bias[:] = layer.bias[0]
    torch.testing.assert_close(agent._kl_penalty(states), torch.zeros(T), atol=1e-6, rtol=0)
    metrics = agent.update(make_batch(), kl_obs=states)
    assert "kl_penalty" in metrics


@pytest.mark.parametrize("kl_states", KL_STATE_TYPES)
def test_kl_penalty_scores_each_pair_on_the_original_states(kl_states: str) -> None:
    """--sampling_type: pair (i, j) is scored on every buffer's states (all), buffer j's (j), or buffer i's
    and buffer j's (i+j); checked against a loop over pairs that builds each pair's state set."""
    coeff = [0.1 * (k + 1) for k in range(T * T)]
    agent = make_agent(kl_coeff=coeff, kl_states=kl_states)
    n = kl_states_per_task(kl_states, 12, T)
    assert n == {"all": 12 // T, "j": 12, "i+j": 6}[kl_states]
    states = torch.randn(T, n, O)
    beta = kl_matrix(coeff, T, torch.device("cpu"))
    expected = torch.zeros(T)
    with torch.no_grad():
        for i in range(T):
            for j in range(T):
                sources = {"all": list(range(T)), "j": [j], "i+j": [i, j]}[kl_states]
                pair_states = torch.cat([states[k] for k in sources])
                mean, log_std = agent.policy.distribution(pair_states.expand(T, *pair_states.shape))
                var_i, var_j = (2 * log_std[i]).exp(), (2 * log_std[j]).exp()
                kl = log_std[i] - log_std[j] + (var_j + (mean[j] - mean[i]) ** 2) / (2 * var_i) - 0.5
                expected[i] += beta[i, j] * kl.mean()
        torch.testing.assert_close(agent._kl_penalty(states), expected, rtol=1e-5, atol=1e-6)
    assert kl_states == "all" or not torch.allclose(expected, make_agent(kl_coeff=coeff)._kl_penalty(states))


def test_state_dict_round_trip_continues_identically() -> None:
    agent = make_agent()
    agent.update(make_batch(0))
    clone = make_agent()
    clone.load_state_dict(copy.deepcopy(agent.state_dict()))
    torch.manual_seed(9)
    agent.update(make_batch(1))
    torch.manual_seed(9)
    clone.update(make_batch(1))
    for name, value in agent.policy.state_dict().items():
        assert torch.equal(value, clone.policy.state_dict()[name])
    assert torch.equal(agent.log_alpha, clone.log_alpha)


def test_multihead_and_shared_architectures_update() -> None:
    for arch in ("multihead", "shared"):
        agent = make_agent(arch)
        metrics = agent.update(make_batch())
        assert torch.isfinite(metrics["policy_loss"]).all()
