"""Learning curves, paper-comparison figures, Q-switch selection heatmaps and markdown result tables.

    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --out curves.png [--metric eval/success ...] [--x env_steps] [--smooth K]
    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --table
    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --paper --out paper.png [--prefix eval eval_mixture]
                                                [--smooth K | --smooth_steps 60k] [--max_steps 300k]
    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --table --paper [--at 500000 2000000]
    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --table --paper --per_seed [--at 50k 100k]
    python -m qmp.plot --heatmap RUN_DIR --out heatmap.png [--last 10]
    python -m qmp.plot RUN_ROOT [RUN_ROOT ...] --table --selection [--last 10]

A run directory is any directory holding config.json and progress.csv (written by qmp/launch.py). Runs are
grouped by (env, method, name); each group's seeds become one curve: the mean over seeds with a shaded
min-max band (`--band std` for mean +- std, population std, ddof=0). Loading, seed alignment (cut at the
shortest seed, a note on stderr says so) and the tables live in qmp/results.py, qmp/paper_results.py and
qmp/paper_tables.py, which are torch- and matplotlib-free for notebooks; the paper's layout is qmp/paper_figure.py.

--paper: the paper's view. One panel per env, one line per method (its paper name), x = env steps,
y = the IQM over seeds of each seed's task-mean `--score` (default paper_success, the success the paper's
curves show) with a shaded 95% bootstrap band over seeds (`--reps` resamples). `--prefix` picks the policy:
eval = each task's own policy (default), eval_mixture = the Q-switch mixture (QMP methods); given both, the
second is dashed in the same colour. The paper's values, read off its figure, are 'x' markers in the
method's colour (`--max_steps` ends the x-axis earlier and leaves out those beyond it). With --table: per
env-steps point (`--at`, default the paper's points) our IQM [95% CI] for own policy and mixture beside
the paper's value, and the strict eval/success and stages; with --per_seed instead, a row per seed with its
own score (the mixture's in brackets) at each of those evaluations (default: every evaluation).

Smoothing: `--smooth K` averages each seed's point with its K-1 previous evaluations; `--smooth_steps S`
averages it with the evaluations less than S env steps (x units) before it, so that panels with different
evaluation intervals are smoothed over the same span (qmp/smoothing.py). Both trail: a point never uses
later evaluations. Tables are never smoothed.

--table --selection: for every run that logged Q-switch selections (QMP methods, MT-Lévy), the share of each
task's executed actions that its own policy proposed over the last `--last` epochs (the heatmap's diagonal, all
seeds at once) and the mean switch rate.

Matplotlib is driven through `matplotlib.figure.Figure` only (no pyplot), so it never needs a display.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from matplotlib.axes import Axes
from matplotlib.figure import Figure

from qmp.figure_style import group_colours, no_data, note_cut, style_panel
from qmp.heatmap import plot_heatmap
from qmp.paper_figure import plot_paper
from qmp.paper_tables import format_paper_table, format_seed_table
from qmp.qswitch_selection import format_selection_table
from qmp.results import (
    PAPER_SUCCESS,
    Curve,
    GroupKey,
    ResultsError,
    Run,
    check_columns,
    default_metrics,
    format_table,
    group_curve,
    group_runs,
    load_runs,
)
from qmp.smoothing import Smoothing

PlotError = ResultsError  # a problem with the user's input (no runs, unknown column): one line, exit status 2


# ---------------------------------------------------------------------------------------------- curves


def draw_curve(ax: Axes, curve: Curve, label: str, colour: str, band: str) -> None:
    low, high = (curve.low, curve.high) if band == "minmax" else (curve.mean - curve.std, curve.mean + curve.std)
    marker = "o" if len(curve.x) <= 30 else None
    ax.plot(curve.x, curve.mean, color=colour, label=f"{label} (n={curve.seeds})", marker=marker, markersize=3,
            linewidth=1.6)
    if curve.seeds > 1:
        ax.fill_between(curve.x, low, high, color=colour, alpha=0.2, linewidth=0)


def plot_curves(groups: dict[GroupKey, list[Run]], metrics: Sequence[str], x: str, smoothing: Smoothing, band: str,
                out: Path) -> Figure:
    """One row of panels (one per metric) per env, one curve per method, saved as an image."""
    envs = sorted({key.env for key in groups})
    colours = group_colours(list(groups))
    fig = Figure(figsize=(max(5.2 * len(metrics), 7.5), 3.8 * len(envs) + 0.6), layout="constrained")
    axes = fig.subplots(len(envs), len(metrics), squeeze=False)
    smoothed = smoothing.in_title(", {}", unit=x.replace("_", " "))  # 'env steps', or the column's name ('epoch')
    band_text = "min-max" if band == "minmax" else "\u00b1 std"
    cut_noted: set[GroupKey] = set()
    for row, env in enumerate(envs):
        for col, metric in enumerate(metrics):
            ax = axes[row][col]
            drawn = 0
            for key, runs in groups.items():
                curve = group_curve(runs, metric, x, smoothing) if key.env == env else None
                if curve is None:
                    continue
                if curve.cut and key not in cut_noted:
                    cut_noted.add(key)
                    note_cut(key, x, curve.x[-1])
                draw_curve(ax, curve, key.label(), colours[key], band)
                drawn += 1
            style_panel(ax, metric if len(envs) == 1 else f"{env}: {metric}", x, metric)
            if not drawn:
                no_data(ax)
    # one legend under the panels, so no curve is hidden; labels carry n, so a panel with fewer seeds adds its own entry
    handles: dict[str, Any] = {}
    for ax in axes.flat:
        for handle, label in zip(*ax.get_legend_handles_labels(), strict=True):
            handles.setdefault(label, handle)
    if handles:
        ncols = min(len(handles), 2 if len(metrics) == 1 else 3)
        fig.legend(handles.values(), handles.keys(), loc="outside lower center", ncols=ncols, fontsize=8, frameon=False)
    title = envs[0] if len(envs) == 1 else "learning curves"
    fig.suptitle(f"{title}  (mean over seeds, {band_text} band{smoothed})", fontsize=11)
    fig.savefig(out, dpi=120)
    return fig


# ---------------------------------------------------------------------------------------------- CLI


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def _steps(text: str) -> int:
    """500000, 5e5, 500k or 2M."""
    units = {"k": 1_000, "m": 1_000_000}
    try:
        value = float(text[:-1]) * units[text[-1].lower()] if text[-1:].lower() in units else float(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not a number of env steps: {text!r}") from error
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return int(round(value))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m qmp.plot", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("roots", nargs="*", type=Path, metavar="RUN_ROOT",
                        help="directories searched for run directories")
    parser.add_argument("--out", type=Path, help="image to write (.png)")
    parser.add_argument("--metric", action="append", help="progress.csv column, repeatable (default: eval/success, "
                        "plus eval/stages_completed if any run has stages)")
    parser.add_argument("--x", default="env_steps", help="x-axis column (default: env_steps)")
    parser.add_argument("--smooth", type=_positive_int, default=1,
                        help="trailing moving average over K evaluations per seed (per task with --paper)")
    parser.add_argument("--smooth_steps", type=_steps, metavar="STEPS",
                        help="instead of --smooth: trailing average over the evaluations of the last STEPS x units "
                             "(60k, 6e4), the same span in every panel whatever its evaluation interval")
    parser.add_argument("--band", choices=("minmax", "std"), default="minmax", help="shaded band across seeds")
    parser.add_argument("--table", action="store_true",
                        help="print a markdown table of final results per (env, method)")
    parser.add_argument("--paper", action="store_true",
                        help="the paper's view: IQM + 95%% bootstrap CI of per-task paper_success beside the paper's "
                             "values (with --out: figure, with --table: table)")
    parser.add_argument("--prefix", nargs="+", metavar="PREFIX",
                        help="--paper: eval (own policies, default), eval_mixture (Q-switch mixture); "
                             "a second prefix is drawn dashed")
    parser.add_argument("--score", default=PAPER_SUCCESS,
                        help="--paper: per-task column under the prefix (default: paper_success; e.g. success)")
    parser.add_argument("--at", nargs="+", type=_steps, metavar="STEPS",
                        help="--table --paper: env steps to compare at (500000, 5e5, 500k, 2M; default: the paper's)")
    parser.add_argument("--per_seed", action="store_true",
                        help="--table --paper: a row per seed, its own score (mixture in brackets) at each evaluation "
                             "of --at (default: every evaluation)")
    parser.add_argument("--max_steps", type=_steps, metavar="STEPS",
                        help="--paper figure: end the x-axis at STEPS env steps (paper values beyond it are left out)")
    parser.add_argument("--reps", type=_positive_int, default=2000, help="--paper: bootstrap resamples (default: 2000)")
    parser.add_argument("--heatmap", type=Path, metavar="RUN_DIR", help="draw the Q-switch selection of one QMP run")
    parser.add_argument("--selection", action="store_true",
                        help="with --table: each QMP run's own-policy share per task, switch rate, over --last epochs")
    parser.add_argument("--last", type=_positive_int, default=10,
                        help="epochs summed by --heatmap and --selection (default: 10)")
    return parser


def smoothing_of(args: argparse.Namespace) -> Smoothing:
    if args.smooth_steps is not None and args.smooth > 1:
        raise PlotError(f"give --smooth {args.smooth} or --smooth_steps {args.smooth_steps}, not both")
    return Smoothing(span=args.smooth_steps) if args.smooth_steps is not None else Smoothing(args.smooth)


def run_cli(args: argparse.Namespace) -> None:
    smoothing = smoothing_of(args)
    if args.heatmap is not None:
        if args.roots or args.table or args.paper:
            raise PlotError("--heatmap draws one run: give it no RUN_ROOT, no --table and no --paper")
        if args.out is None:
            raise PlotError("--heatmap needs --out FILE.png")
        plot_heatmap(args.heatmap, args.last, smoothing, args.out)
        print(f"wrote {args.out}", file=sys.stderr)
        return
    if not args.roots:
        raise PlotError("give at least one RUN_ROOT (or --heatmap RUN_DIR)")
    if args.selection:
        if not args.table or args.paper or args.out is not None:
            raise PlotError("--selection is a table of its own: give it --table, and no --paper or --out")
        print(format_selection_table(load_runs(args.roots), args.last))
        return
    if args.out is None and not args.table:
        raise PlotError("nothing to do: give --out FILE.png and/or --table")
    if not args.paper and (args.prefix or args.at or args.max_steps or args.score != PAPER_SUCCESS):
        raise PlotError("--prefix, --score, --at and --max_steps go with --paper")
    if args.max_steps and args.out is None:
        raise PlotError("--max_steps crops the --paper figure: add --out FILE.png")
    if args.at and not args.table:
        raise PlotError("--at picks the columns of --table --paper: add --table")
    if args.per_seed and not (args.table and args.paper):
        raise PlotError("--per_seed is a form of --table --paper: add both")
    runs = load_runs(args.roots)
    groups = group_runs(runs)
    if args.paper:
        if args.metric:
            raise PlotError("--paper plots per-task --score under --prefix, not --metric")
        prefixes = args.prefix or ["eval"]
        check_columns(runs, [f"{prefix}/{args.score}" for prefix in prefixes])
        if args.out is not None:
            plot_paper(groups, args.out, prefixes, args.score, smoothing, args.reps, max_steps=args.max_steps)
            print(f"wrote {args.out}", file=sys.stderr)
        if args.table and args.per_seed:
            print(format_seed_table(groups, args.at, args.score))
        elif args.table:
            print(format_paper_table(groups, args.at, args.score, args.reps))
        return
    metrics = args.metric or default_metrics(runs)
    check_columns(runs, [args.x, *metrics])
    if args.out is not None:
        plot_curves(groups, metrics, args.x, smoothing, args.band, args.out)
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
