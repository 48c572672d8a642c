"""`python -m qmp.sweep status DIR`: where each run of a sweep stands, from its files and the cluster.

    python -m qmp.sweep status data          # DIR: the sweep's --log_dir (or any directory above run directories)

One line per run directory under DIR: its state, epoch, env steps, main metric (the last `eval/paper_success`,
what the paper plots) and job id. States:

- done: status.json says every epoch is trained;
- running: status.json says running and its process lives (its Slurm job runs, or its pid on this host);
- queued: submitted (job.json) and waiting: Slurm says PENDING (also a requeued job), or not started yet;
- failed: status.json says failed (written by run.py on an error, or by the sweep's job when run.py died), or it
  says running but the process is gone: its Slurm job ended or left the queue, or its pid on this host is dead;
- stopped: stopped by a signal after a checkpoint, and nothing is queued for it: run the sweep again to resume.

Standard library only, plus `squeue` when a run was submitted to Slurm (without squeue, Slurm runs are shown as
their status.json says). Reads no checkpoint, so it takes milliseconds per run.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qmp.run_dir import (
    CONFIG,
    DONE,
    FAILED,
    JOB,
    RUNNING,
    STATUS,
    STOPPED,
    RunDirError,
    RunStatus,
    read_job,
    read_progress,
    read_status,
)

QUEUED, UNKNOWN = "queued", "unknown"
METRICS = ("eval/paper_success", "eval/success")  # the main metric: the first of these a run logs
SLURM_WAITING = {"PENDING", "REQUEUED", "REQUEUE_FED", "REQUEUE_HOLD", "RESV_DEL_HOLD", "CONFIGURING", "SUSPENDED"}
SLURM_ACTIVE = {"RUNNING", "COMPLETING", "SIGNALING", "STAGE_OUT", "RESIZING"}


@dataclass(frozen=True)
class RunState:
    """One line of the status table."""

    run_dir: Path
    state: str
    epoch: int
    n_epochs: int | None
    env_steps: int
    metric: float | None
    job_id: str | None
    note: str


def find_run_dirs(root: Path) -> list[Path]:
    """Directories holding a status.json, job.json or config.json, not looking inside them or into `_*`
    directories (submitit's logs)."""
    found = []
    for path, dirs, files in os.walk(root):
        if {STATUS, JOB, CONFIG} & set(files):
            found.append(Path(path))
            dirs.clear()
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("_"))
    return sorted(found)


def slurm_states(job_ids: set[str]) -> dict[str, str] | None:
    """{job id: Slurm state} of the jobs squeue still knows (array tasks as ARRAY_TASK, as submitit names
    them); a job missing from it has left the queue. None when squeue is missing or fails."""
    if not job_ids:
        return {}
    arrays = sorted({job.split("_")[0] for job in job_ids})
    command = ["squeue", "--noheader", "--array", "--states=all", "--format=%i|%T", f"--jobs={','.join(arrays)}"]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:  # squeue fails when it knows none of the ids: then all have left the queue
        return {} if "Invalid job id" in done.stderr else None
    states = dict(line.strip().split("|", 1) for line in done.stdout.splitlines() if "|" in line)
    return {job: state for job, state in states.items() if job in job_ids}


def process_alive(host: Any, pid: Any) -> bool | None:
    """Whether process `pid` lives, if it ran on this host; None when that cannot be told from here."""
    if host != socket.gethostname() or not isinstance(pid, int):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def current_job(status: RunStatus | None, job: dict[str, Any] | None) -> tuple[str | None, str | None]:
    """(cluster, job id) of the job that runs the directory now: the one in status.json (written by the running
    process), unless the sweep submitted a newer one since (job.json)."""
    ran = status.extra.get("slurm_job_id") if status else None
    if ran and (job is None or status is not None and status.updated >= float(job.get("submitted", 0))):
        return "slurm", str(ran)
    if job is not None:
        return job.get("cluster"), str(job.get("job_id"))
    return None, None


