"""The paper's view of results: IQM over seeds with bootstrap CIs, and the paper's values (its tables:
qmp/paper_tables.py; its figure: qmp/paper_figure.py).

numpy only on top of qmp/results.py (no torch, no matplotlib), so it imports in milliseconds in a notebook:

    from pathlib import Path
    from qmp import paper_results, results
    groups = results.group_runs(results.load_runs([Path("runs")]))    # {GroupKey: [Run, ...]} (seeds)
    for key, runs in groups.items():
        curve = paper_results.iqm_curve(runs, "paper_success", prefix="eval")  # IQM over seeds + 95% CI
    print(paper_results.paper_values("JacoReachMT5-v1"))                    # read off the paper's figure

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

from qmp.results import (
    PAPER_SUCCESS,
    Run,
    align,
)
from qmp.smoothing import NO_SMOOTHING, Smoothing

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
                smoothing: Smoothing = NO_SMOOTHING) -> TaskScores | None:
    """The (seeds, tasks) matrices of column `{prefix}/<task>/{metric}` at every aligned evaluation.

    Seeds that have not yet logged every task are left out (like `aggregate` leaves out seeds without data);
    None when no seed has. Each seed's task series is smoothed first (`smoothing`; default none).
    """
    tasks = next((run.tasks for run in runs if run.tasks), ())
    if not tasks:
        return None
    complete, series = [], []
    for run in runs:
        per_task = [run.series(f"{prefix}/{task}/{metric}", x) for task in tasks]
        if all(len(xs) for xs, _ in per_task):
            complete.append(run)
            series += [(xs, smoothing(xs, ys)) for xs, ys in per_task]
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
              smoothing: Smoothing = NO_SMOOTHING, reps: int = 2000, confidence: float = 0.95,
              seed: int = 0) -> IQMCurve | None:
    """IQM over seeds of the task-mean of `{prefix}/<task>/{metric}` along x, with a `confidence` bootstrap band."""
    ts = task_scores(runs, metric, prefix, x, smoothing)
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
