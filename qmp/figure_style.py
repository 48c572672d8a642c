"""What every figure of qmp.plot and qmp.heatmap shares: the colours and the look of a panel."""

from __future__ import annotations

from matplotlib.axes import Axes
from matplotlib.ticker import EngFormatter

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
