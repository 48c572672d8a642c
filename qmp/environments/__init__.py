"""Environment registry: name -> "module:factory". Modules are imported only when an env is made,
so the CLI and the unit tests never pay for simulators they do not use."""

from __future__ import annotations

import importlib
from typing import Any

from qmp.environments.base import MultiTaskSpec

ENVS: dict[str, str] = {
    "JacoReachMT5-v1": "qmp.environments.jaco:jaco_reach_mt5",
    "JacoReachMT5Raised-v1": "qmp.environments.jaco:jaco_reach_mt5_raised",
    "MazeLarge-10-v0": "qmp.environments.maze:maze_large_10",
    "Walker2dMT4-v0": "qmp.environments.walker:walker2d_mt4",
    "MetaWorldCDS-v1": "qmp.environments.metaworld:metaworld_cds",
    "MetaWorldMT10-v2": "qmp.environments.metaworld:metaworld_mt10",
    "MetaWorldMT50-v2": "qmp.environments.metaworld:metaworld_mt50",
    "KitchenMTEasy-v0": "qmp.environments.kitchen:kitchen_mt_easy",
    "ToyReach-v0": "qmp.environments.toy:toy_reach",
}


def make_spec(name: str, **kwargs: Any) -> MultiTaskSpec:
    """Import the env family of `name` and build its spec (kwargs: sparse_tasks, task_name, ...)."""
    if name not in ENVS:
        raise ValueError(f"unknown env {name!r}; valid: {', '.join(ENVS)}")
    module_name, factory = ENVS[name].split(":")
    module = importlib.import_module(module_name)
    return getattr(module, factory)(**kwargs)
