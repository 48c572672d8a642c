"""The paper's ablations of the Q-switch, each against a plain loop over tasks and candidates: the softmax
switch, QMP-Uniform, QMP-Domain-Knowledge, the entropy term, and H-step holds for every rule."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qmp.learning.policies import QSwitchMixture, sample_rows
from tests.test_qswitch import A, O, T, brute_force, make_nets

pytestmark = pytest.mark.usefixtures("one_thread")


def loop_inverse_cdf(probs: np.ndarray, u: np.ndarray) -> list[int]:
    """Row by row: the first column whose running sum exceeds u_i times the row's total."""
    picks = []
    for i in range(probs.shape[0]):
        target, running = u[i] * probs[i].sum(), 0.0
        pick = max(k for k in range(probs.shape[1]) if probs[i, k] > 0)
        for k in range(probs.shape[1]):
            running += probs[i, k]
            if running > target:
                pick = k
                break
        picks.append(pick)
    return picks


def test_sample_rows_equals_the_loop_and_never_picks_a_zero_column() -> None:
    gen = torch.Generator().manual_seed(0)
    probs = torch.rand(50, 6, generator=gen) * (torch.rand(50, 6, generator=gen) > 0.4)
    probs[:, 2] = 0.0
    probs[torch.arange(50), torch.randint(6, (50,), generator=gen)] += 0.1  # every row has mass
    u = torch.rand(50, generator=gen)
    u[0] = 1.0 - 2**-24  # rounds u * total up to the total
    picks = sample_rows(probs, u)
    assert picks.tolist() == loop_inverse_cdf(probs.double().numpy(), u.double().numpy())
    assert bool((probs[torch.arange(50), picks] > 0).all())


def draws_after_the_candidates(seed: int) -> torch.Tensor:
    """The uniforms act() draws for the rule, after the candidates' noise (T x T x A normals)."""
    torch.manual_seed(seed)
    torch.randn(T, T, A)
    return torch.rand(T)


@pytest.mark.parametrize("temperature", [0.05, 1.0, 20.0])
def test_softmax_switch_draws_from_the_softmax_of_the_scores(temperature: float) -> None:
    policy, critic = make_nets()
    obs = torch.randn(T, O)
    mixture = QSwitchMixture(policy, critic, T, rule="softmax", temperature=temperature)
    scores = brute_force(policy, critic, obs)
    probs = np.zeros((T, T))
    for i in range(T):  # p_ij = exp(s_ij / tau) / sum_k exp(s_ik / tau)
        weights = [math.exp((scores[i, j] - scores[i].max()) / temperature) for j in range(T)]
        probs[i] = [w / sum(weights) for w in weights]
    picks = []
    for seed in range(25):  # 100 draws, each equal to the loop's
        u = draws_after_the_candidates(seed)
        torch.manual_seed(seed)
        _, choice = mixture.act(obs)
        assert choice.tolist() == loop_inverse_cdf(probs, u.double().numpy())
        picks.append(choice.tolist())
    if temperature == 20.0:  # nearly uniform: every policy gets picked
        assert {j for row in picks for j in row} == set(range(T))
    _, greedy = mixture.act(obs, deterministic=True)  # the mixture evaluation takes the most probable policy
    assert greedy.tolist() == scores.argmax(1).tolist()


DOMAIN = torch.tensor([[1.0, 1.0, 0.0, 0.0], [0.0, 2.0, 0.0, 1.0], [0.0, 0.0, 1.0, 0.0], [1.0, 1.0, 1.0, 1.0]])


@pytest.mark.parametrize(("rule", "mixture"), [("uniform", None), ("domain", DOMAIN)])
def test_uniform_and_domain_mixtures_draw_row_i_without_the_critic(rule: str, mixture: torch.Tensor | None) -> None:
    policy, critic = make_nets()
    rows = torch.ones(T, T) if mixture is None else mixture
    expected = (rows / rows.sum(1, keepdim=True)).numpy()
    switch = QSwitchMixture(policy, critic, T, rule=rule, mixture=mixture)
    obs = torch.randn(T, O)
    for seed in range(5):
        u = draws_after_the_candidates(seed)
        torch.manual_seed(seed)
        sample = policy.act(obs.unsqueeze(0).expand(T, T, O), single_tanh=True)[0]
        torch.manual_seed(seed)
        action, choice = switch.act(obs)
        assert choice.tolist() == loop_inverse_cdf(expected, u.double().numpy())
        for i in range(T):  # task i executes the chosen policy's sample at s_i
            torch.testing.assert_close(action[i], sample[choice[i], i])
    counts = np.zeros((T, T))
    for _ in range(600):
        counts[np.arange(T), switch.act(torch.randn(T, O))[1].numpy()] += 1
    assert not counts[expected == 0].any()
    np.testing.assert_allclose(counts / 600, expected, atol=0.08)


