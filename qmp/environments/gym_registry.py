"""Every task env of every benchmark in gymnasium's registry, so a single task trains with any library:

    import gymnasium as gym
    import qmp.environments  # registers the ids (or: gym.make("qmp.environments:qmp/JacoReachMT5-task0-v1"))
    env = gym.make("qmp/JacoReachMT5-task0-v1")      # task 0 of JacoReachMT5-v1, with its 200-step limit

Ids are `qmp/{benchmark name without its version}-task{i}-v{version}`; the env's `task_name` attribute in
`qmp.environments.TASK_IDS` lists them all. Registering imports no simulator: the env is built on
`gym.make`. A task env behaves as inside a run (actions in [-1, 1], no task one-hot in the observation),
with gymnasium's TimeLimit at the benchmark's horizon.
"""

from __future__ import annotations

import re
from typing import Any

import gymnasium as gym

NAMESPACE = "qmp"


def task_id(env_name: str, task: int) -> str:
    """`JacoReachMT5-v1`, 0 -> `qmp/JacoReachMT5-task0-v1`."""
    match = re.fullmatch(r"(.+)-v(\d+)", env_name)
    if match is None:
        raise ValueError(f"env name {env_name!r} does not end in -v<version>")
    return f"{NAMESPACE}/{match.group(1)}-task{task}-v{match.group(2)}"


def register_all(entries: dict[str, Any], entry_point: str) -> list[str]:
    """Register every task of every benchmark in `entries` (name -> EnvEntry), built by `entry_point`
    ("module:function" taking env_name, task and render_mode); returns the ids."""
    ids = []
    for name, entry in entries.items():
        for task in range(entry.preset["n_policies"]):
            env_id = task_id(name, task)
            if env_id not in gym.registry:
                gym.register(env_id, entry_point=entry_point, max_episode_steps=entry.horizon,
                             kwargs={"env_name": name, "task": task})
            ids.append(env_id)
    return ids
