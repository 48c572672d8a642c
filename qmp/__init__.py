"""qmp: Q-switch Mixture of Policies (ICLR 2025) and its multi-task SAC baselines.

The public surface, imported on first use (so `import qmp` stays instant and loads neither torch nor a
simulator):

    from qmp import parse_args, train                      # a run, as `python run.py ...` does it
    run_dir = train(parse_args(["qmp_dnc", "--env=ToyReach-v0"]))
    from qmp import QSwitchMixture, TanhGaussianPolicy, DoubleQ, MultiTaskSAC, MultiTaskReplayBuffer
    from qmp import make_spec, MultiTaskEnv, MultiTaskSpec  # the benchmarks, T task envs in lockstep
    from qmp import PolicyList, CriticList                 # the Q-switch around your own nn.Modules

Every tensor is task-major: (T, B, ...) for T tasks. See docs/use_in_your_code.md.
"""

import importlib
import os
from typing import Any

# MuJoCo picks its OpenGL backend when it is first imported, and every env module is imported through
# this package: offscreen EGL unless the user chose a backend.
os.environ.setdefault("MUJOCO_GL", "egl")

__version__ = "0.1.0"

_PUBLIC = {
    "parse_args": "qmp.cli",  # argv -> validated Config (the original's flags and per-env presets)
    "Config": "qmp.config",
    "Settings": "qmp.settings",  # typed settings per component, from a Config
    "train": "qmp.launch",  # Config -> run directory (progress.csv, checkpoint.pt, ...)
    "make_spec": "qmp.environments",  # env name -> MultiTaskSpec
    "MultiTaskSpec": "qmp.environments.base",
    "TaskEnv": "qmp.environments.base",
    "MultiTaskEnv": "qmp.environments.multitask",
    "TanhGaussianPolicy": "qmp.learning.nets",  # T policies: obs (T, B, O) -> actions (T, B, A)
    "DoubleQ": "qmp.learning.nets",  # T twin critics: (obs, act) -> (2, T, B)
    "MultiTaskSAC": "qmp.learning.sac",
    "SACConfig": "qmp.learning.sac",
    "QSwitchMixture": "qmp.learning.policies",  # the QMP behaviour policy: obs (T, O) -> actions (T, A), choices (T,)
    "OwnPolicy": "qmp.learning.policies",
    "PolicyList": "qmp.learning.foreign",  # your own T policy modules, for QSwitchMixture
    "CriticList": "qmp.learning.foreign",  # your own T critic modules, for QSwitchMixture
    "LevyMixture": "qmp.learning.levy",  # MT-Levy's behaviour policy, the same act() as QSwitchMixture
    "MultiTaskReplayBuffer": "qmp.learning.buffer",
    "Batch": "qmp.learning.buffer",
}
__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'qmp' has no attribute {name!r}")
    return getattr(importlib.import_module(_PUBLIC[name]), name)
