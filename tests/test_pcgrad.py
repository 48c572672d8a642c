"""PCGrad: the batched projection equals the original's plain loop; sac/mtsac/qmp_sac apply it to the
critics (Q1 and Q2 apart), the policy and, on request, the temperature; the flags act only there."""

from __future__ import annotations

import copy

import pytest
import torch

from qmp.cli import ConfigError, parse_args
from qmp.learning.buffer import Batch
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.learning.pcgrad import pc_backward, project_conflicting
from qmp.learning.sac import MultiTaskSAC, SACConfig

T, O, A, B = 4, 5, 2, 16
MULTIHEAD = ["--policy_architecture", "multihead", "--Q_architecture", "multihead"]


def loop_pcgrad(grads: list[torch.Tensor], order: list[list[int]]) -> list[torch.Tensor]:
    """The original's rule, one task and one projection at a time: g_i against every original g_j."""
    projected = []
    for i, g in enumerate(grads):
        g = g.clone()
        for j in order[i]:
            dot = torch.dot(g, grads[j])
            if dot < 0:
                g = g - dot * grads[j] / grads[j].norm() ** 2
        projected.append(g)
    return projected


def test_projection_matches_the_plain_loop() -> None:
    g = torch.Generator().manual_seed(0)
    grads = torch.randn(3, T, 50, generator=g, dtype=torch.float64)
    grads[1, 2] = -grads[1, 0]  # an exact conflict
    order = torch.rand(3, T, T, generator=g).argsort(-1)
    fast = project_conflicting(grads, order)
    for c in range(3):
        slow = loop_pcgrad(list(grads[c]), order[c].tolist())
        torch.testing.assert_close(fast[c], torch.stack(slow))


def test_no_conflict_leaves_the_gradients_alone() -> None:
    grads = torch.rand(1, T, 10) + 0.1  # positive: every pair agrees
    torch.testing.assert_close(project_conflicting(grads, torch.arange(T).expand(1, T, T)), grads)


def test_pc_backward_matches_per_task_backward_and_the_loop() -> None:
    """Per-task gradients of a multihead twin critic from one batched backward, projected per copy (Q1
    and Q2 apart, as the original's one optimiser per critic), summed over tasks."""
    torch.manual_seed(0)
    critic = DoubleQ("multihead", T, O, A, [8, 8], False, False)
    obs, act = torch.randn(T, B, O), torch.rand(T, B, A) * 2 - 1
    target = torch.randn(T, B) * 10
    params = list(critic.parameters())

    def losses() -> torch.Tensor:
        return (critic(obs, act) - target).pow(2).mean(-1).sum(0)  # (T,): qf1_i + qf2_i

    torch.manual_seed(7)
    pc_backward(losses(), params, copies=2)
    fast = [p.grad.clone() for p in params]
    torch.manual_seed(7)
    order = torch.rand(2, T, T).argsort(-1)
    per_task = []
    for i in range(T):
        critic.zero_grad()
        losses()[i].backward()
        per_task.append([p.grad.clone().reshape(2, -1) for p in params])  # every parameter is copy-major
    for c in range(2):
        flat = [torch.cat([g[c] for g in grads]) for grads in per_task]
        merged = torch.stack(loop_pcgrad(flat, order[c].tolist())).sum(0)
        got = torch.cat([g.reshape(2, -1)[c] for g in fast])
        torch.testing.assert_close(got, merged, rtol=1e-4, atol=1e-6)


def make_agent(arch: str, **cfg: object) -> MultiTaskSAC:
    torch.manual_seed(0)
    policy = TanhGaussianPolicy(arch, T, O, A, [16, 16], False)
    critic = DoubleQ(arch, T, O, A, [16, 16], False, False)
    return MultiTaskSAC(policy, critic, T, A, SACConfig(lr=1e-2, alpha_loss="exp", **cfg), torch.device("cpu"))


def batch(same_for_every_task: bool, seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    rows = 1 if same_for_every_task else T
    fields = (torch.randn(rows, B, O, generator=g), torch.rand(rows, B, A, generator=g) * 2 - 1,
              torch.randn(rows, B, generator=g), torch.randn(rows, B, O, generator=g), torch.zeros(rows, B))
    return Batch(*(f.expand(T, *f.shape[1:]).clone() for f in fields))


@pytest.mark.parametrize("alpha", [False, True])
def test_identical_tasks_never_conflict_so_pcgrad_is_the_plain_step(alpha: bool) -> None:
    """One shared network and the same data in every task: equal per-task gradients, no projection."""
    plain = make_agent("shared", shared_alpha=True)
    pc = make_agent("shared", shared_alpha=True, pc_grad=True, pc_grad_alpha=alpha)
    data = batch(same_for_every_task=True)
    for agent in (plain, pc):
        torch.manual_seed(3)
        agent.update(copy.deepcopy(data))  # the sampling noise is drawn before any projection order
    for name, value in plain.policy.state_dict().items():
        torch.testing.assert_close(pc.policy.state_dict()[name], value, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(pc.log_alpha, plain.log_alpha)


def test_conflicting_tasks_change_the_step_and_only_requested_parts() -> None:
    data = batch(same_for_every_task=False)
    agents = {name: make_agent("multihead", **cfg) for name, cfg in
              {"plain": {}, "pc": {"pc_grad": True}, "pc_alpha": {"pc_grad": True, "pc_grad_alpha": True}}.items()}
    for agent in agents.values():
        torch.manual_seed(3)
        agent.update(copy.deepcopy(data))
    body = "net.body.hidden.0.weight"
    assert not torch.allclose(agents["pc"].critic.state_dict()[body], agents["plain"].critic.state_dict()[body])
    # per-task temperatures never conflict (each loss touches its own entry): the same step with or without
    torch.testing.assert_close(agents["pc_alpha"].log_alpha, agents["pc"].log_alpha)


def parse(*argv: str):  # noqa: ANN201
    return parse_args(list(argv))


def test_flags_act_on_the_sac_family_only() -> None:
    for method in ("sac", "mtsac", "qmp_sac"):
        cfg = parse(method, "--env=JacoReachMT5-v1", *MULTIHEAD, "--use_pc_grad", "true", "--skip_alpha_pc_grad",
                    "false")
        assert cfg.use_pc_grad and not cfg.skip_alpha_pc_grad
    with pytest.raises(ConfigError, match="--use_pc_grad does nothing for dnc_sac"):
        parse("dnc_sac", "--env=JacoReachMT5-v1", "--use_pc_grad", "true")
    with pytest.raises(ConfigError, match="--skip_alpha_pc_grad does nothing without --use_pc_grad true"):
        parse("mtsac", "--env=JacoReachMT5-v1", *MULTIHEAD, "--skip_alpha_pc_grad", "false")
