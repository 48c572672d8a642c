"""The one training loop, for every method: epoch -> cycle -> (collect; update), then evaluate and log.

    for epoch in epochs:
        for cycle in range(steps_per_epoch):
            collect batch_size env steps (summed over tasks) with the behaviour policy -> replay
            updates_per_cycle gradient steps, each on a fresh batch of every task
        evaluate each task's own policy (and QMP's mixture), log one row, checkpoint

What differs between methods lives in `Parts` (qmp/build.py). `Cursor` is the loop's only resumable
state: a checkpoint written between two cycles, or on a signal between two gradient steps, resumes
exactly where the epoch was.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from qmp.build import Parts
from qmp.environments.multitask import Episode
from qmp.faults import NonFiniteError, check_finite_array, check_finite_metrics, check_finite_parameters
from qmp.rollout import collect, episode_metrics, evaluate, evaluation_seed, unstable_per_task


@dataclass
class EpochProgress:
    """The in-progress epoch. A cycle = one collection, then `updates_per_cycle` gradient steps:
    `collected` and `cycle_updates` say how far the current cycle got; the rest accumulates metrics."""

    num_tasks: int
    cycle: int = 0
    collected: bool = False
    cycle_updates: int = 0
    updates: int = 0
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # per-task metric sums, each (T,)
    episodes: list[Episode] = field(default_factory=list)
    choices: np.ndarray | None = None  # (T, T) how often task i executed policy j's proposal
    timer: dict[str, float] = field(default_factory=lambda: {"collect": 0.0, "train": 0.0})
    switches: np.ndarray | None = None  # (T,) steps whose executed policy changed within an episode
    compared: np.ndarray | None = None  # (T,) steps that had a previous step of the same episode

    def __post_init__(self) -> None:
        if self.choices is None:
            self.choices = np.zeros((self.num_tasks, self.num_tasks), np.int64)
        if self.switches is None:
            self.switches = np.zeros(self.num_tasks, np.int64)
        if self.compared is None:
            self.compared = np.zeros(self.num_tasks, np.int64)

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass
class Cursor:
    """Where a run is: completed epochs, counters, and the epoch in progress."""

    num_tasks: int
    epoch: int = 0
    env_steps: int = 0
    grad_steps: int = 0
    wall_time: float = 0.0
    progress: EpochProgress | None = None

    def __post_init__(self) -> None:
        if self.progress is None:
            self.progress = EpochProgress(self.num_tasks)

    def state_dict(self) -> dict[str, Any]:
        assert self.progress is not None
        return {"epoch": self.epoch, "env_steps": self.env_steps, "grad_steps": self.grad_steps,
                "wall_time": self.wall_time, "partial": self.progress.state_dict()}

    @staticmethod
    def from_state(state: dict[str, Any], device: torch.device) -> Cursor:
        partial = dict(state["partial"])
        partial["sums"] = {k: v.to(device) for k, v in partial["sums"].items()}
        progress = EpochProgress(**partial)
        return Cursor(progress.num_tasks, state["epoch"], state["env_steps"], state["grad_steps"], state["wall_time"],
                      progress)


@dataclass
class EpochResult:
    """A finished epoch's training metrics, its mixture's choice counts (T, T) and, per task, the share of
    steps on which the executed policy changed within an episode (NaN without such steps)."""

    metrics: dict[str, float]
    choices: np.ndarray
    switch_rate: np.ndarray


def check_finite(parts: Parts, cursor: Cursor) -> None:
    """Raise NonFiniteError naming the first NaN/inf loss or metric, then parameter (with its task)."""
    assert cursor.progress is not None
    names, agent = parts.spec.task_names, parts.agent
    check_finite_metrics(cursor.progress.sums, names, cursor.epoch)
    nets = {"policy": agent.policy.net, "critic": agent.critic.net, "critic_target": agent.critic_target.net}
    params = {f"{prefix}.net.{n}": v for prefix, net in nets.items() for n, v in net.named_parameters()}
    params["log_alpha"] = agent.log_alpha

    def task_major(name: str) -> bool:
        if name == "log_alpha":
            return not agent.cfg.shared_alpha  # `sac`: one temperature, not per task
        prefix, _, rest = name.partition(".net.")
        return nets[prefix].is_task_major(rest)

    check_finite_parameters(params, names, cursor.epoch, task_major)


def collect_cycle(parts: Parts, cursor: Cursor) -> int:
    """Collect one cycle's steps (more during warm-up) into the buffer; NaN/inf data never reaches it.
    Returns the env steps taken (summed over tasks)."""
    p, t = cursor.progress, parts.spec.num_tasks
    assert p is not None and p.switches is not None and p.compared is not None
    start = time.perf_counter()
    steps = parts.schedule.steps_to_collect(parts.buffer.size)
    rollout = collect(parts.env, parts.behaviour, steps, parts.agent.device)
    for key, quantity in (("obs", "observation"), ("next_obs", "observation"), ("rew", "reward"), ("act", "action")):
        check_finite_array(quantity, rollout.data[key], 1, parts.spec.task_names, cursor.epoch)
    parts.buffer.extend(rollout.data)
    cursor.env_steps += steps * t
    p.episodes += rollout.episodes
    p.choices += rollout.choices
    p.switches += rollout.switches
    p.compared += rollout.compared
    p.collected = True
    p.timer["collect"] += time.perf_counter() - start
    return steps * t


def update_cycle(parts: Parts, cursor: Cursor, stop: Callable[[], bool]) -> bool:
    """The cycle's remaining gradient steps (none until the warm-up is done). False if `stop()` cut it."""
    p = cursor.progress
    assert p is not None
    start = time.perf_counter()
    try:
        while parts.buffer.size >= parts.schedule.warmup and p.cycle_updates < parts.schedule.updates_per_cycle:
            if stop():
                return False
            for key, value in parts.learn().items():
                p.sums[key] = p.sums[key] + value if key in p.sums else value.clone()
            cursor.grad_steps += 1
            p.updates += 1
            p.cycle_updates += 1
    finally:
        p.timer["train"] += time.perf_counter() - start
    return True


