"""Simulator instability in every MuJoCo env family (qmp/environments/stability.py, docs/reliability.md).

Each env is driven unstable through its task env's mjData (a NaN qpos: MuJoCo auto-resets and counts a
warning; a huge qvel or force: a huge but finite state, or MuJoCo's auto-reset). The step must end the
episode (terminated, info["unstable"], no success) with a finite observation (the last good one) and the
documented reward, its Episode must be marked unstable, and the next reset must recover. Meta-World is
built with two tasks only (about 9 s for the MT10 benchmark); MT50 uses the same task env class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mujoco
import numpy as np
import pytest

from qmp.environments import make_spec
from qmp.environments.base import MultiTaskSpec
from qmp.environments.metaworld_task import MetaWorldTask
from qmp.environments.multitask import MultiTaskEnv
from qmp.rollout import unstable_per_task

pytestmark = [pytest.mark.filterwarnings("ignore:Constant.*too high"),
              pytest.mark.filterwarnings("ignore::RuntimeWarning")]


def first_tasks(spec: MultiTaskSpec, n: int = 2) -> MultiTaskSpec:
    """The benchmark cut to its first n tasks (task envs are built by index, so this is cheap)."""
    return dataclasses.replace(spec, task_names=spec.task_names[:n])


SPECS: dict[str, Callable[[], MultiTaskSpec]] = {
    "JacoReachMT5-v1": lambda: first_tasks(make_spec("JacoReachMT5-v1")),
    "MazeLarge-10-v0": lambda: make_spec("MazeLarge-10-v0", task_name="0,9"),
    "Walker2dMT4-v0": lambda: first_tasks(make_spec("Walker2dMT4-v0")),
    "KitchenMTEasy-v0": lambda: first_tasks(make_spec("KitchenMTEasy-v0")),
    "MetaWorldMT10-v2": lambda: make_spec("MetaWorldMT10-v2", task_name="reach-v3,window-open-v3"),
    "MetaWorldCDS-v1": lambda: make_spec("MetaWorldCDS-v1", task_name="door-open,drawer-close"),
}
UNSTABLE_REWARD = {"JacoReachMT5-v1": -100.0, "MazeLarge-10-v0": -1.0, "Walker2dMT4-v0": 0.0, "KitchenMTEasy-v0": -20.0,
                   "MetaWorldMT10-v2": 0.0, "MetaWorldCDS-v1": 0.0}
NORMAL_STEPS = {"JacoReachMT5-v1": 200, "MazeLarge-10-v0": 300, "Walker2dMT4-v0": 300, "KitchenMTEasy-v0": 60,
                "MetaWorldMT10-v2": 150, "MetaWorldCDS-v1": 150}
# the maze clips qvel to 5 before each step (as D4RL), so a huge qvel is harmless there
CASES = [(env_id, corrupt) for env_id in SPECS for corrupt in ("nan_qpos", "huge_qvel", "huge_force")
         if not (env_id == "MazeLarge-10-v0" and corrupt == "huge_qvel")]
_SPEC_CACHE: dict[str, MultiTaskSpec] = {}


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo appends its warnings to ./MUJOCO_LOG.TXT


def spec_of(env_id: str) -> MultiTaskSpec:
    if env_id not in _SPEC_CACHE:
        _SPEC_CACHE[env_id] = SPECS[env_id]()
    return _SPEC_CACHE[env_id]


def sim(env: Any) -> tuple[mujoco.MjModel, mujoco.MjData]:
    """The model and data a task env steps (Meta-World: those of the wrapped metaworld env)."""
    owner = env.env if isinstance(env, MetaWorldTask) else env
    return owner.model, owner.data


def corrupt(data: mujoco.MjData, how: str) -> None:
    if how == "nan_qpos":
        data.qpos[0] = np.nan
    elif how == "huge_qvel":
        data.qvel[:] = 1e8
    else:
        data.qfrc_applied[:] = 1e9


def random_actions(rng: np.random.Generator, env: MultiTaskEnv) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, (env.num_tasks, env.act_dim)).astype(np.float32)


@pytest.mark.parametrize(("env_id", "how"), CASES)
def test_unstable_step_ends_the_episode_is_counted_and_reset_recovers(env_id: str, how: str) -> None:
    env = MultiTaskEnv(spec_of(env_id), seed=0)
    env.reset()
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(2):
        res = env.step(random_actions(rng, env))
        episodes += res.episodes
        env.reset_tasks(res.done)
    last_good = env.obs[0].copy()
    elapsed = int(env.elapsed[0])
    corrupt(sim(env.envs[0])[1], how)
    res = env.step(random_actions(rng, env))
    episodes += res.episodes
    assert res.terminated[0] and not res.truncated[0]
    assert np.isfinite(res.next_obs).all() and np.isfinite(res.reward).all()
    np.testing.assert_array_equal(res.next_obs[0], last_good)
    assert res.reward[0] == UNSTABLE_REWARD[env_id]
    (episode,) = [e for e in res.episodes if e.task == 0]
    assert episode.terminated and episode.unstable and not episode.success and episode.length == elapsed + 1
    assert unstable_per_task(episodes, env.num_tasks).tolist() == [1] + [0] * (env.num_tasks - 1)

    env.reset_tasks(res.done)  # recovers: a fresh, finite episode that steps normally
    assert np.isfinite(env.obs).all() and env.elapsed[0] == 0
    for _ in range(5):
        res = env.step(random_actions(rng, env))
        episodes += res.episodes
        assert np.isfinite(res.next_obs).all() and np.isfinite(res.reward).all()
        env.reset_tasks(res.done)
    assert unstable_per_task(episodes, env.num_tasks).tolist() == [1] + [0] * (env.num_tasks - 1)

    single = env.envs[1]  # the task env's own report
    corrupt(sim(single)[1], how)
    obs, reward, terminated, truncated, info = single.step(np.zeros(env.act_dim, np.float32))
    assert terminated and not truncated and info["unstable"] and not info["success"]
    assert np.isfinite(obs).all() and reward == UNSTABLE_REWARD[env_id]
    env.close()


@pytest.mark.parametrize("env_id", list(SPECS))
def test_normal_random_stepping_is_never_unstable(env_id: str) -> None:
    env = MultiTaskEnv(spec_of(env_id), seed=0)  # seed 0 throughout: one cached Meta-World benchmark
    env.reset()
    rng = np.random.default_rng(1)
    episodes = []
    for _ in range(NORMAL_STEPS[env_id]):
        res = env.step(random_actions(rng, env))
        episodes += res.episodes
        env.reset_tasks(res.done)
    assert not any(e.unstable for e in episodes)
    env.close()


def test_sparse_maze_task_reports_its_own_lowest_reward() -> None:
    env = make_spec("MazeLarge-10-v0", task_name="0", sparse_tasks="0").make_task_env(0, 0, False)
    env.reset(seed=0)
    env.data.qpos[0] = np.nan
    _, reward, terminated, _, info = env.step(np.zeros(2, np.float32))
    assert terminated and info["unstable"] and reward == 0.0


def test_metaworld_errors_on_a_nan_state_count_as_unstable() -> None:
    """With MuJoCo's auto-reset off the NaN state reaches metaworld, whose reward code raises ValueError
    (reach: SVD in the observation, window-open: hamacher_product); any other ValueError is re-raised."""
    env = MultiTaskEnv(spec_of("MetaWorldMT10-v2"), seed=0)
    env.reset()
    for i in range(env.num_tasks):
        model, data = sim(env.envs[i])
        model.opt.disableflags |= mujoco.mjtDisableBit.mjDSBL_AUTORESET
        data.qpos[0] = np.nan
    res = env.step(np.zeros((env.num_tasks, env.act_dim), np.float32))
    assert res.terminated.all() and np.isfinite(res.next_obs).all() and (res.reward == 0.0).all()
    assert unstable_per_task(res.episodes, env.num_tasks).tolist() == [1] * env.num_tasks
    env.reset_tasks(res.done)
    assert np.isfinite(env.obs).all()
    res = env.step(np.zeros((env.num_tasks, env.act_dim), np.float32))
    assert not res.terminated.any() and not any(e.unstable for e in res.episodes)

    metaworld_env = env.envs[0].env

    def broken_step(action: np.ndarray) -> Any:
        raise ValueError("a bug, not an instability")

    metaworld_env.step = broken_step
    with pytest.raises(ValueError, match="a bug"):
        env.envs[0].step(np.zeros(env.act_dim, np.float32))
    env.close()
