"""KitchenMTEasy-v0: ten single-object tasks in the Franka kitchen (the original's MT_EASY benchmark).

The scene, robot model, joint limits and noise amplitudes are gymnasium-robotics' FrankaKitchen-v1
(the MuJoCo port of D4RL's kitchen). We load its MJCF and config directly and step MuJoCo ourselves
instead of wrapping `gym.make("FrankaKitchen-v1")`: that env draws noise from its own RNG, computes
qvel noise we never observe and returns a goal dict; the control law below is the same one it (and
D4RL) uses. Every task env of a process shares one read-only `MjModel` (loading it takes ~0.6 s).

Per task: the element starts in its "from" configuration (open/on for close/off tasks), and the
episode succeeds (reward +2800, terminated) once the element's joint distance to its goal falls
below the task threshold. An unstable simulator step (stability.py) ends the episode with the last
observation and the lowest shaped reward, -20. docs/env_kitchen.md lists every deviation from the original.
"""

from __future__ import annotations

import functools
import os
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from typing import Any, ClassVar

import mujoco
import numpy as np

from qmp.environments.base import MultiTaskSpec, TaskEnv
from qmp.environments.mujoco_env import MujocoTaskEnv

KITCHEN_HORIZON = 140
REWARD_SCALE = 20.0
SUCCESS_REWARD = REWARD_SCALE * KITCHEN_HORIZON  # the original's early-termination bonus: 2800
UNSTABLE_REWARD = -REWARD_SCALE  # the lowest shaped reward (in_place = reach = 0), also the spec's min_reward
FRAME_SKIP = 40  # 40 x 2 ms = 80 ms per env step (12.5 Hz), as in D4RL and FrankaKitchen-v1
ACTION_SCALE = 2.0  # a in [-1, 1] -> joint velocity in [-2, 2] rad/s (D4RL's act_amp)
OBS_NOISE_RATIO = 0.1  # D4RL's robot_noise_ratio ("10% as per robot_config specs")
HAND_REACH_RADIUS = 0.08
TOLERANCE_VALUE_AT_MARGIN = 0.1
NUM_ROBOT_QPOS = 9
NUM_QPOS = 30  # 9 robot + 21 object joint positions (kettle free joint = 7)

# D4RL's reset pose (identical in gymnasium-robotics' KitchenEnv): robot, knobs/burners, light,
# slide cabinet, hinge cabinet doors, microwave, kettle pose.
INIT_QPOS = np.array([
    1.48388023e-01, -1.76848573e00, 1.84390296e00, -2.47685760e00, 2.60252026e-01, 7.12533105e-01,
    1.59515394e00, 4.79267505e-02, 3.71350919e-02, -2.66279850e-04, -5.18043486e-05, 3.12877220e-05,
    -4.51199853e-05, -3.90842156e-06, -4.22629655e-05, 6.28065475e-05, 4.04984708e-05, 4.62730939e-04,
    -2.26906415e-04, -4.65501369e-04, -6.44129196e-03, -1.77048263e-03, 1.08009684e-03, -2.69397440e-01,
    3.50383255e-01, 1.61944683e00, 1.00618764e00, 4.06395120e-03, -6.62095997e-03, -2.68278933e-04,
])  # fmt: skip

# qpos indices, "on/open" goals (gymnasium-robotics OBS_ELEMENT_INDICES / OBS_ELEMENT_GOALS) and the
# site the gripper is rewarded for approaching (the original's OBS_ELEMENT_SITES).
ELEMENT_QPOS = {
    "bottom burner": np.array([11, 12]),
    "top burner": np.array([15, 16]),
    "light switch": np.array([17, 18]),
    "slide cabinet": np.array([19]),
    "hinge cabinet": np.array([20, 21]),
    "microwave": np.array([22]),
    "kettle": np.arange(23, 30),
}
ELEMENT_ON_GOAL = {
    "bottom burner": np.array([-0.88, -0.01]),
    "top burner": np.array([-0.92, -0.01]),
    "light switch": np.array([-0.69, -0.05]),
    "slide cabinet": np.array([0.37]),
    "hinge cabinet": np.array([0.0, 1.45]),
    "microwave": np.array([-0.75]),
    "kettle": np.array([-0.23, 0.75, 1.62, 0.99, 0.0, 0.0, -0.06]),
}
ELEMENT_SITE = {
    "bottom burner": "knob2_site",
    "top burner": "knob4_site",
    "light switch": "light_site",
    "slide cabinet": "slide_site",
    "hinge cabinet": "hinge_site2",
}
# The original always overwrote these elements' goal entries with their "open/push/on" goals.
QUIRK_GOAL_ELEMENTS = ("microwave", "kettle", "bottom burner", "light switch")


