"""`MetaWorldTask`: one metaworld env as a task env, shared by the MT10/MT50 (metaworld.py) and CDS
(metaworld_cds.py) benchmarks.

It wraps ONE metaworld v3 env with the paper's v2 reward functions. As in the original, every reset
moves to the next of the task's 50 goal variants in a random permutation that is reshuffled after each
pass (drawn here from the env's own `np_random`). Evaluation instances use goal variants seeded with
base_seed + 100, so they see other goals than training; the base seed is a fixed function of the run
seed, so a run is reproducible.

An unstable simulator step (stability.py, checked on the wrapped env's mjData) ends the episode with
the last good observation and reward 0 (the lowest v2 reward, what metaworld itself gives then).
With MuJoCo's auto-reset on, metaworld computes its reward on the reset state (it may even report
a bogus success); with auto-reset off its reward code raises ValueError (hamacher_product, SVD) on
NaN: both count as unstable. metaworld's reset runs `reset_model` (which reads the state) before it
resets mjData, so after an unstable step we reset mjData first.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

import mujoco
import numpy as np
from gymnasium import spaces
from metaworld.types import Task

from qmp.environments.base import TaskEnv, rng_state, set_rng_state
from qmp.environments.mujoco_tools import OffscreenCamera, get_physics, set_physics
from qmp.environments.stability import clear_bad_state_warnings, is_bad_state, is_unstable

METAWORLD_HORIZON = 500
EVAL_SEED_OFFSET = 100  # the original seeds the test benchmark with base_seed + 100
NEVER = 2**62  # our max_path_length: metaworld then never truncates nor raises; MultiTaskEnv truncates
UNSTABLE_REWARD = 0.0  # v2 rewards lie in [0, 10]; also the spec's min_reward
FREE_CAMERA = -1  # metaworld's default (upright) view
# model fields that metaworld's reset_model rewrites per goal variant (object/goal placement)
MUTABLE_MODEL_FIELDS = ("body_pos", "body_quat", "site_pos", "site_quat")
_SCALARS = (bool, int, float, str, np.generic, type(None))


def benchmark_seed(seed: int) -> int:
    """The benchmark (goal variant) seed of a run: a fixed function of the run seed."""
    return int(np.random.SeedSequence([seed, 0x4D57]).generate_state(1)[0] % 1_000_000)


def check_no_sparse_tasks(sparse_tasks: Any) -> None:
    if sparse_tasks:
        raise ValueError("Meta-World has no sparse-reward task variants (sparse_tasks must be empty)")


def python_state(env: Any) -> dict[str, Any]:
    """Every array/scalar attribute of a metaworld env: path length, target and goal positions, last
    rand vec, previous-frame obs, object init positions, reward margins... (all it uses mid-episode)."""
    state = {}
    for key, value in vars(env).items():
        if isinstance(value, np.ndarray):
            state[key] = value.copy()
        elif isinstance(value, _SCALARS):
            state[key] = value
    return state


def set_python_state(env: Any, state: dict[str, Any]) -> None:
    for key, value in state.items():
        current = getattr(env, key, None)
        if isinstance(value, np.ndarray) and isinstance(current, np.ndarray) and not current.flags.owndata \
                and current.shape == value.shape:
            np.copyto(current, value)  # a live view (e.g. into mujoco data): keep the aliasing
        else:
            setattr(env, key, value.copy() if isinstance(value, np.ndarray) else value)


class MetaWorldTask(TaskEnv):
    """One Meta-World task: the raw env plus the cycle over its goal variants."""

    metadata: ClassVar[dict[str, Any]] = {"render_modes": ["rgb_array"]}

    def __init__(self, env: Any, variants: Sequence[Task], render_mode: str | None = None) -> None:
        self.env = env
        self.variants = list(variants)
        env.max_path_length = NEVER
        self.env.set_task(self.variants[0])  # fixes the observability, hence the observation size
        obs_dim = int(env.sawyer_observation_space.shape[0])
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (4,), np.float32)
        self.render_mode = render_mode
        self._order: np.ndarray | None = None
        self._cursor = 0
        self._camera = OffscreenCamera(env.model, FREE_CAMERA)
        self._last_obs = np.zeros(obs_dim, np.float32)  # returned on an unstable step
        self._unstable = False  # the last step went unstable: the next reset starts from a clean mjData

    def _next_variant(self) -> Task:
        """The original's CustomWrapper: next variant of a permutation, reshuffled after each pass."""
        assert self._order is not None
        variant = self.variants[int(self._order[self._cursor])]
        self._cursor += 1
        if self._cursor >= len(self._order):
            self.np_random.shuffle(self._order)
            self._cursor = 0
        return variant

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        if self._order is None or seed is not None:
            self._order = self.np_random.permutation(len(self.variants))
            self._cursor = 0
        self.env.set_task(self._next_variant())
        if self._unstable or is_bad_state(self.env.data):  # else metaworld's first reset_model may raise on NaN
            mujoco.mj_resetData(self.env.model, self.env.data)
        self._unstable = False
        obs, _ = self.env.reset()
        self._last_obs = np.asarray(obs, np.float32)
        return self._last_obs.copy(), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        data = self.env.data
        clear_bad_state_warnings(data)
        try:
            obs, reward, _, _, info = self.env.step(np.asarray(action, np.float32))
        except ValueError:  # metaworld's reward code rejects a NaN state; any other ValueError is a bug
            if not is_unstable(data):
                raise
            return self._unstable_step()
        if is_unstable(data):
            return self._unstable_step()
        self._last_obs = np.asarray(obs, np.float32)
        return self._last_obs.copy(), float(reward), False, False, {"success": bool(info["success"]), "unstable": False}

    def _unstable_step(self) -> tuple[np.ndarray, float, bool, bool, dict]:
        """End the episode without metaworld's reward/success, computed on a reset or NaN state."""
        self._unstable = True
        return self._last_obs.copy(), UNSTABLE_REWARD, True, False, {"success": False, "unstable": True}

    @property
    def goal(self) -> np.ndarray:
        """The current goal position (for tests and diagnostics)."""
        return np.asarray(self.env._target_pos, np.float64).copy()

    def get_state(self) -> dict[str, Any]:
        model = self.env.model
        return {
            "physics": get_physics(model, self.env.data),
            "model": {name: getattr(model, name).copy() for name in MUTABLE_MODEL_FIELDS},
            "attrs": python_state(self.env),
            "order": None if self._order is None else self._order.copy(),
            "cursor": self._cursor,
            "last_obs": self._last_obs.copy(),
            "unstable": self._unstable,
            "rng": rng_state(self.np_random),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        model, data = self.env.model, self.env.data
        set_python_state(self.env, state["attrs"])
        for name, value in state["model"].items():
            getattr(model, name)[:] = value
        set_physics(model, data, state["physics"])
        mujoco.mj_forward(model, data)  # positions, sites, contacts for the next observation...
        set_physics(model, data, state["physics"])  # ...but it rewrites the warmstart
        self._order = None if state["order"] is None else state["order"].copy()
        self._cursor = int(state["cursor"])
        set_rng_state(self.np_random, state["rng"])
        self._last_obs = state["last_obs"].copy()
        self._unstable = bool(state["unstable"])

    def render(self) -> np.ndarray:
        """An RGB frame from metaworld's default (upright) camera, whatever the render_mode."""
        return self._camera.render(self.env.data)

    def close(self) -> None:
        self._camera.close()
        self.env.close()
