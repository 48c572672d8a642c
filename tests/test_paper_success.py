"""The paper's success column: the fraction of episodes with any step where the original's per-step
`success` held (spec.paper_success_key), logged beside our own `success`."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces

from qmp.environments.base import MultiTaskSpec, TaskEnv
from qmp.environments.multitask import MultiTaskEnv
from qmp.rollout import episode_metrics

HORIZON = 5
# per task, the steps (1-based) where the original's per-step success ("touch") and our success hold
TOUCH_STEPS = ({2}, set(), {1, 2, 3, 4, 5}, {5})
SUCCESS_STEPS = (set(), set(), set(), {5})


class ScriptedTask(TaskEnv):
    def __init__(self, task: int) -> None:
        self.task, self.t = task, 0
        self.observation_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
        self.action_space = spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, np.float32), {}

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        info = {"touch": self.t in TOUCH_STEPS[self.task], "success": self.t in SUCCESS_STEPS[self.task]}
        return np.zeros(1, np.float32), 0.0, False, False, info

    def get_state(self) -> dict[str, Any]:
        return {"t": self.t}

    def set_state(self, state: dict[str, Any]) -> None:
        self.t = state["t"]


def episodes_of(spec: MultiTaskSpec) -> dict[str, float]:
    env = MultiTaskEnv(spec, seed=0)
    env.reset()
    episodes = []
    for _ in range(HORIZON):
        episodes += env.step(np.zeros((spec.num_tasks, 1), np.float32)).episodes
    assert len(episodes) == spec.num_tasks
    return episode_metrics(episodes, spec.task_names, "eval")


def test_paper_success_counts_any_step_of_the_original_success() -> None:
    names = ("touch-then-leave", "never", "always", "last-step")
    spec = MultiTaskSpec("Scripted", names, HORIZON, 0.0, lambda i, seed, ev: ScriptedTask(i),
                         paper_success_key="touch")
    metrics = episodes_of(spec)
    assert [metrics[f"eval/{n}/paper_success"] for n in names] == [1.0, 0.0, 1.0, 1.0]
    assert [metrics[f"eval/{n}/success"] for n in names] == [0.0, 0.0, 0.0, 1.0]
    assert metrics["eval/paper_success"] == 0.75 and metrics["eval/success"] == 0.25


def test_paper_success_defaults_to_the_success_key() -> None:
    names = ("a", "b", "c", "d")
    spec = MultiTaskSpec("Scripted", names, HORIZON, 0.0, lambda i, seed, ev: ScriptedTask(i))
    metrics = episodes_of(spec)
    assert metrics["eval/paper_success"] == metrics["eval/success"] == 0.25
