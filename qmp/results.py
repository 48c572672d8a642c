"""Results from run directories as numbers: loading, seed alignment, IQM with bootstrap CIs, tables, paper values.

numpy, csv and json only (no torch, no matplotlib), so it imports in milliseconds in a notebook:

    from pathlib import Path
    from qmp import results
    groups = results.group_runs(results.load_runs([Path("runs")]))    # {GroupKey: [Run, ...]} (seeds)
    for key, runs in groups.items():
        curve = results.iqm_curve(runs, "paper_success", prefix="eval")  # IQM over seeds x tasks + 95% CI per step
    print(results.format_paper_table(groups, at=[500_000, 2_000_000]))
    print(results.format_table(groups, ["eval/success"]))

The same tables from the shell (drawing: qmp/plot.py):

    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --table                    # final mean +- std per (env, method)
    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --table --paper [--at 500000 2000000]   # IQM [95% CI] vs the paper

A run directory is any directory holding config.json and progress.csv (qmp/run_dir.py). Runs are grouped
by (env, method, name); the runs of a group are its seeds. Only rows with a value are used: evaluation columns
are empty on epochs without evaluation, and the line a running job is still appending (no newline) is ignored.

Seed alignment: seeds are compared only where all of them have data. The common grid is every x value at which
any seed evaluated, restricted to the overlap [latest first x, earliest last x]; each seed is linearly
interpolated onto it. Seeds of one config evaluate at identical env steps, so in practice this is exact and
simply cuts the group at its shortest seed.

Aggregate scores follow rliable (Agarwal et al., 2021): the interquartile mean (IQM) over all (seed, task)
scores, with a 95% percentile interval from a stratified bootstrap (seeds resampled within each task).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qmp.methods import METHODS
from qmp.run_dir import CONFIG, PROGRESS, QSWITCH_LOG, RunDirError, is_run_dir, read_config, read_jsonl, read_progress

SUCCESS = "eval/success"
STAGES = "eval/stages_completed"
PAPER_SUCCESS = "paper_success"  # the success the original code logged and the paper's curves show
FINAL_EVALS = 3  # the table's "final" value of a seed is the mean of its last this-many evaluations
DASH = "\u2014"


class ResultsError(Exception):
    """A problem with the user's input (no runs, unknown column): qmp.plot prints it as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True, order=True)
class GroupKey:
    """What makes runs seeds of the same experiment."""

    env: str
    method_rank: int  # position in METHODS, so groups sort in the paper's order
    method: str
    name: str  # "None" unless the runs were given a --name

    def paper_name(self) -> str:
        return METHODS[self.method].paper_name if self.method in METHODS else self.method

    def label(self) -> str:
        return self.paper_name() if self.name == "None" else f"{self.paper_name()} [{self.name}]"


@dataclass
class Run:
    path: Path
    key: GroupKey
    seed: int
    columns: list[str]
    rows: list[dict[str, str]]
    tasks: tuple[str, ...] = ()  # config.json's resolved task names, else guessed from per-task columns

    def series(self, metric: str, x: str) -> tuple[np.ndarray, np.ndarray]:
        """(x, y) sorted by x over the rows that log both, because eval columns are empty between evaluations."""
        xs = np.array([_to_float(row.get(x)) for row in self.rows], dtype=float)
        ys = np.array([_to_float(row.get(metric)) for row in self.rows], dtype=float)
        keep = np.isfinite(xs) & np.isfinite(ys)
        xs, ys = xs[keep], ys[keep]
        # np.unique sorts; taking it over the reversed arrays keeps the last row of a repeated x
        unique_x, first_in_reversed = np.unique(xs[::-1], return_index=True)
        return unique_x, ys[::-1][first_in_reversed]

    def last_value(self, column: str) -> float:
        """The latest logged value of a column (NaN if never logged)."""
        for row in reversed(self.rows):
            value = _to_float(row.get(column))
            if math.isfinite(value):
                return value
        return math.nan


def _to_float(text: str | None) -> float:
    try:
        return float(text) if text not in (None, "") else math.nan
    except ValueError:
        return math.nan


