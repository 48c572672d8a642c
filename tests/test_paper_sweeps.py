"""The paper's sweeps (sweeps/paper/*.toml): one file per panel of the main figure, each expanding to 30 valid
run.py command lines (6 methods with the README's flags x 5 seeds, the paper's length), with a stated cost for
every method and the resources to run it."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from qmp import sweep as sw
from qmp.cli import parse_args
from qmp.environments import ENVS
from qmp.methods import METHODS
from qmp.sweep_file import load_sweep
from tests.test_sweep import FakeExecutor

ROOT = Path(__file__).resolve().parents[1]
PAPER = sorted((ROOT / "sweeps" / "paper").glob("*.toml"))
PANELS = {"JacoReachMT5-v1", "MazeLarge-10-v0", "Walker2dMT4-v0", "MetaWorldCDS-v1", "MetaWorldMT10-v2",
          "MetaWorldMT50-v2", "KitchenMTEasy-v0"}
PARAMS = "--policy_architecture multihead --Q_architecture multihead --lr 0.001 --hidden_sizes 512 512"
README_FLAGS = {"dnc_sac": "", "qmp_dnc": "", "mtsac": PARAMS, "qmp_sac": PARAMS, "uds_dnc": "--sharing_quantile 0",
                "qmp_uds_dnc": "--sharing_quantile 0"}


def test_one_file_per_panel_of_the_paper() -> None:
    assert sorted(env for path in PAPER for env in load_sweep(path).envs) == sorted(PANELS)


@pytest.mark.parametrize("path", PAPER, ids=[p.stem for p in PAPER])
def test_paper_panel_expands_to_valid_run_lines(path: Path) -> None:
    plan = load_sweep(path)
    assert len(plan.envs) == 1 and plan.seeds == [0, 1, 2, 3, 4] and plan.flags == []
    assert {m: shlex.join(f) for m, f in plan.methods.items()} == README_FLAGS  # base and +QMP of each family
    runs = sw.expand(plan.methods, plan.envs, plan.seeds, "data", plan.flags)
    assert len(runs) == 6 * 5 and len({run.run_dir for run in runs}) == 30
    preset = ENVS[plan.envs[0]].preset
    for run in runs:
        cfg = parse_args(run.argv, list(METHODS), list(ENVS))  # what run.py will do with the line
        assert cfg.env == plan.envs[0] and cfg.n_epochs == preset.get("n_epochs", 1000)  # the paper's length
    env_steps = runs[0].n_epochs * preset.get("steps_per_epoch", 1) * preset.get("batch_size", 1000)
    cost = plan.cost
    assert cost["env_steps_per_run"] == env_steps and "sweep_cost.py" in cost["measured"]
    for key in ("cpu_hours_per_100k_env_steps", "cpu_hours_per_run", "memory_gb_per_run"):
        assert set(cost[key]) == set(plan.methods) and all(v > 0 for v in cost[key].values())
    assert plan.resources["mem_gb"] >= max(cost["memory_gb_per_run"].values())
    assert plan.resources["cpus_per_task"] == 1  # runs train with one torch thread by default


def test_a_panel_submits_with_its_resources_and_command_line_flags_win(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    fake, seen = FakeExecutor(), []
    monkeypatch.setattr(sw, "make_executor", lambda args: seen.append(args) or fake)
    path = ROOT / "sweeps" / "paper" / "mt10.toml"
    code, jobs = sw.sweep(["--file", str(path), "--seeds", "3", "--mem_gb", "7.5", "--log_dir", str(tmp_path),
                           "--cluster", "local", "--", "--n_epochs", "2"])
    assert code == 0 and len(jobs) == 6
    plan = load_sweep(path)
    assert (seen[0].mem_gb, seen[0].cpus_per_task, seen[0].timeout_min) == (7.5, 1, plan.resources["timeout_min"])
    assert [job.argv[:4] for job in fake.submitted] == [[m, "--env=MetaWorldMT10-v2", "--seed", "3"]
                                                        for m in README_FLAGS]
    assert all(job.argv[-2:] == ["--n_epochs", "2"] for job in fake.submitted)


def test_slurm_executor_gets_the_file_resources_and_requeues_until_done(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    made: dict[str, object] = {}

    class Recorder:
        def __init__(self, folder: Path, cluster: str, **kwargs: object) -> None:
            made.update(folder=folder, kwargs=kwargs)
            self.cluster = cluster

        def update_parameters(self, **params: object) -> None:
            made["params"] = params

    monkeypatch.setattr(sw.submitit, "AutoExecutor", Recorder)
    path = ROOT / "sweeps" / "paper" / "jaco.toml"
    args = sw.build_parser().parse_args(["--file", str(path), "--cluster", "slurm", "--slurm_partition", "P",
                                         "--max_parallel", "4", "--log_dir", str(tmp_path)])
    sw.grid(args, [])
    sw.make_executor(args)
    resources = load_sweep(path).resources
    assert made["folder"] == tmp_path / "_submitit" and made["kwargs"] == {"slurm_max_num_timeout": sw.MAX_TIMEOUTS}
    assert made["params"] == {"name": "qmp_sweep", "timeout_min": resources["timeout_min"], "cpus_per_task": 1,
                              "mem_gb": resources["mem_gb"], "gpus_per_node": 0, "slurm_partition": "P",
                              "slurm_array_parallelism": 4}
