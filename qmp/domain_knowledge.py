"""QMP-Domain-Knowledge: a fixed mixture of policies per env, from what the task designer knows, in place of the
Q-switch. Row i of the T x T matrix weighs the policies task i may execute (re-drawn every
--policy_sampling_freq steps). Pure python, so the CLI can check an env has one without importing simulators.

The knowledge is which sub-goal (or object) each task works on at each stage; task i may use policy j if
the two tasks pursue the same sub-goal at the same stage, with equal weight over those policies (itself
included). Stage matters because every policy sees the stage in its observation and heads for *its own*
sub-goal of that stage: on Multistage Reacher, policy j helps task i only where their stage targets coincide.
"""

from __future__ import annotations

from collections.abc import Sequence

# the target of each stage, per task name (JacoReachMT5: g0..g3 as in qmp/environments/jaco.py; the stay
# task holds the hand where it started, a target no other task has)
_JACO = {
    "reach-g0g1g2": ("g0", "g1", "g2"),
    "reach-g0g1g3-shifted": ("g0", "g1", "g3"),
    "reach-g1g3g2": ("g1", "g3", "g2"),
    "reach-g1g2g0-sparse": ("g1", "g2", "g0"),
    "stay": ("start", "start", "start"),
}
# MetaWorldCDS: one scene, two objects; the tasks on one object share the approach to its handle
_CDS = {"door-open": ("door",), "door-close": ("door",), "drawer-open": ("drawer",), "drawer-close": ("drawer",)}

STAGE_TARGETS: dict[str, dict[str, tuple[str, ...]]] = {
    "JacoReachMT5-v1": _JACO,
    "JacoReachMT5Raised-v1": _JACO,
    "MetaWorldCDS-v1": _CDS,
}


def domain_mixture(env: str, task_names: Sequence[str]) -> list[list[float]]:
    """The env's T x T row-stochastic mixture for these tasks (a --task_name subset keeps its rows and
    columns); ValueError if the env has none."""
    if env not in STAGE_TARGETS:
        raise ValueError(f"no domain-knowledge mixture is defined for {env}; defined for: {', '.join(STAGE_TARGETS)} "
                         "(give your own with --qswitch_mixture)")
    targets = [STAGE_TARGETS[env][name] for name in task_names]
    allowed = [[any(a == b for a, b in zip(mine, theirs, strict=True)) for theirs in targets] for mine in targets]
    return [[float(ok) / sum(row) for ok in row] for row in allowed]


def mixture_error(values: Sequence[float], num_tasks: int) -> str | None:
    """Why --qswitch_mixture (T^2 weights, row-major) is not a usable mixture, or None."""
    if len(values) != num_tasks**2:
        return f"--qswitch_mixture takes n_policies^2 = {num_tasks**2} weights (row i: task i's), got {len(values)}"
    if not all(0.0 <= v < float("inf") for v in values):
        return f"--qswitch_mixture weights must be >= 0 and finite, got {list(values)}"
    empty = [i for i in range(num_tasks) if sum(values[i * num_tasks:(i + 1) * num_tasks]) <= 0]
    if empty:
        return f"--qswitch_mixture rows {empty} have no positive weight: every task needs a policy to execute"
    return None


def as_rows(values: Sequence[float], num_tasks: int) -> list[list[float]]:
    """Row-major T^2 weights as T rows."""
    return [list(values[i * num_tasks:(i + 1) * num_tasks]) for i in range(num_tasks)]