def find_run_dirs(roots: Sequence[Path]) -> list[Path]:
    """Every directory at or below the roots with both config.json and progress.csv."""
    found: set[Path] = set()
    for root in roots:
        if not root.exists():
            raise ResultsError(f"RUN_ROOT {root} does not exist")
        configs = [root / CONFIG] if (root / CONFIG).exists() else []
        for config in configs + list(root.rglob(CONFIG)):
            if is_run_dir(config.parent):
                found.add(config.parent.resolve())
    return sorted(found)


def load_run(run_dir: Path) -> Run:
    cfg = read_config(run_dir)
    method = str(cfg.get("method", "unknown"))
    key = GroupKey(str(cfg.get("env", "unknown")), method_rank(method), method, str(cfg.get("name", "None")))
    progress = read_progress(run_dir)
    rows, columns = progress.rows, progress.columns
    resolved = cfg.get("resolved") or {}
    tasks = tuple(str(t) for t in resolved.get("task_names", ())) or _tasks_from_columns(columns)
    return Run(Path(run_dir), key, int(cfg.get("seed", -1)), columns, rows, tasks)


def method_rank(method: str) -> int:
    """Position in METHODS (the paper's order); unknown methods sort last."""
    return list(METHODS).index(method) if method in METHODS else len(METHODS)


def _tasks_from_columns(columns: Sequence[str]) -> tuple[str, ...]:
    """eval/<task>/success columns, in file order (for runs whose config.json predates resolved task names)."""
    tasks = [c.split("/")[1] for c in columns if c.startswith("eval/") and c.count("/") == 2 and c.endswith("/success")]
    return tuple(dict.fromkeys(tasks))


def load_runs(roots: Sequence[Path]) -> list[Run]:
    """The runs below the roots that have logged at least one epoch (others are named on stderr)."""
    dirs = find_run_dirs(roots)
    if not dirs:
        raise ResultsError(f"no run directory ({CONFIG} + {PROGRESS}) below {', '.join(map(str, roots))}")
    runs = []
    for run_dir in dirs:
        run = load_run(run_dir)
        if run.rows:
            runs.append(run)
        else:
            print(f"note: skipping {run_dir}: {PROGRESS} has no epochs yet", file=sys.stderr)
    if not runs:
        raise ResultsError(f"none of the {len(dirs)} run directories below {', '.join(map(str, roots))} "
                           "has logged an epoch yet")
    return runs


def group_runs(runs: Sequence[Run]) -> dict[GroupKey, list[Run]]:
    """Seeds of one (env, method, name), groups in env then paper order, seeds in seed order."""
    groups: dict[GroupKey, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.key, []).append(run)
    return {key: sorted(groups[key], key=lambda run: (run.seed, str(run.path))) for key in sorted(groups)}


def paper_labels(keys: Sequence[GroupKey]) -> dict[GroupKey, str]:
    """The method's paper name, plus [name] only where several names of one method share an env."""
    names: dict[tuple[str, str], set[str]] = {}
    for key in keys:
        names.setdefault((key.env, key.method), set()).add(key.name)
    return {key: key.label() if len(names[(key.env, key.method)]) > 1 else key.paper_name() for key in keys}


def check_columns(runs: Sequence[Run], wanted: Sequence[str]) -> None:
    """Fail early, naming look-alike columns, when a requested column is in no run at all."""
    known = {column for run in runs for column in run.columns}
    for column in wanted:
        if column not in known:
            raise ResultsError(f"column {column!r} is in no progress.csv; {_similar_columns(column, known)}")


def _similar_columns(column: str, known: set[str]) -> str:
    """Columns sharing the column's leading path, same depth first; deeper ones (per-task) only counted."""
    parts = column.split("/")
    for depth in range(len(parts) - 1, 0, -1):
        prefix = "/".join(parts[:depth]) + "/"
        similar = sorted(c for c in known if c.startswith(prefix))
        if similar:
            same_depth = [c for c in similar if c.count("/") == column.count("/")] or similar
            deeper = len(similar) - len(same_depth)
            more = f" (+{deeper} deeper, e.g. {next(c for c in similar if c not in same_depth)})" if deeper else ""
            return f"columns starting with {prefix!r}: {', '.join(same_depth)}{more}"
    prefixes = sorted({c.split("/")[0] + ("/" if "/" in c else "") for c in known})
    return f"valid columns start with: {', '.join(prefixes)}"


