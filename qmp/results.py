"""Results from run directories as numbers: loading, grouping, seed alignment, curves, final values, tables.

numpy, csv and json only (no torch, no matplotlib), so it imports in milliseconds in a notebook:

    from pathlib import Path
    from qmp import results
    groups = results.group_runs(results.load_runs([Path("runs")]))    # {GroupKey: [Run, ...]} (seeds)
    for key, runs in groups.items():
        curve = results.group_curve(runs, "eval/success", "env_steps")  # mean, std, min-max over seeds
    print(results.format_table(groups, ["eval/success"]))

The paper's view (IQM over seeds with bootstrap CIs, the paper's values) is qmp/paper_results.py (its tables:
qmp/paper_tables.py); the Q-switch selection log is qmp/qswitch_selection.py. The same tables from the shell
(drawing: qmp/plot.py):

    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --table                    # final mean +- std per (env, method)
    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --table --paper [--at 500000 2000000]   # IQM [95% CI] vs the paper

A run directory is any directory holding config.json and progress.csv (qmp/run_dir.py). Runs are grouped
by (env, method, name); the runs of a group are its seeds. Only rows with a value are used: evaluation columns
are empty on epochs without evaluation, and the line a running job is still appending (no newline) is ignored.

Seed alignment: seeds are compared only where all of them have data. The common grid is every x value at which
any seed evaluated, restricted to the overlap [latest first x, earliest last x]; each seed is linearly
interpolated onto it. Seeds of one config evaluate at identical env steps, so in practice this is exact and
simply cuts the group at its shortest seed.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qmp.flag_scope import variant_name
from qmp.markdown_table import env_table_head, markdown_row
from qmp.methods import METHODS
from qmp.run_dir import CONFIG, PROGRESS, is_run_dir, read_config, read_progress
from qmp.smoothing import NO_SMOOTHING, Smoothing

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
    name = str(cfg.get("name", "None"))
    key = GroupKey(str(cfg.get("env", "unknown")), method_rank(method), method,
                   variant_name(cfg) if name == "None" else name)
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
    """The method's paper name, plus [name] only where one method is drawn under several names (in any env:
    a name keeps its colour across panels, so a panel's line must say which variant it is)."""
    names: dict[str, set[str]] = {}
    for key in keys:
        names.setdefault(key.method, set()).add(key.name)
    return {key: key.label() if len(names[key.method]) > 1 else key.paper_name() for key in keys}


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


def has_stages(runs: Sequence[Run]) -> bool:
    """Whether some run logged a non-zero eval/stages_completed: envs without stages log 0 throughout."""
    with_stages = [run for run in runs if STAGES in run.columns]
    return any(np.any(np.nan_to_num(run.series(STAGES, "epoch")[1]) != 0) for run in with_stages)


def default_metrics(runs: Sequence[Run]) -> list[str]:
    """eval/success, plus eval/stages_completed where some run has stages."""
    return [SUCCESS, STAGES] if has_stages(runs) else [SUCCESS]


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


def group_curve(runs: Sequence[Run], metric: str, x: str, smoothing: Smoothing = NO_SMOOTHING) -> Curve | None:
    return aggregate([(xs, smoothing(xs, ys)) for xs, ys in (run.series(metric, x) for run in runs)])


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


def format_table(groups: dict[GroupKey, list[Run]], metrics: Sequence[str] | Mapping[str, Sequence[str]]) -> str:
    """One markdown table per env, one row per method: what docs/ quote as results. `metrics` maps each env to its
    own columns where envs differ (their per-task metrics), or is one list for all."""
    blocks = []
    for env in sorted({key.env for key in groups}):
        if isinstance(metrics, Mapping) and env not in metrics:
            given = ", ".join(sorted(metrics))
            raise ResultsError(f"format_table: no columns given for env {env!r}; given for: {given}")
        columns = metrics[env] if isinstance(metrics, Mapping) else metrics
        header = ["method", "seeds", "env steps"] + [f"{m} (final)" for m in columns]
        lines = env_table_head(env, header)
        for key, runs in groups.items():
            if key.env != env:
                continue
            steps = _format_steps([run.last_value("env_steps") for run in runs])
            cells = [f"{key.label()} (`{key.method}`)", str(len(runs)), steps]
            cells += [_format_stat([final_value(run, m) for run in runs], len(runs)) for m in columns]
            lines.append(markdown_row(cells))
        blocks.append("\n".join(lines))
    note = (f"final = mean of each seed's last {FINAL_EVALS} evaluations; mean \u00b1 std (ddof=0) over seeds; "
            "(n=k) when only k seeds have evaluated; env steps = last logged epoch (min\u2013max if seeds differ).")
    return "\n\n".join(blocks) + "\n\n" + note
