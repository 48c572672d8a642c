"""Detecting an unstable MuJoCo step, shared by every MuJoCo env family.

The official bindings never raise on a diverging simulation: when qpos, qvel or qacc becomes NaN,
inf or > 1e10, `mj_step` counts a `mjWARN_BADQPOS/BADQVEL/BADQACC` warning and silently resets
mjData to the model's initial state (a finite but meaningless state). A diverging step that stays
below that threshold leaves a huge but finite state. So a step is unstable if it raised one of
those warnings, or left a non-finite qpos/qvel/qacc, or |qvel| / |qacc| beyond `StabilityLimits`.

Usage in a task env's `step`: `clear_bad_state_warnings(data)` before stepping, `is_unstable(data)`
after. The counters are cleared rather than compared with a "before" count because `mj_resetData`
(MuJoCo's auto-reset included) zeroes them before the new warning is counted, so a count can stay
the same or even drop across an unstable step.
"""

from __future__ import annotations

from dataclasses import dataclass

import mujoco
import numpy as np

BAD_STATE_WARNINGS = (mujoco.mjtWarning.mjWARN_BADQPOS, mujoco.mjtWarning.mjWARN_BADQVEL,
                      mujoco.mjtWarning.mjWARN_BADQACC)


@dataclass(frozen=True)
class StabilityLimits:
    """Magnitudes no healthy step of our envs reaches (random actions: |qvel| < 70, |qacc| < 1e4)."""

    max_abs_qvel: float = 1e3
    max_abs_qacc: float = 1e7


DEFAULT_LIMITS = StabilityLimits()


def bad_state_warnings(data: mujoco.MjData) -> int:
    """How many bad-state warnings MuJoCo counted since the counters were last cleared."""
    return sum(int(data.warning[w].number) for w in BAD_STATE_WARNINGS)


def clear_bad_state_warnings(data: mujoco.MjData) -> None:
    """Zero the bad-state warning counters, so that any count after the next step is that step's."""
    for w in BAD_STATE_WARNINGS:
        data.warning[w].number = 0


def is_bad_state(data: mujoco.MjData, limits: StabilityLimits = DEFAULT_LIMITS) -> bool:
    """A non-finite qpos/qvel/qacc or a |qvel| / |qacc| beyond the limits: the state is garbage."""
    if not (np.isfinite(data.qpos).all() and np.isfinite(data.qvel).all() and np.isfinite(data.qacc).all()):
        return True
    if data.qvel.size == 0:
        return False
    return bool(np.abs(data.qvel).max() > limits.max_abs_qvel or np.abs(data.qacc).max() > limits.max_abs_qacc)


def is_unstable(data: mujoco.MjData, limits: StabilityLimits = DEFAULT_LIMITS) -> bool:
    """True if the step since `clear_bad_state_warnings` went unstable (see the module docstring)."""
    return bad_state_warnings(data) > 0 or is_bad_state(data, limits)
