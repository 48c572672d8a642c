"""qmp.sweep: the grid expands to exact run.py command lines, a bad flag fails before anything is
submitted, a real local sweep trains its runs, a second sweep skips them, a partial run is resubmitted,
and a preempted job writes a checkpoint, is requeued and resumes where it stopped."""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import submitit

from qmp import run_dir as rd
from qmp import sweep as sw
from tests.helpers import read_progress

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--n_epochs", "2", "--batch_size", "80", "--min_buffer_size", "20", "--gradient_steps_per_itr", "8"]


class FakeExecutor:
    """Records submissions instead of running them (for asserting what a sweep would submit)."""

    cluster = "fake"
    folder = Path("fake")

    def __init__(self) -> None:
        self.submitted: list[sw.RunJob] = []

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        yield

    def submit(self, fn: sw.RunJob) -> Any:
        self.submitted.append(fn)
        return type("FakeJob", (), {"job_id": str(len(self.submitted)), "state": "PENDING"})()


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> FakeExecutor:
    executor = FakeExecutor()
    monkeypatch.setattr(sw, "make_executor", lambda args: executor)
    return executor


def test_grid_and_extra_flags_give_exact_command_lines(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--methods", "mtsac", "qmp_sac", "--envs", "JacoReachMT5-v1", "ToyReach-v0", "--seeds", "0", "1",
            "--dry_run", "--", "--n_epochs", "100", "--policy_architecture", "multihead",
            "--Q_architecture", "multihead"]
    assert sw.main(argv) == 0
    extra = "--n_epochs 100 --policy_architecture multihead --Q_architecture multihead"
    expected = [f"python run.py {m} --env={e} --seed {s} --log_dir data {extra}"
                for e in ("JacoReachMT5-v1", "ToyReach-v0") for m in ("mtsac", "qmp_sac") for s in (0, 1)]
    assert capsys.readouterr().out.splitlines() == expected


def test_run_dirs_match_run_py() -> None:
    from qmp.cli import parse_args
    from qmp.environments import ENVS
    from qmp.methods import METHODS

    runs = sw.expand(["dnc_sac"], ["ToyReach-v0"], [3], "somewhere", ["--name", "x"])
    cfg = parse_args(runs[0].argv, list(METHODS), list(ENVS))
    expected = rd.resolve_run_dir(cfg.run_dir, cfg.log_dir, cfg.env, cfg.method, cfg.name, cfg.seed)
    assert [r.run_dir for r in runs] == [expected]
    assert runs[0].run_dir == Path("somewhere/ToyReach-v0/dnc_sac/x/seed3") and runs[0].n_epochs == 30


@pytest.mark.parametrize("extra", [["--n_epochz", "3"], ["--lr", "-1"], ["--seed", "4"]])
def test_bad_flag_fails_up_front(extra: list[str], tmp_path: Path, fake: FakeExecutor,
                                 capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--methods", "dnc_sac", "qmp_dnc", "--envs", "ToyReach-v0", "--seeds", "0", "1", "--cluster", "local",
            "--log_dir", str(tmp_path / "logs"), "--", *extra]
    assert sw.main(argv) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("qmp.sweep: error: ")
    assert fake.submitted == [] and not (tmp_path / "logs").exists()


def test_unknown_method_fails_up_front(fake: FakeExecutor, capsys: pytest.CaptureFixture[str]) -> None:
    assert sw.main(["--methods", "qmp_dnc", "qmp_dcn", "--envs", "ToyReach-v0"]) == 2
    err = capsys.readouterr().err
    assert len(err.splitlines()) == 1 and "qmp_dcn" in err and fake.submitted == []


