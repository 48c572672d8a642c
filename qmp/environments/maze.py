"""MazeLarge-10-v0: ten start->goal tasks for a point mass in D4RL's LARGE_MAZE.

Coordinates are the original's: qpos (x, y) = (row, column) of the layout string, and a task's start
and goal are integer (row, column) cells. D4RL places the particle body at (1.2, 1.2) but the wall of
cell (r, c) at (r + 1, c + 1), so in qpos units the wall blocks are centred at (r - 0.2, c - 0.2) and
the open cell (r, c) spans [r - 0.7, r + 0.3] x [c - 0.7, c + 0.3]. We keep that geometry exactly by
putting the particle at the origin and the walls at (r - 0.2, c - 0.2): qpos is then the world xy.

The goal is not observed: obs = (x, y, vx, vy). Reward exp(-|xy - goal|) - 1 per step (or 1 at
success for sparse tasks), success and termination within 0.5 of the goal. An unstable simulator
step (stability.py) ends the episode with the last good observation and the task's lowest reward
(-1, or 0 for a sparse task).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import mujoco
import numpy as np

from qmp.environments.base import MultiTaskSpec, TaskEnv
from qmp.environments.mujoco_env import MujocoTaskEnv
from qmp.environments.task_subset import TaskSubset, parse_task_subset

LARGE_MAZE = (
    "############",
    "#OOOO#OOOOO#",
    "#O##O#O#O#O#",
    "#OOOOOO#OOO#",
    "#O####O###O#",
    "#OO#O#OOOOO#",
    "##O#O#O#O###",
    "#OO#OOO#OOO#",
    "############",
)
WALL_OFFSET = 0.2  # D4RL: particle body at 1.2, walls at cell + 1.0 (see the module docstring)

# (group, start cell, goal cell), in (row, column) = qpos units; in the row order of the original's
# large_10t_train_goals.csv, which its metadata groups short/medium/long by optimal path length.
MAZE_TASKS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("short", (1, 3), (5, 8)),
    ("short", (1, 10), (2, 4)),
    ("short", (4, 1), (1, 7)),
    ("short", (7, 4), (4, 10)),
    ("medium", (1, 3), (7, 4)),
    ("medium", (1, 7), (7, 10)),
    ("medium", (5, 4), (7, 9)),
    ("medium", (7, 1), (2, 6)),
    ("long", (1, 2), (3, 10)),
    ("long", (7, 2), (6, 8)),
)
MAZE_HORIZON = 600
MAZE_SUCCESS_DIST = 0.5
MAZE_MAX_SPEED = 5.0
MAZE_RESET_POS_NOISE = 0.1
MAZE_RESET_VEL_STD = 0.1


def is_open(layout: Sequence[str], cell: tuple[int, int]) -> bool:
    row, col = cell
    return 0 <= row < len(layout) and 0 <= col < len(layout[0]) and layout[row][col] != "#"


def maze_xml(layout: Sequence[str]) -> str:
    """The D4RL point-maze MJCF (same options, defaults, particle and unit wall boxes).

    The ground plane is visual only: in D4RL it touches the particle with a frictionless (condim 1)
    contact along z, which is not a degree of freedom, so it never changed the x, y dynamics.
    """
    walls = "\n".join(
        f'    <geom name="wall_{r}_{c}" type="box" material="wall" conaffinity="1" '
        f'pos="{r - WALL_OFFSET} {c - WALL_OFFSET} 0" size="0.5 0.5 0.2"/>'
        for r, line in enumerate(layout)
        for c, tile in enumerate(line)
        if tile == "#"
    )
    centre_r, centre_c = (len(layout) - 1) / 2 - WALL_OFFSET, (len(layout[0]) - 1) / 2 - WALL_OFFSET
    return f"""<mujoco model="point_maze">
  <compiler inertiafromgeom="true" angle="radian" coordinate="local"/>
  <option timestep="0.01" gravity="0 0 0" iterations="20" integrator="Euler"/>
  <default>
    <joint damping="1" limited="false"/>
    <geom friction=".5 .1 .1" density="1000" margin="0.002" condim="1" contype="2" conaffinity="1"/>
  </default>
  <asset>
    <texture type="2d" name="groundplane" builtin="checker" rgb1="0.2 0.3 0.4" rgb2="0.1 0.2 0.3"
             width="100" height="100"/>
    <material name="groundplane" texture="groundplane" texrepeat="20 20"/>
    <material name="wall" rgba=".7 .5 .3 1"/>
  </asset>
  <visual><headlight ambient=".4 .4 .4" diffuse=".8 .8 .8" specular="0.1 0.1 0.1"/></visual>
  <worldbody>
    <geom name="ground" type="plane" size="40 40 0.25" pos="0 0 -0.1" contype="0" conaffinity="0"
          material="groundplane"/>
    <site name="goal" pos="0 0 0" size="0.2" rgba=".8 .2 .2 .6"/>
    <camera name="top" pos="{centre_r} {centre_c} 16" xyaxes="0 1 0 -1 0 0"/>
    <body name="particle" pos="0 0 0">
      <geom name="particle_geom" type="sphere" size="0.1" rgba="0.1 0.2 1.0 1" contype="1"/>
      <joint name="ball_x" type="slide" pos="0 0 0" axis="1 0 0"/>
      <joint name="ball_y" type="slide" pos="0 0 0" axis="0 1 0"/>
    </body>
{walls}
  </worldbody>
  <actuator>
    <motor joint="ball_x" ctrlrange="-1 1" ctrllimited="true" gear="100"/>
    <motor joint="ball_y" ctrlrange="-1 1" ctrllimited="true" gear="100"/>
  </actuator>
