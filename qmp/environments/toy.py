"""ToyReach-v0: a tiny pure-numpy multi-task env for tests; Separated and QMP learn it in seconds.

A point starts near the origin and must reach its task's goal on a circle of radius 0.5 by moving
at most 0.1 per step. Goals of neighbouring tasks are close, so their policies share behaviour, the
situation QMP exploits. Reward -distance per step; success within 0.15 of the goal. No termination:
with SAC's entropy bonus a terminating goal would make living longer attractive, which slows learning
for no test value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from qmp.environments.base import MultiTaskSpec, TaskEnv, rng_state, set_rng_state

TOY_ANGLES_DEG = (0.0, 45.0, 90.0, 135.0)
TOY_HORIZON = 20
TOY_RADIUS = 0.5
TOY_STEP = 0.1
TOY_SUCCESS_DIST = 0.15


class ToyReachTask(TaskEnv):
    def __init__(self, goal: np.ndarray) -> None:
        self.goal = goal.astype(np.float64)
        self.observation_space = spaces.Box(-np.inf, np.inf, (2,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (2,), np.float32)
        self.pos = np.zeros(2)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.pos = self.np_random.uniform(-0.05, 0.05, size=2)
        return self.pos.astype(np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.pos = self.pos + TOY_STEP * np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        dist = float(np.linalg.norm(self.pos - self.goal))
        success = dist < TOY_SUCCESS_DIST
        return self.pos.astype(np.float32), -dist, False, False, {"success": success}

    def render(self) -> np.ndarray:
        """A 64x64 top view: the goal in green, the point in white (for video tests)."""
        image = np.zeros((64, 64, 3), np.uint8)
        for xy, colour in ((self.goal, (0, 200, 0)), (self.pos, (255, 255, 255))):
            col, row = np.clip(((np.asarray(xy) + 1.0) * 32).astype(int), 1, 62)
            image[63 - row - 1 : 63 - row + 2, col - 1 : col + 2] = colour
        return image

    def get_state(self) -> dict[str, Any]:
        return {"pos": self.pos.copy(), "rng": rng_state(self.np_random)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.pos = state["pos"].copy()
        set_rng_state(self.np_random, state["rng"])


def toy_reach(num_tasks: int = len(TOY_ANGLES_DEG), **_: Any) -> MultiTaskSpec:
    angles = np.deg2rad(np.asarray(TOY_ANGLES_DEG[:num_tasks]))
    goals = TOY_RADIUS * np.stack([np.cos(angles), np.sin(angles)], axis=1)

    def make(task: int, seed: int, evaluation: bool) -> TaskEnv:
        return ToyReachTask(goals[task])

    def reward(task: Any, obs: Any, act: Any, next_obs: Any) -> Any:
        """-|s' - goal_i|: task i's reward of any transition."""
        import torch

        goal = torch.as_tensor(goals, dtype=next_obs.dtype, device=next_obs.device)[task]
        return -(next_obs - goal).norm(dim=-1)

    names = tuple(f"reach-{int(a)}deg" for a in TOY_ANGLES_DEG[:num_tasks])
    return MultiTaskSpec("ToyReach-v0", names, TOY_HORIZON, min_reward=-1.5, make_task_env=make, reward=reward)
