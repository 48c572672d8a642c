"""What every figure of qmp.plot, qmp.paper_figure and qmp.heatmap shares: the colours and the look of a panel."""

from __future__ import annotations

import sys
from collections.abc import Sequence

from matplotlib.axes import Axes
from matplotlib.ticker import EngFormatter

from qmp.methods import METHODS
from qmp.results import GroupKey

# Matplotlib's ten, then six more that stay apart from them, so that every method (12) and a few named
# variants each get a colour of their own in one figure.
COLOURS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple",
           "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan",
           "black", "gold", "navy", "lime", "teal", "maroon")


def style_panel(ax: Axes, title: str, x: str, metric: str) -> None:
    ax.set_title(title, fontsize=10)
    ax.set_xlabel(x)
    ax.set_ylabel(metric)
    ax.xaxis.set_major_formatter(EngFormatter(sep=""))  # 400k, 1.2M: env-step ticks stay readable
    ax.grid(alpha=0.3)
    if metric.endswith(("success", "own_policy_frac")):
        ax.set_ylim(-0.03, 1.03)


def group_colours(keys: Sequence[GroupKey]) -> dict[GroupKey, str]:
    """A method keeps its colour across figures: its unnamed runs get it, or, if it has none here, its first
    name (a study that names every run). Its other names take the colours no drawn method uses."""
    primary: dict[str, str] = {}
    for key in keys:
        if key.method_rank < len(METHODS) and (key.method not in primary or key.name == "None"):
            primary[key.method] = key.name

    def own(key: GroupKey) -> str | None:
        return COLOURS[key.method_rank % len(COLOURS)] if primary.get(key.method) == key.name else None

    colours: dict[GroupKey, str] = {key: colour for key in keys if (colour := own(key)) is not None}
    spare = [c for c in COLOURS if c not in colours.values()] or list(COLOURS)
    for key in keys:
        if key not in colours:
            same = next((c for k, c in colours.items() if (k.method, k.name) == (key.method, key.name)), None)
            colours[key] = same or spare[sum(own(k) is None for k in colours) % len(spare)]
    return {key: colours[key] for key in keys}


def note_cut(key: GroupKey, x: str, end: float) -> None:
    print(f"note: {key.env} {key.method}: seeds cut at {x}={end:g} (the shortest seed's end)", file=sys.stderr)


def no_data(ax: Axes) -> None:
    ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes, color="gray")
