"""DnC beyond the KL: the representation penalty, the stage mask and distillation, each against a plain
loop over task pairs, states or steps; and where their flags act."""

from __future__ import annotations

import math

import pytest
import torch

from qmp.cli import ConfigError, parse_args
from qmp.environments.jaco import stage_of
from qmp.learning.buffer import MultiTaskReplayBuffer
from qmp.learning.distill import Distillation, tanh_gaussian_log_prob
from qmp.learning.dnc import first_stages, kl_matrix
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.learning.sac import MultiTaskSAC, SACConfig

T, O, A = 3, 15, 2
COEFF = [0.1 * (k + 1) for k in range(T * T)]


def make_agent(**cfg: object) -> MultiTaskSAC:
    torch.manual_seed(0)
    weight = cfg.pop("weight", None)
    policy = TanhGaussianPolicy("separate", T, O, A, [16, 16], False)
    critic = DoubleQ("separate", T, O, A, [16, 16], False, False)
    return MultiTaskSAC(policy, critic, T, A, SACConfig(kl_coeff=COEFF, **cfg), torch.device("cpu"),
                        kl_state_weight=weight)  # type: ignore[arg-type]


def pair_states(states: torch.Tensor, kind: str, i: int, j: int) -> torch.Tensor:
    return torch.cat([states[k] for k in {"all": range(T), "j": [j], "i+j": [i, j]}[kind]])


@pytest.mark.parametrize("kind", ["all", "j", "i+j"])
def test_representation_penalty_is_the_mean_squared_hidden_difference(kind: str) -> None:
    agent = make_agent(kl_states=kind, kl_representation=True)
    states = torch.randn(T, 4, O)
    beta = kl_matrix(COEFF, T, torch.device("cpu"))
    expected = torch.zeros(T)
    with torch.no_grad():
        for i in range(T):
            for j in range(T):
                s = pair_states(states, kind, i, j)
                hidden = agent.policy.representation(s.expand(T, *s.shape))  # every policy on the pair's states
                expected[i] += beta[i, j] * (hidden[j] - hidden[i]).pow(2).mean()
        torch.testing.assert_close(agent._kl_penalty(states), expected, rtol=1e-5, atol=1e-6)


