"""Data collection and evaluation over a lockstep MultiTaskEnv: one place for each.

A behaviour policy has `act(obs (T, O), elapsed (T,), deterministic) -> (actions (T, A), chosen
policy per task (T,))` (see learning/policies.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch import Tensor

from qmp.environments.multitask import Episode, MultiTaskEnv


class Behaviour(Protocol):
    def act(self, obs: Tensor, elapsed: np.ndarray | None = None,
            deterministic: bool = False) -> tuple[Tensor, Tensor]: ...

    def episodes_ended(self, episodes: list[Episode]) -> None: ...


@dataclass
class Rollout:
    data: dict[str, np.ndarray]  # step-major (n, T, ...): obs, act, rew, next_obs, terminated
    episodes: list[Episode]
    choices: np.ndarray  # (T, T): how often task i executed policy j
    switches: np.ndarray  # (T,): steps whose executed policy differs from the previous step's, same episode
    compared: np.ndarray  # (T,): steps that had a previous step of the same episode in this rollout


def collect(env: MultiTaskEnv, behaviour: Behaviour, steps: int, device: torch.device) -> Rollout:
    """Step every task `steps` times with the behaviour policy; episodes carry over between calls."""
    t, o, a = env.num_tasks, env.obs_dim, env.act_dim
    if not env.started:
        env.reset()
    data = {
        "obs": np.empty((steps, t, o), np.float32),
        "act": np.empty((steps, t, a), np.float32),
        "rew": np.empty((steps, t), np.float32),
        "next_obs": np.empty((steps, t, o), np.float32),
        "terminated": np.empty((steps, t), np.float32),
    }
    choices = np.zeros((t, t), np.int64)
    switches, compared = np.zeros(t, np.int64), np.zeros(t, np.int64)
    previous = np.full(t, -1, np.int64)
    episodes: list[Episode] = []
    rows = np.arange(t)
    for k in range(steps):
        data["obs"][k] = env.obs
        continued = (env.elapsed > 0) & (previous >= 0)  # the previous step is this episode's
        action, choice = behaviour.act(torch.from_numpy(env.obs).to(device), env.elapsed)
        # one device-to-host transfer per step (policy indices are exact in float32)
        host = torch.cat([action, choice.unsqueeze(1).to(action.dtype)], dim=1).cpu().numpy()
        action_np = host[:, :a]
        result = env.step(action_np)
        data["act"][k] = action_np
        data["rew"][k] = result.reward
        data["next_obs"][k] = result.next_obs
        data["terminated"][k] = result.terminated
        executed = host[:, a].astype(np.int64)
        choices[rows, executed] += 1
        compared += continued
        switches += continued & (executed != previous)
        previous = executed
        episodes.extend(result.episodes)
        if result.episodes:
            behaviour.episodes_ended(result.episodes)
        if result.done.any():
            env.reset_tasks(result.done)
    return Rollout(data, episodes, choices, switches, compared)


def evaluation_seed(seed: int, epoch: int) -> int:
    """Every evaluation starts from its own seeded reset: independent of earlier ones, nothing to checkpoint."""
    return seed * 1_000_003 + epoch


def evaluate(
    env: MultiTaskEnv,
    behaviour: Behaviour,
    episodes_per_task: int,
    seed: int,
    device: torch.device,
    on_step: Callable[[np.ndarray], None] | None = None,
) -> list[Episode]:
    """`episodes_per_task` deterministic episodes of every task, from a reset seeded by `seed`, so an
    evaluation does not depend on earlier ones (and needs no state in a checkpoint). `on_step(active)`
    runs after every step with the mask of tasks that stepped (the video recorder renders them)."""
    env.reset(seed=seed)
    finished = np.zeros(env.num_tasks, np.int64)
    episodes: list[Episode] = []
    while (finished < episodes_per_task).any():
        active = finished < episodes_per_task
        action, _ = behaviour.act(torch.from_numpy(env.obs).to(device), env.elapsed, deterministic=True)
        result = env.step(action.cpu().numpy(), active)
        if on_step is not None:
            on_step(active)
        for episode in result.episodes:
            episodes.append(episode)
            finished[episode.task] += 1
        env.reset_tasks(result.done & (finished < episodes_per_task))
    return episodes


def unstable_per_task(episodes: list[Episode], num_tasks: int) -> np.ndarray:
    """(T,) how many of these episodes ended because the simulator went unstable."""
    return np.bincount([e.task for e in episodes if e.unstable], minlength=num_tasks)


def episode_metrics(episodes: list[Episode], task_names: tuple[str, ...], prefix: str) -> dict[str, float]:
    """Mean and per-task success, paper_success, return, length and stages of finished episodes."""
    metrics: dict[str, float] = {}
    if not episodes:
        return metrics

    def summarise(eps: list[Episode], key: str) -> None:
        metrics[f"{key}/success"] = float(np.mean([e.success for e in eps]))
        metrics[f"{key}/paper_success"] = float(np.mean([e.paper_success for e in eps]))
        metrics[f"{key}/return"] = float(np.mean([e.ret for e in eps]))
        metrics[f"{key}/episode_length"] = float(np.mean([e.length for e in eps]))
        metrics[f"{key}/stages_completed"] = float(np.mean([e.stages for e in eps]))
        metrics[f"{key}/episodes"] = float(len(eps))
        for extra in eps[0].extras:
            metrics[f"{key}/{extra}"] = float(np.mean([e.extras[extra] for e in eps]))

    per_task = [[e for e in episodes if e.task == i] for i in range(len(task_names))]
    # the headline mean weighs every task equally, whatever its number of episodes
    for name in ("success", "paper_success", "return", "episode_length", "stages_completed"):
        values = [np.mean([getattr(e, _FIELD[name]) for e in eps]) for eps in per_task if eps]
        metrics[f"{prefix}/{name}"] = float(np.mean(values))
    metrics[f"{prefix}/episodes"] = float(len(episodes))
    for i, eps in enumerate(per_task):
        if eps:
            summarise(eps, f"{prefix}/{task_names[i]}")
    return metrics


_FIELD = {"success": "success", "paper_success": "paper_success", "return": "ret", "episode_length": "length",
          "stages_completed": "stages"}
