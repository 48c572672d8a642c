"""Each method and option added on top of the paper's main ones trains end to end on Multistage Reacher and
on a Meta-World benchmark (a tiny budget, finite losses), and resumes exactly on the toy env."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.helpers import tiny_flags, train, without_time

MULTIHEAD = ["--policy_architecture", "multihead", "--Q_architecture", "multihead"]
JACO, METAWORLD, MAZE = "JacoReachMT5-v1", "MetaWorldCDS-v1", "MazeLarge-10-v0"
ENVS = {JACO: (5, 200, True), METAWORLD: (4, 500, False), MAZE: (2, 600, False)}  # tasks, horizon, evaluate
ENV_FLAGS = {MAZE: ["--task_name", "0,9", "--n_policies", "2"]}
DISTILL = ["--distillation_period", "1", "--distillation_n_epochs", "3"]  # distills after epoch 1 (on Jaco: 2 epochs)
RUNS = {
    "mtsac_pcgrad": ["mtsac", *MULTIHEAD, "--use_pc_grad", "true", "--skip_alpha_pc_grad", "false"],
    "dnc_representation_distill": ["dnc_sac", "--kl_coeff", "0.01", "--regularize_representation", "true", *DISTILL],
    "qmp_dnc_distill": ["qmp_dnc", *DISTILL],
    "decaf": ["decaf"],
    "qmp_dnc_norm_obs": ["qmp_dnc", "--norm_obs", "true"],
    "mcal": ["mcal", "--policy_architecture", "multihead"],
    "qmp_mcal_min_own": ["qmp_mcal", "--policy_architecture", "multihead", "--min_task_probs", "0.2"],
}
STAGED = {"dnc_stagewise": ["dnc_sac", "--kl_coeff", "0.01", "--stagewise", "true"]}  # envs with stages only
REWARD = {"uds_supervised": ["uds_dnc", "--unsupervised", "false"]}  # envs with a reward of (s, a, s') only
CASES = ([(run, env) for run in sorted(RUNS) for env in (JACO, METAWORLD)] + [(run, JACO) for run in sorted(STAGED)]
         + [(run, MAZE) for run in sorted(REWARD)])


@pytest.mark.parametrize(("run", "env"), CASES)
def test_trains_end_to_end(run: str, env: str, tmp_path: Path) -> None:
    tasks, horizon, evaluate = ENVS[env]
    method, *flags = {**RUNS, **STAGED, **REWARD}[run]
    flags = [*ENV_FLAGS.get(env, []), *flags]
    distills = "--distillation_period" in flags and env == JACO  # 2 epochs; Meta-World's would take 20 s
    rows = train(method, env, tmp_path, *tiny_flags(tasks, horizon, evaluate), "--n_epochs", "2" if distills else "1",
                 "--steps_per_epoch", "1", *flags)
    row = rows[-1]
    assert float(row["grad_steps"]) > 0 and float(row["collect/episodes"]) >= tasks
    assert all(math.isfinite(float(row[key])) for key in ("train/qf1_loss", "train/policy_loss", "train/alpha"))
    if evaluate:
        assert float(row["eval/episodes"]) == tasks
    if "--kl_coeff" in flags:
        assert float(row["train/kl_penalty"]) >= 0
    if distills:
        assert math.isfinite(float(row["train/distillation_loss"]))


@pytest.mark.parametrize("run", sorted({**RUNS, **REWARD}))
def test_resume_continues_exactly(run: str, tmp_path: Path) -> None:
    """Stopped after 2 epochs and resumed by the same command with 4: the rows of an uninterrupted run."""
    method, *flags = {**RUNS, **REWARD}[run]
    flags = [*tiny_flags(4, 20), *flags]
    full = train(method, "ToyReach-v0", tmp_path / "full", *flags, "--n_epochs", "4")
    train(method, "ToyReach-v0", tmp_path / "split", *flags, "--n_epochs", "2")
    resumed = train(method, "ToyReach-v0", tmp_path / "split", *flags, "--n_epochs", "4")
    assert without_time(resumed) == without_time(full)
