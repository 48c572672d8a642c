"""Batched task networks equal separate per-task networks, and keep separated tasks separate."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from qmp.learning.nets import DoubleQ, EnsembleLinear, TanhGaussianPolicy, TaskNet

T, B, IN, OUT = 3, 5, 4, 2


def loop_mlp(weights: list[tuple[torch.Tensor, torch.Tensor]], x: torch.Tensor) -> torch.Tensor:
    """A plain MLP applied with matmuls: the reference for one ensemble member."""
    for k, (w, b) in enumerate(weights):
        x = x @ w + b.squeeze(0)
        if k < len(weights) - 1:
            x = F.relu(x)
    return x


def member_weights(net: TaskNet, member: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    layers = [*net.body.hidden, net.body.out]
    return [(layer.weight[member], layer.bias[member]) for layer in layers]


def test_ensemble_linear_is_independent_linears() -> None:
    layer = EnsembleLinear(T, IN, OUT)
    x = torch.randn(T, B, IN)
    expected = torch.stack([x[i] @ layer.weight[i] + layer.bias[i] for i in range(T)])
    torch.testing.assert_close(layer(x), expected)


@pytest.mark.parametrize("members", [None, slice(1, 3)])
def test_single_output_layer_matches_a_matmul_in_value_and_gradients(members: slice | None) -> None:
    """A one-unit output layer takes its own kernel path (w^T x^T forward, broadcast backward): it must
    give the plain matmul's output and the gradients of x, weight and bias, also on a member range."""
    torch.manual_seed(0)
    layer = EnsembleLinear(T, IN, 1).double()
    with torch.no_grad():
        layer.bias.normal_()
    rows = T if members is None else 2
    x = torch.randn(rows, B, IN, dtype=torch.float64, requires_grad=True)
    y = layer(x, members)
    w, b = (layer.weight, layer.bias) if members is None else (layer.weight[members], layer.bias[members])
    expected = torch.stack([x[i] @ w[i] + b[i] for i in range(rows)])
    torch.testing.assert_close(y, expected)
    upstream = torch.randn_like(y)
    grads = torch.autograd.grad(y, (x, layer.weight, layer.bias), upstream)
    expected_grads = torch.autograd.grad(expected, (x, layer.weight, layer.bias), upstream)
    for got, want in zip(grads, expected_grads, strict=True):
        torch.testing.assert_close(got, want)
    assert torch.autograd.gradcheck(lambda inp: layer(inp, members), (x,))


def test_separate_equals_a_loop_of_mlps() -> None:
    torch.manual_seed(0)
    net = TaskNet("separate", T, IN, [8, 8], OUT, copies=2)
    x = torch.randn(T, B, IN)
    y = net(x)
    assert y.shape == (2, T, B, OUT)
    for c in range(2):
        for i in range(T):
            torch.testing.assert_close(y[c, i], loop_mlp(member_weights(net, c * T + i), x[i]))


def test_no_gradient_crosses_separated_tasks() -> None:
    net = TaskNet("separate", T, IN, [8], OUT)
    x = torch.randn(T, B, IN)
    net(x)[0, 1].sum().backward()  # a loss of task 1 only
    for layer in [*net.body.hidden, net.body.out]:
        grads = layer.weight.grad.abs().sum(dim=(1, 2))
        assert grads[1] > 0
        assert grads[0] == 0 and grads[2] == 0


def test_multihead_shares_the_trunk_and_splits_heads() -> None:
    torch.manual_seed(0)
    net = TaskNet("multihead", T, IN, [8, 8], OUT)
    x = torch.randn(T, B, IN)
    y = net(x)[0]
    trunk = [(layer.weight[0], layer.bias[0]) for layer in net.body.hidden]
    for i in range(T):
        h = F.relu(loop_mlp(trunk, x[i]))
        torch.testing.assert_close(y[i], h @ net.heads.weight[i] + net.heads.bias[i])
    net(x)[0, 2].sum().backward()
    head_grads = net.heads.weight.grad.abs().sum(dim=(1, 2))
    assert head_grads[2] > 0 and head_grads[0] == 0 and head_grads[1] == 0
    assert net.body.hidden[0].weight.grad.abs().sum() > 0  # the trunk learns from every task


