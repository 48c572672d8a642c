"""Learning curves, Q-switch selection heatmaps and markdown result tables from run directories.

    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --out curves.png [--metric eval/success ...] [--x env_steps] [--smooth K]
    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --table
    python -m qmp.plot --heatmap RUN_DIR --out heatmap.png [--last 10]

A run directory is any directory holding config.json and progress.csv (qmp/experiments.py). Runs are
grouped by (env, method, name); each group's seeds become one curve: the mean over seeds with a shaded
min-max band (`--band std` for mean +- std, population std, ddof=0).

Seed alignment: seeds are compared only where all of them have data. The common grid is every x value at
which any seed evaluated, restricted to the overlap [latest first x, earliest last x]; each seed is linearly
interpolated onto it. Seeds of one config evaluate at identical env steps, so in practice this is exact and
simply cuts the group at its shortest seed (a note on stderr says so).

Only rows with a value are used: evaluation columns are empty on epochs without evaluation, and the
line a running job is still appending (no newline yet) is ignored.

Matplotlib is driven through `matplotlib.figure.Figure` only (no pyplot), so it never needs a display.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import EngFormatter

from qmp.logger import PROGRESS
from qmp.methods import METHODS

CONFIG = "config.json"
QSWITCH_LOG = "qswitch_selection.jsonl"  # = qmp.experiments.QSWITCH_LOG, not imported because that module loads torch
SUCCESS = "eval/success"
STAGES = "eval/stages_completed"
FINAL_EVALS = 3  # the table's "final" value of a seed is the mean of its last this-many evaluations
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


class PlotError(Exception):
    """A problem with the user's input (no runs, unknown column): printed as one line, exit status 2."""


# ---------------------------------------------------------------------------------------------- runs


@dataclass(frozen=True, order=True)
class GroupKey:
    """What makes runs seeds of the same experiment."""

    env: str
    method_rank: int  # position in METHODS, so groups sort in the paper's order
    method: str
    name: str  # "None" unless the runs were given a --name

    def label(self) -> str:
        paper = METHODS[self.method].paper_name if self.method in METHODS else self.method
        return paper if self.name == "None" else f"{paper} [{self.name}]"


@dataclass
class Run:
    path: Path
    key: GroupKey
    seed: int
    columns: list[str]
    rows: list[dict[str, str]]

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
            raise PlotError(f"RUN_ROOT {root} does not exist")
        configs = [root / CONFIG] if (root / CONFIG).exists() else []
        for config in configs + list(root.rglob(CONFIG)):
            if (config.parent / PROGRESS).is_file():
                found.add(config.parent.resolve())
    return sorted(found)


def load_run(run_dir: Path) -> Run:
    cfg = json.loads((run_dir / CONFIG).read_text())
    method = str(cfg.get("method", "unknown"))
    rank = list(METHODS).index(method) if method in METHODS else len(METHODS)
    key = GroupKey(str(cfg.get("env", "unknown")), rank, method, str(cfg.get("name", "None")))
    reader = csv.DictReader(_complete_lines(run_dir / PROGRESS))
    rows = list(reader)
    return Run(run_dir, key, int(cfg.get("seed", -1)), list(reader.fieldnames or []), rows)


def _complete_lines(path: Path) -> list[str]:
    """The file's lines without a last one still being appended by a running job (it could hold a cut number)."""
    text = path.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
    return text.splitlines(keepends=True)


def load_runs(roots: Sequence[Path]) -> list[Run]:
    """The runs below the roots that have logged at least one epoch (others are named on stderr)."""
    dirs = find_run_dirs(roots)
    if not dirs:
        raise PlotError(f"no run directory ({CONFIG} + {PROGRESS}) below {', '.join(map(str, roots))}")
    runs = []
    for run_dir in dirs:
        run = load_run(run_dir)
        if run.rows:
            runs.append(run)
        else:
            print(f"note: skipping {run_dir}: {PROGRESS} has no epochs yet", file=sys.stderr)
    if not runs:
        raise PlotError(f"none of the {len(dirs)} run directories below {', '.join(map(str, roots))} has logged an epoch yet")
    return runs


