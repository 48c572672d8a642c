"""The Q-switch selection log (qswitch_selection.jsonl, QMP methods only) as numbers: who acts for whom.

numpy and json only (no torch, no matplotlib); qmp/plot.py --heatmap draws it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from qmp.markdown_table import env_table_head, markdown_row
from qmp.methods import METHODS
from qmp.results import DASH, ResultsError, Run, paper_labels
from qmp.run_dir import QSWITCH_LOG, RunDirError, read_jsonl


def load_selection(run_dir: Path) -> list[dict[str, Any]]:
    """The per-epoch Q-switch selection records; a half-written last line of a running job is dropped."""
    path = run_dir / QSWITCH_LOG
    if not path.is_file():
        mixing = ", ".join(name for name, method in METHODS.items() if method.qswitch or method.levy)
        raise ResultsError(f"{path} does not exist; only QMP methods and MT-Lévy ({mixing}) write it")
    try:
        records = read_jsonl(path)
    except RunDirError as exc:
        raise ResultsError(str(exc)) from exc
    if not records:
        raise ResultsError(f"{path} has no epochs yet")
    return records


def selection_counts(records: Sequence[dict[str, Any]], last: int) -> np.ndarray:
    """T x T counts summed over the last epochs: [i, j] = steps of task i that executed policy j's proposal."""
    return np.sum([np.asarray(r["counts"], dtype=float) for r in records[-last:]], axis=0)


def selection_fractions(records: Sequence[dict[str, Any]], last: int) -> np.ndarray:
    """Counts summed over the last epochs, then row-normalised: row i = where task i's executed actions came from."""
    counts = selection_counts(records, last)
    return counts / np.maximum(counts.sum(1, keepdims=True), 1.0)


def own_policy_fractions(records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, epochs x tasks) share of each task's steps that its own policy chose; NaN when no steps."""
    steps = np.array([r["env_steps"] for r in records], dtype=float)
    counts = np.array([r["counts"] for r in records], dtype=float)
    totals = counts.sum(2)
    own = np.diagonal(counts, axis1=1, axis2=2)
    with np.errstate(invalid="ignore", divide="ignore"):
        return steps, np.where(totals > 0, own / totals, np.nan)


def switch_rates(records: Sequence[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    """(env steps, epochs x tasks) share of a task's steps on which the executed policy changed from the step
    before in the same episode (at most 1 / H under an H-step hold); NaN where not logged (older runs) or
    without such steps."""
    steps = np.array([r["env_steps"] for r in records], dtype=float)
    tasks = len(records[0]["counts"]) if records else 0
    rates = [[np.nan if v is None else v for v in r.get("switch_rate", [None] * tasks)] for r in records]
    return steps, np.array(rates, dtype=float).reshape(len(records), tasks)


def format_selection_table(runs: Sequence[Run], last: int) -> str:
    """One markdown table per env with a row per run that logged Q-switch selections: the share of each task's
    executed actions that its own policy proposed over the run's last `last` epochs, and the mean switch rate.

    The diagonal of the heatmap, for every seed at once: how much a QMP run actually shares behaviour.
    """
    logged = [run for run in runs if (run.path / QSWITCH_LOG).is_file()]
    if not logged:
        raise ResultsError(f"no run below the given roots has a {QSWITCH_LOG} (QMP methods and MT-Lévy write one)")
    blocks = []
    for env in sorted({run.key.env for run in logged}):
        env_runs = sorted((run for run in logged if run.key.env == env), key=lambda run: (run.key, run.seed))
        labels = paper_labels([run.key for run in env_runs])
        # the config's task names; a log written without them still names its tasks in every record
        tasks = next((run.tasks for run in env_runs if run.tasks), None) or load_selection(env_runs[0].path)[0]["tasks"]
        header = ["method", "seed", "epochs", *tasks, "switch rate"]
        lines = env_table_head(env, header)
        for run in env_runs:
            records = load_selection(run.path)[-last:]
            counts = selection_counts(records, last)
            own = [DASH if total == 0 else f"{mine / total:.2f}" for mine, total in zip(np.diagonal(counts),
                                                                                         counts.sum(1), strict=True)]
            rates = switch_rates(records)[1]
            rate = DASH if np.isnan(rates).all() else f"{float(np.nanmean(rates)):.2f}"
            cells = [f"{labels[run.key]} (`{run.key.method}`)", str(run.seed),
                     f"{records[0]['epoch']}–{records[-1]['epoch']}", *own, rate]
            lines.append(markdown_row(cells))
        blocks.append("\n".join(lines))
    note = (f"Per task, the share of its executed actions over the last {last} epochs (the epochs column) that its "
            f"own policy proposed (1.00: no sharing; {DASH}: the task took no steps); switch rate: the mean over tasks "
            f"and those epochs of the share of steps on which the executed policy changed from the step before "
            f"({DASH}: not logged by the run).")
    return "\n\n".join(blocks) + "\n\n" + note
