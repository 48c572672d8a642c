"""Trailing moving averages of one seed's evaluation series, applied before seeds are aggregated.

Trailing, so that every point only uses evaluations made by then. Either over a number of evaluations or over
a span of x (env steps): a span smooths panels whose evaluation intervals differ alike (a count of 3 is 60k env
steps on Jaco, which evaluates every 20k, and 360k on Maze, which evaluates every 120k).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qmp.markdown_table import short_steps


def smooth(y: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average over up to `window` points."""
    if window <= 1 or len(y) == 0:
        return y
    sums = np.cumsum(np.insert(y, 0, 0.0))
    ends = np.arange(1, len(y) + 1)
    starts = np.maximum(ends - window, 0)
    return (sums[ends] - sums[starts]) / (ends - starts)


def smooth_span(x: np.ndarray, y: np.ndarray, span: float) -> np.ndarray:
    """Trailing moving average over the points less than `span` before each point, the point included
    (x ascending): with evaluations every 20k, a span of 60k averages 3 of them, a span of 20k none."""
    if span <= 0 or len(y) == 0:
        return y
    sums = np.cumsum(np.insert(np.asarray(y, dtype=float), 0, 0.0))
    ends = np.arange(1, len(y) + 1)
    starts = np.searchsorted(x, np.asarray(x, dtype=float) - span, side="right")
    return (sums[ends] - sums[starts]) / (ends - starts)


@dataclass(frozen=True)
class Smoothing:
    """How each seed's series is smoothed before aggregation; the default smooths nothing."""

    evaluations: int = 1
    """Average each point with the points before it, up to this many in all (1: no smoothing)."""
    span: float = 0.0
    """Or: average over the points less than this many x units (env steps) before each one (0: no smoothing)."""

    def __post_init__(self) -> None:
        if self.evaluations < 1 or self.span < 0:
            raise ValueError(f"smoothing needs evaluations >= 1 and span >= 0, got {self.evaluations}, {self.span}")
        if self.evaluations > 1 and self.span > 0:
            raise ValueError("smooth over a number of evaluations or over a span of env steps, not both")

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return smooth_span(x, y, self.span) if self.span > 0 else smooth(y, self.evaluations)

    def describe(self, points: str = "evaluations", unit: str = "env steps") -> str:
        """'' when nothing is smoothed, else e.g. 'moving average of 3 evaluations' or 'trailing average over
        60k env steps' (for a figure's title)."""
        if self.span > 0:
            return f"trailing average over {short_steps(self.span)} {unit}"
        return f"moving average of {self.evaluations} {points}" if self.evaluations > 1 else ""

    def in_title(self, template: str, points: str = "evaluations", unit: str = "env steps") -> str:
        """`template` with its {} replaced by the description, or '' when nothing is smoothed (a title's suffix)."""
        described = self.describe(points, unit)
        return template.format(described) if described else ""


NO_SMOOTHING = Smoothing()