def group_runs(runs: Sequence[Run]) -> dict[GroupKey, list[Run]]:
    """Seeds of one (env, method, name), groups in env then paper order, seeds in seed order."""
    groups: dict[GroupKey, list[Run]] = {}
    for run in runs:
        groups.setdefault(run.key, []).append(run)
    return {key: sorted(groups[key], key=lambda run: (run.seed, str(run.path))) for key in sorted(groups)}


def check_columns(runs: Sequence[Run], wanted: Sequence[str]) -> None:
    """Fail early, naming look-alike columns, when a requested column is in no run at all."""
    known = {column for run in runs for column in run.columns}
    for column in wanted:
        if column not in known:
            raise PlotError(f"column {column!r} is in no progress.csv; {_similar_columns(column, known)}")


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
    has_stages = any(np.any(np.nan_to_num(run.series(STAGES, "epoch")[1]) != 0) for run in runs if STAGES in run.columns)
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


def aggregate(series: Sequence[tuple[np.ndarray, np.ndarray]]) -> Curve | None:
    """Mean, std and min-max of seeds, interpolated onto the x values inside their common range (module doc)."""
    series = [(x, y) for x, y in series if len(x)]
    if not series:
        return None
    start, end = max(x[0] for x, _ in series), min(x[-1] for x, _ in series)
    if start > end:
        return None
    grid = np.unique(np.concatenate([x[(x >= start) & (x <= end)] for x, _ in series]))
    values = np.stack([np.interp(grid, x, y) for x, y in series])
    cut = any(x[-1] > end for x, _ in series)
    return Curve(grid, values.mean(0), values.std(0), values.min(0), values.max(0), len(series), cut)


def group_curve(runs: Sequence[Run], metric: str, x: str, window: int) -> Curve | None:
    return aggregate([(xs, smooth(ys, window)) for xs, ys in (run.series(metric, x) for run in runs)])


def group_colours(keys: Sequence[GroupKey]) -> dict[GroupKey, str]:
    """A method keeps its colour across figures; named variants take the colours no method uses."""
    colours: dict[GroupKey, str] = {}
    spare = len(METHODS)
    for key in keys:
        if key in colours:
            continue
        same = next((c for k, c in colours.items() if (k.method, k.name) == (key.method, key.name)), None)
        if same is None and key.name == "None" and key.method_rank < len(METHODS):
            same = COLOURS[key.method_rank % len(COLOURS)]
        if same is None:
            same, spare = COLOURS[spare % len(COLOURS)], spare + 1
        colours[key] = same
    return colours


def draw_curve(ax: Axes, curve: Curve, label: str, colour: str, band: str) -> None:
    low, high = (curve.low, curve.high) if band == "minmax" else (curve.mean - curve.std, curve.mean + curve.std)
    marker = "o" if len(curve.x) <= 30 else None
    ax.plot(curve.x, curve.mean, color=colour, label=f"{label} (n={curve.seeds})", marker=marker, markersize=3, linewidth=1.6)
    if curve.seeds > 1:
        ax.fill_between(curve.x, low, high, color=colour, alpha=0.2, linewidth=0)