def test_dry_run_imports_no_torch() -> None:
    code = ("import sys; from qmp.sweep import main; "
            "assert main(['--methods', 'qmp_dnc', '--envs', 'JacoReachMT5-v1', '--dry_run']) == 0; "
            "assert 'torch' not in sys.modules and 'mujoco' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)


def test_local_sweep_trains_then_skips_then_resubmits_partial(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.chdir(ROOT)  # the job processes import qmp from the working directory, as `python -m qmp.sweep` does
    argv = ["--methods", "dnc_sac", "qmp_dnc", "--envs", "ToyReach-v0", "--seeds", "0", "--cluster", "local",
            "--log_dir", str(tmp_path), "--", *TINY]
    code, jobs = sw.sweep(argv)
    assert code == 0 and len(jobs) == 2
    dirs = [tmp_path / "ToyReach-v0" / m / "None" / "seed0" for m in ("dnc_sac", "qmp_dnc")]
    assert sorted(job.result() for job in jobs) == sorted(str(d) for d in dirs)
    for d in dirs:
        assert [row["epoch"] for row in read_progress(d)] == ["0", "1"]
        status = rd.read_status(d)
        assert (d / "checkpoint.pt").exists() and status is not None and status.epoch == 2 == rd.read_progress(d).epochs
        assert (status.state, status.n_epochs) == (rd.DONE, 2)
    capsys.readouterr()

    fake = FakeExecutor()
    monkeypatch.setattr(sw, "make_executor", lambda args: fake)
    code, jobs = sw.sweep(argv)
    table = capsys.readouterr().out.splitlines()
    assert (code, jobs, fake.submitted) == (0, [], [])
    assert table[0].split() == ["run_dir", "job_id", "state"]
    assert all("FINISHED (skipped, epoch 2/2)" in line and str(d) in line
               for line, d in zip(table[1:], dirs, strict=True))

    # more epochs asked for: both runs are unfinished again and are resubmitted with the same command
    longer = [*argv, "--n_epochs", "3"]
    code, jobs = sw.sweep(longer)
    assert code == 0 and [job.argv[-2:] for job in fake.submitted] == [["--n_epochs", "3"]] * 2
    assert "resumes at epoch 2/3" in capsys.readouterr().out


def test_status_decides_what_is_skipped_and_what_is_resubmitted(tmp_path: Path, fake: FakeExecutor,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    """status.json alone decides: done -> skipped; stopped part-way -> resubmitted; a directory without one
    (not started, or from before status.json) -> resubmitted and said so; a missing directory -> submitted."""
    argv = ["--methods", "dnc_sac", "--envs", "ToyReach-v0", "--seeds", "0", "1", "2", "3", "--cluster", "local",
            "--log_dir", str(tmp_path), "--", "--n_epochs", "5"]
    done, stopped, old, new = (tmp_path / "ToyReach-v0" / "dnc_sac" / "None" / f"seed{s}" for s in range(4))
    for d in (done, stopped, old):
        d.mkdir(parents=True)
    rd.write_status(done, epoch=5, n_epochs=5, env_steps=500, state=rd.DONE)
    rd.write_status(stopped, epoch=3, n_epochs=5, env_steps=300, state=rd.STOPPED)
    (old / "checkpoint.pt").write_bytes(b"a checkpoint the sweep must not read")
    code, jobs = sw.sweep(argv)
    assert code == 0 and len(jobs) == 3
    assert [job.argv[2:4] for job in fake.submitted] == [["--seed", s] for s in "123"]
    lines = capsys.readouterr().out.splitlines()[-5:]  # after "Submitted 3 job(s)": the table
    header, *table = lines
    assert header.split() == ["run_dir", "job_id", "state"]
    assert all(str(d) in line for d, line in zip((done, stopped, old, new), table, strict=True))
    assert table[0].endswith("FINISHED (skipped, epoch 5/5)")
    assert table[1].endswith("PENDING, resumes at epoch 3/5")
    assert table[2].endswith("PENDING, no status.json (not started, or from before status.json)")
    assert table[3].endswith("PENDING")


def test_checkpoint_resubmits_the_same_command(tmp_path: Path) -> None:
    job = sw.RunJob(["dnc_sac", "--env=ToyReach-v0", "--seed", "0", *TINY], "/some/cwd")
    job._proc = subprocess.Popen(["true"])  # a finished child must neither be signalled nor pickled
    job._proc.wait()
    delayed = job.checkpoint()
    assert isinstance(delayed, submitit.helpers.DelayedSubmission)
    assert delayed.function is job and delayed.args == () and delayed.kwargs == {}
    delayed.dump(tmp_path / "d.pkl")  # what submitit writes before requeueing
    again = submitit.helpers.DelayedSubmission.load(tmp_path / "d.pkl")
    assert isinstance(again.function, sw.RunJob) and (again.function.argv, again.function.cwd) == (job.argv, job.cwd)
    assert again.function._proc is None and pickle.loads(pickle.dumps(job)).argv == job.argv


def _children(pid: int) -> list[int]:
    return [int(x) for x in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def test_preempted_job_checkpoints_requeues_and_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What Slurm does before a timeout (--signal=USR2 to every process of the job), on the local executor:
    the job asks run.py for a checkpoint, submitit requeues it, and the requeued command resumes."""
    monkeypatch.chdir(ROOT)
    argv = ["--methods", "dnc_sac", "--envs", "ToyReach-v0", "--seeds", "7", "--cluster", "local",
            "--log_dir", str(tmp_path), "--", *TINY, "--n_epochs", "40"]
    code, (job,) = sw.sweep(argv)
    run_dir = tmp_path / "ToyReach-v0" / "dnc_sac" / "None" / "seed7"
    deadline = time.monotonic() + 300  # a loaded machine takes a while to import torch; a signal before run.py
    while rd.read_progress(run_dir).epochs < 3 and time.monotonic() < deadline:  # handles it would kill it
        time.sleep(0.1)
    assert rd.read_progress(run_dir).epochs >= 3, "the run did not log 3 epochs in 300 s"
    task = _children(int(job.job_id))[0]  # the local controller's job process, running RunJob
    run_py = _children(task)[0]
    os.kill(run_py, signal.SIGUSR2)
    os.kill(task, signal.SIGUSR2)
    assert job.result() == str(run_dir)
    log = Path(job.paths.stdout).read_text() + Path(job.paths.stderr).read_text()
    assert "Requeued job" in log and "stopped by SIGUSR1" in log
    resumed_at = int(log.split("Resuming ")[1].split(" at epoch ")[1].split()[0])
    assert 3 <= resumed_at < 40
    assert [int(row["epoch"]) for row in read_progress(run_dir)] == list(range(40))
    status = rd.read_status(run_dir)
    assert status is not None and (status.epoch, status.state) == (40, rd.DONE)
