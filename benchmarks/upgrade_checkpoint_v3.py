"""Upgrade a format-3 checkpoint of a Jaco run to format 4, so a study run trained at an older commit can be
extended (docs/results.md says which runs were).

Format 4 changed one thing for Jaco: a task env's state moved its family fields (stage, steps_in_range,
stay_target) under "extra" and records the last observation, which format 3 recomputed on restore. This tool
restores each task's physics exactly as format 3 did (the env's own restore), reads that observation, and writes
the format-4 layout. Everything else in the file is unchanged. The original is kept beside it as
checkpoint.v3.pt. The script refuses any other format or env.

    python -m benchmarks.upgrade_checkpoint_v3 RUN_DIR [RUN_DIR ...]     (from the repository root)
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from qmp.checkpoint import CHECKPOINT_NAME, FORMAT_VERSION
from qmp.environments import make_spec
from qmp.run_dir import read_config

FAMILY_FIELDS = ("stage", "steps_in_range", "stay_target")  # Jaco's fields beyond physics and RNG
ENVS = ("JacoReachMT5-v1", "JacoReachMT5Raised-v1")


def upgrade_task_state(task_env, old: dict) -> dict:
    """One Jaco task's format-3 state -> format 4, by restoring it into `task_env`."""
    if set(old) != {"physics", "rng", *FAMILY_FIELDS}:
        raise SystemExit(f"unexpected task state keys {sorted(old)}")
    state = {"physics": old["physics"], "rng": old["rng"], "extra": {k: old[k] for k in FAMILY_FIELDS},
             "last_obs": np.zeros(task_env.observation_space.shape, np.float32)}
    task_env.set_state(state)
    state["last_obs"] = task_env._obs()  # what format 3's restore set it to
    return state


def upgrade(run_dir: Path) -> None:
    path = run_dir / CHECKPOINT_NAME
    state = torch.load(path, map_location="cpu", weights_only=False)
    if state.get("format_version") != 3 or FORMAT_VERSION != 4:
        raise SystemExit(f"{path}: format {state.get('format_version')} (this tool upgrades 3 to 4, "
                         f"and this code reads {FORMAT_VERSION})")
    env = read_config(run_dir)["env"]
    if env not in ENVS:
        raise SystemExit(f"{path}: env {env!r}; this tool upgrades only {', '.join(ENVS)}")
    spec = make_spec(env)
    tasks = state["env"]["envs"]
    state["env"]["envs"] = [upgrade_task_state(spec.make_task_env(i, 0, False), old) for i, old in enumerate(tasks)]
    state["format_version"] = 4
    path.rename(run_dir / "checkpoint.v3.pt")
    torch.save(state, path)
    print(f"{path}: upgraded to format 4 (epoch {state['epoch']}, {state['env_steps']} env steps)")


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        upgrade(Path(arg))
