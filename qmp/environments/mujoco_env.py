"""`MujocoTaskEnv`: the plumbing every task env that owns a MuJoCo model shares, so a family module keeps
only its tasks, rewards, observations and resets.

It owns the model and data, the offscreen camera (render/close), the resumable state (physics snapshot,
the env's RNG, the last observation and the family's extra fields) and the instability guard: a family's
`step` advances the simulation with `_step_physics` and, if that reports an unstable step, returns
`_unstable_step(...)`: the last good observation, the family's penalty and info["unstable"] = True.
"""

from __future__ import annotations

from typing import Any

import mujoco
import numpy as np
from gymnasium import spaces

from qmp.environments.base import TaskEnv, rng_state, set_rng_state
from qmp.environments.mujoco_tools import OffscreenCamera, get_physics, set_physics
from qmp.environments.stability import DEFAULT_LIMITS, StabilityLimits, clear_bad_state_warnings, is_unstable

StepReturn = tuple[np.ndarray, float, bool, bool, dict[str, Any]]


class MujocoTaskEnv(TaskEnv):
    """A task env stepping its own `mujoco.MjData`: obs_dim float32 observations, one action in [-1, 1] per actuator."""

    stability_limits: StabilityLimits = DEFAULT_LIMITS  # beyond these |qvel| / |qacc| a step is garbage

    def __init__(self, model: mujoco.MjModel, camera: str | int | mujoco.MjvCamera, render_mode: str | None,
                 obs_dim: int, width: int = 480, height: int = 480) -> None:
        self.model = model
        self.data = mujoco.MjData(model)
        self.observation_space = spaces.Box(-np.inf, np.inf, (obs_dim,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (model.nu,), np.float32)
        self.render_mode = render_mode
        self._camera = OffscreenCamera(model, camera, width, height)
        self._last_obs = np.zeros(obs_dim, np.float32)  # returned on an unstable step

    # ---- stepping ------------------------------------------------------------------------------
    def _step_physics(self, nstep: int = 1) -> bool:
        """`nstep` mj_steps; True if they went unstable (stability.py), which must end the episode."""
        clear_bad_state_warnings(self.data)
        mujoco.mj_step(self.model, self.data, nstep=nstep)
        return is_unstable(self.data, self.stability_limits)

    def _unstable_step(self, reward: float, info: dict[str, Any]) -> StepReturn:
        """End the episode on the last good observation: the unstable state's own numbers are garbage."""
        return self._last_obs.copy(), reward, True, False, {"success": False, **info, "unstable": True}

    # ---- resumable state -----------------------------------------------------------------------
    def _extra_state(self) -> dict[str, Any]:
        """The family's fields beyond physics, RNG and last observation (numpy arrays and scalars)."""
        return {}

    def _load_extra_state(self, extra: dict[str, Any]) -> None:
        """Restore what `_extra_state` returned."""

    def _recompute_after_restore(self) -> None:
        """Recompute the derived quantities of the restored physics that reset/step/render read."""
        mujoco.mj_forward(self.model, self.data)

    def get_state(self) -> dict[str, Any]:
        return {"physics": get_physics(self.model, self.data), "rng": rng_state(self.np_random),
                "last_obs": self._last_obs.copy(), "extra": self._extra_state()}

    def set_state(self, state: dict[str, Any]) -> None:
        set_physics(self.model, self.data, state["physics"])
        self._recompute_after_restore()
        set_rng_state(self.np_random, state["rng"])
        self._last_obs = state["last_obs"].copy()
        self._load_extra_state(state["extra"])

    # ---- rendering -----------------------------------------------------------------------------
    def render(self) -> np.ndarray | None:
        return self._camera.render(self.data) if self.render_mode == "rgb_array" else None

    def close(self) -> None:
        self._camera.close()
