"""The paper's layout: one panel per env, one line per method and policy, the IQM over seeds of each seed's
task-mean score with a 95% bootstrap band, and the paper's values read off its figure as crosses
(`python -m qmp.plot RUN_ROOT --paper --out fig.png`)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from qmp.figure_style import group_colours, no_data, note_cut, style_panel
from qmp.paper_results import iqm_curve, paper_values
from qmp.results import PAPER_SUCCESS, GroupKey, Run, paper_labels
from qmp.smoothing import NO_SMOOTHING, Smoothing

PREFIX_NAMES = {"eval": "own policy", "eval_mixture": "mixture", "collect": "collection"}
LINESTYLES = ("-", "--", ":", "-.")
LEGEND_INSIDE_MAX = 5  # entries a paper panel's legend may have and still sit inside the axes


def plot_paper(groups: dict[GroupKey, list[Run]], out: Path, prefixes: Sequence[str] = ("eval",),
               score: str = PAPER_SUCCESS, smoothing: Smoothing = NO_SMOOTHING, reps: int = 2000, seed: int = 0,
               max_steps: int | None = None) -> Figure:
    """One panel per env, one line per method and prefix: IQM over seeds of the task mean, 95% bootstrap band.

    The first prefix is drawn solid, the next dashed (then dotted) in the method's colour; the paper's values
    for the method (only for score paper_success) are 'x' markers in that colour. `max_steps` ends the x-axis
    there, so that short runs are not squeezed against the paper's 2M / 4M points (those beyond are left out).
    """
    envs = sorted({key.env for key in groups})
    colours = group_colours(list(groups))
    labels = paper_labels(list(groups))
    ncols = min(len(envs), 3)
    nrows = math.ceil(len(envs) / ncols)
    fig = Figure(figsize=(5.4 * ncols + 0.4, 4.2 * nrows + 0.5), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).flat)
    for ax in axes[len(envs):]:
        ax.remove()
    cut_noted: set[GroupKey] = set()
    beside = False
    for ax, env in zip(axes, envs, strict=False):
        drawn = markers = 0
        marked: set[str] = set()
        for key, runs in groups.items():
            if key.env != env:
                continue
            colour = colours[key]
            for style, prefix in zip(LINESTYLES, prefixes, strict=False):
                curve = iqm_curve(runs, score, prefix, "env_steps", smoothing, reps, 0.95, seed)
                if curve is None:
                    continue
                if curve.cut and key not in cut_noted:
                    cut_noted.add(key)
                    note_cut(key, "env_steps", curve.x[-1])
                which = "" if len(prefixes) == 1 else f", {PREFIX_NAMES.get(prefix, prefix)}"
                marker = "o" if len(curve.x) <= 30 else None
                ax.plot(curve.x, curve.point, color=colour, linestyle=style, marker=marker, markersize=3,
                        linewidth=1.6, label=f"{labels[key]}{which} (n={curve.seeds})")
                ax.fill_between(curve.x, curve.low, curve.high, color=colour, alpha=0.2 if style == "-" else 0.1,
                                linewidth=0)
                drawn += 1
            if score == PAPER_SUCCESS and key.method not in marked:  # once per method, in its first group's colour
                marked.add(key.method)
                for value in paper_values(env, key.method):
                    if max_steps is not None and value.env_steps > max_steps:
                        continue
                    markers += 1
                    ax.plot([value.env_steps], [value.success], linestyle="none", marker="x", markersize=9,
                            markeredgewidth=2.2, color=colour)
        style_panel(ax, env, "env steps", score)
        ax.set_ylabel(f"{score}, mean over tasks (IQM over seeds)")
        if max_steps is not None:
            ax.set_xlim(0, max_steps)
        if not drawn:
            no_data(ax)
        handles, names = ax.get_legend_handles_labels()
        if markers:
            handles.append(Line2D([], [], linestyle="none", marker="x", markersize=7, markeredgewidth=2, color="gray"))
            names.append("paper (read off its figure)")
        if len(handles) > LEGEND_INSIDE_MAX:  # a long legend inside would hide curves (the flat base, say)
            ax.legend(handles, names, fontsize=7, loc="upper left", bbox_to_anchor=(1.02, 1.0), frameon=False)
            beside = True
        elif handles:
            ax.legend(handles, names, fontsize=7, loc="best", framealpha=0.8)
    if beside:  # room for the legends beside their panels, so the panels keep their width
        fig.set_figwidth(fig.get_figwidth() + 4.2)
    smoothed = smoothing.in_title("\n{} per seed and task")
    fig.suptitle(f"{score}: each seed's mean over tasks, IQM over seeds, 95% bootstrap CI{smoothed}",
                 fontsize=9)
    fig.savefig(out, dpi=120)
    return fig