def default_metrics(runs: Sequence[Run]) -> list[str]:
    """eval/success, plus eval/stages_completed where some run has stages (envs without stages log 0)."""
    with_stages = [run for run in runs if STAGES in run.columns]
    has_stages = any(np.any(np.nan_to_num(run.series(STAGES, "epoch")[1]) != 0) for run in with_stages)
    return [SUCCESS, STAGES] if has_stages else [SUCCESS]


# ---------------------------------------------------------------------------------------------- curves


@dataclass
class Curve:
    """One group's metric across seeds on a common x grid."""

    x: np.ndarray
    mean: np.ndarray
    std: np.ndarray  # population std (ddof=0)
    low: np.ndarray  # min over seeds
    high: np.ndarray  # max over seeds
    seeds: int
    cut: bool  # some seed had data beyond the grid's end (the group was cut at its shortest seed)


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over up to `window` points, so every point only uses past evaluations."""
    if window <= 1 or len(y) == 0:
        return y
    sums = np.cumsum(np.insert(y, 0, 0.0))
    ends = np.arange(1, len(y) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def align(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray, bool] | None:
    """(grid, values (len(series), grid), cut): non-empty series interpolated onto their common grid (module doc).

    None when no series has data or they do not overlap; `cut` when some series went beyond the grid's end.
    """
    if not series or any(len(x) == 0 for x, _ in series):
        return None
    start, end = max(x[0] for x, _ in series), min(x[-1] for x, _ in series)
    if start > end:
        return None
    grid = np.unique(np.concatenate([x[(x >= start) & (x <= end)] for x, _ in series]))
    values = np.stack([np.interp(grid, x, y) for x, y in series])
    return grid, values, any(x[-1] > end for x, _ in series)


def aggregate(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> Curve | None:
    """Mean, std and min-max of the seeds with data, on their aligned grid (see `align`)."""
    series = [(x, y) for x, y in series if len(x)]
    aligned = align(series)
    if aligned is None:
        return None
    grid, values, cut = aligned
    return Curve(grid, values.mean(0), values.std(0), values.min(0), values.max(0), len(series), cut)


def group_curve(runs: Sequence[Run], metric: str, x: str, window: int) -> Curve | None:
    return aggregate([(xs, smooth(ys, window)) for xs, ys in (run.series(metric, x) for run in runs)])


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
    """IQM over (seeds x tasks) at each aligned evaluation, with its stratified-bootstrap interval."""

    x: np.ndarray
    point: np.ndarray
    low: np.ndarray
    high: np.ndarray
    seeds: int
    tasks: int
    cut: bool


def iqm_curve(runs: Sequence[Run], metric: str = PAPER_SUCCESS, prefix: str = "eval", x: str = "env_steps",
              window: int = 1, reps: int = 2000, confidence: float = 0.95, seed: int = 0) -> IQMCurve | None:
    """IQM of `{prefix}/<task>/{metric}` over seeds and tasks along x, with a `confidence` bootstrap band."""
    ts = task_scores(runs, metric, prefix, x, window)
    if ts is None:
        return None
    cis = np.array([stratified_bootstrap_ci(m, iqm, reps, confidence, seed) for m in ts.scores]).reshape(-1, 3)
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


# ---------------------------------------------------------------------------------------------- tables


def final_value(run: Run, metric: str, last: int = FINAL_EVALS) -> float:
    """Mean of the run's last `last` logged values: steadier than the very last evaluation."""
    _, ys = run.series(metric, "epoch")
    return float(ys[-last:].mean()) if len(ys) else math.nan


def summarise(values: Sequence[float]) -> tuple[float, float, int]:
    """(mean, population std, count) over the finite values."""
    finite = np.array([v for v in values if math.isfinite(v)], dtype=float)
    if not len(finite):
        return math.nan, math.nan, 0
    return float(finite.mean()), float(finite.std()), len(finite)


def _format_stat(values: Sequence[float], seeds: int) -> str:
    mean, std, count = summarise(values)
    if count == 0:
        return DASH
    text = f"{mean:.2f} \u00b1 {std:.2f}"
    return text if count == seeds else f"{text} (n={count})"


