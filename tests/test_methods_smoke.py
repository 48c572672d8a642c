"""Each method and option added on top of the paper's main ones trains end to end on Multistage Reacher and
on a Meta-World benchmark: a tiny budget, one epoch, finite losses."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.helpers import tiny_flags, train, without_time

MULTIHEAD = ["--policy_architecture", "multihead", "--Q_architecture", "multihead"]
ENVS = {"JacoReachMT5-v1": (5, 200, True), "MetaWorldCDS-v1": (4, 500, False)}  # tasks, horizon, evaluate
RUNS = {
    "mtsac_pcgrad": ["mtsac", *MULTIHEAD, "--use_pc_grad", "true", "--skip_alpha_pc_grad", "false"],
}


@pytest.mark.parametrize("env", sorted(ENVS))
@pytest.mark.parametrize("run", sorted(RUNS))
def test_trains_end_to_end(run: str, env: str, tmp_path: Path) -> None:
    tasks, horizon, evaluate = ENVS[env]
    method, *flags = RUNS[run]
    rows = train(method, env, tmp_path, *tiny_flags(tasks, horizon, evaluate), "--n_epochs", "1",
                 "--steps_per_epoch", "1", *flags)
    row = rows[-1]
    assert float(row["grad_steps"]) > 0 and float(row["collect/episodes"]) >= tasks
    assert all(math.isfinite(float(row[key])) for key in ("train/qf1_loss", "train/policy_loss", "train/alpha"))
    if evaluate:
        assert float(row["eval/episodes"]) == tasks


@pytest.mark.parametrize("run", sorted(RUNS))
def test_resume_continues_exactly(run: str, tmp_path: Path) -> None:
    """Stopped after 2 epochs and resumed by the same command with 4: the rows of an uninterrupted run."""
    method, *flags = RUNS[run]
    flags = [*tiny_flags(4, 20), *flags]
    full = train(method, "ToyReach-v0", tmp_path / "full", *flags, "--n_epochs", "4")
    train(method, "ToyReach-v0", tmp_path / "split", *flags)
    resumed = train(method, "ToyReach-v0", tmp_path / "split", *flags, "--n_epochs", "4")
    assert without_time(resumed) == without_time(full)