def loop_log_prob(policy: torch.nn.Module, obs: torch.Tensor, i: int, j: int, noise: torch.Tensor | None) -> tuple:
    """Policy j at s_i, alone: (its action, log pi_j(action | s_i)) by torch.distributions, noise None = the mean."""
    rows = torch.zeros(T, 1, O)
    rows[j, 0] = obs[i]
    mu, log_std = policy.distribution(rows)
    mu, std = mu[j, 0], log_std[j, 0].exp()
    pre_tanh = mu if noise is None else mu + std * noise
    action = torch.tanh(pre_tanh)
    gauss = torch.distributions.Normal(mu, std).log_prob(pre_tanh).sum()
    return action, (gauss - torch.log(1 - action.pow(2) + 1e-6).sum()).item()


@pytest.mark.parametrize("score_action", ["mean", "sample"])
def test_entropy_term_equals_the_loop(score_action: str) -> None:
    """score_ij = Q1_i(s_i, a_ji) - alpha_i log pi_j(a_ji | s_i), with each task's own temperature."""
    policy, critic = make_nets()
    log_alpha = torch.log(torch.tensor([0.5, 1.0, 2.0, 0.1]))
    switch = QSwitchMixture(policy, critic, T, score_action=score_action, entropy=True, log_alpha=log_alpha)
    obs = torch.randn(T, O)
    torch.manual_seed(3)
    noise = torch.randn(T, T, A)  # what act() draws for the candidates, (T_j, T_i, A)
    torch.manual_seed(3)
    with torch.no_grad():
        sample, mean, log_prob, _ = switch._candidates(obs.unsqueeze(0).expand(T, T, O), deterministic=False)
        batched = switch.scores(obs, mean if score_action == "mean" else sample, log_prob).numpy()
        expected = np.zeros((T, T))
        for i in range(T):
            for j in range(T):
                action, logp = loop_log_prob(policy, obs, i, j, None if score_action == "mean" else noise[j, i])
                q_obs, q_act = torch.zeros(T, 1, O), torch.zeros(T, 1, A)
                q_obs[i, 0], q_act[i, 0] = obs[i], action
                expected[i, j] = critic(q_obs, q_act)[0, i, 0].item() - log_alpha[i].exp().item() * logp
    np.testing.assert_allclose(batched, expected, rtol=1e-4, atol=1e-4)
    torch.manual_seed(3)
    _, choice = switch.act(obs)
    assert choice.tolist() == expected.argmax(1).tolist()
    torch.manual_seed(3)
    plain_sample, _ = policy.act(obs.unsqueeze(0).expand(T, T, O), single_tanh=True)
    torch.testing.assert_close(sample, plain_sample)  # the same candidates as without the entropy term


@pytest.mark.parametrize("rule", ["argmax", "softmax", "uniform", "domain"])
def test_every_rule_holds_its_choice_for_h_steps(rule: str) -> None:
    policy, critic = make_nets()
    switch = QSwitchMixture(policy, critic, T, sampling_freq=4, rule=rule, mixture=DOMAIN if rule == "domain" else None)
    rigged = torch.tensor([3, 1, 2, 0])
    for _ in range(20):
        switch.choice = rigged.clone()
        kept = switch.act(torch.randn(T, O), np.array([1, 2, 3, 5]))[1]  # no task at a multiple of 4
        assert kept.tolist() == rigged.tolist()
        mixed = switch.act(torch.randn(T, O), np.array([1, 8, 2, 3]))[1]  # only task 1 re-selects
        assert mixed[[0, 2, 3]].tolist() == rigged[[0, 2, 3]].tolist()


def test_bad_rules_are_rejected() -> None:
    policy, critic = make_nets()
    with pytest.raises(ValueError, match="valid: argmax, softmax, uniform, domain"):
        QSwitchMixture(policy, critic, T, rule="greedy")
    with pytest.raises(ValueError, match="needs a 4 x 4 mixture"):
        QSwitchMixture(policy, critic, T, rule="domain")
    with pytest.raises(ValueError, match="positive rows"):
        QSwitchMixture(policy, critic, T, rule="domain", mixture=torch.zeros(T, T))
    with pytest.raises(ValueError, match="temperatures"):
        QSwitchMixture(policy, critic, T, entropy=True)
