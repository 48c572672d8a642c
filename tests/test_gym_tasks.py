"""Your own tasks: a list of gymnasium envs trains as a multi-task problem through `--env module:function`,
with actions scaled to each env's bounds, the time limit owned by MultiTaskEnv, and exact resume."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gymnasium.envs.classic_control.pendulum import PendulumEnv

import qmp.command as cli
from qmp.cli import ConfigError, parse_args
from qmp.environments import make_spec
from qmp.environments.gym_tasks import GymTask, gym_multitask
from qmp.environments.multitask import MultiTaskEnv
from tests.helpers import read_progress, tiny_flags, train, without_time

PENDULUMS = "examples.pendulum_tasks:pendulums"


def test_actions_are_scaled_to_the_env_bounds_and_truncation_is_left_to_the_horizon() -> None:
    task = GymTask(PendulumEnv())  # torque in [-2, 2]
    task.reset(seed=0)
    seen = []
    task.env.step = lambda a: (seen.append(a) or (np.zeros(3), 0.0, False, True, {}))  # a truncating env
    _, _, terminated, truncated, _ = task.step(np.array([0.5], np.float32))
    assert seen[0] == pytest.approx([1.0]) and not terminated and not truncated
    task.step(np.array([-3.0], np.float32))  # clipped to -1 first
    assert seen[1] == pytest.approx([-2.0])
    assert task.action_space.low.tolist() == [-1.0] and task.observation_space.dtype == np.float32


def test_a_gymnasium_id_and_a_constructor_make_the_same_task() -> None:
    spec = gym_multitask("two", ["Pendulum-v1", PendulumEnv], horizon=50)
    assert spec.task_names == ("Pendulum-v1", "task1") and spec.max_episode_steps == 50
    env = MultiTaskEnv(spec, seed=3)
    env.reset()
    for _ in range(50):
        result = env.step(np.zeros((2, 1), np.float32))
    assert result.truncated.all() and not result.terminated.any()  # the horizon, not gymnasium's TimeLimit
    with pytest.raises(ValueError, match="name each of the 2 tasks once"):
        gym_multitask("bad", ["Pendulum-v1", "Pendulum-v1"], horizon=10)


def test_custom_env_flag_builds_the_factorys_spec_and_checks_the_task_count(tmp_path: Path) -> None:
    spec = make_spec(PENDULUMS)
    assert spec.num_tasks == 3 and spec.name == "pendulums"
    assert cli.main(["dnc_sac", f"--env={PENDULUMS}", "--run_dir", str(tmp_path / "x")]) == 2  # 4 != 3 tasks
    assert not (tmp_path / "x").exists()
    with pytest.raises(ConfigError, match="package.module:function"):
        parse_args(["dnc_sac", "--env=not a module"])
    assert cli.main(["dnc_sac", "--env=examples.pendulum_tasks:missing", "--n_policies", "3"]) == 2


def test_own_tasks_train_with_qmp_and_resume_exactly(tmp_path: Path) -> None:
    flags = [*tiny_flags(3, 200), "--n_policies", "3", "--n_epochs", "3"]
    full = train("qmp_dnc", PENDULUMS, tmp_path / "full", *flags)
    assert [int(r["epoch"]) for r in full] == [0, 1, 2] and "eval/pendulum-g9.81/return" in full[-1]
    first = [*tiny_flags(3, 200), "--n_policies", "3", "--n_epochs", "2"]
    train("qmp_dnc", PENDULUMS, tmp_path / "split", *first)
    resumed = train("qmp_dnc", PENDULUMS, tmp_path / "split", *flags)  # the same command, one more epoch
    assert without_time(resumed) == without_time(full) == without_time(read_progress(tmp_path / "full"))