@dataclass(frozen=True)
class KitchenTask:
    name: str
    element: str
    turn_on: bool  # open/on (start at the reset pose) vs close/off (start at the on goal)
    threshold: float

    @property
    def goal(self) -> np.ndarray:
        return ELEMENT_ON_GOAL[self.element] if self.turn_on else INIT_QPOS[ELEMENT_QPOS[self.element]]

    @property
    def start(self) -> np.ndarray:
        return INIT_QPOS[ELEMENT_QPOS[self.element]] if self.turn_on else ELEMENT_ON_GOAL[self.element]


MT_EASY_TASKS = (
    KitchenTask("slide-cabinet-open", "slide cabinet", True, 0.1),
    KitchenTask("slide-cabinet-close", "slide cabinet", False, 0.1),
    KitchenTask("hinge-cabinet-open", "hinge cabinet", True, 0.1),
    KitchenTask("hinge-cabinet-close", "hinge cabinet", False, 0.3),
    KitchenTask("bottom-burner-on", "bottom burner", True, 0.3),
    KitchenTask("bottom-burner-off", "bottom burner", False, 0.3),
    KitchenTask("top-burner-on", "top burner", True, 0.3),
    KitchenTask("top-burner-off", "top burner", False, 0.3),
    KitchenTask("light-switch-on", "light switch", True, 0.3),
    KitchenTask("light-switch-off", "light switch", False, 0.3),
)


def tolerance(x: float, upper: float, margin: float) -> float:
    """dm_control's Gaussian `tolerance` with bounds (0, upper): 1 inside, 0.1 at `margin` beyond."""
    if x <= upper:
        return 1.0
    if margin <= 0.0:
        return 0.0
    scale = np.sqrt(-2.0 * np.log(TOLERANCE_VALUE_AT_MARGIN))
    return float(np.exp(-0.5 * ((x - upper) / margin * scale) ** 2))


def goal_vector(task: KitchenTask, quirk: bool) -> np.ndarray:
    """The 30-dim goal part of the observation, indexed like qpos (zeros outside goal elements)."""
    goal = np.zeros(NUM_QPOS)
    goal[ELEMENT_QPOS[task.element]] = task.goal
    if quirk:
        for element in QUIRK_GOAL_ELEMENTS:
            goal[ELEMENT_QPOS[element]] = ELEMENT_ON_GOAL[element]
    return goal


def _asset_dir() -> str:
    import importlib.util

    spec = importlib.util.find_spec("gymnasium_robotics")
    if spec is None or spec.origin is None:
        raise ImportError("KitchenMTEasy-v0 needs gymnasium-robotics (its Franka kitchen assets)")
    return os.path.join(os.path.dirname(spec.origin), "envs", "assets", "kitchen_franka")


@functools.lru_cache(maxsize=1)
def kitchen_model() -> mujoco.MjModel:
    """The FrankaKitchen-v1 scene, loaded once per process and shared read-only by all task envs."""
    return mujoco.MjModel.from_xml_path(os.path.join(_asset_dir(), "kitchen_assets", "kitchen_env_model.xml"))


@functools.lru_cache(maxsize=1)
def robot_config() -> dict[str, np.ndarray]:
    """Joint bounds and noise amplitudes for qpos0..qpos29 from the package's franka_config.xml."""
    root = ET.parse(os.path.join(_asset_dir(), "franka_assets", "franka_config.xml")).getroot()
    rows = [root.find(f"qpos{i}") for i in range(NUM_QPOS)]

    def floats(key: str) -> np.ndarray:
        return np.array([[float(v) for v in row.get(key).split()] for row in rows])

    return {"pos_bound": floats("pos_bound"), "vel_bound": floats("vel_bound"),
            "pos_noise_amp": floats("pos_noise_amp")[:, 0]}


