"""T single-task envs stepped in lockstep, task-major: observations (T, obs_dim), actions (T, A).

`MultiTaskEnv` owns the time limit (so truncation is never confused with termination) and the
episode book-keeping (return, length, success, stages) used by both collection and evaluation.
It does not auto-reset: `step` returns the true next observation and the caller resets the tasks
whose episode ended with `reset_tasks`, so the buffer never sees a post-reset observation as s'.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from qmp.environments.base import MultiTaskSpec
from qmp.environments.normalize import ObservationNormalizer


def task_seed(seed: int, task: int, stream: int = 0) -> int:
    """A distinct, deterministic seed per (run seed, task, stream); streams separate train and eval."""
    return int(np.random.SeedSequence([seed, task, stream]).generate_state(1)[0])


@dataclass
class Episode:
    task: int
    ret: float
    length: int
    success: bool
    stages: float
    terminated: bool
    extras: dict[str, float]
    unstable: bool = False  # ended because the simulator went unstable (info["unstable"])
    paper_success: bool = False  # any step where the original's per-step success held (spec.paper_success_key)


@dataclass
class StepResult:
    next_obs: np.ndarray  # (T, obs_dim) float32, the true s' (before any reset)
    reward: np.ndarray  # (T,) float32
    terminated: np.ndarray  # (T,) bool, a real end of the episode
    truncated: np.ndarray  # (T,) bool, the time limit
    episodes: list[Episode]  # the episodes that ended on this step

    @property
    def done(self) -> np.ndarray:
        return self.terminated | self.truncated


class MultiTaskEnv:
    """The T task envs of a benchmark, with a shared horizon."""

    def __init__(self, spec: MultiTaskSpec, seed: int, evaluation: bool = False, normalize_obs: bool = False,
                 normalizer: ObservationNormalizer | None = None) -> None:
        """`normalize_obs`: observations pass through this env's own running normalisation (--norm_obs);
        `normalizer`: through another env's, read but never updated (evaluation uses training's)."""
        self.spec = spec
        self.num_tasks = spec.num_tasks
        self.task_names = spec.task_names
        self.max_episode_steps = spec.max_episode_steps
        self.envs = [spec.make_task_env(i, seed, evaluation) for i in range(self.num_tasks)]
        self.obs_dim = int(np.prod(self.envs[0].observation_space.shape))
        self.act_dim = int(np.prod(self.envs[0].action_space.shape))
        for env in self.envs:
            if int(np.prod(env.observation_space.shape)) != self.obs_dim:
                raise ValueError(f"{spec.name}: task envs disagree on the observation size")
        self.normalizer = ObservationNormalizer(self.num_tasks, self.obs_dim) if normalize_obs else normalizer
        self._updates_normalizer = normalize_obs
        self._seed = seed
        self._stream = 1 if evaluation else 0
        self._seeded = False
        self.obs = np.zeros((self.num_tasks, self.obs_dim), np.float32)
        self._zero_counters()

    @property
    def started(self) -> bool:
        """False until the first reset: the collector resets a fresh env once, then never again."""
        return self._seeded

    def _zero_counters(self) -> None:
        t = self.num_tasks
        self.elapsed = np.zeros(t, np.int64)
        self.ep_return = np.zeros(t, np.float64)
        self.ep_success = np.zeros(t, bool)
        self.ep_paper_success = np.zeros(t, bool)
        self.ep_stages = np.zeros(t, np.float64)
        self.ep_extras = np.zeros((t, len(self.spec.extra_info_keys)), np.float64)

    def _observe(self, task: int, obs: Any) -> np.ndarray:
        raw = np.asarray(obs, np.float32).reshape(-1)
        return raw if self.normalizer is None else self.normalizer(task, raw, self._updates_normalizer)

    def reset(self, seed: int | None = None) -> np.ndarray:
        """Reset every task. The first reset (or one with an explicit seed) seeds each task env."""
        base = self._seed if seed is None else seed
        for i, env in enumerate(self.envs):
            first = seed is not None or not self._seeded
            obs, _ = env.reset(seed=task_seed(base, i, self._stream) if first else None)
            self.obs[i] = self._observe(i, obs)
        self._seeded = True
        self._zero_counters()
        return self.obs.copy()

    def reset_tasks(self, mask: np.ndarray) -> np.ndarray:
        """Reset the tasks where mask is True; returns the current observations of all tasks."""
        for i in np.flatnonzero(mask):
            obs, _ = self.envs[i].reset()
            self.obs[i] = self._observe(i, obs)
            self.elapsed[i] = 0
            self.ep_return[i] = 0.0
            self.ep_success[i] = False
            self.ep_paper_success[i] = False
            self.ep_stages[i] = 0.0
            self.ep_extras[i] = 0.0
        return self.obs.copy()

    def step(self, actions: np.ndarray, active: np.ndarray | None = None) -> StepResult:
        """Step every task (or only the `active` ones; the others report zeros and stay put)."""
        t = self.num_tasks
        next_obs = self.obs.copy()
        reward = np.zeros(t, np.float32)
        terminated = np.zeros(t, bool)
        truncated = np.zeros(t, bool)
        episodes: list[Episode] = []
        keys = self.spec.extra_info_keys
        paper_key = self.spec.paper_success_key
        for i, env in enumerate(self.envs):
            if active is not None and not active[i]:
                continue
            obs, r, term, _, info = env.step(actions[i])
            next_obs[i] = self._observe(i, obs)
            reward[i] = r
            terminated[i] = bool(term)
            self.elapsed[i] += 1
            truncated[i] = not terminated[i] and self.elapsed[i] >= self.max_episode_steps
            self.ep_return[i] += r
            self.ep_success[i] |= bool(info.get("success", False))
            self.ep_paper_success[i] |= bool(info.get(paper_key, False))
            self.ep_stages[i] = float(info.get("stages_completed", 0.0))
            for k, key in enumerate(keys):
                self.ep_extras[i, k] += float(info.get(key, 0.0))
            if terminated[i] or truncated[i]:
                episodes.append(self._finish(i, bool(terminated[i]), bool(info.get("unstable", False))))
        self.obs = next_obs.copy()
        return StepResult(next_obs, reward, terminated, truncated, episodes)

    def _finish(self, i: int, terminated: bool, unstable: bool) -> Episode:
        length = int(self.elapsed[i])
        extras = {key: float(self.ep_extras[i, k] / max(length, 1)) for k, key in enumerate(self.spec.extra_info_keys)}
        return Episode(i, float(self.ep_return[i]), length, bool(self.ep_success[i]), float(self.ep_stages[i]),
                       terminated, extras, unstable, bool(self.ep_paper_success[i]))

    def get_state(self) -> dict[str, Any]:
        """Everything needed to continue the current episodes exactly (see base.TaskEnv)."""
        state = {} if not self._updates_normalizer else {"normalizer": self.normalizer.state_dict()}
        return state | {
            "envs": [env.get_state() for env in self.envs],
            "obs": self.obs.copy(),
            "seeded": self._seeded,
            "elapsed": self.elapsed.copy(),
            "ep_return": self.ep_return.copy(),
            "ep_success": self.ep_success.copy(),
            "ep_paper_success": self.ep_paper_success.copy(),
            "ep_stages": self.ep_stages.copy(),
            "ep_extras": self.ep_extras.copy(),
        }

    def set_state(self, state: dict[str, Any]) -> None:
        for env, env_state in zip(self.envs, state["envs"], strict=True):
            env.set_state(env_state)
        self.obs = state["obs"].copy()
        self._seeded = state["seeded"]
        if self._updates_normalizer:
            self.normalizer.load_state_dict(state["normalizer"])
        for key in ("elapsed", "ep_return", "ep_success", "ep_paper_success", "ep_stages", "ep_extras"):
            setattr(self, key, state[key].copy())

    def close(self) -> None:
        for env in self.envs:
            env.close()
