"""What a finished run shows at a glance: per task, the main metric at the first and the last evaluation, and a
curves.png of every task's evaluation curve in the run directory.

    python -m qmp.summary RUN_DIR [RUN_DIR ...] [--compare OUT.png]

The main metric is the env's (config.json's resolved.main_metric: paper_success, or return for tasks with no
success). Several run directories of one env print side by side, one column per run, and `--compare` draws
their task-mean curves in one panel.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qmp.results import ResultsError, Run, load_run
from qmp.run_dir import is_run_dir, read_config

CURVES = "curves.png"
X = "env_steps"


def main_metric(run: Run) -> str:
    """The env's main metric, as config.json records it (runs older than that field: paper_success)."""
    return str((read_config(run.path).get("resolved") or {}).get("main_metric", "paper_success"))


def first_and_last(run: Run, column: str) -> tuple[float, float]:
    """The column at the first and at the last evaluation (NaN if it was never evaluated)."""
    _, values = run.series(column, X)
    return (float(values[0]), float(values[-1])) if len(values) else (math.nan, math.nan)


def _cell(first: float, last: float) -> str:
    def number(value: float) -> str:
        return "-" if not math.isfinite(value) else f"{value:.2f}" if abs(value) < 10 else f"{value:.0f}"

    return f"{number(first)} -> {number(last)}"


def summary_table(runs: Sequence[tuple[str, Run]], metric: str) -> str:
    """A plain-text table: one row per task and one for the task mean; per run, `first -> last` of
    eval/<task>/<metric>, and the env steps of the last evaluation."""
    tasks = runs[0][1].tasks
    header = ["task", *(label for label, _ in runs)]
    rows = [[task, *(_cell(*first_and_last(run, f"eval/{task}/{metric}")) for _, run in runs)] for task in tasks]
    rows.append(["mean", *(_cell(*first_and_last(run, f"eval/{metric}")) for _, run in runs)])
    steps = [run.series(f"eval/{metric}", X)[0] for _, run in runs]
    rows.append(["env steps", *(f"{s[0]:,.0f} -> {s[-1]:,.0f}" if len(s) else "-" for s in steps)])
    widths = [max(len(row[col]) for row in [header, *rows]) for col in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
             for row in [header, *rows]]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return f"eval/{metric} per task, first -> last evaluation\n" + "\n".join(lines)


def write_curves(run: Run, metric: str, out: Path) -> Path:
    """Every task's evaluation curve of `metric` and their mean (bold), one panel, saved to `out`."""
    from matplotlib.figure import Figure

    from qmp.figure_style import COLOURS, style_panel

    fig = Figure(figsize=(7.5, 4.2), layout="constrained")
    ax = fig.subplots()
    for index, task in enumerate(run.tasks):
        x, y = run.series(f"eval/{task}/{metric}", X)
        ax.plot(x, y, color=COLOURS[index % len(COLOURS)], linewidth=1.0, alpha=0.8, label=task)
    x, y = run.series(f"eval/{metric}", X)
    ax.plot(x, y, color="black", linewidth=2.2, label="mean over tasks")
    style_panel(ax, f"{run.key.env}: {run.key.method}, seed {run.seed}", X, f"eval/{metric}")
    ax.legend(fontsize=7, ncols=2)
    fig.savefig(out, dpi=110)
    return out


def write_comparison(runs: Sequence[tuple[str, Run]], metric: str, out: Path) -> Path:
    """The task-mean evaluation curve of each run, one panel."""
    from matplotlib.figure import Figure

    from qmp.figure_style import COLOURS, style_panel

    fig = Figure(figsize=(7.0, 4.0), layout="constrained")
    ax = fig.subplots()
    for index, (label, run) in enumerate(runs):
        x, y = run.series(f"eval/{metric}", X)
        ax.plot(x, y, color=COLOURS[index % len(COLOURS)], linewidth=1.8, marker="o", markersize=3, label=label)
    style_panel(ax, f"{runs[0][1].key.env}: mean over tasks", X, f"eval/{metric}")
    ax.legend(fontsize=8)
    fig.savefig(out, dpi=110)
    return out


def rises(run: Run, metric: str) -> bool:
    """Whether the task-mean metric ended clearly above where it started (a tenth of its observed range)."""
    _, values = run.series(f"eval/{metric}", X)
    if len(values) < 2 or not np.isfinite(values).all():
        return False
    span = max(float(np.ptp(values)), 1e-9)
    return bool(values[-1] - values[0] > 0.1 * span and values[-1] > values[0])


def labels(runs: Sequence[Run]) -> list[str]:
    """The shortest label that tells the runs apart: method, then method/name, then the directory."""
    for label in (lambda r: r.key.method, lambda r: f"{r.key.method}/{r.key.name}/seed{r.seed}", lambda r: str(r.path)):
        names = [label(run) for run in runs]
        if len(set(names)) == len(names):
            return names
    return [str(run.path) for run in runs]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m qmp.summary", description=__doc__.split("\n\n")[0])
    parser.add_argument("run_dirs", nargs="+", type=Path, metavar="RUN_DIR")
    parser.add_argument("--compare", type=Path, metavar="OUT.png", help="also draw the runs' task-mean curves here")
    args = parser.parse_args(argv)
    try:
        for run_dir in args.run_dirs:
            if not is_run_dir(run_dir):
                raise ResultsError(f"{run_dir} is not a run directory (no config.json and progress.csv)")
        runs = [load_run(run_dir) for run_dir in args.run_dirs]
        if len({run.key.env for run in runs}) > 1 or len({run.tasks for run in runs}) > 1:
            raise ResultsError("the runs are of different envs or tasks; summarise each env on its own")
        metric = main_metric(runs[0])
        labelled = list(zip(labels(runs), runs, strict=True))
    except ResultsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(summary_table(labelled, metric))
    for run in runs:
        print(f"curves: {write_curves(run, metric, run.path / CURVES)}")
    if args.compare is not None:
        print(f"comparison: {write_comparison(labelled, metric, args.compare)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
