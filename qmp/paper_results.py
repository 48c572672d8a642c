"""The paper's view of results: IQM over seeds with bootstrap CIs, and the paper's values beside ours.

numpy only on top of qmp/results.py (no torch, no matplotlib), so it imports in milliseconds in a notebook:

    from pathlib import Path
    from qmp import paper_results, results
    groups = results.group_runs(results.load_runs([Path("runs")]))    # {GroupKey: [Run, ...]} (seeds)
    for key, runs in groups.items():
        curve = paper_results.iqm_curve(runs, "paper_success", prefix="eval")  # IQM over seeds + 95% CI
    print(paper_results.format_paper_table(groups, at=[500_000, 2_000_000]))
    print(paper_results.format_seed_table(groups, at=[100_000, 200_000]))   # every seed, own (mixture)

A seed's score is its mean over the env's tasks: the quantity the paper's curves show. Scores are aggregated
as rliable (Agarwal et al., 2021) recommends: the interquartile mean (IQM) over seeds, with a 95% percentile
interval from a bootstrap over seeds (`stratified_bootstrap_ci` on a (seeds, 1) matrix; the same function
resamples seeds within each column when given several). An IQM over seeds x tasks would instead trim whole
tasks of a 5-task env (the best and the worst), which changes the metric. Seeds are aligned as in
qmp/results.py (cut at the shortest seed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from qmp.methods import METHODS
from qmp.results import (
    DASH,
    FINAL_EVALS,
    PAPER_SUCCESS,
    GroupKey,
    Run,
    _format_steps,
    align,
    final_value,
    has_stages,
    method_rank,
    paper_labels,
    short_steps,
    smooth,
)

# ---------------------------------------------------------------------------------------------- IQM + bootstrap


def iqm(x: Any, axis: int | None = None) -> Any:
    """Interquartile mean: scipy.stats.trim_mean(x, 0.25, axis) (the rliable IQM), in numpy.

    int(0.25 * n) values are cut from each end of the sorted scores (less than a quarter when n is not a multiple
    of 4, as trim_mean does) and the rest averaged. axis=None flattens; NaN if there are no scores.
    """
    a = np.asarray(x, dtype=float)
    if axis is None:
        a, axis = a.ravel(), 0
    a = np.moveaxis(a, axis, -1)
    n = a.shape[-1]
    if n == 0:
        return math.nan if a.ndim == 1 else np.full(a.shape[:-1], np.nan)
    cut = int(0.25 * n)
    middle = np.sort(a, axis=-1)[..., cut:n - cut]
    result = middle.mean(axis=-1)
    return float(result) if np.ndim(result) == 0 else result


def stratified_resamples(scores: np.ndarray, reps: int, rng: np.random.Generator) -> np.ndarray:
    """(reps, runs, tasks): each replicate draws `runs` scores with replacement from every task's own column."""
    scores = np.asarray(scores, dtype=float)
    runs, tasks = scores.shape
    rows = rng.integers(0, runs, size=(reps, runs, tasks))
    return scores[rows, np.arange(tasks)]


