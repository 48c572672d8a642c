"""JacoReachMT5-v1 ("Multistage Reacher"): a torque-controlled 6-DoF Jaco arm visits 3 subgoals.

Five tasks share one arm: four visit 3 of the subgoals g0..g3 in a task-specific order (one of them
sparse, one with a -2 per-step shift and +200 per reached subgoal), the fifth ("stay") keeps the hand
within 0.05 of where it was right after reset for 90 (not necessarily consecutive) steps. The stage
advances when the hand body comes within 0.05 of the current target; the episode ends after the 3rd
stage.

Start pose. JacoReachMT5-v1 starts, like the original, at the model's qpos0 = (0, 0, 0, 0, -2.8, 0)
plus noise: joint 5's ref (-2.8) puts it 2.1 rad below its range [-0.698, 0.698], and its limit
constraint pulls it back into range within 3 env steps. The shoulder then needs about 1.1x its torque
limit to hold the arm, so the hand sags toward the ground under zero action. JacoReachMT5Raised-v1
(not in the original) starts from a raised pose the shoulder can hold (0.87x), from which every task
can be completed. Both variants take the stay target at every reset, from the pose right after the
reset, as the original's training env did (docs/env_jaco.md explains why that is not "once per env").

Per-step distance. As in the original (mujoco_py after `mj_step`), the hand position of a step is the
one MuJoCo computed at the start of that step's last physics substep; `info["subgoal_reached"]` is the
original's per-step `success` (within 0.05 of the target in force during this step, before any stage
advance) and the spec's `paper_success_key`.

Other deviations (docs/env_jaco.md): the observation omits the task one-hot and hand xyz, the stage
one-hot shows the stage after this step's advance, `success` means all 3 stages, the evaluation copy
of the stay task is the stay task, and an unstable step is detected explicitly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import mujoco
import numpy as np

from qmp.environments.base import MultiTaskSpec, TaskEnv
from qmp.environments.mujoco_env import MujocoTaskEnv
from qmp.environments.stability import StabilityLimits

ASSET_PATH = Path(__file__).parent / "assets" / "jaco_reach.xml"
TASK_NAMES = ("reach-g0g1g2", "reach-g0g1g3-shifted", "reach-g1g3g2", "reach-g1g2g0-sparse", "stay")
SUBGOALS = np.array([[0.2, 0.3, 0.5], [0.3, 0.0, 0.3], [0.4, -0.3, 0.4], [0.4, 0.3, 0.2]])
TASK_SEQUENCES: tuple[tuple[int, int, int] | None, ...] = ((0, 1, 2), (0, 1, 3), (1, 3, 2), (1, 2, 0), None)
SPARSE_TASKS = (3,)
REWARD_SHIFT = (0.0, -2.0, 0.0, 0.0, 0.0)
TIME_REWARD = (True, False, True, True, True)  # False: +bonus on subgoal steps instead of -0.4*(3-stage)
HORIZON = 200
MIN_REWARD = -5.0
FRAME_SKIP = 4
NUM_STAGES = 3
SUCCESS_DIST = 0.05
STAY_STEPS_PER_STAGE = 30
INIT_NOISE = 0.01  # qpos U(+-0.01), qvel U(+-0.001)
ACTION_COST, VELOCITY_COST, ACCELERATION_COST = 0.01, 0.001, 1e-5
FAIL_PENALTY = 100.0
START_POSES = ("original", "raised")
# The raised variant's start: upper arm lifted 46 degrees (joint 2), elbow folded (joint 3), joint 5 at the
# lower bound the original's joint 5 is pulled to, 0.01 inside it so the reset noise keeps it in range.
# Holding it takes 0.87 of the shoulder's torque limit; the original's start takes 1.07-1.12.
RAISED_QPOS = np.array([0.0, -0.8, 0.6, 0.0, -0.698132 + INIT_NOISE, 0.0])
# rad/s and rad/s^2. Healthy steps stay far below: random actions < 30 rad/s, and the original start's
# joint-5 snap peaks at 41 rad/s and 5.3e3 rad/s^2 (measured over 200 seeds); beyond these the step is garbage.
STABILITY_LIMITS = StabilityLimits(max_abs_qvel=1e3, max_abs_qacc=1e7)


class JacoReachTask(MujocoTaskEnv):
    """One task of JacoReachMT5-v1. obs = qpos (6), qvel (6), stage one-hot (3).

    `start="original"` starts at the model's qpos0 (JacoReachMT5-v1), `start="raised"` at RAISED_QPOS
    (JacoReachMT5Raised-v1); both add the reset noise. Nothing else differs between the two.
    """

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 25}
    stability_limits = STABILITY_LIMITS

    def __init__(self, task: int, start: str = "original", render_mode: str | None = None, width: int = 480,
                 height: int = 480) -> None:
        if start not in START_POSES:
            raise ValueError(f"start must be one of {START_POSES}, got {start!r}")
        self.task = task
        self.start = start
        self.sequence = TASK_SEQUENCES[task]
        self.stay = self.sequence is None
        self.sparse = task in SPARSE_TASKS
        self.reward_shift = REWARD_SHIFT[task]
        self.time_reward = TIME_REWARD[task]
        model = mujoco.MjModel.from_xml_path(str(ASSET_PATH))
        super().__init__(model, "front", render_mode, 2 * model.nq + NUM_STAGES, width, height)
        self.hand_id = self.model.body("jaco_link_hand").id
        # qpos0 is (0, 0, 0, 0, -2.8, 0): joint 5's ref, outside its range (see the module docstring)
        self.init_qpos = self.model.qpos0.copy() if start == "original" else RAISED_QPOS.copy()
        self.stage = 0
        self.steps_in_range = 0
        self.stay_target = np.zeros(3)

    # ---- helpers -------------------------------------------------------------------------------
    @property
    def hand_pos(self) -> np.ndarray:
        return self.data.xpos[self.hand_id].copy()

    @property
    def target(self) -> np.ndarray:
        """The current subgoal (the stay target for the stay task)."""
        if self.stay:
            return self.stay_target
        return SUBGOALS[self.sequence[min(self.stage, NUM_STAGES - 1)]]

    def _obs(self) -> np.ndarray:
        stage_one_hot = np.zeros(NUM_STAGES)
        stage_one_hot[min(self.stage, NUM_STAGES - 1)] = 1.0
        return np.concatenate([self.data.qpos, self.data.qvel, stage_one_hot]).astype(np.float32)

    # ---- gymnasium API -------------------------------------------------------------------------
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:] = self.init_qpos + self.np_random.uniform(-INIT_NOISE, INIT_NOISE, self.model.nq)
        self.data.qvel[:] = self.np_random.uniform(-0.1 * INIT_NOISE, 0.1 * INIT_NOISE, self.model.nv)
        mujoco.mj_forward(self.model, self.data)
        self.stage = 0
        self.steps_in_range = 0
        # The original's stay target is a live view of the hand position that its training env copies
        # into the target at every reset, after the reset pose is set: so here too, at every reset.
        self.stay_target = self.hand_pos
        self.data.mocap_pos[0] = self.target
        self._last_obs = self._obs()
        return self._last_obs.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        action = np.clip(np.asarray(action, np.float64).reshape(-1), -1.0, 1.0)
        self.data.ctrl[:] = action
        if self._step_physics(FRAME_SKIP):
            info = {"subgoal_reached": False, "stages_completed": min(self.stage, NUM_STAGES), "dist": float("nan")}
            return self._unstable_step(-FAIL_PENALTY, info)
        # data.xpos is still the one computed at the start of the last substep (no mj_kinematics here): the
        # original read the hand position the same way, and the joint-5 snap of step 1 makes it matter.
        dist = float(np.linalg.norm(self.hand_pos - self.target))  # against the target in force during this step
        reached = dist < SUCCESS_DIST
        terminated = False
        if reached:
            if self.stay:
                self.steps_in_range += 1
                self.stage = self.steps_in_range // STAY_STEPS_PER_STAGE
            else:
                self.stage += 1
                if self.stage < NUM_STAGES:
                    self.data.mocap_pos[0] = self.target
            terminated = self.stage >= NUM_STAGES
        reward = self._reward(action, dist, reached)
        info = {"success": terminated, "subgoal_reached": reached, "stages_completed": self.stage,
                "unstable": False, "dist": dist}
        self._last_obs = self._obs()
        return self._last_obs.copy(), reward, terminated, False, info

    def _reward(self, action: np.ndarray, dist: float, reached: bool) -> float:
        """dist term + stage term + control term + shift, with the stage counted after this step."""
        ctrl = -ACTION_COST * float(np.square(action).sum())
        ctrl -= VELOCITY_COST * float(np.abs(self.data.qvel).mean())
        ctrl -= ACCELERATION_COST * float(np.abs(self.data.qacc).mean())
        dist_term = 0.0 if self.sparse else -dist
        if self.stay:
            stage_term = 0.0
        elif self.time_reward:
            stage_term = -0.4 * max(NUM_STAGES - self.stage, 0)
        else:
            stage_term = (abs(self.reward_shift) + 1.0) * 200.0 / NUM_STAGES * float(reached)
        return dist_term + stage_term + ctrl + self.reward_shift

    # ---- state and rendering -------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        return {"stage": self.stage, "steps_in_range": self.steps_in_range, "stay_target": self.stay_target.copy()}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.stage = int(extra["stage"])
        self.steps_in_range = int(extra["steps_in_range"])
        self.stay_target = extra["stay_target"].copy()

    def _recompute_after_restore(self) -> None:
        """Positions only (what render reads): mj_forward would rewrite the solver warm start."""
        mujoco.mj_kinematics(self.model, self.data)

    def render(self) -> np.ndarray | None:
        if self.render_mode == "rgb_array":
            mujoco.mj_kinematics(self.model, self.data)  # place the mocap target where it was just moved
        return super().render()


def stage_of(obs: Any) -> Any:
    """The stage (0, 1, 2) of observations (torch or numpy, any leading shape): the stage one-hot's index."""
    return obs[..., -NUM_STAGES:].argmax(-1)


def _spec(name: str, start: str, render_mode: str | None) -> MultiTaskSpec:
    def make(task: int, seed: int, evaluation: bool) -> TaskEnv:
        return JacoReachTask(task, start=start, render_mode=render_mode)

    # paper_success: the original logged "any step within 0.05 of the current target" as its success
    return MultiTaskSpec(name, TASK_NAMES, HORIZON, MIN_REWARD, make, extra_info_keys=("subgoal_reached",),
                         paper_success_key="subgoal_reached", stage_of=stage_of)


def jaco_reach_mt5(render_mode: str | None = None, **_: Any) -> MultiTaskSpec:
    """The 5-task benchmark as the original ran it (start at qpos0, the arm sags); extra kwargs of the CLI
    (sparse_tasks, ...) do not apply and are ignored."""
    return _spec("JacoReachMT5-v1", "original", render_mode)


def jaco_reach_mt5_raised(render_mode: str | None = None, **_: Any) -> MultiTaskSpec:
    """Not in the original: the same 5 tasks from a raised start pose the arm can hold."""
    return _spec("JacoReachMT5Raised-v1", "raised", render_mode)
