"""qmp: Q-switch Mixture of Policies (ICLR 2025) and its multi-task SAC baselines."""

import os

# MuJoCo picks its OpenGL backend when it is first imported, and every env module is imported through
# this package: offscreen EGL unless the user chose a backend.
os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"
