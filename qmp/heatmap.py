"""The Q-switch selection figure of one QMP run: who acted for whom, and how each task's own share evolved.

    python -m qmp.plot --heatmap RUN_DIR --out heatmap.png [--last 10]
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from qmp.figure_style import COLOURS, style_panel
from qmp.qswitch_selection import load_selection, own_policy_fractions, selection_fractions
from qmp.results import ResultsError
from qmp.run_dir import CONFIG, read_config
from qmp.smoothing import Smoothing


def plot_heatmap(run_dir: Path, last: int, smoothing: Smoothing, out: Path) -> Figure:
    """Left: who acts for whom over the last epochs. Right: how the own-policy share evolves."""
    if not run_dir.is_dir():
        raise ResultsError(f"run directory {run_dir} does not exist")
    records = load_selection(run_dir)
    tasks = list(records[-1]["tasks"])
    fractions = selection_fractions(records, last)
    steps, own = own_policy_fractions(records)
    cfg = read_config(run_dir) if (run_dir / CONFIG).is_file() else {}
    name = cfg.get("name", "None")  # a named variant (the study's "params_double_tanh") says which one this is
    named = f" [{name}]" if name not in ("None", None) else ""
    who = f"{cfg.get('env', run_dir.name)} {cfg.get('method', '')}{named} seed{cfg.get('seed', '?')}"
    used = records[-last:]
    span = (f"epochs {used[0]['epoch']}\u2013{used[-1]['epoch']}, "
            f"env steps {used[0]['env_steps']:,}\u2013{used[-1]['env_steps']:,}")

    size = len(tasks)
    fig = Figure(figsize=(max(6.0, 0.75 * size + 3.5) + 5.5, max(4.5, 0.6 * size + 2.5)), layout="constrained")
    heat_ax, own_ax = fig.subplots(1, 2, width_ratios=[1.3, 1.0])
    image = heat_ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fontsize = 9 if size <= 6 else 7
    for i in range(size):
        for j in range(size):
            value = fractions[i, j]
            heat_ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=fontsize,
                         color="white" if value > 0.55 else "black")
    heat_ax.set_xticks(range(size), tasks, rotation=40, ha="right", fontsize=8)
    heat_ax.set_yticks(range(size), tasks, fontsize=8)
    heat_ax.set_xlabel("policy whose proposal was executed")
    heat_ax.set_ylabel("task (state being acted in)")
    heat_ax.set_title(f"Q-switch selection, last {len(used)} epochs\n({span})", fontsize=9)
    fig.colorbar(image, ax=heat_ax, label="fraction of the task's steps", shrink=0.85)

    for i, task in enumerate(tasks):
        keep = np.isfinite(own[:, i])
        own_ax.plot(steps[keep], smoothing(steps[keep], own[keep, i]), label=task, color=COLOURS[i % len(COLOURS)],
                    linewidth=1.4)
    smoothed = smoothing.in_title(" ({})", "epochs")
    style_panel(own_ax, "own policy chosen, per task" + smoothed, "env_steps", "own_policy_frac")
    own_ax.set_ylabel("own-policy fraction")
    own_ax.legend(fontsize=7, loc="best", framealpha=0.8)
    fig.suptitle(who, fontsize=11)
    fig.savefig(out, dpi=120)
    return fig
