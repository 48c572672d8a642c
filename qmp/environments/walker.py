"""Walker2dMT4-v0: a planar walker that runs forward, runs backward, balances, or crawls under a
ceiling (the transition-style walker tasks of youngwoon/transition, as the original used).

Common terms, with dt = 4 x 2 ms: v = dx/dt of the root, v_c = 3 - |v - 3|, nz = cos(torso angle),
dh = torso z - max foot z (body frames), ctrl = -1e-3 |a|^2, foot = -0.01 (|d right-foot angle| +
|d left-foot angle|) / dt, alive = +1. Rewards and terminations per task are in WALKER_TASKS.

"success" is surviving to step 1000. The original also ended the episode there and stored that step
as terminal; here the task env does not terminate on it (MultiTaskEnv truncates at the 1000-step
horizon), so the time limit is never learned as a real end.

An unstable simulator step (stability.py) ends the episode with the last good observation and reward
UNSTABLE_REWARD = 0 (the spec's min_reward: no alive bonus, no shaping terms).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import mujoco
import numpy as np

from qmp.environments.base import MultiTaskSpec, TaskEnv
from qmp.environments.mujoco_env import MujocoTaskEnv

WALKER_XML = Path(__file__).parent / "assets" / "walker_planar.xml"
WALKER_HORIZON = 1000
FRAME_SKIP = 4
INIT_NOISE = 0.01
MAX_OBS_QVEL = 10.0
TARGET_SPEED = 3.0
TARGET_DELTA_H = 1.1
CTRL_COST = 1e-3
# The crawl ceiling: a box of half-size (6, 2, 0.1) centred at (8, 0, 1.0), i.e. x in [2, 14],
# z in [0.9, 1.1] (the original's "ceiling_long" placed at x = 2 + its half length, height 1.0).
CEILING_HALF_SIZE = (6.0, 2.0, 0.1)
CEILING_POS = (8.0, 0.0, 1.0)
MIN_REWARD = 0.0  # the spec's min_reward (UDS relabelling)
UNSTABLE_REWARD = MIN_REWARD


@dataclass(frozen=True)
class WalkerTaskConfig:
    """Reward weights and termination of one task (the original per-task config values)."""

    name: str
    velocity: str  # "capped": vel_coef * v_c of direction * v; "still": -vel_coef * |v|
    direction: float
    vel_coef: float
    height_coef: float  # weight of -|1.1 - dh|
    foot_coef: float
    random_steps: int  # random actions after the reset, not counted as steps
    min_height: float  # terminate when the torso height (qpos[1]) drops below
    ceiling: bool  # crawl: add the ceiling, -10 and terminate on touching it
    collision_penalty: float = 0.0
    angle_coef: float = 0.1
    alive: float = 1.0


WALKER_TASKS = (
    WalkerTaskConfig("forward", "capped", 1.0, 1.0, 1.0, 0.01, 5, 0.8, False),
    WalkerTaskConfig("backward", "capped", -1.0, 1.0, 1.0, 0.01, 5, 0.8, False),
    WalkerTaskConfig("balance", "still", 1.0, 1.0, 0.5, 0.0, 10, 0.8, False),
    WalkerTaskConfig("crawl", "capped", 1.0, 2.0, 0.0, 0.01, 5, 0.3, True, collision_penalty=10.0),
)


def build_walker_model(ceiling: bool) -> mujoco.MjModel:
    spec = mujoco.MjSpec.from_file(str(WALKER_XML))
    if ceiling:
        spec.worldbody.add_geom(
            name="ceiling", type=mujoco.mjtGeom.mjGEOM_BOX, size=list(CEILING_HALF_SIZE),
            pos=list(CEILING_POS), contype=1, conaffinity=1, rgba=[0.3, 0.3, 0.9, 1.0],
        )
    return spec.compile()


class WalkerTask(MujocoTaskEnv):
    """One task of the walker benchmark."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 125}

    def __init__(self, config: WalkerTaskConfig, render_mode: str | None = None) -> None:
        self.config = config
        super().__init__(build_walker_model(config.ceiling), "track", render_mode, obs_dim=17)
        self.dt = self.model.opt.timestep * FRAME_SKIP
        self.torso_id = self.model.body("torso").id
        self.feet_ids = [self.model.body("foot").id, self.model.body("foot_left").id]
        self.ceiling_id = self.model.geom("ceiling").id if config.ceiling else -1
        self.t = 0

    def _obs(self) -> np.ndarray:
        qvel = np.clip(self.data.qvel, -MAX_OBS_QVEL, MAX_OBS_QVEL)
        return np.concatenate([self.data.qpos[1:], qvel]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        nq, nv = self.model.nq, self.model.nv
        self.data.qpos[:] = self.model.qpos0 + self.np_random.uniform(-INIT_NOISE, INIT_NOISE, nq)
        self.data.qvel[:] = self.np_random.uniform(-INIT_NOISE, INIT_NOISE, nv)
        mujoco.mj_forward(self.model, self.data)
        for _ in range(self.config.random_steps):  # a perturbation, not part of the episode
            self.data.ctrl[:] = self.np_random.uniform(-1.0, 1.0, self.model.nu)
            mujoco.mj_step(self.model, self.data, nstep=FRAME_SKIP)
        self.t = 0
        self._last_obs = self._obs()
        return self._last_obs.copy(), {}

    def touches_ceiling(self) -> bool:
        if self.ceiling_id < 0 or self.data.ncon == 0:
            return False
        return bool(np.any(self.data.contact.geom[: self.data.ncon] == self.ceiling_id))

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        cfg = self.config
        action = np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        qpos = self.data.qpos
        x_before, right_before, left_before = qpos[0], qpos[5], qpos[8]
        self.data.ctrl[:] = action
        if self._step_physics(FRAME_SKIP):
            self.t += 1
            return self._unstable_step(UNSTABLE_REWARD, {"x_velocity": 0.0, "touches_ceiling": False})
        x_velocity = (qpos[0] - x_before) / self.dt
        foot_speed = (abs(qpos[5] - right_before) + abs(qpos[8] - left_before)) / self.dt
        height, angle = qpos[1], qpos[2]
        delta_h = self.data.xpos[self.torso_id, 2] - max(self.data.xpos[i, 2] for i in self.feet_ids)
        if cfg.velocity == "still":
            velocity_reward = -cfg.vel_coef * abs(x_velocity)
        else:
            v = cfg.direction * x_velocity
            velocity_reward = cfg.vel_coef * (TARGET_SPEED - abs(v - TARGET_SPEED))
        touched = self.touches_ceiling()
        reward = (
            velocity_reward
            + cfg.angle_coef * np.cos(angle)
            - cfg.height_coef * abs(TARGET_DELTA_H - delta_h)
            - CTRL_COST * float(np.square(action).sum())
            + cfg.alive
            - cfg.foot_coef * foot_speed
            - cfg.collision_penalty * touched
        )
        terminated = bool(height < cfg.min_height or touched)
        self.t += 1
        info = {
            "success": not terminated and self.t >= WALKER_HORIZON,
            "x_velocity": float(x_velocity),
            "touches_ceiling": touched,
            "unstable": False,
        }
        self._last_obs = self._obs()
        return self._last_obs.copy(), float(reward), terminated, False, info

    def _extra_state(self) -> dict[str, Any]:
        return {"t": self.t}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.t = int(extra["t"])


def walker2d_mt4(render_mode: str | None = None, **_: Any) -> MultiTaskSpec:
    def make(task: int, seed: int, evaluation: bool) -> TaskEnv:
        return WalkerTask(WALKER_TASKS[task], render_mode)

    names = tuple(cfg.name for cfg in WALKER_TASKS)
    return MultiTaskSpec("Walker2dMT4-v0", names, WALKER_HORIZON, min_reward=MIN_REWARD, make_task_env=make,
                         extra_info_keys=("x_velocity",))
