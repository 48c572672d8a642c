"""The Q-switch equals a brute-force double loop, picks a rigged policy, and honours its options."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.learning.policies import OwnPolicy, QSwitchMixture

T, O, A = 4, 3, 2


def make_nets(seed: int = 0) -> tuple[TanhGaussianPolicy, DoubleQ]:
    torch.manual_seed(seed)
    return TanhGaussianPolicy("separate", T, O, A, [16], False), DoubleQ("separate", T, O, A, [16], False, False)


def brute_force(policy: TanhGaussianPolicy, critic: DoubleQ, obs: torch.Tensor) -> np.ndarray:
    """score[i, j] = Q1_i(s_i, tanh(mu_j(s_i))), one network call per (i, j) pair."""
    scores = np.zeros((T, T))
    with torch.no_grad():
        for i in range(T):
            for j in range(T):
                rows = torch.zeros(T, 1, O)
                rows[j, 0] = obs[i]
                mean_action = policy.act(rows, deterministic=True)[0][j, 0]
                q_in_obs = torch.zeros(T, 1, O)
                q_in_act = torch.zeros(T, 1, A)
                q_in_obs[i, 0], q_in_act[i, 0] = obs[i], mean_action
                scores[i, j] = critic(q_in_obs, q_in_act)[0, i, 0].item()
    return scores


def test_batched_scores_equal_the_double_loop() -> None:
    policy, critic = make_nets()
    mixture = QSwitchMixture(policy, critic, T)
    obs = torch.randn(T, O)
    with torch.no_grad():
        means = policy.act(obs.unsqueeze(0).expand(T, T, O), deterministic=True)[0]
        batched = mixture.scores(obs, means).numpy()
    np.testing.assert_allclose(batched, brute_force(policy, critic, obs), rtol=1e-5, atol=1e-6)
    _, choice = mixture.act(obs)
    np.testing.assert_array_equal(choice.numpy(), brute_force(policy, critic, obs).argmax(1))


def test_picks_a_rigged_policy_and_executes_its_sample() -> None:
    """Critics that reward action ~ +1 make every task choose the policy rigged to output +1."""
    policy, critic = make_nets()
    with torch.no_grad():
        for layer in critic.net.body.hidden:
            layer.weight.zero_()
            layer.bias.fill_(1.0)  # hidden units = 1 whatever the input ...
        critic.net.body.hidden[0].weight[:, O:, :] = 1.0  # ... plus the sum of the action
        critic.net.body.out.weight.fill_(1.0)
        out = policy.net.body.out
        out.weight[2].zero_()
        out.bias[2, 0, :A] = 5.0  # policy 2: mean action tanh(5) ~ 1
        out.bias[2, 0, A:] = -20.0  # and almost no noise
    mixture = QSwitchMixture(policy, critic, T)
    action, choice = mixture.act(torch.randn(T, O))
    assert choice.tolist() == [2, 2, 2, 2]
    torch.testing.assert_close(action, torch.full((T, A), float(np.tanh(5.0))), atol=1e-4, rtol=0)


def test_executes_the_winners_sample_not_its_mean() -> None:
    policy, critic = make_nets()
    mixture = QSwitchMixture(policy, critic, T)
    obs = torch.randn(T, O)
    torch.manual_seed(1)
    sampled, choice = mixture.act(obs)
    torch.manual_seed(1)
    proposals = obs.unsqueeze(0).expand(T, T, O)
    sample, _ = policy(proposals)  # the training sample: the same noise draw as acting
    mean = policy.act(proposals, deterministic=True)[0]
    expected = sample.transpose(0, 1)[torch.arange(T), choice]
    torch.testing.assert_close(sampled, expected)
    assert not torch.allclose(sampled, mean.transpose(0, 1)[torch.arange(T), choice])
    deterministic, det_choice = mixture.act(obs, deterministic=True)
    torch.testing.assert_close(deterministic, mean.transpose(0, 1)[torch.arange(T), det_choice])


@pytest.mark.parametrize("score", ["q1", "min", "mean"])
def test_alternative_scores(score: str) -> None:
    policy, critic = make_nets()
    mixture = QSwitchMixture(policy, critic, T, score=score)
    obs = torch.randn(T, O)
    with torch.no_grad():
        means = policy.act(obs.unsqueeze(0).expand(T, T, O), deterministic=True)[0]
        q = critic(obs.unsqueeze(1).expand(T, T, O), means.transpose(0, 1))
    expected = {"q1": q[0], "min": q.min(0).values, "mean": q.mean(0)}[score]
    torch.testing.assert_close(mixture.scores(obs, means), expected)


def test_sampling_freq_keeps_the_choice_between_reselections() -> None:
    policy, critic = make_nets()
    mixture = QSwitchMixture(policy, critic, T, sampling_freq=3)
    obs = torch.randn(T, O)
    first = mixture.act(obs, np.zeros(T, np.int64))[1]
    rigged = torch.tensor([3, 2, 1, 0])
    mixture.choice = rigged.clone()
    kept = mixture.act(torch.randn(T, O), np.array([1, 2, 4, 5]))[1]  # no task at a multiple of 3
    assert kept.tolist() == rigged.tolist()
    mixed = mixture.act(obs, np.array([3, 1, 1, 1]))[1]  # only task 0 re-selects
    assert mixed[0].item() == first[0].item() and mixed[1:].tolist() == rigged[1:].tolist()


def test_own_policy_always_uses_the_task_policy() -> None:
    policy, _ = make_nets()
    obs = torch.randn(T, O)
    action, choice = OwnPolicy(policy).act(obs, deterministic=True)
    assert choice.tolist() == list(range(T))
    torch.testing.assert_close(action, policy.act(obs.unsqueeze(1), deterministic=True)[0].squeeze(1))


def test_bad_options_are_rejected() -> None:
    policy, critic = make_nets()
    with pytest.raises(ValueError, match="valid: q1, min, mean"):
        QSwitchMixture(policy, critic, T, score="max")
    with pytest.raises(ValueError, match="valid: mean, sample"):
        QSwitchMixture(policy, critic, T, score_action="mode")


def test_double_tanh_keeps_single_tanh_candidates_in_the_qswitch() -> None:
    """The original's qmp_sac sampled every head's candidate as tanh(mu + sigma*eps), even where its
    mtsac-style acting squashed twice: so does ours with --multihead_double_tanh."""
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("multihead", T, O, A, [16], False, double_tanh=True)
    critic = DoubleQ("multihead", T, O, A, [16], False, False)
    obs = torch.randn(T, O)
    torch.manual_seed(1)
    action, choice = QSwitchMixture(policy, critic, T).act(obs)
    torch.manual_seed(1)
    sample, _ = policy.act(obs.unsqueeze(0).expand(T, T, O), single_tanh=True)  # (T_j, T_i, A)
    torch.testing.assert_close(action, sample.transpose(0, 1)[torch.arange(T), choice])
    torch.manual_seed(1)
    doubled, _ = policy.act(obs.unsqueeze(0).expand(T, T, O))
    assert not torch.allclose(action, doubled.transpose(0, 1)[torch.arange(T), choice])


def test_double_tanh_held_steps_sample_the_kept_head_as_it_acts() -> None:
    """Between re-selections the original drew the kept head's action through the multihead policy's own
    sampling, tanh(tanh(mu) + sigma*eps) with --multihead_double_tanh; re-selecting tasks keep the single-tanh
    candidate of the winner. The noise is drawn once either way."""
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("multihead", T, O, A, [16], False, double_tanh=True)
    critic = DoubleQ("multihead", T, O, A, [16], False, False)
    mixture = QSwitchMixture(policy, critic, T, sampling_freq=3)
    obs = torch.randn(T, O)
    mixture.choice = torch.tensor([3, 2, 1, 0])
    elapsed = np.array([3, 1, 2, 4])  # task 0 re-selects, the others hold
    torch.manual_seed(1)
    action, choice = mixture.act(obs, elapsed)
    torch.manual_seed(1)
    single, _ = policy.act(obs.unsqueeze(0).expand(T, T, O), single_tanh=True)  # (T_j, T_i, A)
    torch.manual_seed(1)
    doubled, _ = policy.act(obs.unsqueeze(0).expand(T, T, O))
    rows = torch.arange(T)
    torch.testing.assert_close(action[0], single.transpose(0, 1)[0, choice[0]])
    torch.testing.assert_close(action[1:], doubled.transpose(0, 1)[rows, choice][1:])
    assert choice[1:].tolist() == [2, 1, 0]
    after = torch.randn(1)
    torch.manual_seed(1)
    policy.act(obs.unsqueeze(0).expand(T, T, O))
    assert torch.equal(after, torch.randn(1))  # one noise draw, as without holds
    deterministic, _ = mixture.act(obs, np.array([1, 1, 1, 1]), deterministic=True)
    torch.testing.assert_close(deterministic, torch.tanh(policy.distribution(obs.unsqueeze(0).expand(T, T, O))[0])
                               .transpose(0, 1)[rows, mixture.choice])