def run_epoch(parts: Parts, cursor: Cursor, stop: Callable[[], bool] = lambda: False,
              after_cycle: Callable[[], None] | None = None,
              collected: Callable[[int], None] | None = None) -> EpochResult | None:
    """The current epoch's remaining cycles, then its metrics; None as soon as `stop()` is true (polled
    before each collection and gradient step; the cursor says where to go on). Observations, metric sums
    and parameters are checked for NaN/inf once per cycle. `collected(steps)` hears of every collection."""
    p = cursor.progress
    assert p is not None
    while p.cycle < parts.schedule.cycles_per_epoch:
        if stop():
            return None
        if not p.collected:
            steps = collect_cycle(parts, cursor)
            if collected is not None:
                collected(steps)
        if not update_cycle(parts, cursor, stop):
            return None
        check_finite(parts, cursor)
        p.cycle, p.collected, p.cycle_updates = p.cycle + 1, False, 0
        if after_cycle is not None:
            after_cycle()
    return finish_epoch(parts, cursor)


def finish_epoch(parts: Parts, cursor: Cursor) -> EpochResult:
    """The finished epoch's metrics; starts a fresh EpochProgress."""
    p, names = cursor.progress, parts.spec.task_names
    assert p is not None and p.choices is not None and p.switches is not None and p.compared is not None
    metrics: dict[str, float] = {"env_steps": float(cursor.env_steps), "grad_steps": float(cursor.grad_steps)}
    for key, total in p.sums.items():
        per_task = (total / p.updates).cpu().numpy()
        metrics[f"train/{key}"] = float(per_task.mean())
        for name, value in zip(names, per_task, strict=True):
            metrics[f"train/{name}/{key}"] = float(value)
    metrics.update(episode_metrics(p.episodes, names, "collect"))
    if parts.logs_selection:
        own = np.diag(p.choices) / np.maximum(p.choices.sum(1), 1)
        for name, frac in zip(names, own, strict=True):
            metrics[f"collect/{name}/own_policy_frac"] = float(frac)
        metrics["collect/own_policy_frac"] = float(own.mean())
    unstable = unstable_per_task(p.episodes, len(names))
    metrics["stability/collect_unstable_episodes"] = float(unstable.sum())
    for name, count in zip(names, unstable, strict=True):
        metrics[f"stability/{name}/collect_unstable_episodes"] = float(count)
    metrics["time/collect_s"], metrics["time/train_s"] = p.timer["collect"], p.timer["train"]
    switch_rate = np.where(p.compared > 0, p.switches / np.maximum(p.compared, 1), np.nan)
    result = EpochResult(metrics, p.choices, switch_rate)
    cursor.progress = EpochProgress(len(names))
    return result


def evaluate_policies(parts: Parts, episodes: int, seed: int, epoch: int) -> dict[str, float]:
    """Each task's own policy, deterministic (eval/*); QMP also its mixture (eval_mixture/*).
    `episodes` is summed over tasks, as the original's flag."""
    assert parts.eval_env is not None
    names, device = parts.spec.task_names, parts.agent.device
    per_task = max(1, episodes // parts.spec.num_tasks)
    start = evaluation_seed(seed, epoch)
    finished = evaluate(parts.eval_env, parts.own_policy, per_task, start, device)
    metrics = episode_metrics(finished, names, "eval")
    if parts.eval_mixture is not None:
        mixture = evaluate(parts.eval_env, parts.eval_mixture, per_task, start, device)
        metrics.update(episode_metrics(mixture, names, "eval_mixture"))
        finished = finished + mixture
    metrics["stability/eval_unstable_episodes"] = float(unstable_per_task(finished, parts.spec.num_tasks).sum())
    for key, value in metrics.items():  # a NaN/inf reward in evaluation shows up in the returns
        if key.endswith("/return") and not math.isfinite(value):
            raise NonFiniteError(f"non-finite evaluation return {key!r} at epoch {epoch}")
    return metrics