def test_shared_network_tells_tasks_apart_only_with_the_task_id() -> None:
    torch.manual_seed(0)
    x = torch.randn(1, B, IN).expand(T, B, IN)  # the same states in every task row
    blind = TaskNet("shared", T, IN, [8], OUT)
    y = blind(x)[0]
    torch.testing.assert_close(y[0], y[1])
    aware = TaskNet("shared", T, IN, [8], OUT, include_task_id=True)
    y = aware(x)[0]
    assert not torch.allclose(y[0], y[1])


def test_policy_actions_and_log_probs() -> None:
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("separate", T, IN, OUT, [16], include_task_id=False)
    obs = torch.randn(T, 1000, IN)
    torch.manual_seed(1)
    action, log_prob = policy(obs)
    assert action.shape == (T, 1000, OUT) and log_prob.shape == (T, 1000)
    assert action.abs().max() <= 1.0  # tanh saturates to exactly 1 in float32 for large pre-activations
    torch.manual_seed(1)
    acted, mean = policy.act(obs)  # acting draws the same noise as the training sample
    torch.testing.assert_close(acted, action)
    det, det_mean = policy.act(obs, deterministic=True)
    torch.testing.assert_close(det, det_mean)
    torch.testing.assert_close(det, mean)
    torch.testing.assert_close(mean, torch.tanh(policy.distribution(obs)[0]))
    # the log-prob of the squashed Gaussian matches torch.distributions' change of variables
    mu, log_std = policy.distribution(obs)
    pre = torch.atanh(action.clamp(-1 + 1e-6, 1 - 1e-6))
    base = torch.distributions.Normal(mu, log_std.exp()).log_prob(pre).sum(-1)
    expected = base - torch.log(1 - action.pow(2) + 1e-6).sum(-1)
    inside = action.abs().amax(-1) < 0.999  # atanh is ill-conditioned at the edges
    assert inside.float().mean() > 0.9
    torch.testing.assert_close(log_prob[inside], expected[inside], atol=2e-3, rtol=1e-3)


def test_double_q_shape_and_independent_twins() -> None:
    q = DoubleQ("separate", T, IN, OUT, [8], include_task_id=False, layer_norm=True)
    out = q(torch.randn(T, B, IN), torch.randn(T, B, OUT))
    assert out.shape == (2, T, B)
    assert not torch.allclose(out[0], out[1])


