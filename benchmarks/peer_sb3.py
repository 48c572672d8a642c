"""The peer of the throughput benchmark: Stable-Baselines3 SAC, one model per task, trained one after
another on that task's env. This is how a user would run "Separated" without this project, so its
env steps per second are the yardstick for ours (docs/performance.md).

Same network sizes, batch size, learning rate, discount, tau and updates per env step as our
schedule; SB3's defaults elsewhere (automatic entropy starting at 1, target entropy -dim(A)).
"""

from __future__ import annotations

import importlib.util
import time
from typing import Any

INSTALL_HINT = "pip install -r benchmarks/requirements.txt (stable-baselines3==2.9.2)"
PEER_CAPACITY = 100_000  # per task; only the arithmetic matters here, not how much history is kept
WARMUP_STEPS = 200  # untimed random steps per task so every timed step can train on a batch


def sb3_available() -> bool:
    return importlib.util.find_spec("stable_baselines3") is not None


def train_frequency(steps_per_task: int, updates_per_task: int) -> tuple[int, int]:
    """(train_freq, gradient_steps) giving `updates_per_task / steps_per_task` updates per env step."""
    if updates_per_task >= steps_per_task:
        return 1, max(1, round(updates_per_task / steps_per_task))
    return max(1, round(steps_per_task / updates_per_task)), 1


def time_peer(spec: Any, cfg: Any, steps_per_task: int, updates_per_task: int) -> float:
    """Seconds SB3 takes to train every task of `spec` for `steps_per_task` env steps, one task after
    the other (model building and the warm-up are not timed)."""
    from gymnasium.wrappers import TimeLimit
    from stable_baselines3 import SAC

    freq, grad_steps = train_frequency(steps_per_task, updates_per_task)
    total = 0.0
    for task in range(spec.num_tasks):
        env = TimeLimit(spec.make_task_env(task, cfg.seed, False), spec.max_episode_steps)
        model = SAC("MlpPolicy", env, learning_rate=cfg.lr, buffer_size=PEER_CAPACITY, learning_starts=WARMUP_STEPS,
                    batch_size=cfg.buffer_batch_size, tau=cfg.target_update_tau, gamma=cfg.discount,
                    train_freq=(freq, "step"), gradient_steps=grad_steps,
                    policy_kwargs={"net_arch": list(cfg.hidden_sizes)}, seed=cfg.seed + task, device="cpu", verbose=0)
        model.learn(WARMUP_STEPS)
        start = time.perf_counter()
        model.learn(steps_per_task, reset_num_timesteps=False)
        total += time.perf_counter() - start
        env.close()
    return total
