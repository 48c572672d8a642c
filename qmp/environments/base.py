"""The contract between the engine and an environment family.

A benchmark is described by a `MultiTaskSpec`: task names, horizon, the UDS relabelling reward and a
factory that builds ONE single-task env per task. `MultiTaskEnv` (multitask.py) steps those T envs in
lockstep and owns the time limit, so a task env never truncates by itself.

A task env is a `gymnasium.Env` with these extra duties:
- observations are the task-free state (no one-hot), float, the same shape for every task;
- actions live in [-1, 1]^A;
- `info["success"]` is truthy on a step where the task counts as solved (an episode succeeds if any
  step does); `info["stages_completed"]` is optional (multistage tasks);
- `terminated` is True only for a real end of the episode (goal reached, fall, instability);
- `get_state()` returns a picklable dict (numpy arrays and python scalars only) holding everything
  needed to continue the current episode bit-exactly, the env's RNG included, and `set_state()`
  restores it: this is what makes a killed run resume exactly.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np


class TaskEnv(gym.Env):
    """Base class for one task of a benchmark (see the module docstring for the contract)."""

    def get_state(self) -> dict[str, Any]:
        raise NotImplementedError

    def set_state(self, state: dict[str, Any]) -> None:
        raise NotImplementedError


MAIN_METRICS = ("paper_success", "success", "return")  # the choices of MultiTaskSpec.main_metric


@dataclass(frozen=True)
class MultiTaskSpec:
    """Everything the engine needs to know about a benchmark, before any simulator is imported.

    `make_task_env(task_index, seed, evaluation)` builds the env of one task; `evaluation=True`
    asks for the separately seeded evaluation instance (Meta-World uses other goal variants there).
    """

    name: str
    task_names: tuple[str, ...]
    max_episode_steps: int
    min_reward: float
    make_task_env: Callable[[int, int, bool], TaskEnv]
    extra_info_keys: tuple[str, ...] = field(default_factory=tuple)  # numeric infos averaged per episode
    # The info key that holds the original code's per-step `success`: the paper's SuccessRate is the
    # fraction of episodes with any step where it was true (logged as */paper_success)
    paper_success_key: str = "success"
    # The stage of each observation (torch, any leading shape -> integer tensor), where the observation
    # carries it; DnC's --stagewise reads it. None: the benchmark has no stages
    stage_of: Callable[[Any], Any] | None = None
    # Task i's reward of transitions, where it is a function of (s, a, s') alone: (task index (T, 1) or
    # (T, S), obs, act, next_obs (T, S, ...) torch) -> rewards (T, S); supervised data sharing
    # (--unsupervised false) relabels with it. None: the reward needs state the transition does not carry
    reward: Callable[[Any, Any, Any, Any], Any] | None = None
    # The per-episode metric a run is judged by on the console and in summaries: paper_success, or
    # return for tasks without a notion of success (e.g. swinging a pendulum up)
    main_metric: str = "paper_success"

    def __post_init__(self) -> None:
        if self.main_metric not in MAIN_METRICS:
            raise ValueError(f"unknown main_metric {self.main_metric!r}; valid: {', '.join(MAIN_METRICS)}")

    @property
    def num_tasks(self) -> int:
        return len(self.task_names)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A picklable copy of a numpy Generator's state."""
    return dict(rng.bit_generator.state)


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state
