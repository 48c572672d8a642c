"""Tiny training runs on every real benchmark: updates happen, episodes end, logs name the tasks."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from qmp.environments import ENVS
from qmp.methods import METHODS
from tests.helpers import tiny_flags, train

HORIZONS = {"JacoReachMT5-v1": 200, "JacoReachMT5Raised-v1": 200, "MazeLarge-10-v0": 600, "Walker2dMT4-v0": 1000,
            "MetaWorldCDS-v1": 500, "MetaWorldMT10-v2": 500, "MetaWorldMT50-v2": 500, "KitchenMTEasy-v0": 140}
MULTIHEAD = ["--policy_architecture", "multihead", "--Q_architecture", "multihead"]
# MT50 trains on three of its tasks that MT10 lacks: all 50 cost ~4 minutes (50 x 500 steps, each scoring 50
# proposals), and test_env_metaworld.py already builds and checks every MT50 task.
SUBSETS = {"MetaWorldMT50-v2": "basketball-v3,hammer-v3,soccer-v3"}


def test_every_registered_env_has_a_horizon_here() -> None:
    assert set(HORIZONS) | {"ToyReach-v0"} == set(ENVS)


@pytest.mark.slow
@pytest.mark.parametrize("env", sorted(HORIZONS))
def test_qmp_dnc_on_each_benchmark(env: str, tmp_path: Path) -> None:
    subset = SUBSETS.get(env)
    tasks, horizon = len(subset.split(",")) if subset else ENVS[env].preset["n_policies"], HORIZONS[env]
    evaluation = env != "MetaWorldMT50-v2"  # its separate evaluation benchmark costs another ~35 s
    flags = [*tiny_flags(tasks, horizon, evaluation), "--n_epochs", "1", "--gradient_steps_per_itr", str(tasks)]
    if subset:
        flags += ["--task_name", subset]
    rows = train("qmp_dnc", env, tmp_path, *flags)
    row = rows[-1]
    assert float(row["env_steps"]) >= tasks * horizon
    assert float(row["grad_steps"]) >= 1 and float(row["train/qf1_loss"]) >= 0
    assert float(row["collect/episodes"]) >= tasks  # each task ended at least one episode
    assert float(row["collect/own_policy_frac"]) <= 1.0
    task_columns = [k for k in row if k.startswith("collect/") and k.endswith("/return") and k.count("/") == 2]
    assert len(task_columns) == tasks
    if subset:  # the logs name the chosen tasks, in their order
        assert [c.split("/")[1] for c in task_columns] == subset.split(",")
    if evaluation:
        assert float(row["eval/episodes"]) == tasks
        assert 0.0 <= float(row["eval/success"]) <= 1.0


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_on_jaco(method: str, tmp_path: Path) -> None:
    arch = (MULTIHEAD[:2] if METHODS[method].multi_critic else
            MULTIHEAD if "separate" not in METHODS[method].architectures else [])
    rows = train(method, "JacoReachMT5-v1", tmp_path, *tiny_flags(5, 200), "--n_epochs", "1", *arch)
    row = rows[-1]
    assert float(row["grad_steps"]) > 0 and float(row["collect/episodes"]) >= 5
    assert float(row["eval/episodes"]) == 5
    assert 0.0 <= float(row["eval/stages_completed"]) <= 3.0


def test_simulators_are_imported_only_when_needed(tmp_path: Path) -> None:
    """A toy run must not import MuJoCo, Meta-World or gymnasium-robotics."""
    import subprocess

    code = (
        "import sys, run; run.main(['dnc_sac', '--env=ToyReach-v0', '--run_dir', sys.argv[1], '--n_epochs', '1']);"
        "heavy = [m for m in ('mujoco', 'metaworld', 'gymnasium_robotics') if m in sys.modules];"
        "print('HEAVY', heavy)"
    )
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                         cwd=Path(__file__).parents[1])
    assert out.returncode == 0, out.stderr
    assert "HEAVY []" in out.stdout