def plot_curves(groups: dict[GroupKey, list[Run]], metrics: Sequence[str], x: str, window: int, band: str, out: Path) -> None:
    """One row of panels (one per metric) per env, one curve per method, saved as an image."""
    envs = sorted({key.env for key in groups})
    colours = group_colours(list(groups))
    fig = Figure(figsize=(max(5.2 * len(metrics), 7.5), 3.8 * len(envs) + 0.6), layout="constrained")
    axes = fig.subplots(len(envs), len(metrics), squeeze=False)
    smoothing = f", moving average of {window} evaluations" if window > 1 else ""
    band_text = "min-max" if band == "minmax" else "\u00b1 std"
    cut_noted: set[GroupKey] = set()
    for row, env in enumerate(envs):
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            drawn = 0
            for key, runs in groups.items():
                curve = group_curve(runs, metric, x, window) if key.env == env else None
                if curve is None:
                    continue
                if curve.cut and key not in cut_noted:
                    cut_noted.add(key)
                    print(f"note: {env} {key.method}: seeds cut at {x}={curve.x[-1]:g} (the shortest seed's end)", file=sys.stderr)
                draw_curve(ax, curve, key.label(), colours[key], band)
                drawn += 1
            _style_panel(ax, metric if len(envs) == 1 else f"{env}: {metric}", x, metric)
            if not drawn:
                ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
    # one legend under the panels, so no curve is hidden; labels carry n, so a panel with fewer seeds adds its own entry
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        ncols = min(len(handles), 2 if len(metrics) == 1 else 3)
        fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)
    title = envs[0] if len(envs) == 1 else "learning curves"
    fig.suptitle(f"{title}  (mean over seeds, {band_text} band{smoothing})", fontsize=11)
    fig.savefig(out, dpi=120)


