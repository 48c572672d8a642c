"""`python -m qmp.sweep status`: every run under a sweep's directory as done / running / queued / failed /
stopped, from synthetic run directories; and the writers it relies on: run.py marks an error as failed, the
sweep's job marks a run.py that died without a word as failed, and the sweep records its job ids."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

import qmp.command as command
import qmp.launch as launch
from qmp import run_dir as rd
from qmp import sweep as sw
from qmp import sweep_job
from qmp import sweep_status as st

HOST = socket.gethostname()


def dead_pid() -> int:
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid  # reaped: no process has it (until the kernel reuses it, far away)


def status(state: str, epoch: int = 3, **extra: Any) -> rd.RunStatus:
    return rd.RunStatus(epoch, 10, epoch * 100, state, 1000.0, extra)


def slurm_job(job_id: str = "41_1", submitted: float = 900.0) -> dict[str, Any]:
    return {"cluster": "slurm", "job_id": job_id, "submitted": submitted, "host": "login1"}


def never(host: Any, pid: Any) -> bool | None:
    raise AssertionError("a Slurm state must decide without a pid check")


@pytest.mark.parametrize("case", [
    # (status.json, job.json, squeue's states, pid check) -> (state, note contains)
    (status(rd.DONE, 10), slurm_job(), {}, never, st.DONE, ""),
    (status(rd.RUNNING, slurm_job_id="41_1"), slurm_job(), {"41_1": "RUNNING"}, never, st.RUNNING, ""),
    (status(rd.RUNNING, slurm_job_id="41_1"), slurm_job(), {}, never, st.FAILED, "41_1 left the queue"),
    (status(rd.RUNNING, slurm_job_id="41_1"), slurm_job(), {"41_1": "NODE_FAIL"}, never, st.FAILED, "NODE_FAIL"),
    (status(rd.STOPPED, slurm_job_id="41_1"), slurm_job(), {"41_1": "PENDING"}, never, st.QUEUED, "PENDING"),
    (status(rd.STOPPED, slurm_job_id="41_1"), slurm_job(), {"41_1": "RUNNING"}, never, st.RUNNING, "restarting"),
    (status(rd.STOPPED, slurm_job_id="41_1"), slurm_job(), {}, never, st.STOPPED, "run the sweep again"),
    (status(rd.FAILED, error="NonFiniteError: nan"), slurm_job(), {"41_1": "RUNNING"}, never, st.FAILED, "nan"),
    (None, slurm_job(), {"41_1": "PENDING"}, never, st.QUEUED, "PENDING"),
    (None, slurm_job(), {"41_1": "RUNNING"}, never, st.RUNNING, "starting"),
    (None, slurm_job(), {}, never, st.FAILED, "before the run started"),
    (None, slurm_job(), None, never, st.QUEUED, "submitted"),  # no squeue here: nothing known but the submission
    # resubmitted after the old job died: job.json is newer than status.json, and its job is the one asked about
    (status(rd.RUNNING, slurm_job_id="41_1"), slurm_job("77_0", 2000.0), {"77_0": "PENDING"}, never, st.QUEUED, ""),
    # runs without Slurm: their pid on this host decides
    (status(rd.RUNNING, host=HOST, pid=1), None, {}, lambda h, p: True, st.RUNNING, ""),
    (status(rd.RUNNING, host=HOST, pid=12345), None, {}, lambda h, p: False, st.FAILED, "process 12345"),
    (status(rd.RUNNING, host="elsewhere", pid=1), None, None, lambda h, p: None, st.RUNNING, ""),
    (None, {"cluster": "local", "job_id": "999", "host": HOST}, {}, lambda h, p: False, st.FAILED, "999"),
    (None, None, {}, never, st.UNKNOWN, "no status.json"),
])
def test_classify(case: tuple[Any, ...]) -> None:
    stat, job, squeue, alive, state, note = case
    got_state, got_note = st.classify(stat, job, squeue, alive)
    assert got_state == state and note in got_note


def test_process_alive() -> None:
    assert st.process_alive(HOST, os.getpid()) is True
    assert st.process_alive(HOST, dead_pid()) is False
    assert st.process_alive("another-host", os.getpid()) is None and st.process_alive(HOST, None) is None


def make_run(root: Path, name: str, *, state: str | None, epoch: int = 0, rows: int = 0, job: dict[str, Any] | None
             = None, **extra: Any) -> Path:
    run_dir = root / name
    run_dir.mkdir(parents=True)
    if state is not None:
        rd.write_status(run_dir, epoch=epoch, n_epochs=4, env_steps=epoch * 80, state=state, **extra)
    if rows:
        lines = ["epoch,env_steps,eval/paper_success,eval/success"]
        lines += [f"{e},{(e + 1) * 80}.0,{'0.25' if e % 2 == 0 else ''},0.1" for e in range(rows)]
        (run_dir / rd.PROGRESS).write_text("\n".join(lines) + "\n" + "9,9")  # a torn last line is ignored
    if job is not None:
        rd.write_job(run_dir, job)
    return run_dir


def test_status_table_of_a_sweep_directory(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    root = tmp_path / "sweep"
    make_run(root, "Toy/dnc_sac/None/seed0", state=rd.DONE, epoch=4, rows=4)
    make_run(root, "Toy/dnc_sac/None/seed1", state=rd.RUNNING, epoch=2, rows=3, host=HOST, pid=os.getpid())
    make_run(root, "Toy/qmp_dnc/None/seed0", state=rd.RUNNING, epoch=1, rows=2, host=HOST, pid=dead_pid())
    make_run(root, "Toy/qmp_dnc/None/seed1", state=None, job=slurm_job("41_3"))
    make_run(root, "Toy/qmp_dnc/None/seed2", state=rd.FAILED, epoch=1, rows=1, error="RuntimeError: boom",
             slurm_job_id="41_4")
    (root / "_submitit").mkdir()
    (root / "_submitit" / rd.CONFIG).write_text("{}")  # never a run: submitit's folder is skipped
    (root / "Toy/dnc_sac/None/seed0/tb").mkdir()
    asked: list[set[str]] = []
    monkeypatch.setattr(st, "slurm_states", lambda ids: asked.append(ids) or {"41_3": "PENDING"})
    assert sw.main(["status", str(root)]) == 0
    assert asked == [{"41_3", "41_4"}]  # one squeue call for every Slurm run
    header, *lines, summary = capsys.readouterr().out.splitlines()
    assert header.split() == ["run", "state", "epoch", "env_steps", "paper_success", "job", "note"]
    cells = [line.split()[:6] for line in lines]
    assert cells == [
        ["Toy/dnc_sac/None/seed0", "done", "4/4", "320", "0.250", "-"],  # the last evaluation with a value
        ["Toy/dnc_sac/None/seed1", "running", "3/4", "240", "0.250", "-"],  # progress runs ahead of the checkpoint
        ["Toy/qmp_dnc/None/seed0", "failed", "2/4", "160", "0.250", "-"],
        ["Toy/qmp_dnc/None/seed1", "queued", "0", "0", "-", "41_3"],
        ["Toy/qmp_dnc/None/seed2", "failed", "1/4", "80", "0.250", "41_4"],
    ]
    assert "ended while the run said running" in lines[2] and lines[4].endswith("RuntimeError: boom")
    assert summary == "5 runs: 1 done, 1 running, 1 queued, 2 failed"


def test_status_of_nothing_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert sw.main(["status", str(tmp_path)]) == 2
    assert sw.main(["status", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 2 and "no run directories" in err[0] and "is not a directory" in err[1]


def test_squeue_missing_means_unknown(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/nonexistent")
    assert st.slurm_states({"1_0"}) is None and st.slurm_states(set()) == {}


@pytest.mark.parametrize("script, expected", [
    ("echo \"$@\" > args; printf '41_0|RUNNING\\n41_1|PENDING\\n41_2|COMPLETED\\n7|RUNNING\\n'",
     {"41_0": "RUNNING", "41_2": "COMPLETED", "7": "RUNNING"}),
    ("echo 'slurm_load_jobs error: Invalid job id specified' >&2; exit 1", {}),  # it knows none of them
    ("echo 'slurm_load_jobs error: Unable to contact slurm controller' >&2; exit 1", None),
])
def test_squeue_answers(script: str, expected: dict[str, str] | None, tmp_path: Path,
                        monkeypatch: pytest.MonkeyPatch) -> None:
    squeue = tmp_path / "squeue"
    squeue.write_text(f"#!/bin/sh\ncd {tmp_path}\n{script}\n")
    squeue.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert st.slurm_states({"41_0", "41_2", "7"}) == expected
    if expected:  # one call for every job, by array id
        assert "--jobs=41,7" in (tmp_path / "args").read_text()


TINY = ["--n_epochs", "4", "--batch_size", "80", "--min_buffer_size", "20", "--gradient_steps_per_itr", "8",
        "--num_evaluation_episodes", "0"]


def test_run_py_writes_running_at_start_and_failed_on_an_error(tmp_path: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """An exception in epoch 2 leaves status.json failed at the last checkpoint (epoch 2), with the error."""
    real, calls, seen = launch.run_epoch, [], []

    def failing(parts: Any, cursor: Any, *args: Any) -> Any:
        calls.append(cursor.epoch)
        seen.append(rd.read_status(tmp_path / "run"))
        if len(calls) == 3:
            raise RuntimeError("boom\nin the third epoch")
        return real(parts, cursor, *args)

    monkeypatch.setattr(launch, "run_epoch", failing)
    monkeypatch.setenv("SLURM_ARRAY_JOB_ID", "41")
    monkeypatch.setenv("SLURM_ARRAY_TASK_ID", "2")
    with pytest.raises(RuntimeError, match="boom"):
        command.main(["dnc_sac", "--env=ToyReach-v0", "--run_dir", str(tmp_path / "run"), *TINY])
    first = seen[0]
    assert first is not None and (first.state, first.epoch) == (rd.RUNNING, 0)
    assert first.extra == {"host": HOST, "pid": os.getpid(), "slurm_job_id": "41_2", "start_epoch": 0}
    failed = rd.read_status(tmp_path / "run")
    assert failed is not None and (failed.state, failed.epoch, failed.n_epochs) == (rd.FAILED, 2, 4)
    assert failed.extra["error"] == "RuntimeError: in the third epoch" and failed.extra["slurm_job_id"] == "41_2"


FAKE_RUN_PY = """
import os, signal, sys
sys.path.insert(0, {root!r})
from qmp import run_dir as rd
run_dir = rd.Path(sys.argv[sys.argv.index("--run_dir") + 1])
run_dir.mkdir(parents=True)
rd.write_status(run_dir, epoch=2, n_epochs=5, env_steps=160, state=rd.RUNNING)
code = int(os.environ["FAKE_EXIT"])
if code < 0:
    os.kill(os.getpid(), -code)