</mujoco>
"""


class MazeTask(MujocoTaskEnv):
    """One start->goal task of the point maze."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 100}

    def __init__(self, xml: str, start: tuple[int, int], goal: tuple[int, int], sparse: bool,
                 render_mode: str | None = None) -> None:
        model = mujoco.MjModel.from_xml_string(xml)
        model.site("goal").pos[:2] = goal  # a marker for rendering only
        super().__init__(model, "top", render_mode, obs_dim=4)
        self.start = np.asarray(start, np.float64)
        self.goal = np.asarray(goal, np.float64)
        self.sparse = sparse
        self.unstable_reward = 0.0 if sparse else -1.0  # the task's lowest per-step reward

    def _obs(self) -> np.ndarray:
        return np.concatenate([self.data.qpos, self.data.qvel]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = self.start + self.np_random.uniform(-MAZE_RESET_POS_NOISE, MAZE_RESET_POS_NOISE, 2)
        self.data.qvel[:] = self.np_random.standard_normal(2) * MAZE_RESET_VEL_STD
        mujoco.mj_forward(self.model, self.data)
        self._last_obs = self._obs()
        return self._last_obs.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        # As D4RL: clip the velocity of the current state, then one Euler step with ctrl = action.
        np.clip(self.data.qvel, -MAZE_MAX_SPEED, MAZE_MAX_SPEED, out=self.data.qvel)
        self.data.ctrl[:] = np.clip(action, -1.0, 1.0)
        if self._step_physics():
            return self._unstable_step(self.unstable_reward, {"distance": float("nan")})
        distance = float(np.linalg.norm(self.data.qpos - self.goal))
        success = distance <= MAZE_SUCCESS_DIST
        if self.sparse:
            reward = 1.0 if success else 0.0
        else:
            reward = float(np.exp(-distance) - 1.0)
        self._last_obs = self._obs()
        info = {"success": success, "distance": distance, "unstable": False}
        return self._last_obs.copy(), reward, success, False, info


def task_label(index: int) -> str:
    group, (r0, c0), (r1, c1) = MAZE_TASKS[index]
    return f"{group}-({r0},{c0})->({r1},{c1})"


def maze_large_10(task_name: TaskSubset = None, sparse_tasks: TaskSubset = None, render_mode: str | None = None,
                  **_: Any) -> MultiTaskSpec:
    """`task_name`: a subset of the 10 tasks by index ("0,9" or [0, 9]; labels too, in a list: they hold
    commas), default all; `sparse_tasks`: tasks (same numbering) whose reward is 1 at success, else 0."""
    labels = [task_label(i) for i in range(len(MAZE_TASKS))]
    selected = parse_task_subset(task_name, labels, "MazeLarge-10-v0") or list(range(len(MAZE_TASKS)))
    sparse = set(parse_task_subset(sparse_tasks, labels, "MazeLarge-10-v0", "sparse_tasks"))
    xml = maze_xml(LARGE_MAZE)

    def make(task: int, seed: int, evaluation: bool) -> TaskEnv:
        index = selected[task]
        _, start, goal = MAZE_TASKS[index]
        return MazeTask(xml, start, goal, index in sparse, render_mode)

    goals = np.array([MAZE_TASKS[i][2] for i in selected], np.float64)
    sparse_mask = np.array([i in sparse for i in selected])

    def reward(task: Any, obs: Any, act: Any, next_obs: Any) -> Any:
        """Task i's reward of any transition: a function of the position in s' and task i's goal."""
        import torch

        goal = torch.as_tensor(goals, dtype=next_obs.dtype, device=next_obs.device)[task]
        distance = (next_obs[..., :2] - goal).norm(dim=-1)
        is_sparse = torch.as_tensor(sparse_mask, device=next_obs.device)[task]
        return torch.where(is_sparse, (distance <= MAZE_SUCCESS_DIST).to(distance.dtype), torch.exp(-distance) - 1.0)

    names = tuple(task_label(i) for i in selected)
    return MultiTaskSpec("MazeLarge-10-v0", names, MAZE_HORIZON, min_reward=-1.0, make_task_env=make, reward=reward)
