"""Your own tasks, worked example: swinging up gymnasium's pendulum under three gravities, as one multi-task
problem. Every task has the same spaces, so one Q-switch can compare all policies on every task.

    python run.py qmp_dnc --env=examples.pendulum_tasks:pendulums --n_policies 3 --n_epochs 20
    python run.py dnc_sac --env=examples.pendulum_tasks:pendulums --n_policies 3 --n_epochs 20

(from the repository root, so that `examples` is importable; any importable module works the same way.)
"""

from __future__ import annotations

from functools import partial
from typing import Any

from gymnasium.envs.classic_control.pendulum import PendulumEnv

from qmp.environments.base import MultiTaskSpec
from qmp.environments.gym_tasks import gym_multitask

GRAVITIES = (5.0, 9.81, 15.0)


def pendulums(**_: Any) -> MultiTaskSpec:
    """The factory run.py calls (it passes --task_name, --sparse_tasks and render_mode as keywords)."""
    tasks = [partial(PendulumEnv, g=g) for g in GRAVITIES]
    names = [f"pendulum-g{g:g}" for g in GRAVITIES]
    # a pendulum step costs at most pi^2 + 0.1 * 8^2 + 0.001 * 2^2: its lowest reward, for UDS relabelling
    # no success to report: the return is the metric to watch
    return gym_multitask("pendulums", tasks, horizon=200, task_names=names, min_reward=-16.2736044,
                         main_metric="return")