class KitchenTaskEnv(MujocoTaskEnv):
    """One MT_EASY task: 9-D joint-velocity actions, 60-D noisy observation, shaped reward."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"], "render_fps": 12}

    def __init__(self, task: KitchenTask, goal_quirk: bool = True, render_mode: str | None = None) -> None:
        self.task = task
        view = mujoco.MjvCamera()  # gymnasium-robotics' default kitchen view
        view.distance, view.azimuth, view.elevation = 2.2, 70.0, -35.0
        view.lookat[:] = (-0.2, 0.5, 2.0)
        super().__init__(kitchen_model(), view, render_mode, obs_dim=2 * NUM_QPOS)
        config = robot_config()
        self.pos_bound = config["pos_bound"][:NUM_ROBOT_QPOS]
        self.vel_bound = config["vel_bound"][:NUM_ROBOT_QPOS]
        self.noise_amp = OBS_NOISE_RATIO * config["pos_noise_amp"]  # robot 0.01, objects 0.0005-0.01
        self.dt = FRAME_SKIP * self.model.opt.timestep
        self.element_qpos = ELEMENT_QPOS[task.element]
        self.goal = task.goal.copy()
        self.goal_obs = goal_vector(task, goal_quirk)
        self.site_id = self.model.site(ELEMENT_SITE[task.element]).id
        self.finger_ids = [self.model.body(n).id for n in ("panda0_leftfinger", "panda0_rightfinger")]
        self.last_robot_obs = INIT_QPOS[:NUM_ROBOT_QPOS].copy()
        self.in_place_margin = 0.0
        self.reach_margin = 0.0

    def gripper_pos(self) -> np.ndarray:
        return 0.5 * (self.data.xpos[self.finger_ids[0]] + self.data.xpos[self.finger_ids[1]])

    def distances(self) -> tuple[float, float]:
        """(element joint distance to goal, gripper distance to the element's site), from the true state."""
        goal_dist = float(np.linalg.norm(self.data.qpos[self.element_qpos] - self.goal))
        hand_dist = float(np.linalg.norm(self.data.site_xpos[self.site_id] - self.gripper_pos()))
        return goal_dist, hand_dist

    def _observe(self) -> np.ndarray:
        """Noisy joint positions (robot and objects) + goal; the noisy robot part drives the controller."""
        qpos = self.data.qpos[:NUM_QPOS] + self.noise_amp * self.np_random.uniform(-1.0, 1.0, NUM_QPOS)
        self.last_robot_obs = qpos[:NUM_ROBOT_QPOS].copy()
        return np.concatenate([qpos, self.goal_obs]).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        mujoco.mj_resetData(self.model, self.data)
        self.data.qpos[:NUM_QPOS] = INIT_QPOS
        self.data.qpos[self.element_qpos] = self.task.start
        mujoco.mj_forward(self.model, self.data)
        goal_dist, hand_dist = self.distances()
        self.in_place_margin = abs(goal_dist - self.task.threshold)
        self.reach_margin = abs(hand_dist - HAND_REACH_RADIUS)
        self._last_obs = self._observe()
        return self._last_obs.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        velocity = ACTION_SCALE * np.clip(np.asarray(action, np.float64), -1.0, 1.0)
        velocity = np.clip(velocity, self.vel_bound[:, 0], self.vel_bound[:, 1])
        target = np.clip(self.last_robot_obs + velocity * self.dt, self.pos_bound[:, 0], self.pos_bound[:, 1])
        self.data.ctrl[:] = target
        if self._step_physics(FRAME_SKIP):
            return self._unstable_step(UNSTABLE_REWARD, {"dist_goal": float("nan"), "dist_hand": float("nan")})
        mujoco.mj_kinematics(self.model, self.data)  # positions of the final state for the reward
        obs = self._observe()
        goal_dist, hand_dist = self.distances()
        success = goal_dist < self.task.threshold
        if success:
            reward = SUCCESS_REWARD
        else:
            in_place = tolerance(goal_dist, self.task.threshold, self.in_place_margin)
            reach = tolerance(hand_dist, HAND_REACH_RADIUS, self.reach_margin)
            reward = REWARD_SCALE * (0.4 * in_place + 0.6 * reach - 1.0)
        info = {"success": success, "dist_goal": goal_dist, "dist_hand": hand_dist, "unstable": False}
        self._last_obs = obs
        return obs.copy(), float(reward), bool(success), False, info

    def set_element(self, qpos: np.ndarray) -> None:
        """Put the task's element at `qpos` (at rest); for tests and scripted demos."""
        self.data.qpos[self.element_qpos] = qpos
        self.data.qvel[self.element_qpos] = 0.0  # hinge/slide joints before the kettle: dof index = qpos index
        mujoco.mj_forward(self.model, self.data)

    def _extra_state(self) -> dict[str, Any]:
        return {"last_robot_obs": self.last_robot_obs.copy(), "in_place_margin": self.in_place_margin,
                "reach_margin": self.reach_margin}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        self.last_robot_obs = extra["last_robot_obs"].copy()
        self.in_place_margin = float(extra["in_place_margin"])
        self.reach_margin = float(extra["reach_margin"])

    def _recompute_after_restore(self) -> None:
        """Positions only (what render reads): mj_forward would rewrite the solver warm start."""
        mujoco.mj_kinematics(self.model, self.data)


def kitchen_mt_easy(goal_quirk: bool = True, render_mode: str | None = None, **_: Any) -> MultiTaskSpec:
    """The 10-task MT_EASY benchmark; `goal_quirk=False` gives every task its own goal entries."""

    def make(task: int, seed: int, evaluation: bool) -> TaskEnv:
        return KitchenTaskEnv(MT_EASY_TASKS[task], goal_quirk=goal_quirk, render_mode=render_mode)

    names = tuple(t.name for t in MT_EASY_TASKS)
    return MultiTaskSpec("KitchenMTEasy-v0", names, KITCHEN_HORIZON, min_reward=-REWARD_SCALE, make_task_env=make)
