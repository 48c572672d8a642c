"""Your own tasks: any list of gymnasium envs with equal spaces as a multi-task problem.

    def my_tasks(**_) -> MultiTaskSpec:                       # in my_package/tasks.py
        return gym_multitask("pendulums", [lambda: PendulumEnv(g=g) for g in (5.0, 9.81, 15.0)], horizon=200)

    python run.py qmp_dnc --env=my_package.tasks:my_tasks --n_policies 3

Each task is a gymnasium id (made with gymnasium.make) or a callable returning an env. The adapter scales
actions from [-1, 1] to the env's Box, lets MultiTaskEnv own the time limit (truncation never ends an
episode here; `horizon` does), and reads `info["success"]` when the env reports one. Exact resume pickles
the env: classic-control and most pure-python envs allow it; an env that cannot be pickled trains but
cannot write a checkpoint (a CheckpointError says so).
"""

from __future__ import annotations

import pickle
from collections.abc import Callable, Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from qmp.environments.base import MultiTaskSpec, TaskEnv

TaskMaker = str | Callable[[], gym.Env]


def _make(maker: TaskMaker) -> gym.Env:
    env = gym.make(maker) if isinstance(maker, str) else maker()
    return env.unwrapped if isinstance(maker, str) else env  # gymnasium.make's TimeLimit: the horizon rules


class GymTask(TaskEnv):
    """One gymnasium env as a task: actions in [-1, 1], float32 observations, no truncation of its own."""

    def __init__(self, env: gym.Env) -> None:
        if not isinstance(env.action_space, spaces.Box) or not isinstance(env.observation_space, spaces.Box):
            raise ValueError(f"{env}: a task needs Box observation and action spaces, got "
                             f"{env.observation_space} and {env.action_space}")
        self.env = env
        low, high = env.action_space.low.astype(np.float64), env.action_space.high.astype(np.float64)
        if not (np.isfinite(low).all() and np.isfinite(high).all()):
            raise ValueError(f"{env}: the action space must be bounded, got {env.action_space}")
        self.centre, self.half_range = (high + low) / 2, (high - low) / 2
        shape = env.observation_space.shape
        self.observation_space = spaces.Box(-np.inf, np.inf, shape, np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, env.action_space.shape, np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        obs, info = self.env.reset(seed=seed, options=options)
        return np.asarray(obs, np.float32), info

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        scaled = self.centre + self.half_range * np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        obs, reward, terminated, _, info = self.env.step(scaled.astype(self.env.action_space.dtype))
        return np.asarray(obs, np.float32), float(reward), bool(terminated), False, info

    def get_state(self) -> dict[str, Any]:
        try:
            return {"env": pickle.dumps(self.env)}
        except Exception as exc:  # pickling fails in many ways
            raise ValueError(f"{self.env} cannot be pickled ({type(exc).__name__}: {exc}), so this run cannot "
                             "be checkpointed; give a picklable env") from exc

    def set_state(self, state: dict[str, Any]) -> None:
        self.env = pickle.loads(state["env"])

    def render(self) -> Any:
        return self.env.render()

    def close(self) -> None:
        self.env.close()


def gym_multitask(name: str, tasks: Sequence[TaskMaker], horizon: int, task_names: Sequence[str] | None = None,
                  min_reward: float = 0.0, main_metric: str = "paper_success") -> MultiTaskSpec:
    """A MultiTaskSpec of gymnasium envs, one per task (ids or env constructors), stepped `horizon` steps per
    episode. `min_reward` is what UDS relabels shared rewards to (the lowest reward a step can give);
    `main_metric` is "return" for tasks that report no `success`, so progress lines and summaries show it."""
    if len(tasks) < 1 or horizon < 1:
        raise ValueError(f"need at least one task and a positive horizon, got {len(tasks)} tasks, horizon {horizon}")
    names = tuple(task_names) if task_names is not None else tuple(
        t if isinstance(t, str) else f"task{i}" for i, t in enumerate(tasks))
    if len(names) != len(tasks) or len(set(names)) != len(names):
        raise ValueError(f"task_names must name each of the {len(tasks)} tasks once, got {names}")

    def make(task: int, seed: int, evaluation: bool) -> TaskEnv:
        return GymTask(_make(tasks[task]))

    return MultiTaskSpec(name, names, horizon, min_reward, make, main_metric=main_metric)
