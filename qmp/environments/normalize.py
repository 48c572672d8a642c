"""--norm_obs: garage's running observation normalisation, one estimate per task env.

Every observation a task env returns (at reset and at each step) first moves the estimate,
mean <- (1 - a) mean + a o and var <- (1 - a) var + a (o - mean)^2 with the new mean (a = 0.001, from
mean 0 and var 1), and is then returned as (o - mean) / (sqrt(var) + 1e-8). The agent acts on, and the
buffers store, the normalised observations of the moment they were seen.
"""

from __future__ import annotations

from typing import Any

import numpy as np

OBS_ALPHA = 0.001  # garage's NormalizedEnv
EPS = 1e-8


class ObservationNormalizer:
    """Per-task running mean and variance of the observations (T, O), float64."""

    def __init__(self, num_tasks: int, obs_dim: int) -> None:
        self.mean = np.zeros((num_tasks, obs_dim))
        self.var = np.ones((num_tasks, obs_dim))

    def __call__(self, task: int, obs: np.ndarray, update: bool = True) -> np.ndarray:
        """Task `task`'s raw observation, normalised (after updating the estimate, unless `update` is False)."""
        if update:
            self.mean[task] = (1 - OBS_ALPHA) * self.mean[task] + OBS_ALPHA * obs
            self.var[task] = (1 - OBS_ALPHA) * self.var[task] + OBS_ALPHA * np.square(obs - self.mean[task])
        return ((obs - self.mean[task]) / (np.sqrt(self.var[task]) + EPS)).astype(np.float32)

    def state_dict(self) -> dict[str, Any]:
        return {"mean": self.mean.copy(), "var": self.var.copy()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mean, self.var = state["mean"].copy(), state["var"].copy()