def stratified_bootstrap_ci(scores: Any, statistic: Callable[[np.ndarray], float] = iqm, reps: int = 2000,
                            confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(point, lower, upper): the statistic of the (runs, tasks) scores and its percentile bootstrap interval.

    Stratified as in rliable: every replicate resamples the runs (seeds) with replacement independently within
    each task column, so each task keeps exactly `runs` scores, and the statistic is taken over the whole
    resampled matrix. The same seed gives the same interval.
    """
    scores = np.asarray(scores, dtype=float)
    if scores.ndim != 2 or scores.size == 0:
        raise ValueError(f"scores must be a non-empty (runs, tasks) matrix, got shape {scores.shape}")
    resampled = stratified_resamples(scores, reps, np.random.default_rng(seed))
    if statistic is iqm:
        stats = iqm(resampled.reshape(reps, -1), axis=1)
    else:
        stats = np.array([statistic(sample) for sample in resampled], dtype=float)
    tail = 100.0 * (1.0 - confidence) / 2.0
    lower, upper = np.percentile(stats, [tail, 100.0 - tail])
    return float(statistic(scores)), float(lower), float(upper)


def seed_means(scores: np.ndarray) -> np.ndarray:
    """(seeds, tasks) -> (seeds, 1): each seed's mean over the env's tasks, the paper's per-run score."""
    return np.asarray(scores, float).mean(axis=1, keepdims=True)


@dataclass
class TaskScores:
    """One group's per-task metric: scores[g] is the (seeds, tasks) matrix at env steps x[g]."""

    x: np.ndarray  # (G,)
    scores: np.ndarray  # (G, seeds, tasks)
    tasks: tuple[str, ...]
    runs: list[Run]  # the seeds in the matrix (those that have evaluated every task)
    cut: bool


def task_scores(runs: Sequence[Run], metric: str = PAPER_SUCCESS, prefix: str = "eval", x: str = "env_steps",
                window: int = 1) -> TaskScores | None:
    """The (seeds, tasks) matrices of column `{prefix}/<task>/{metric}` at every aligned evaluation.

    Seeds that have not yet logged every task are left out (like `aggregate` leaves out seeds without data);
    None when no seed has. `window` > 1 smooths each seed's task series first (`smooth`).
    """
    tasks = next((run.tasks for run in runs if run.tasks), ())
    if not tasks:
        return None
    complete, series = [], []
    for run in runs:
        per_task = [run.series(f"{prefix}/{task}/{metric}", x) for task in tasks]
        if all(len(xs) for xs, _ in per_task):
            complete.append(run)
            series += [(xs, smooth(ys, window)) for xs, ys in per_task]
    aligned = align(series)
    if aligned is None:
        return None
    grid, values, cut = aligned
    scores = values.reshape(len(complete), len(tasks), len(grid)).transpose(2, 0, 1)
    return TaskScores(grid, scores, tuple(tasks), complete, cut)


@dataclass
class IQMCurve:
    """IQM over seeds of the mean over tasks at each aligned evaluation, with its bootstrap interval."""

    x: np.ndarray
    point: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int
    tasks: int
    cut: bool


def iqm_curve(runs: Sequence[Run], metric: str = PAPER_SUCCESS, prefix: str = "eval", x: str = "env_steps",
              window: int = 1, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> IQMCurve | None:
    """IQM over seeds of the task-mean of `{prefix}/<task>/{metric}` along x, with a `confidence` bootstrap band."""
    ts = task_scores(runs, metric, prefix, x, window)
    if ts is None:
        return None
    cis = np.array([stratified_bootstrap_ci(seed_means(m), iqm, reps, confidence, seed) for m in ts.scores])
    cis = cis.reshape(-1, 3)
    return IQMCurve(ts.x, cis[:, 0], cis[:, 1], cis[:, 2], len(ts.runs), len(ts.tasks), ts.cut)


# ---------------------------------------------------------------------------------------------- paper values


@dataclass(frozen=True)
class PaperValue:
    env: str
    method: str
    env_steps: int
    success: float


# Approximate success rates read off the learning-curve figure of the QMP paper (Zhang et al., ICLR 2025):
# eyeballed from the plotted curves, not numbers printed in the paper, so good to about +-0.05 and to the
# step resolution of the axis. They are the paper's success ("paper_success" in our logs).
PAPER_VALUES: tuple[PaperValue, ...] = (
    PaperValue("JacoReachMT5-v1", "dnc_sac", 500_000, 0.65),  # Multistage Reacher, Separated
    PaperValue("JacoReachMT5-v1", "dnc_sac", 2_000_000, 0.80),
    PaperValue("JacoReachMT5-v1", "qmp_dnc", 500_000, 0.97),  # Separated + QMP
    PaperValue("JacoReachMT5-v1", "mtsac", 2_000_000, 0.45),  # Parameters
    PaperValue("JacoReachMT5-v1", "qmp_sac", 2_000_000, 0.80),  # Parameters + QMP
    PaperValue("MazeLarge-10-v0", "mtsac", 4_000_000, 0.65),  # Maze, Parameters
    PaperValue("MazeLarge-10-v0", "qmp_sac", 4_000_000, 1.00),  # Parameters + QMP: 1.00 by ~4M
)


def paper_values(env: str, method: str | None = None) -> list[PaperValue]:
    """The paper's approximate values (read off its figure) for an env, optionally one method, by env steps."""
    found = [v for v in PAPER_VALUES if v.env == env and (method is None or v.method == method)]
    return sorted(found, key=lambda v: (v.env_steps, v.method))


def paper_value(env: str, method: str, env_steps: int) -> float | None:
    """The paper's approximate value at exactly these env steps, None if it gives none there."""
    return next((v.success for v in paper_values(env, method) if v.env_steps == env_steps), None)


def _format_ci(ci: tuple[float, float, float]) -> str:
    return f"{ci[0]:.2f} [{ci[1]:.2f}, {ci[2]:.2f}]"


def score_at(ts: TaskScores | None, steps: int, reps: int = 2000, seed: int = 0, seeds: int | None = None) -> str:
    """IQM [95% CI] at the last aligned evaluation at or before `steps`; "—" unless every seed trained that far.

    "(at 480k)" is added when that evaluation is further before `steps` than the usual evaluation spacing, and
    "(n=k)" when only k of the group's `seeds` are in the matrix.
    """
    if ts is None or any(not run.last_value("env_steps") >= steps for run in ts.runs):
        return DASH
    before = np.flatnonzero(ts.x <= steps)
    if not len(before):
        return DASH
    g = before[-1]
    text = _format_ci(stratified_bootstrap_ci(seed_means(ts.scores[g]), iqm, reps, 0.95, seed))
    spacing = float(np.median(np.diff(ts.x))) if len(ts.x) > 1 else 0.0
    if steps - ts.x[g] > spacing:
        text += f" (at {short_steps(ts.x[g])})"
    if seeds is not None and len(ts.runs) < seeds:
        text += f" (n={len(ts.runs)})"
    return text


def final_scores(runs: Sequence[Run], metric: str, prefix: str = "eval", last: int = FINAL_EVALS) -> np.ndarray | None:
    """(seeds, tasks) of each seed's final `{prefix}/<task>/{metric}` (mean of its last evaluations); seeds
    missing a task are left out; None if no seed has all."""
    tasks = next((run.tasks for run in runs if run.tasks), ())
    rows = [[final_value(run, f"{prefix}/{task}/{metric}", last) for task in tasks] for run in runs]
    rows = [row for row in rows if row and all(math.isfinite(v) for v in row)]
    return np.array(rows, dtype=float) if rows else None


def _format_final(runs: Sequence[Run], metric: str, reps: int, seed: int) -> str:
    scores = final_scores(runs, metric)
    if scores is None:
        return DASH
    text = _format_ci(stratified_bootstrap_ci(seed_means(scores), iqm, reps, 0.95, seed))
    return text if len(scores) == len(runs) else f"{text} (n={len(scores)})"


def _default_points(env: str, groups: dict[GroupKey, list[Run]]) -> list[int]:
    """The env's paper steps; for an env without paper values: the fewest env steps any of its runs reached."""
    points = sorted({v.env_steps for v in paper_values(env)})
    if points:
        return points
    reached = [run.last_value("env_steps") for key, runs in groups.items() if key.env == env for run in runs]
    reached = [v for v in reached if math.isfinite(v)]
    return [int(min(reached))] if reached else []


def format_paper_table(groups: dict[GroupKey, list[Run]], at: Sequence[int] | None = None,
                       metric: str = PAPER_SUCCESS, reps: int = 2000, seed: int = 0) -> str:
    """One markdown table per env comparing our IQM [95% CI] of the paper's success with the paper's values.

    Per env-steps point: our own policies (eval/), our Q-switch mixture (eval_mixture/, QMP methods only) and
    the paper's approximate value; then the strict eval/success and eval/stages_completed, final values
    (stages "—" for an env whose runs never logged a stage, such as Maze). Methods the paper reports for that
    env but we have no runs of get a row of their own with "0" seeds.
    `at` defaults to the paper's steps of each env.
    """
    blocks = []
    for env in sorted({key.env for key in groups}):
        points = sorted(set(at)) if at else _default_points(env, groups)
        keys = [key for key in groups if key.env == env]
        labels = paper_labels(keys)
        staged = has_stages([run for key in keys for run in groups[key]])  # else "—", not a column of zeros
        header = ["method", "seeds", "env steps"]
        for p in points:
            header += [f"own @{short_steps(p)}", f"mixture @{short_steps(p)}", f"paper @{short_steps(p)}"]
        header += ["success (strict, final)", "stages (final)"]
        lines = [f"### {env}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for key in keys:
            runs = groups[key]
            own = task_scores(runs, metric, "eval")
            qswitch = key.method not in METHODS or METHODS[key.method].qswitch
            mixture = task_scores(runs, metric, "eval_mixture") if qswitch else None
            cells = [f"{labels[key]} (`{key.method}`)", str(len(runs)),
                     _format_steps([run.last_value("env_steps") for run in runs])]
            for p in points:
                reference = paper_value(env, key.method, p) if metric == PAPER_SUCCESS else None
                cells += [score_at(own, p, reps, seed, len(runs)), score_at(mixture, p, reps, seed, len(runs)),
                          DASH if reference is None else f"~{reference:.2f}"]
            stages = _format_final(runs, "stages_completed", reps, seed) if staged else DASH
            cells += [_format_final(runs, "success", reps, seed), stages]
            lines.append("| " + " | ".join(cells) + " |")
        ours = {key.method for key in keys}
        paper_only = paper_values(env) if metric == PAPER_SUCCESS else []
        for method in dict.fromkeys(v.method for v in paper_only if v.method not in ours):
            name = GroupKey(env, method_rank(method), method, "None").paper_name()
            cells = [f"{name} (`{method}`)", "0", DASH]
            for p in points:
                reference = paper_value(env, method, p)
                cells += [DASH, DASH, DASH if reference is None else f"~{reference:.2f}"]
            lines.append("| " + " | ".join(cells + [DASH, DASH]) + " |")
        blocks.append("\n".join(lines))
    note = (f"own = each task's own policy (eval/), mixture = the Q-switch mixture (eval_mixture/, QMP methods); "
            f"both: IQM over seeds of each seed's mean over tasks of {metric} [95% bootstrap CI over seeds, {reps} "
            f"resamples] at "
            f"the last evaluation at or before the column's env steps (\"(at ...)\" when that is further back than "
            f"one evaluation interval), {DASH} when not every seed has trained that far. paper = value read off the "
            f"paper's figure (approximate). strict success / stages: IQM [CI] of each seed's per-task mean of its "
            f"last {FINAL_EVALS} evaluations. (n=k): only k seeds have evaluated.")
    return "\n\n".join(blocks) + "\n\n" + note


def seed_score(run: Run, steps: int, metric: str = PAPER_SUCCESS, prefix: str = "eval") -> float | None:
    """One seed's score at the evaluation logged at exactly `steps` env steps: its mean over tasks of
    `{prefix}/<task>/{metric}`; None if it did not evaluate every task there."""
    values = []
    for task in run.tasks:
        xs, ys = run.series(f"{prefix}/{task}/{metric}", "env_steps")
        hit = np.flatnonzero(xs == steps)
        if not len(hit):
            return None
        values.append(float(ys[hit[-1]]))
    return float(np.mean(values)) if values else None


def _evaluation_steps(runs: Sequence[Run], metric: str) -> list[int]:
    """Every env-steps value at which some seed evaluated its first task (the default columns of a seed table)."""
    steps: set[int] = set()
    for run in runs:
        if run.tasks:
            steps.update(int(x) for x in run.series(f"eval/{run.tasks[0]}/{metric}", "env_steps")[0])
    return sorted(steps)


def format_seed_table(groups: dict[GroupKey, list[Run]], at: Sequence[int] | None = None,
                      metric: str = PAPER_SUCCESS) -> str:
    """One markdown table per env with a row per seed: its own policies' score at each evaluation of `at`, and
    the Q-switch mixture's in brackets (QMP methods). The IQM tables hide how seeds differ (one seed that learns
    late, two that never do); this shows it. `at` defaults to every evaluation of the env's runs.
    """
    blocks = []
    for env in sorted({key.env for key in groups}):
        keys = [key for key in groups if key.env == env]
        labels = paper_labels(keys)
        points = sorted(set(at)) if at else _evaluation_steps([run for key in keys for run in groups[key]], metric)
        header = ["method", "seed", *(short_steps(p) for p in points)]
        lines = [f"### {env}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for key in keys:
            qswitch = key.method not in METHODS or METHODS[key.method].qswitch
            for run in groups[key]:
                cells = [f"{labels[key]} (`{key.method}`)", str(run.seed)]
                for p in points:
                    own = seed_score(run, p, metric, "eval")
                    mixture = seed_score(run, p, metric, "eval_mixture") if qswitch else None
                    cell = DASH if own is None else f"{own:.2f}"
                    cells.append(cell if mixture is None else f"{cell} ({mixture:.2f})")
                lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    note = (f"Each seed's mean over tasks of {metric} of its own policies (eval/) at the evaluation logged at "
            f"exactly the column's env steps; in brackets the Q-switch mixture's (eval_mixture/, QMP methods); "
            f"{DASH} where the seed did not evaluate there.")
    return "\n\n".join(blocks) + "\n\n" + note
