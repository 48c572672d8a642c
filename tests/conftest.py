"""MuJoCo picks its OpenGL backend at first import: make every test process headless (EGL)."""

import os

os.environ.setdefault("MUJOCO_GL", "egl")
