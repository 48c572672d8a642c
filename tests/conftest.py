"""MuJoCo picks its OpenGL backend at first import: importing qmp first makes every test process
headless (EGL) unless MUJOCO_GL says otherwise."""

import qmp  # noqa: F401