def _format_steps(values: Sequence[float]) -> str:
    finite = [int(v) for v in values if math.isfinite(v)]
    if not finite:
        return DASH
    low, high = min(finite), max(finite)
    return f"{low:,}" if low == high else f"{low:,}\u2013{high:,}"


def short_steps(steps: float) -> str:
    """500000 -> 500k, 2000000 -> 2M, 1500000 -> 1.5M."""
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(steps) >= size:
            return f"{steps / size:.3g}{unit}"
    return f"{steps:g}"


def format_table(groups: dict[GroupKey, list[Run]], metrics: Sequence[str]) -> str:
    """One markdown table per env, one row per method: what docs/ quote as results."""
    blocks = []
    for env in sorted({key.env for key in groups}):
        header = ["method", "seeds", "env steps"] + [f"{m} (final)" for m in metrics]
        lines = [f"### {env}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for key, runs in groups.items():
            if key.env != env:
                continue
            steps = _format_steps([run.last_value("env_steps") for run in runs])
            cells = [f"{key.label()} (`{key.method}`)", str(len(runs)), steps]
            cells += [_format_stat([final_value(run, m) for run in runs], len(runs)) for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    note = (f"final = mean of each seed's last {FINAL_EVALS} evaluations; mean \u00b1 std (ddof=0) over seeds; "
            "(n=k) when only k seeds have evaluated; env steps = last logged epoch (min\u2013max if seeds differ).")
    return "\n\n".join(blocks) + "\n\n" + note


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
    text = _format_ci(stratified_bootstrap_ci(ts.scores[g], iqm, reps, 0.95, seed))
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
    text = _format_ci(stratified_bootstrap_ci(scores, iqm, reps, 0.95, seed))
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
    the paper's approximate value; then the strict eval/success and eval/stages_completed, final values.
    Methods the paper reports for that env but we have no runs of get a row of their own with "0" seeds.
    `at` defaults to the paper's steps of each env.
    """
    blocks = []
    for env in sorted({key.env for key in groups}):
        points = sorted(set(at)) if at else _default_points(env, groups)
        keys = [key for key in groups if key.env == env]
        labels = paper_labels(keys)
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
            cells += [_format_final(runs, "success", reps, seed), _format_final(runs, "stages_completed", reps, seed)]
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
            f"both: IQM over seeds x tasks of per-task {metric} [95% stratified-bootstrap CI, {reps} resamples] at "
            f"the last evaluation at or before the column's env steps (\"(at ...)\" when that is further back than "
            f"one evaluation interval), {DASH} when not every seed has trained that far. paper = value read off the "
            f"paper's figure (approximate). strict success / stages: IQM [CI] of each seed's per-task mean of its "
            f"last {FINAL_EVALS} evaluations. (n=k): only k seeds have evaluated.")
    return "\n\n".join(blocks) + "\n\n" + note


# ---------------------------------------------------------------------------------------------- Q-switch selection


def load_selection(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch Q-switch selection records; a half-written last line of a running job is dropped."""
    path = run_dir / QSWITCH_LOG
    if not path.is_file():
        qmp_methods = ", ".join(name for name, method in METHODS.items() if method.qswitch)
        raise ResultsError(f"{path} does not exist; only QMP methods ({qmp_methods}) write it")
    try:
        records = read_jsonl(path)
    except RunDirError as exc:
        raise ResultsError(str(exc)) from exc
    if not records:
        raise ResultsError(f"{path} has no epochs yet")
    return records


def selection_fractions(records: Sequence[dict[str, Any]], last: int) -> np.ndarray:
    """Counts summed over the last epochs, then row-normalised: row i = where task i's executed actions came from."""
    counts = np.sum([np.asarray(r["counts"], dtype=float) for r in records[-last:]], axis=0)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1.0)


def own_policy_fractions(records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, epochs x tasks) share of each task's steps that its own policy chose; NaN when no steps."""
    steps = np.array([r["env_steps"] for r in records], dtype=float)
    counts = np.array([r["counts"] for r in records], dtype=float)
    totals = counts.sum(2)
    own = np.diagonal(counts, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return steps, np.where(totals > 0, own / totals, np.nan)