def test_stagewise_counts_only_the_states_of_the_first_two_stages() -> None:
    agent = make_agent(weight=first_stages(stage_of))
    states = torch.randn(T, 6, O)
    stages = torch.randint(0, 3, (T, 6))
    states[..., -3:] = torch.nn.functional.one_hot(stages, 3).float()
    beta = kl_matrix(COEFF, T, torch.device("cpu"))
    expected = torch.zeros(T)
    with torch.no_grad():
        pooled = states.reshape(1, -1, O).expand(T, -1, O)
        mean, log_std = agent.policy.distribution(pooled)
        for i in range(T):
            for j in range(T):
                total = 0.0
                for s in range(pooled.shape[1]):
                    if stages.flatten()[s] < 2:
                        ls_i, ls_j, gap = log_std[i, s], log_std[j, s], mean[j, s] - mean[i, s]
                        kl = ls_i - ls_j + ((2 * ls_j).exp() + gap**2) / (2 * (2 * ls_i).exp()) - 0.5
                        total += kl.mean()
                expected[i] += beta[i, j] * total / pooled.shape[1]  # masked states count as zeros in the mean
        torch.testing.assert_close(agent._kl_penalty(states), expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(expected, make_agent()._kl_penalty(states))


def test_tanh_gaussian_log_prob_of_stored_actions() -> None:
    mean, log_std = torch.randn(5, A, dtype=torch.float64), torch.randn(5, A, dtype=torch.float64) * 0.3
    action = torch.rand(5, A, dtype=torch.float64) * 1.8 - 0.9
    action[0, 0] = 1.0  # a clipped action stays finite
    expected = torch.zeros(5, dtype=torch.float64)
    for row in range(5):
        for d in range(A):
            a = action[row, d].item()
            pre = 0.5 * math.log((1 + 1e-6 + a) / (1 + 1e-6 - a))
            gauss = torch.distributions.Normal(mean[row, d], log_std[row, d].exp()).log_prob(torch.tensor(pre))
            expected[row] += gauss - math.log(max(1 - a * a, 0.0) + 1e-6)
    torch.testing.assert_close(tanh_gaussian_log_prob(mean, log_std, action), expected)


def test_distillation_fits_the_central_policy_then_overwrites_every_task_policy() -> None:
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("separate", T, O, A, [16, 16], False)
    buffer = MultiTaskReplayBuffer(T, 50, O, A, torch.device("cpu"))
    obs = torch.randn(50, T, O).numpy()
    buffer.extend({"obs": obs, "act": (torch.rand(50, T, A) * 1.6 - 0.8).numpy(), "rew": torch.zeros(50, T).numpy(),
                   "next_obs": obs, "terminated": torch.zeros(50, T).numpy()})
    distill = Distillation(policy, buffer, O, A, [16, 16], period=3, steps=40, states_per_task=16, lr=1e-2)
    for name, value in distill.centroid.state_dict().items():
        torch.testing.assert_close(value[0], policy.state_dict()[name][0])  # starts as task 0's policy
    assert [distill.due(e) for e in range(7)] == [False, False, False, True, False, False, True]

    def nll(net: TanhGaussianPolicy) -> float:  # the loss on every stored pair, by a loop over tasks
        total = 0.0
        for k in range(T):
            mean, log_std = net.distribution(buffer.storage["obs"][k : k + 1, :50])
            total -= tanh_gaussian_log_prob(mean, log_std, buffer.storage["act"][k : k + 1, :50]).mean().item()
        return total / T

    before = nll(distill.centroid)
    distill.run()
    assert nll(distill.centroid) < before
    for name, value in policy.state_dict().items():
        for k in range(T):
            assert torch.equal(value[k], distill.centroid.state_dict()[name][0]), name


def parse(*argv: str):  # noqa: ANN201
    return parse_args(list(argv))


def test_flags_act_where_dnc_has_them() -> None:
    cfg = parse("dnc_sac", "--env=JacoReachMT5-v1", "--kl_coeff", "0.01", "--regularize_representation", "true",
                "--stagewise", "true", "--distillation_period", "10", "--distillation_n_epochs", "5")
    assert cfg.regularize_representation and cfg.stagewise and cfg.distillation_period == 10
    assert parse("qmp_dnc", "--env=JacoReachMT5-v1", "--distillation_period", "4").distillation_period == 4


@pytest.mark.parametrize(("argv", "message"), [
    (["dnc_sac", "--regularize_representation", "true"], "--regularize_representation does nothing without --kl_coeff"),
    (["dnc_sac", "--stagewise", "true"], "--stagewise does nothing without --kl_coeff"),
    (["dnc_sac", "--distillation_n_epochs", "5"], "--distillation_n_epochs does nothing without --distillation_period"),
    (["dnc_sac", "--distillation_period", "0"], "--distillation_period must be positive"),
    (["qmp_dnc", "--kl_coeff", "0.1", "--stagewise", "true"], "--stagewise does nothing for qmp_dnc"),
    (["mtsac", "--policy_architecture", "multihead", "--Q_architecture", "multihead", "--distillation_period", "2"],
     "--distillation_period does nothing for mtsac"),
])
def test_flags_refused_where_they_would_do_nothing(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse(*argv, "--env=JacoReachMT5-v1")


def test_stagewise_needs_an_env_with_stages() -> None:
    with pytest.raises(ConfigError, match="--stagewise true needs an env whose observations carry the stage"):
        parse("dnc_sac", "--env=MetaWorldCDS-v1", "--kl_coeff", "0.1", "--stagewise", "true")
