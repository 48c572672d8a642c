"""MetaWorldCDS-v1: door-open, door-close, drawer-open, drawer-close in ONE shared Sawyer scene.

The scene (metaworld's drawer at (0.4, 0.9, 0) plus its doorlockB door at (-0.1, 0.9, 0.15), as in
the original's `door_drawer.xml`) is composed at run time from the installed metaworld package's own
model files: a small top-level XML in a temp dir whose `scene/`, `objects/` and `textures/` are
symlinks into the package, so nothing of metaworld is copied into this repository.

The four tasks subclass metaworld's v3 door/drawer envs and keep their v2 reward functions, with the
original's changes: fixed hand init, object ranges moved into the shared scene, a 21-dim observation
(hand 3, gripper 1, drawer pos+quat 7, door-handle pos+quat 7, goal 3; no previous-frame stack) and,
for the door tasks, the door fields remapped into the standard object slots before the reward.
"""

from __future__ import annotations

import atexit
import os
import pickle
import shutil
import tempfile
from functools import cached_property
from typing import Any

import numpy as np
from gymnasium.envs.mujoco import MujocoEnv
from gymnasium.spaces import Box
from metaworld.asset_path_utils import ENV_ASSET_DIR_V3
from metaworld.envs import SawyerDoorCloseEnvV3, SawyerDoorEnvV3, SawyerDrawerCloseEnvV3, SawyerDrawerOpenEnvV3
from metaworld.types import Task
from scipy.spatial.transform import Rotation

from qmp.environments.base import MultiTaskSpec, TaskEnv
from qmp.environments.metaworld_task import (
    EVAL_SEED_OFFSET,
    METAWORLD_HORIZON,
    UNSTABLE_REWARD,
    MetaWorldTask,
    benchmark_seed,
    check_no_sparse_tasks,
)
from qmp.environments.task_subset import TaskSubset, parse_task_subset

CDS_NUM_VARIANTS = 50
CDS_OBS_DIM = 21
DRAWER_HANDLE_OFFSET = np.array([0.0, -0.16, 0.0])  # drawer_link COM -> handle, as drawer-open-v3
SCENE_XML = """<mujoco>
    <include file="../scene/basic_scene.xml"/>
    <include file="../objects/assets/drawer_dependencies.xml"/>
    <include file="../objects/assets/doorlock_dependencies.xml"/>
    <include file="../objects/assets/xyz_base_dependencies.xml"/>
    <worldbody>
        <include file="../objects/assets/xyz_base.xml"/>
        <body name="drawer" pos="0.4 0.9 0">
            <include file="../objects/assets/drawer.xml"/>
        </body>
        <body name="door" pos="-0.1 0.9 0.15">
            <include file="../objects/assets/doorlockB.xml"/>
        </body>
        <site name="goal" pos="2.0 0.74 0.05" size="0.02" rgba="0 0 0.8 1"/>
    </worldbody>
    <actuator>
        <position ctrllimited="true" ctrlrange="-1 1" joint="r_close" kp="400" user="1"/>
        <position ctrllimited="true" ctrlrange="-1 1" joint="l_close" kp="400" user="1"/>
    </actuator>
    <equality>
        <weld body1="mocap" body2="hand" solref="0.02 1"/>
    </equality>
</mujoco>
"""
_SCENE_PATH: list[str] = []


def cds_scene_path() -> str:
    """Write the shared scene once per process (removed at exit) and return its path."""
    if not _SCENE_PATH:
        root = tempfile.mkdtemp(prefix="qmp_metaworld_cds_")
        atexit.register(shutil.rmtree, root, True)
        for sub in ("scene", "objects", "textures"):
            os.symlink(ENV_ASSET_DIR_V3 / sub, os.path.join(root, sub))
        os.mkdir(os.path.join(root, "sawyer_xyz"))
        path = os.path.join(root, "sawyer_xyz", "door_drawer.xml")
        with open(path, "w") as f:
            f.write(SCENE_XML)
        _SCENE_PATH.append(path)
    return _SCENE_PATH[0]


