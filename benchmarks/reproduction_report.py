"""The figures and tables of docs/results.md, regenerated from the runs kept in docs/results/.

    .venv/bin/python benchmarks/reproduction_report.py [--results docs/results] [--doc docs/results.md]
                                                       [--img docs/img]

`benchmarks/reproduction.sh report` runs this. The figures are written to `--img` as repro_*.png. Each table
sits in the page between `<!-- table:NAME -->` and `<!-- /table:NAME -->`; everything outside those markers is
prose and stays as written. A marker the page lacks is an error, and then neither the page nor a figure is
written. Which runs each figure and table shows is decided here, and only here.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from matplotlib.figure import Figure  # noqa: E402

from qmp.heatmap import plot_heatmap  # noqa: E402
from qmp.paper_figure import plot_paper  # noqa: E402
from qmp.paper_tables import evaluation_steps, format_paper_table, format_seed_table  # noqa: E402
from qmp.qswitch_selection import format_selection_table  # noqa: E402
from qmp.results import (  # noqa: E402
    PAPER_SUCCESS,
    ResultsError,
    Run,
    format_table,
    group_runs,
    has_stages,
    load_runs,
)
from qmp.run_dir import QSWITCH_LOG  # noqa: E402
from qmp.smoothing import NO_SMOOTHING, Smoothing  # noqa: E402

JACO, MAZE = "JacoReachMT5-v1", "MazeLarge-10-v0"
SEED_COLUMNS = 7  # at most this many evaluations per per-seed table, so that it fits the page's width
FINAL = 50  # epochs summed by the selection table and the heatmaps
PARAMETERS = ("mtsac", "qmp_sac")
# the original's squashing: the study's named runs, or a cluster sweep's unnamed ones on today's defaults
ORIGINAL_SQUASHING = ("params_double_tanh", "None")
# each seed's curve is averaged over its evaluations of the trailing 60k env steps: 3 on Jaco (every 20k), the
# point alone on Maze (every 120k), so that no panel is smoothed over a large share of its run
SMOOTHING = Smoothing(span=60_000)
PREFIXES = ("eval", "eval_mixture")  # own policies solid, the Q-switch mixture dashed


class ReportError(Exception):
    """The page cannot take the tables (a marker is missing)."""


def common_evaluations(runs: Sequence[Run], first: int, last: int | None = None, most: int = SEED_COLUMNS) -> list[int]:
    """Env steps from `first` to `last` at which every run evaluated its first task, thinned evenly to at most `most`
    (the last always kept): a per-seed table's columns, so that they follow the runs as they grow."""
    common = set.intersection(*(set(evaluation_steps([run], PAPER_SUCCESS)) for run in runs)) if runs else set()
    points = sorted(p for p in common if p >= first and (last is None or p <= last))
    if len(points) <= most:
        return points
    return [points[round(k * (len(points) - 1) / (most - 1))] for k in range(most)]


def _per_task_metrics(runs: Sequence[Run]) -> list[str]:
    return [f"eval/{task}/paper_success" for task in runs[0].tasks]


def _strict_metrics(runs: Sequence[Run]) -> list[str]:
    stages = ["eval/stages_completed", "eval_mixture/stages_completed"] if has_stages(runs) else []
    return ["eval/success", *stages]


def seed_table(runs: Sequence[Run], first: int, last: int | None = None) -> str:
    """Every seed at the evaluations they share from `first` (to `last`), under a section that names its env."""
    groups = group_runs(runs)
    return format_seed_table(groups, common_evaluations(runs, first, last), headings=False)


def tables(runs: Sequence[Run]) -> dict[str, str]:
    """Every table of the page by marker name; the Parameters and Maze ones only once their runs exist."""
    groups = group_runs(runs)
    by_env = {env: [run for run in runs if run.key.env == env] for env in sorted({run.key.env for run in runs})}
    out = {
        "paper": format_paper_table(groups, [200_000, 300_000, 500_000, 1_000_000, 2_000_000]),
        "pertask": format_table(groups, {env: _per_task_metrics(env_runs) for env, env_runs in by_env.items()}),
        "strict": format_table(groups, {env: _strict_metrics(env_runs) for env, env_runs in by_env.items()}),
        "selection": format_selection_table(runs, FINAL),
    }
    parameters = [run for run in by_env.get(JACO, []) if run.key.method in PARAMETERS]
    if {run.key.method for run in parameters} == set(PARAMETERS):  # the Jaco Parameters batches (planned 500k)
        out["parameters"] = format_paper_table(group_runs(parameters),
                                               [50_000, 90_000, 130_000, 260_000, 500_000, 2_000_000],
                                               paper_only_rows=False)
        out["parameters_seeds"] = seed_table(parameters, 0, 130_000)
        # the pairs with the original's squashing past 130k, as far as every seed of them has gone
        out["parameters_seeds_later"] = seed_table([run for run in parameters if run.key.name in ORIGINAL_SQUASHING],
                                                   130_001)
    if MAZE in by_env:
        out["maze_seeds"] = seed_table(by_env[MAZE], 100_000)  # from 126k: the 6k evaluation is the warm-up's
    return out


