"""Shared test helpers: run the CLI in-process and read what it wrote."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

import qmp.command as cli
from qmp.environments.multitask import MultiTaskEnv


def train(method: str, env: str, run_dir: Path, *flags: str) -> list[dict[str, str]]:
    """`python run.py method --env=env --run_dir run_dir flags...`, then progress.csv's rows."""
    code = cli.main([method, f"--env={env}", "--run_dir", str(run_dir), *flags])
    assert code == 0
    return read_progress(run_dir)


def read_progress(run_dir: Path) -> list[dict[str, str]]:
    with open(Path(run_dir) / "progress.csv", newline="") as f:
        return list(csv.DictReader(f))


def without_time(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in rows]


def tiny_flags(num_tasks: int, horizon: int, evaluation: bool = True) -> list[str]:
    """A budget in which every task finishes at least one episode and a few updates happen."""
    return [
        "--n_epochs", "2", "--batch_size", str(num_tasks * horizon), "--min_buffer_size", "10",
        "--gradient_steps_per_itr", str(2 * num_tasks), "--buffer_batch_size", "8", "--hidden_sizes", "32", "32",
        "--num_evaluation_episodes", str(num_tasks if evaluation else 0), "--snapshot_gap", "1", "--vis_freq", "-1",
        "--replay_buffer_size", str(4 * horizon),
    ]


def assert_resumes_exactly(method: str, root: Path, *flags: str) -> None:
    """2 epochs, then the same command for 4, equal an uninterrupted 4-epoch run on the toy env: progress.csv
    (without wall-clock columns) and the selection log."""
    full = train(method, "ToyReach-v0", root / "full", *flags, "--n_epochs", "4")
    train(method, "ToyReach-v0", root / "split", *flags, "--n_epochs", "2")
    resumed = train(method, "ToyReach-v0", root / "split", *flags, "--n_epochs", "4")
    assert without_time(resumed) == without_time(full)
    log = "qswitch_selection.jsonl"
    assert (root / "split" / log).read_text() == (root / "full" / log).read_text()


def rollout(env: MultiTaskEnv, actions: np.ndarray, forced_reset_at: int) -> list[tuple]:
    """Step fixed actions, resetting finished tasks and task 0 at `forced_reset_at` (uses the RNG)."""
    stream = []
    for k, action in enumerate(actions):
        result = env.step(action)
        stream.append((result.next_obs.copy(), result.reward.copy(), result.terminated.copy(), result.truncated.copy()))
        mask = result.done.copy()
        mask[0] |= k == forced_reset_at
        stream.append((env.reset_tasks(mask),))
    return stream


def assert_same(a: list[tuple], b: list[tuple]) -> None:
    """Two rollout streams are bit-identical."""
    assert len(a) == len(b)
    for step_a, step_b in zip(a, b, strict=True):
        for x, y in zip(step_a, step_b, strict=True):
            np.testing.assert_array_equal(x, y)
