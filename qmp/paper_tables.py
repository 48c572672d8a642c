"""The paper's view as markdown tables: our IQM [95% CI] beside the paper's values, and every seed at each
evaluation. numpy only on top of qmp/paper_results.py, so it imports in milliseconds in a notebook:

    from pathlib import Path
    from qmp import paper_tables, results
    groups = results.group_runs(results.load_runs([Path("runs")]))
    print(paper_tables.format_paper_table(groups, at=[500_000, 2_000_000]))   # IQM [CI] vs the paper
    print(paper_tables.format_seed_table(groups, at=[100_000, 200_000]))      # every seed, own (mixture)
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from qmp.markdown_table import env_table_head, markdown_row, short_steps
from qmp.methods import METHODS
from qmp.paper_results import (
    TaskScores,
    iqm,
    paper_value,
    paper_values,
    seed_means,
    stratified_bootstrap_ci,
    task_scores,
)
from qmp.results import (
    DASH,
    FINAL_EVALS,
    PAPER_SUCCESS,
    GroupKey,
    Run,
    _format_steps,
    final_value,
    has_stages,
    method_rank,
    paper_labels,
)


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
                       metric: str = PAPER_SUCCESS, reps: int = 2000, seed: int = 0,
                       paper_only_rows: bool = True) -> str:
    """One markdown table per env comparing our IQM [95% CI] of the paper's success with the paper's values.

    Per env-steps point: our own policies (eval/), our Q-switch mixture (eval_mixture/, QMP methods only) and
    the paper's approximate value; then the strict eval/success and eval/stages_completed, final values
    (stages "—" for an env whose runs never logged a stage, such as Maze). Methods the paper reports for that
    env but we have no runs of get a row of their own with "0" seeds, unless `paper_only_rows` is False (a table
    of one family's runs). `at` defaults to the paper's steps of each env.
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
        lines = env_table_head(env, header)
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
            lines.append(markdown_row(cells))
        ours = {key.method for key in keys}
        paper_only = paper_values(env) if metric == PAPER_SUCCESS and paper_only_rows else []
        for method in dict.fromkeys(v.method for v in paper_only if v.method not in ours):
            name = GroupKey(env, method_rank(method), method, "None").paper_name()
            cells = [f"{name} (`{method}`)", "0", DASH]
            for p in points:
                reference = paper_value(env, method, p)
                cells += [DASH, DASH, DASH if reference is None else f"~{reference:.2f}"]
            lines.append(markdown_row(cells + [DASH, DASH]))
        blocks.append("\n".join(lines))
    note = (f"own = each task's own policy (eval/), mixture = the Q-switch mixture (eval_mixture/, QMP methods); "
            f"both: IQM over seeds of each seed's mean over tasks of {metric} [95% bootstrap CI over seeds, {reps} "
            f"resamples] at "
            f"the last evaluation at or before the column's env steps (\"(at ...)\" when that is further back than "
            f"one evaluation interval), {DASH} when not every seed has trained that far. paper = value read off the "
            f"paper's figure (approximate). strict success / stages: IQM [CI] of each seed's per-task mean of its "
            f"last {FINAL_EVALS} evaluations. (n=k): only k seeds have evaluated.")
    return "\n\n".join(blocks) + "\n\n" + note


def seed_scores(run: Run, points: Sequence[int], metric: str = PAPER_SUCCESS,
                prefix: str = "eval") -> list[float | None]:
    """One seed's score at each evaluation logged at exactly `points` env steps: its mean over tasks of
    `{prefix}/<task>/{metric}`; None where it did not evaluate every task."""
    per_task = [dict(zip(*run.series(f"{prefix}/{task}/{metric}", "env_steps"), strict=True)) for task in run.tasks]
    return [float(np.mean([values[p] for values in per_task])) if per_task and all(p in values for values in per_task)
            else None for p in points]


def evaluation_steps(runs: Sequence[Run], metric: str) -> list[int]:
    """Every env-steps value at which some seed evaluated its first task (the default columns of a seed table)."""
    steps: set[int] = set()
    for run in runs:
        if run.tasks:
            steps.update(int(x) for x in run.series(f"eval/{run.tasks[0]}/{metric}", "env_steps")[0])
    return sorted(steps)


def format_seed_table(groups: dict[GroupKey, list[Run]], at: Sequence[int] | None = None,
                      metric: str = PAPER_SUCCESS, headings: bool = True) -> str:
    """One markdown table per env with a row per seed: its own policies' score at each evaluation of `at`, and
    the Q-switch mixture's in brackets (QMP methods). The IQM tables hide how seeds differ (one seed that learns
    late, two that never do); this shows it. `at` defaults to every evaluation of the env's runs. `headings` False
    leaves out the `### env` heading of each table, for a page section that names its env already.
    """
    blocks = []
    for env in sorted({key.env for key in groups}):
        keys = [key for key in groups if key.env == env]
        labels = paper_labels(keys)
        points = sorted(set(at)) if at else evaluation_steps([run for key in keys for run in groups[key]], metric)
        header = ["method", "seed", *(short_steps(p) for p in points)]
        lines = env_table_head(env, header, headings)
        for key in keys:
            qswitch = key.method not in METHODS or METHODS[key.method].qswitch
            for run in groups[key]:
                cells = [f"{labels[key]} (`{key.method}`)", str(run.seed)]
                mixtures = seed_scores(run, points, metric, "eval_mixture") if qswitch else [None] * len(points)
                for own, mixture in zip(seed_scores(run, points, metric, "eval"), mixtures, strict=True):
                    cell = DASH if own is None else f"{own:.2f}"
                    cells.append(cell if mixture is None else f"{cell} ({mixture:.2f})")
                lines.append(markdown_row(cells))
        blocks.append("\n".join(lines))
    note = (f"Each seed's mean over tasks of {metric} of its own policies (eval/) at the evaluation logged at "
            f"exactly the column's env steps; in brackets the Q-switch mixture's (eval_mixture/, QMP methods); "
            f"{DASH} where the seed did not evaluate there.")
    return "\n\n".join(blocks) + "\n\n" + note
