"""MT-Levy's collection: the switch and its Levy-flight hold against a plain per-task loop, its success rates,
the actions it executes, runs on Multistage Reacher and Meta-World, and exact resume."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from qmp.cli import ConfigError, parse_args
from qmp.environments import ENVS
from qmp.environments.multitask import Episode
from qmp.learning.levy import LevyMixture
from qmp.learning.nets import TanhGaussianPolicy
from qmp.methods import METHODS
from tests.helpers import assert_resumes_exactly, tiny_flags, train

T, O, A = 4, 3, 2


pytestmark = pytest.mark.usefixtures("one_thread")


def episode(task: int, success: bool) -> Episode:
    return Episode(task, 0.0, 10, success, 0.0, False, {})


class LoopLevy:
    """The rule written task by task, as the paper's code runs it (one task after the other)."""

    def __init__(self, num_tasks: int, obs_dim: int, top_n: int, alpha_min: float, max_hold: int | None) -> None:
        self.t, self.d, self.n, self.alpha_min, self.max_hold = num_tasks, obs_dim, top_n, alpha_min, max_hold
        self.success = [0.0] * num_tasks
        self.target, self.left = list(range(num_tasks)), [0] * num_tasks

    def step(self, u: list[float], v: list[float], elapsed: list[int]) -> list[int]:
        top = sorted(range(self.t), key=lambda j: (-self.success[j], j))[: self.n]
        out = []
        for i in range(self.t):
            if elapsed[i] == 0:
                self.left[i] = 0
            if self.left[i] == 0:
                alpha = self.alpha_min - 1 + self.d ** self.success[i]
                x = (1 - u[i]) ** (-1 / alpha) - 1
                if x >= 1:
                    allowed = sorted(set(top) | {i})
                    self.target[i] = allowed[int(v[i] * len(allowed))]
                    self.left[i] = 1 + math.floor(x) if self.max_hold is None else min(1 + math.floor(x), self.max_hold)
            if self.left[i] > 0:
                out.append(self.target[i])
                self.left[i] -= 1
            else:
                out.append(i)
        return out


@pytest.mark.parametrize(("top_n", "alpha_min", "max_hold"), [(2, 1.5, None), (5, 1.2, 3), (1, 3.0, None)])
def test_switch_and_hold_equal_the_per_task_loop(top_n: int, alpha_min: float, max_hold: int | None) -> None:
    t, gen = 6, torch.Generator().manual_seed(0)
    levy = LevyMixture(None, t, 5, top_n, alpha_min, max_hold)  # type: ignore[arg-type]
    loop = LoopLevy(t, 5, top_n, alpha_min, max_hold)
    elapsed = np.zeros(t, np.int64)
    picks = []
    for step in range(400):
        if step % 37 == 0:  # success rates move: some tasks succeed, ties and all
            rates = torch.randint(0, 3, (t,), generator=gen).double() / 4
            levy.success, loop.success = rates.clone(), rates.tolist()
        u, v = torch.rand(2, t, generator=gen)
        executing = levy.select(u, v, elapsed)
        expected = loop.step(u.double().tolist(), v.double().tolist(), elapsed.tolist())
        assert executing.tolist() == expected, step
        picks.append(expected)
        elapsed = np.where(torch.rand(t, generator=gen).numpy() < 0.05, 0, elapsed + 1)  # episodes end at random
    assert any(p != list(range(t)) for p in picks)  # switches happened


def test_hold_lengths_follow_the_power_law() -> None:
    """Zero success: a switch starts with probability 2^-alpha_min and lasts >= m steps with probability
    (m/2)^-alpha_min."""
    n, alpha = 200, 2.0
    levy = LevyMixture(None, n, 39, n, alpha, None)  # type: ignore[arg-type]
    gen = torch.Generator().manual_seed(1)
    started, holds = [], []
    for _ in range(250):  # 50,000 draws from a fresh state
        levy.remaining[:] = 0
        levy.select(*torch.rand(2, n, generator=gen))
        started.append(levy.remaining > 0)
        holds.append(levy.remaining[started[-1]] + 1)  # steps of the switch, the first one included
    assert abs(torch.cat(started).double().mean().item() - 2**-alpha) < 0.01
    holds = torch.cat(holds)
    for m in (2, 3, 5, 9):
        assert abs((holds >= m).double().mean().item() - (m / 2) ** -alpha) < 0.02
    assert levy.exponents()[0].item() == alpha  # alpha_min - 1 + 39^0
    levy.success[:] = 1.0
    assert levy.exponents()[0].item() == alpha - 1 + 39  # a task that succeeds hardly switches