sys.exit(code)
"""


@pytest.mark.parametrize("code, state", [(-9, rd.FAILED), (1, rd.FAILED), (143, rd.RUNNING)])
def test_the_job_marks_a_run_py_that_died_as_failed(code: int, state: str, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Killed (-9) or a traceback (1): failed, at the status's epoch. 143 is run.py's own stop after a checkpoint:
    status.json stays as run.py left it (the requeued job resumes it)."""
    fake = tmp_path / "fake_run.py"
    fake.write_text(FAKE_RUN_PY.format(root=str(Path(__file__).resolve().parents[1])))
    monkeypatch.setattr(sweep_job, "RUN_PY", fake)
    monkeypatch.setenv("FAKE_EXIT", str(code))
    job = sweep_job.RunJob(["dnc_sac", "--env=ToyReach-v0", "--run_dir", "run", "--n_epochs", "5"], str(tmp_path))
    with pytest.raises(RuntimeError, match=f"exited with code {code}"):
        job()
    got = rd.read_status(tmp_path / "run")
    assert got is not None and (got.state, got.epoch, got.n_epochs) == (state, 2, 5)
    if state == rd.FAILED:
        assert got.extra["error"] == ("run.py was killed by SIGKILL" if code == -9 else "run.py exited with code 1")


def test_mark_failed_keeps_a_reason_and_a_finished_run(tmp_path: Path) -> None:
    assert rd.mark_failed(tmp_path, 5, "killed") is not None
    assert rd.read_status(tmp_path).extra == {"error": "killed"}  # type: ignore[union-attr]
    rd.write_status(tmp_path, epoch=1, n_epochs=5, env_steps=80, state=rd.FAILED, error="NonFiniteError: x")
    assert rd.mark_failed(tmp_path, 5, "run.py exited with code 3") is None
    rd.write_status(tmp_path, epoch=5, n_epochs=5, env_steps=400, state=rd.DONE)
    assert rd.mark_failed(tmp_path, 5, "run.py exited with code 1") is None


def test_the_sweep_records_each_job_in_its_run_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from tests.test_sweep import FakeExecutor

    fake = FakeExecutor()
    monkeypatch.setattr(sw, "make_executor", lambda args: fake)
    code, _ = sw.sweep(["--methods", "dnc_sac", "--envs", "ToyReach-v0", "--seeds", "0", "1", "--log_dir",
                        str(tmp_path), "--cluster", "local"])
    assert code == 0
    for seed, job_id in ((0, "1"), (1, "2")):
        job = rd.read_job(tmp_path / "ToyReach-v0" / "dnc_sac" / "None" / f"seed{seed}")
        assert job is not None and (job["cluster"], job["job_id"], job["host"]) == ("fake", job_id, HOST)
    assert st.collect(tmp_path)[0].state == st.QUEUED


def test_status_imports_no_torch() -> None:
    code = textwrap.dedent("""
        import sys
        from qmp.sweep import main
        main(['status', '.'])
        assert 'torch' not in sys.modules and 'mujoco' not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[1], check=True,
                   capture_output=True)
