"""Every task env is in gymnasium's registry as qmp/<Benchmark>-task<i>-v<version>, and passes gymnasium's
env checker when made through gymnasium.make (so SB3 or CleanRL can train a single task)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import gymnasium as gym
import pytest
from gymnasium.utils.env_checker import check_env

from qmp.environments import ENVS, TASK_IDS, make_spec
from qmp.environments.gym_registry import task_id

ROOT = Path(__file__).resolve().parents[1]
CHEAP = ["JacoReachMT5-v1", "JacoReachMT5Raised-v1", "MazeLarge-10-v0", "Walker2dMT4-v0", "KitchenMTEasy-v0",
         "ToyReach-v0", "MetaWorldCDS-v1", "MetaWorldMT10-v2"]  # MT50 below, on a sample: its benchmark takes 35 s


def test_every_task_of_every_benchmark_is_registered_without_importing_a_simulator() -> None:
    assert len(TASK_IDS) == sum(entry.preset["n_policies"] for entry in ENVS.values()) == len(set(TASK_IDS))
    assert task_id("JacoReachMT5-v1", 4) == "qmp/JacoReachMT5-task4-v1" and "qmp/MetaWorldMT50-task49-v2" in TASK_IDS
    code = "import sys, qmp.environments; print(any(m in sys.modules for m in ('mujoco', 'metaworld', 'torch')))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", CHEAP)
def test_registered_horizon_and_task_count_match_the_spec(name: str) -> None:
    spec = make_spec(name)
    assert (spec.num_tasks, spec.max_episode_steps) == (ENVS[name].preset["n_policies"], ENVS[name].horizon)


@pytest.mark.slow
@pytest.mark.parametrize("name", CHEAP + ["MetaWorldMT50-v2"])
def test_every_task_env_passes_gymnasiums_checker(name: str) -> None:
    tasks = range(ENVS[name].preset["n_policies"])
    if name == "MetaWorldMT50-v2":
        tasks = (0, 17, 49)
    for task in tasks:
        env = gym.make(task_id(name, task))
        assert env.spec is not None and env.spec.max_episode_steps == ENVS[name].horizon
        check_env(env.unwrapped, skip_render_check=True)
        env.reset(seed=0)
        env.step(env.action_space.sample())
        env.close()