def test_success_rates_are_moving_averages_of_training_episodes() -> None:
    levy = LevyMixture(None, T, O, top_n=1, success_ema=0.1)  # type: ignore[arg-type]
    expected = [0.0] * T
    for won in ([True, False], [True, True], [False, True]):
        levy.episodes_ended([episode(0, won[0]), episode(2, won[1])])
        for task, w in zip((0, 2), won, strict=True):
            expected[task] = 0.9 * expected[task] + 0.1 * w
    np.testing.assert_allclose(levy.success.numpy(), expected)
    assert levy.candidates()[1].tolist() == [False, True, True, False]  # the best task (2), and itself


def test_executes_the_switched_policys_sample_at_the_tasks_state() -> None:
    torch.manual_seed(0)
    policy = TanhGaussianPolicy("separate", T, O, A, [16], False)
    levy = LevyMixture(policy, T, O, alpha_min=0.01)  # switches almost every step
    obs = torch.randn(T, O)
    torch.manual_seed(5)
    u, v = torch.rand(2, T)
    sample = policy.act(obs.unsqueeze(0).expand(T, T, O))[0]
    torch.manual_seed(5)
    action, executing = LevyMixture(policy, T, O, alpha_min=0.01).act(obs)
    assert executing.tolist() == levy.select(u, v).tolist() and executing.tolist() != list(range(T))
    for i in range(T):
        torch.testing.assert_close(action[i], sample[executing[i], i])
    deterministic, own = levy.act(obs, deterministic=True)
    assert own.tolist() == list(range(T))
    torch.testing.assert_close(deterministic, policy.act(obs.unsqueeze(1), deterministic=True)[0].squeeze(1))


def parse(*argv: str) -> object:
    return parse_args(list(argv), list(METHODS), list(ENVS))


def test_mtlevy_flags_act_or_are_refused() -> None:
    cfg = parse("mtlevy_dnc", "--mtlevy_top_n", "3", "--mtlevy_max_hold", "20", "--mtlevy_alpha_min", "2")
    assert (cfg.mtlevy_top_n, cfg.mtlevy_max_hold, cfg.mtlevy_alpha_min) == (3, 20, 2.0)
    for argv, message in [(["qmp_dnc", "--mtlevy_top_n", "3"], "--mtlevy_top_n does nothing for qmp_dnc"),
                          (["mtlevy_dnc", "--policy_sampling_freq", "5"], "--policy_sampling_freq does nothing"),
                          (["mtlevy_dnc", "--mtlevy_max_hold", "0"], "--mtlevy_max_hold must be >= 1"),
                          (["mtlevy_dnc", "--mtlevy_success_ema", "0"], "must be in \\(0, 1\\]"),
                          (["mtlevy_sac"], "needs --policy_architecture in {multihead, shared}"),
                          (["mtlevy_dnc", "--include_task_id", "true"], "needs --include_task_id false")]:
        with pytest.raises(ConfigError, match=message):
            parse(*argv)


def check_run(rows: list[dict[str, str]], run_dir: Path, tasks: int, steps: int) -> None:
    row = rows[-1]
    assert float(row["grad_steps"]) > 0 and 0.0 <= float(row["collect/own_policy_frac"]) <= 1.0
    assert "eval_mixture/return" not in row  # evaluated as each task's own policy only
    record = json.loads((run_dir / "qswitch_selection.jsonl").read_text().splitlines()[-1])
    assert np.asarray(record["counts"]).sum() == steps and len(record["switch_rate"]) == tasks


@pytest.mark.parametrize("method", ["mtlevy_dnc", "mtlevy_sac"])
def test_mtlevy_on_multistage_reacher(method: str, tmp_path: Path) -> None:
    arch = ["--policy_architecture", "multihead", "--Q_architecture", "multihead"] if method == "mtlevy_sac" else []
    rows = train(method, "JacoReachMT5-v1", tmp_path, *tiny_flags(5, 200), "--n_epochs", "1", *arch)
    check_run(rows, tmp_path, 5, 1000)
    assert float(rows[-1]["collect/own_policy_frac"]) < 1.0  # zero success: about 1 step in 8 starts a switch


def test_mtlevy_on_meta_world(tmp_path: Path) -> None:
    flags = [*tiny_flags(2, 100, evaluation=False), "--n_epochs", "1", "--n_policies", "2", "--steps_per_epoch", "1"]
    rows = train("mtlevy_dnc", "MetaWorldCDS-v1", tmp_path, "--task_name", "door-open,drawer-open", *flags)
    check_run(rows, tmp_path, 2, 200)


def test_mtlevy_resumes_exactly(tmp_path: Path) -> None:
    """Success rates, held targets and steps left are behaviour state in the checkpoint; the draws come from
    torch's CPU generator, which the checkpoint holds."""
    assert_resumes_exactly("mtlevy_dnc", tmp_path, *tiny_flags(4, 20), "--mtlevy_alpha_min", "1.5",
                           "--mtlevy_success_ema", "0.3")