def test_layer_norm_normalises_each_hidden_layers_input_as_garage() -> None:
    """garage's MLP with layer_normalization: LayerNorm(input) -> Linear -> ReLU per hidden layer, the raw
    input included; the output layer has none. Checked member by member with torch.nn layers."""
    torch.manual_seed(0)
    q = DoubleQ("separate", T, IN, OUT, [8, 6], include_task_id=False, layer_norm=True)
    body = q.net.body
    with torch.no_grad():
        for param in (*body.norm_weight, *body.norm_bias):
            param.normal_()  # away from the identity initialisation
    obs, act = torch.randn(T, B, IN), torch.randn(T, B, OUT)
    got = q(obs, act)
    for member in range(2 * T):
        x = torch.cat([obs, act], -1)[member % T]
        for k, layer in enumerate(body.hidden):
            norm = torch.nn.LayerNorm(x.shape[-1])
            norm.weight.data, norm.bias.data = body.norm_weight[k][member, 0], body.norm_bias[k][member, 0]
            x = torch.relu(norm(x) @ layer.weight[member] + layer.bias[member])
        expected = (x @ body.out.weight[member] + body.out.bias[member]).squeeze(-1)
        torch.testing.assert_close(got[member // T, member % T], expected, rtol=1e-5, atol=1e-5)


def test_wrong_task_rows_are_rejected() -> None:
    with pytest.raises(ValueError, match="expected 3 task rows"):
        TaskNet("separate", T, IN, [8], OUT)(torch.randn(T + 1, B, IN))
    with pytest.raises(ValueError, match="valid: separate, multihead, shared"):
        TaskNet("tree", T, IN, [8], OUT)


def rigged_multihead(double_tanh: bool, mu: float = 0.8, log_std: float = -0.5) -> TanhGaussianPolicy:
    """A multihead policy whose every head outputs pre-tanh mean `mu` and log-std `log_std` for any obs."""
    policy = TanhGaussianPolicy("multihead", T, IN, OUT, [8], False, double_tanh=double_tanh)
    with torch.no_grad():
        policy.net.heads.weight.zero_()
        policy.net.heads.bias[..., :OUT] = mu
        policy.net.heads.bias[..., OUT:] = log_std
    return policy


def test_double_tanh_reproduces_the_original_multihead_squashing() -> None:
    """--multihead_double_tanh: samples are tanh(tanh(mu) + sigma*eps) with the log-probability of a Gaussian
    centred on tanh(mu), checked against a hand computation; the deterministic action stays tanh(mu), and
    the Q-switch's candidates (single_tanh) stay tanh(mu + sigma*eps)."""
    mu, log_std = 0.8, -0.5
    policy, single = rigged_multihead(True, mu, log_std), rigged_multihead(False, mu, log_std)
    obs = torch.randn(T, 4, IN)
    noise = torch.full((T, 4, OUT), 0.3)
    action, log_prob = policy(obs, noise=noise)
    sigma = math.exp(log_std)
    pre = math.tanh(mu) + sigma * 0.3
    a = math.tanh(pre)
    gauss = -0.5 * ((pre - math.tanh(mu)) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
    hand = OUT * (gauss - math.log(1 - a * a + 1e-6))
    torch.testing.assert_close(action, torch.full_like(action, a))
    torch.testing.assert_close(log_prob, torch.full_like(log_prob, hand))
    single_action, single_log_prob = single(obs, noise=noise)
    torch.testing.assert_close(single_action, torch.full_like(action, math.tanh(mu + sigma * 0.3)))
    assert not torch.allclose(single_log_prob, log_prob)
    for det in (policy.act(obs, deterministic=True)[0], single.act(obs, deterministic=True)[0]):
        torch.testing.assert_close(det, torch.full_like(det, math.tanh(mu)))
    torch.manual_seed(5)
    acted = policy.act(obs)[0]
    torch.manual_seed(5)
    candidates = policy.act(obs, single_tanh=True)[0]
    torch.manual_seed(5)
    eps = torch.randn_like(acted)
    torch.testing.assert_close(acted, torch.tanh(math.tanh(mu) + sigma * eps))
    torch.testing.assert_close(candidates, torch.tanh(mu + sigma * eps))


@pytest.mark.parametrize("arch", ["separate", "multihead", "shared"])
def test_a_hidden_layer_of_one_unit_trains(arch: str) -> None:
    """--hidden_sizes may hold a width-1 layer: its one-unit kernel path returns a view, which the ReLU
    after it must not modify in place (autograd refuses that). Same values as a loop of plain MLPs."""
    torch.manual_seed(0)
    net = TaskNet(arch, T, IN, [1, 3, 1], OUT)
    x = torch.randn(T, B, IN)
    y = net(x)
    y.sum().backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())
    if arch == "separate":
        expected = torch.stack([loop_mlp(member_weights(net, i), x[i]) for i in range(T)])
        torch.testing.assert_close(y[0], expected)


def test_collect_single_tanh_samples_the_qswitch_candidate_distribution() -> None:
    """--collect_single_tanh: the own policy of a double-squashed multihead policy executes tanh(mu + sigma*eps)
    (the Q-switch's candidate, same noise), not tanh(tanh(mu) + sigma*eps); evaluation stays tanh(mu)."""
    from qmp.learning.policies import OwnPolicy

    mu, log_std = 0.8, -0.5
    policy = rigged_multihead(True, mu, log_std)
    obs = torch.randn(T, IN)
    torch.manual_seed(3)
    doubled = OwnPolicy(policy).act(obs)[0]
    torch.manual_seed(3)
    single = OwnPolicy(policy, single_tanh=True).act(obs)[0]
    torch.manual_seed(3)
    noise = torch.randn(T, 1, OUT).squeeze(1)
    sigma = math.exp(log_std)
    torch.testing.assert_close(doubled, torch.tanh(math.tanh(mu) + sigma * noise))
    torch.testing.assert_close(single, torch.tanh(mu + sigma * noise))
    for own in (OwnPolicy(policy), OwnPolicy(policy, single_tanh=True)):
        det = own.act(obs, deterministic=True)[0]
        torch.testing.assert_close(det, torch.full_like(det, math.tanh(mu)))