class SharedSceneMixin:
    """The shared scene, the 21-dim observation and a single reset_model per reset."""

    @property
    def model_name(self) -> str:
        return cds_scene_path()

    @cached_property
    def sawyer_observation_space(self) -> Box:
        hand = self._HAND_SPACE
        low = np.hstack((hand.low, -1.0, np.full(14, -np.inf), np.full(3, -np.inf)))
        high = np.hstack((hand.high, 1.0, np.full(14, np.inf), np.full(3, np.inf)))
        return Box(low, high, dtype=np.float64)

    def _get_curr_obs_combined_no_goal(self) -> np.ndarray:
        right = self.data.site("rightEndEffector").xpos
        left = self.data.site("leftEndEffector").xpos
        gripper = np.clip(np.linalg.norm(right - left) / 0.1, 0.0, 1.0)
        drawer_pos = self.get_body_com("drawer_link") + DRAWER_HANDLE_OFFSET
        drawer_quat = self.data.body("drawer_link").xquat
        handle = self.data.geom("handle")
        handle_quat = Rotation.from_matrix(handle.xmat.reshape(3, 3)).as_quat()
        return np.hstack((self.get_endeff_pos(), gripper, drawer_pos, drawer_quat, handle.xpos, handle_quat))

    def _get_obs(self) -> np.ndarray:
        current = self._get_curr_obs_combined_no_goal()
        self._prev_obs = current
        goal = np.zeros(3) if self._partially_observable else self._get_pos_goal()
        return np.hstack((current, goal))

    def reset(self, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        self.curr_path_length = 0
        self.reset_model()  # as metaworld: the first pass moves the objects, so the 2nd reads them right
        obs, info = MujocoEnv.reset(self)  # mj_resetData, then reset_model again
        return np.asarray(obs, np.float64), info


class DoorRemapMixin:
    """Door rewards read the object at obs[4:11]: move the door-handle fields there first."""

    def evaluate_state(self, obs: np.ndarray, action: np.ndarray) -> tuple[float, dict[str, Any]]:
        obs_door = obs.copy()
        obs_door[4:11] = obs[11:18]
        return super().evaluate_state(obs_door, action)


class CDSDoorOpen(SharedSceneMixin, DoorRemapMixin, SawyerDoorEnvV3):
    OBJ_LOW, OBJ_HIGH = (-0.1, 0.85, 0.15), (0.0, 0.95, 0.15)
    HAND_INIT = (0.0, 0.6, 0.2)


class CDSDoorClose(SharedSceneMixin, DoorRemapMixin, SawyerDoorCloseEnvV3):
    OBJ_LOW, OBJ_HIGH = (-0.1, 0.85, 0.15), (0.0, 0.95, 0.15)
    HAND_INIT = (-0.6, 0.6, 0.2)


class CDSDrawerOpen(SharedSceneMixin, SawyerDrawerOpenEnvV3):
    OBJ_LOW, OBJ_HIGH = (0.3, 0.9, 0.0), (0.4, 0.9, 0.0)
    HAND_INIT = (0.0, 0.6, 0.2)


class CDSDrawerClose(SharedSceneMixin, SawyerDrawerCloseEnvV3):
    OBJ_LOW, OBJ_HIGH = (0.3, 0.9, 0.0), (0.4, 0.9, 0.0)
    HAND_INIT = (0.0, 0.6, 0.2)


CDS_TASKS: dict[str, type] = {
    "door-open": CDSDoorOpen,
    "door-close": CDSDoorClose,
    "drawer-open": CDSDrawerOpen,
    "drawer-close": CDSDrawerClose,
}


def make_cds_env(name: str) -> Any:
    """A CDS metaworld env with the original's fixed hand init and object ranges."""
    cls = CDS_TASKS[name]
    env = cls(reward_function_version="v2")
    env.hand_init_pos = np.array(cls.HAND_INIT, np.float64)
    env.init_config["hand_init_pos"] = env.hand_init_pos
    env._random_reset_space = Box(np.array(cls.OBJ_LOW), np.array(cls.OBJ_HIGH), dtype=np.float64)
    return env


def encode_variant(env_name: str, env_cls: type, rand_vec: np.ndarray) -> Task:
    """A metaworld Task for a goal variant we generate ourselves."""
    data = {"rand_vec": np.asarray(rand_vec, np.float64), "env_cls": env_cls, "partially_observable": False}
    return Task(env_name=env_name, data=pickle.dumps(data))


def cds_variants(name: str, task: int, bench_seed: int) -> list[Task]:
    """50 object placements drawn uniformly from the task's range (what metaworld's _make_tasks does)."""
    cls = CDS_TASKS[name]
    rng = np.random.default_rng([bench_seed, task])
    low, high = np.array(cls.OBJ_LOW), np.array(cls.OBJ_HIGH)
    return [encode_variant(name, cls, rng.uniform(low, high)) for _ in range(CDS_NUM_VARIANTS)]


def cds_spec(task_name: TaskSubset = None, sparse_tasks: Any = None) -> MultiTaskSpec:
    """MetaWorldCDS-v1 (registered as metaworld.metaworld_cds): a subset of the 4 tasks, default all."""
    check_no_sparse_tasks(sparse_tasks)
    all_names = list(CDS_TASKS)
    chosen = [all_names[i] for i in parse_task_subset(task_name, all_names, "Meta-World") or range(len(all_names))]

    def make(task: int, seed: int, evaluation: bool) -> TaskEnv:
        bench_seed = benchmark_seed(seed) + (EVAL_SEED_OFFSET if evaluation else 0)
        name = chosen[task]
        return MetaWorldTask(make_cds_env(name), cds_variants(name, all_names.index(name), bench_seed))

    return MultiTaskSpec("MetaWorldCDS-v1", tuple(chosen), METAWORLD_HORIZON, min_reward=UNSTABLE_REWARD,
                         make_task_env=make)