def classify(status: RunStatus | None, job: dict[str, Any] | None, slurm: dict[str, str] | None,
             alive: Callable[[Any, Any], bool | None] = process_alive) -> tuple[str, str]:
    """(state, note) of one run from its status.json, its job.json, squeue's states (None: unknown) and a
    liveness check of a pid on this host."""
    if status is not None and (status.state == DONE or status.finished):
        return DONE, ""
    cluster, job_id = current_job(status, job)
    on_slurm = cluster == "slurm" and slurm is not None and job_id is not None
    slurm_state = slurm.get(job_id) if on_slurm and slurm is not None and job_id else None
    ended = on_slurm and (slurm_state is None or slurm_state not in SLURM_WAITING | SLURM_ACTIVE)
    how = f"Slurm job {job_id} " + (f"ended ({slurm_state})" if slurm_state else "left the queue")
    if slurm_state in SLURM_WAITING:
        return QUEUED, f"Slurm {slurm_state}"
    if status is None:
        if job is None:
            return UNKNOWN, "no status.json (written before status.json existed?)"
        if slurm_state in SLURM_ACTIVE:
            return RUNNING, "starting"
        if ended:
            return FAILED, f"{how} before the run started"
        if cluster == "local" and alive(job.get("host"), _int(job_id)) is False:
            return FAILED, f"local job process {job_id} ended before the run started"
        return QUEUED, "submitted"
    if status.state == FAILED:
        return FAILED, str(status.extra.get("error", ""))
    if slurm_state in SLURM_ACTIVE:
        return RUNNING, "" if status.state == RUNNING else "restarting"
    if status.state == RUNNING:
        if ended:
            return FAILED, f"{how} while the run said running"
        host, pid = status.extra.get("host"), status.extra.get("pid")
        if alive(host, pid) is False:
            return FAILED, f"process {pid} on {host} ended while the run said running"
        return RUNNING, ""
    error = str(status.extra.get("error") or "stopped by a signal")
    return STOPPED, f"{error}; run the sweep again to resume"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def last_value(rows: list[dict[str, str]], columns: tuple[str, ...]) -> float | None:
    """The last non-empty value of the first of `columns` that the rows have."""
    for column in columns:
        for row in reversed(rows):
            if row.get(column):
                return float(row[column])
    return None


def collect(root: Path) -> list[RunState]:
    """Every run directory under root with its state (one squeue call for all of them)."""
    found: list[tuple[Path, RunStatus | None, dict[str, Any] | None, str]] = []
    for run_dir in find_run_dirs(root):
        problem = ""
        try:
            status = read_status(run_dir)
        except RunDirError as exc:
            status, problem = None, str(exc)
        try:
            job = read_job(run_dir)
        except RunDirError as exc:
            job, problem = None, str(exc)
        found.append((run_dir, status, job, problem))
    ids = {job_id for _, status, job, _ in found for cluster, job_id in [current_job(status, job)]
           if cluster == "slurm" and job_id}
    states = slurm_states(ids)
    result = []
    for run_dir, status, job, problem in found:
        state, note = (UNKNOWN, problem) if problem else classify(status, job, states)
        rows = read_progress(run_dir).rows
        steps = max(status.env_steps if status else 0, int(float(rows[-1].get("env_steps") or 0)) if rows else 0)
        epoch = max(status.epoch if status else 0, int(rows[-1]["epoch"]) + 1 if rows else 0)
        result.append(RunState(run_dir, state, epoch, status.n_epochs if status else None, steps,
                               last_value(rows, METRICS), current_job(status, job)[1], note))
    return result


def format_table(root: Path, runs: list[RunState]) -> str:
    """The status table and a one-line summary."""
    lines = [("run", "state", "epoch", "env_steps", "paper_success", "job", "note")]
    for run in runs:
        epoch = f"{run.epoch}/{run.n_epochs}" if run.n_epochs else str(run.epoch)
        metric = "-" if run.metric is None else f"{run.metric:.3f}"
        lines.append((str(run.run_dir.relative_to(root)), run.state, epoch, str(run.env_steps), metric,
                      run.job_id or "-", run.note))
    widths = [max(len(line[i]) for line in lines) for i in range(6)]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=False)) + "  " + line[6]
            for line in lines]
    counts = Counter(run.state for run in runs)
    summary = ", ".join(f"{counts[s]} {s}" for s in (DONE, RUNNING, QUEUED, FAILED, STOPPED, UNKNOWN) if counts[s])
    return "\n".join([*(line.rstrip() for line in text), f"{len(runs)} runs: {summary}"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m qmp.sweep status",
                                     description="The state of every run under DIR (a sweep's --log_dir).")
    parser.add_argument("dir", type=Path, help="a sweep's --log_dir, or any directory above run directories")
    args = parser.parse_args(argv)
    if not args.dir.is_dir():
        print(f"qmp.sweep status: error: {args.dir} is not a directory", file=sys.stderr)
        return 2
    runs = collect(args.dir)
    if not runs:
        print(f"qmp.sweep status: error: no run directories under {args.dir}", file=sys.stderr)
        return 2
    print(format_table(args.dir, runs))
    return 0