def paper_panel_runs(runs: Sequence[Run]) -> list[Run]:
    """The paper's panels as the original ran them: Jaco's Separated runs and its Parameters runs with the
    original's squashing (our one-tanh runs and the ablation have their own figure), and Maze's with it once they
    exist (until then, every Maze run)."""
    jaco = [run for run in runs if run.key.env == JACO and (run.key.method in ("dnc_sac", "qmp_dnc") or (
        run.key.method in PARAMETERS and run.key.name in ORIGINAL_SQUASHING))]
    maze = [run for run in runs if run.key.env == MAZE]
    original = [run for run in maze if run.key.method in PARAMETERS and run.key.name in ORIGINAL_SQUASHING]
    return jaco + (original or maze)


def figures(runs: Sequence[Run], img: Path) -> dict[str, Figure]:
    """Every figure of the page, drawn into `img`, by file name."""
    paper = paper_panel_runs(runs)
    jaco = [run for run in paper if run.key.env == JACO]
    parameters = [run for run in runs if run.key.env == JACO and run.key.method in PARAMETERS]
    out = {"repro_paper.png": plot_paper(group_runs(paper), img / "repro_paper.png", PREFIXES,
                                         smoothing=SMOOTHING)}
    if jaco:
        out["repro_stages.png"] = plot_paper(group_runs(jaco), img / "repro_stages.png", PREFIXES,
                                             "stages_completed", SMOOTHING)
    if {run.key.method for run in parameters} == set(PARAMETERS):  # to their planned 500k (the paper's at 2M)
        out["repro_jaco_parameters.png"] = plot_paper(group_runs(parameters), img / "repro_jaco_parameters.png",
                                                      PREFIXES, smoothing=SMOOTHING, max_steps=500_000)
    for run in runs:  # the Q-switch's choices in seed 0 of every QMP batch
        if run.key.method.startswith("qmp_") and run.seed == 0 and (run.path / QSWITCH_LOG).is_file():
            name = f"repro_qswitch_{run.key.env}_{run.key.method}_{run.key.name}.png"
            out[name] = plot_heatmap(run.path, FINAL, NO_SMOOTHING, img / name)
    return out


def fill(page: str, bodies: dict[str, str]) -> str:
    """The page with each marked block's content replaced by its table."""
    for name, body in bodies.items():
        page, found = re.subn(rf"(<!-- table:{name} -->\n).*?(<!-- /table:{name} -->)",
                              lambda m, body=body: m.group(1) + body + "\n" + m.group(2), page, flags=re.S)
        if not found:
            raise ReportError(f"the page has no <!-- table:{name} --> ... <!-- /table:{name} --> block")
    return page


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("docs/results"), help="the kept runs")
    parser.add_argument("--doc", type=Path, default=Path("docs/results.md"), help="the page whose tables to redraw")
    parser.add_argument("--img", type=Path, default=Path("docs/img"), help="where the figures go")
    args = parser.parse_args(argv)
    if not args.doc.is_file():
        print(f"reproduction_report: error: --doc {args.doc} is not a file (the page whose tables to redraw)",
              file=sys.stderr)
        return 2
    if not args.img.is_dir():
        print(f"reproduction_report: error: --img {args.img} is not a directory (where the figures go)",
              file=sys.stderr)
        return 2
    try:
        runs = load_runs([args.results])  # raises ResultsError when there is no run with a logged epoch
        page = fill(args.doc.read_text(), tables(runs))
    except (ReportError, ResultsError) as error:
        print(f"reproduction_report: error: {error}", file=sys.stderr)
        return 2
    for name in figures(runs, args.img):  # the same runs, read once
        print(f"wrote {args.img / name}", file=sys.stderr)
    args.doc.write_text(page)
    print(f"wrote the tables of {args.doc}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