def _style_panel(ax: Axes, title: str, x: str, metric: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 400k, 1.2M: env-step ticks stay readable
    ax.grid(alpha=0.3)
    if metric.endswith(("success", "own_policy_frac")):
        ax.set_ylim(-0.03, 1.03)


# ---------------------------------------------------------------------------------------------- table


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
        return "\u2014"
    text = f"{mean:.2f} \u00b1 {std:.2f}"
    return text if count == seeds else f"{text} (n={count})"


def _format_steps(values: Sequence[float]) -> str:
    finite = [int(v) for v in values if math.isfinite(v)]
    if not finite:
        return "\u2014"
    low, high = min(finite), max(finite)
    return f"{low:,}" if low == high else f"{low:,}\u2013{high:,}"


def format_table(groups: dict[GroupKey, list[Run]], metrics: Sequence[str]) -> str:
    """One markdown table per env, one row per method: what docs/ quote as results."""
    blocks = []
    for env in sorted({key.env for key in groups}):
        header = ["method", "seeds", "env steps"] + [f"{m} (final)" for m in metrics]
        lines = [f"### {env}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        for key, runs in groups.items():
            if key.env != env:
                continue
            cells = [f"{key.label()} (`{key.method}`)", str(len(runs)), _format_steps([run.last_value("env_steps") for run in runs])]
            cells += [_format_stat([final_value(run, m) for run in runs], len(runs)) for m in metrics]
            lines.append("| " + " | ".join(cells) + " |")
        blocks.append("\n".join(lines))
    note = (f"final = mean of each seed's last {FINAL_EVALS} evaluations; mean \u00b1 std (ddof=0) over seeds; "
            "(n=k) when only k seeds have evaluated; env steps = last logged epoch (min\u2013max if seeds differ).")
    return "\n\n".join(blocks) + "\n\n" + note


# ---------------------------------------------------------------------------------------------- heatmap


def load_selection(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch Q-switch selection records; a half-written last line of a running job is dropped."""
    path = run_dir / QSWITCH_LOG
    if not path.is_file():
        qmp_methods = ", ".join(name for name, method in METHODS.items() if method.qswitch)
        raise PlotError(f"{path} does not exist; only QMP methods ({qmp_methods}) write it")
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    if not records:
        raise PlotError(f"{path} has no epochs yet")
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


def plot_heatmap(run_dir: Path, last: int, window: int, out: Path) -> None:
    """Left: who acts for whom over the last epochs. Right: how the own-policy share evolves."""
    if not run_dir.is_dir():
        raise PlotError(f"run directory {run_dir} does not exist")
    records = load_selection(run_dir)
    tasks = list(records[-1]["tasks"])
    fractions = selection_fractions(records, last)
    steps, own = own_policy_fractions(records)
    cfg = json.loads((run_dir / CONFIG).read_text()) if (run_dir / CONFIG).is_file() else {}
    who = f"{cfg.get('env', run_dir.name)} {cfg.get('method', '')} seed{cfg.get('seed', '?')}"
    used = records[-last:]
    span = f"epochs {used[0]['epoch']}\u2013{used[-1]['epoch']}, env steps {used[0]['env_steps']:,}\u2013{used[-1]['env_steps']:,}"

    size = len(tasks)
    fig = Figure(figsize=(max(6.0, 0.75 * size + 3.5) + 5.5, max(4.5, 0.6 * size + 2.5)), layout="constrained")
    heat_ax, own_ax = fig.subplots(1, 2, width_ratios=[1.3, 1.0])
    image = heat_ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fontsize = 9 if size <= 6 else 7
    for i in range(size):
        for j in range(size):
            value = fractions[i, j]
            heat_ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=fontsize, color="white" if value > 0.55 else "black")
    heat_ax.set_xticks(range(size), tasks, rotation=40, ha="right", fontsize=8)
    heat_ax.set_yticks(range(size), tasks, fontsize=8)
    heat_ax.set_xlabel("policy whose proposal was executed")
    heat_ax.set_ylabel("task (state being acted in)")
    heat_ax.set_title(f"Q-switch selection, last {len(used)} epochs\n({span})", fontsize=9)
    fig.colorbar(image, ax=heat_ax, label="fraction of the task's steps", shrink=0.85)

    for i, task in enumerate(tasks):
        keep = np.isfinite(own[:, i])
        own_ax.plot(steps[keep], smooth(own[keep, i], window), label=task, color=COLOURS[i % len(COLOURS)], linewidth=1.4)
    _style_panel(own_ax, "own policy chosen, per task" + (f" (moving average of {window} epochs)" if window > 1 else ""),
                 "env_steps", "own_policy_frac")
    own_ax.set_ylabel("own-policy fraction")
    own_ax.legend(fontsize=7, loc="best", framealpha=0.8)
    fig.suptitle(who, fontsize=11)
    fig.savefig(out, dpi=120)


# ---------------------------------------------------------------------------------------------- CLI


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m qmp.plot", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="*", type=Path, metavar="RUN_ROOT", help="directories searched for run directories")
    parser.add_argument("--out", type=Path, help="image to write (.png)")
    parser.add_argument("--metric", action="append", help="progress.csv column, repeatable (default: eval/success, "
                        "plus eval/stages_completed if any run has stages)")
    parser.add_argument("--x", default="env_steps", help="x-axis column (default: env_steps)")
    parser.add_argument("--smooth", type=_positive_int, default=1, help="trailing moving average over K evaluations per seed")
    parser.add_argument("--band", choices=("minmax", "std"), default="minmax", help="shaded band across seeds")
    parser.add_argument("--table", action="store_true", help="print a markdown table of final results per (env, method)")
    parser.add_argument("--heatmap", type=Path, metavar="RUN_DIR", help="draw the Q-switch selection of one QMP run")
    parser.add_argument("--last", type=_positive_int, default=10, help="epochs summed by --heatmap (default: 10)")
    return parser


def run_cli(args: argparse.Namespace) -> None:
    if args.heatmap is not None:
        if args.roots or args.table:
            raise PlotError("--heatmap draws one run: give it no RUN_ROOT and no --table")
        if args.out is None:
            raise PlotError("--heatmap needs --out FILE.png")
        plot_heatmap(args.heatmap, args.last, args.smooth, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
        return
    if not args.roots:
        raise PlotError("give at least one RUN_ROOT (or --heatmap RUN_DIR)")
    if args.out is None and not args.table:
        raise PlotError("nothing to do: give --out FILE.png and/or --table")
    runs = load_runs(args.roots)
    metrics = args.metric or default_metrics(runs)
    check_columns(runs, [args.x, *metrics])
    groups = group_runs(runs)
    if args.out is not None:
        plot_curves(groups, metrics, args.x, args.smooth, args.band, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
    if args.table:
        print(format_table(groups, metrics))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        run_cli(args)
    except PlotError as error:
        print(f"qmp.plot: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
