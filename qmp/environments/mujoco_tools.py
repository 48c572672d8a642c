"""What every MuJoCo task env shares: a physics snapshot for get_state/set_state and an offscreen camera."""

from __future__ import annotations

import mujoco
import numpy as np

PHYSICS = mujoco.mjtState.mjSTATE_INTEGRATION  # everything mj_step reads: the state to resume from


def get_physics(model: mujoco.MjModel, data: mujoco.MjData) -> np.ndarray:
    physics = np.empty(mujoco.mj_stateSize(model, PHYSICS))
    mujoco.mj_getState(model, data, physics, PHYSICS)
    return physics


def set_physics(model: mujoco.MjModel, data: mujoco.MjData, physics: np.ndarray) -> None:
    """Restore a snapshot; callers recompute derived quantities (mj_forward or mj_kinematics) as they need."""
    mujoco.mj_setState(model, data, physics, PHYSICS)


class OffscreenCamera:
    """An offscreen renderer created on first use: an OpenGL context is slow to make and needs MUJOCO_GL."""

    def __init__(self, model: mujoco.MjModel, camera: str | int | mujoco.MjvCamera, width: int = 480,
                 height: int = 480) -> None:
        self.model, self.camera, self.size = model, camera, (height, width)
        self._renderer: mujoco.Renderer | None = None

    def render(self, data: mujoco.MjData) -> np.ndarray:
        if self._renderer is None:
            self._renderer = mujoco.Renderer(self.model, *self.size)
        self._renderer.update_scene(data, camera=self.camera)
        return self._renderer.render()

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None
