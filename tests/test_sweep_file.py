"""Sweep files (`python -m qmp.sweep --file F`): a file expands to the run lines it lists, and a bad file fails
with one line naming the bad value and the valid choices, before anything is submitted."""

from __future__ import annotations

from pathlib import Path

import pytest

from qmp import sweep as sw
from qmp.cli import ConfigError
from qmp.environments import ENVS
from qmp.methods import METHODS
from qmp.sweep_file import load_sweep
from tests.test_sweep import FakeExecutor


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeExecutor:
    executor = FakeExecutor()
    monkeypatch.setattr(sw, "make_executor", lambda args: executor)
    return executor


GOOD = """envs = ["ToyReach-v0"]
seeds = [0, 1]
flags = "--n_epochs 3"
[methods]
dnc_sac = ""
mtsac = "--policy_architecture multihead --Q_architecture multihead"
[resources]
mem_gb = 2
[cost]
cpu_hours_per_run = { dnc_sac = 0.1 }
"""


@pytest.mark.parametrize("change, message", [
    (("seeds = [0, 1]", "seed = [0, 1]"), "unknown key 'seed'; valid: envs, seeds, flags, methods, resources, cost"),
    (('dnc_sac = ""', 'qmp_dcn = ""'), "unknown method 'qmp_dcn' in [methods]; valid: " + ", ".join(METHODS)),
    (("ToyReach-v0", "ToyReach-v9"), "unknown env 'ToyReach-v9'; valid: " + ", ".join(ENVS)),
    (("mem_gb = 2", "memory_gb = 2"), "unknown key 'memory_gb' in [resources]; valid: timeout_min, cpus_per_task"),
    (("mem_gb = 2", "mem_gb = -1"), "[resources] mem_gb must be a positive float, got -1"),
    (("seeds = [0, 1]", 'seeds = ["0"]'), "seeds must be a non-empty list of integers >= 0"),
    (("{ dnc_sac = 0.1 }", "{ qmp_dnc = 0.1 }"),
     "unknown method 'qmp_dnc' in [cost] cpu_hours_per_run (not in [methods]); valid: dnc_sac, mtsac"),
    (('flags = "--n_epochs 3"', 'flags = "--n_epochz 3"'), "--n_epochz"),  # a run.py flag: checked as run.py does
    (('flags = "--n_epochs 3"', 'flags = "--seed 3"'), "--seed in flags is set by the sweep for every run"),
    (('flags = "--n_epochs 3"', "flags = 3"), "flags must be a string of run.py flags, got 3"),
    (("[methods]", "[methods"), "not valid TOML"),
])
def test_a_bad_file_is_one_line_naming_the_bad_value(change: tuple[str, str], message: str, tmp_path: Path,
                                                     fake: FakeExecutor, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    assert GOOD.count(change[0]) == 1
    path.write_text(GOOD.replace(*change))
    assert sw.main(["--file", str(path), "--cluster", "local", "--log_dir", str(tmp_path / "logs")]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and message in err
    assert str(path) in err or err.startswith("qmp.sweep: error: run.py ")  # the file, or the run line it made
    assert fake.submitted == [] and not (tmp_path / "logs").exists()


def test_good_file_and_conflicting_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "good.toml"
    path.write_text(GOOD)
    assert sw.main(["--file", str(path), "--dry_run"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"python run.py dnc_sac --env=ToyReach-v0 --seed {s} --log_dir data --n_epochs 3" for s in (0, 1)] + [
        f"python run.py mtsac --env=ToyReach-v0 --seed {s} --log_dir data --policy_architecture multihead "
        "--Q_architecture multihead --n_epochs 3" for s in (0, 1)]
    assert sw.main(["--file", str(path), "--methods", "dnc_sac", "--dry_run"]) == 2
    assert sw.main(["--file", str(tmp_path / "missing.toml"), "--dry_run"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert "drop --methods and --envs" in err[0] and "cannot read it" in err[1]
    path.write_text('envs = ["ToyReach-v0"]\nseeds = [0]\n')
    with pytest.raises(ConfigError, match=r"good.toml: \[methods\] is missing or empty; valid methods: sac, mtsac"):
        load_sweep(path)
