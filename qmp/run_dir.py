"""The run directory: the one place that knows its file names, its default location and how to read it.

    {log_dir}/{env}/{method}/{name}/seed{seed}/
        config.json              the run's flags + resolved settings (written atomically at every (re)start)
        progress.csv             one row per epoch, appended (the last line may be torn by a kill)
        checkpoint.pt            everything needed to resume (qmp/checkpoint.py, written atomically)
        status.json              epoch / n_epochs / env_steps / state (+ host, pid, Slurm job id, error), rewritten
                                 atomically at every (re)start, after every checkpoint and when the run fails
        job.json                 written by qmp.sweep at submission: cluster, job id, submit time, log files
        qswitch_selection.jsonl  QMP methods: one JSON record per epoch, appended (last line may be torn)
        tb/                      TensorBoard events
        wandb_run_id.txt         with --wandb: the wandb run a resumed run continues
        videos/                  with --vis_freq: rollout videos

Standard library only (no torch, no numpy), so the sweep and the results tools read run directories in
milliseconds. Readers of appended files drop a last line without its newline: a running job may be writing
it, or a kill cut it (it could hold a cut number such as "1" of "10").
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import socket
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CONFIG = "config.json"
PROGRESS = "progress.csv"
CHECKPOINT = "checkpoint.pt"
STATUS = "status.json"
QSWITCH_LOG = "qswitch_selection.jsonl"
TENSORBOARD = "tb"
WANDB_RUN_ID = "wandb_run_id.txt"
VIDEOS = "videos"
JOB = "job.json"  # the sweep's file, not the run's: --overwrite keeps it (the job that runs the directory wrote it)
# Everything a run writes into its directory; --overwrite removes these (and their .tmp siblings) and nothing else.
RUN_FILES = (CONFIG, PROGRESS, CHECKPOINT, STATUS, QSWITCH_LOG, TENSORBOARD, WANDB_RUN_ID, VIDEOS)
TMP_SUFFIX = ".tmp"  # atomic writes go to NAME.tmp in the same directory, then os.replace onto NAME

RUNNING, DONE, STOPPED, FAILED = "running", "done", "stopped", "failed"
STATES = (RUNNING, DONE, STOPPED, FAILED)


class RunDirError(ValueError):
    """A run file that exists but cannot be understood (it names the file and what is wrong)."""


# ---------------------------------------------------------------------------------------------- layout
def default_run_dir(log_dir: str | Path, env: str, method: str, name: str, seed: int) -> Path:
    return Path(log_dir) / env / method / str(name) / f"seed{seed}"


def resolve_run_dir(run_dir: str | Path | None, log_dir: str | Path, env: str, method: str, name: str,
                    seed: int) -> Path:
    """An explicit --run_dir, else the default layout."""
    return Path(run_dir) if run_dir else default_run_dir(log_dir, env, method, name, seed)


def clear_run_files(run_dir: Path) -> None:
    """Remove what a run wrote (RUN_FILES and their .tmp files); a user's own files in the directory stay."""
    for name in RUN_FILES:
        for target in (run_dir / name, run_dir / (name + TMP_SUFFIX)):
            if target.is_dir() and not target.is_symlink():
                shutil.rmtree(target)
            elif target.exists() or target.is_symlink():
                target.unlink()


def prepare_run_dir(run_dir: str | Path | None, log_dir: str | Path, env: str, method: str, name: str, seed: int,
                    overwrite: bool) -> Path:
    """The run's directory, created; with overwrite, the files of an earlier run there are removed first."""
    path = resolve_run_dir(run_dir, log_dir, env, method, name, seed)
    if overwrite:
        clear_run_files(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def is_run_dir(path: Path) -> bool:
    """A directory with both config.json and progress.csv (what the results tools load)."""
    return (path / CONFIG).is_file() and (path / PROGRESS).is_file()


# ---------------------------------------------------------------------------------------------- reading
def complete_lines(path: Path) -> list[str]:
    """The lines of an appended file (with their newlines), without a torn last line; [] if it does not exist."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return text[: text.rfind("\n") + 1].splitlines(keepends=True)


@dataclass(frozen=True)
class Progress:
    """progress.csv: its header and its complete rows (values as written, empty cells as "")."""

    columns: list[str]
    rows: list[dict[str, str]]

    @property
    def epochs(self) -> int:
        """Epochs logged: the last complete row's epoch + 1 (0 if none)."""
        try:
            return int(self.rows[-1]["epoch"]) + 1 if self.rows else 0
        except (KeyError, TypeError, ValueError):
            return 0


def read_progress(run_dir: Path) -> Progress:
    """progress.csv of a run; empty (no columns, no rows) if it does not exist yet."""
    reader = csv.DictReader(complete_lines(Path(run_dir) / PROGRESS))
    rows = list(reader)
    return Progress(list(reader.fieldnames or []), rows)


def read_complete_rows(path: Path) -> list[dict[str, str]]:
    """The complete rows of a CSV file being appended (progress.csv), by file path."""
    return list(csv.DictReader(complete_lines(path)))


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """The complete records of a JSON-lines log (e.g. QSWITCH_LOG); [] if it does not exist.

    Raises RunDirError for a complete line that is not JSON (the file was changed by something else)."""
    return [record for _, record in _jsonl_lines(path)]


def truncate_jsonl(path: Path, resume_epoch: int) -> None:
    """Drop the records of epochs >= resume_epoch (and a torn last line) from a JSON-lines log, atomically."""
    path = Path(path)
    if path.exists():
        _write_atomic(path, "".join(line for line, record in _jsonl_lines(path) if record["epoch"] < resume_epoch))


def _jsonl_lines(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(line as written, its record) for each complete non-blank line."""
    parsed = []
    for number, line in enumerate(complete_lines(path), 1):
        if not line.strip():
            continue
        try:
            parsed.append((line, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise RunDirError(f"{path}:{number} is not JSON ({exc.msg})") from exc
    return parsed


def read_config(run_dir: Path) -> dict[str, Any]:
    """config.json as a dict; RunDirError if it is missing, not JSON or not an object."""
    config = _read_object(Path(run_dir) / CONFIG, missing_ok=False)
    assert config is not None
    return config


def _read_object(path: Path, missing_ok: bool) -> dict[str, Any] | None:
    """A JSON object from a file; None if missing (and that is allowed), else RunDirError naming the file."""
    try:
        record = json.loads(path.read_text())
    except FileNotFoundError as exc:
        if missing_ok:
            return None
        raise RunDirError(f"cannot read {path}: {exc}") from exc
    except (OSError, ValueError) as exc:
        raise RunDirError(f"cannot read {path}: {exc}") from exc
    if not isinstance(record, dict):
        raise RunDirError(f"{path} does not hold a JSON object")
    return record


def write_config(run_dir: Path, record: dict[str, Any]) -> None:
    """config.json, atomically (a reader sees the old or the new one)."""
    _write_atomic(Path(run_dir) / CONFIG, json.dumps(record, indent=2))


# ---------------------------------------------------------------------------------------------- status
@dataclass(frozen=True)
class RunStatus:
    """status.json: how far a run got, rewritten right after each of its checkpoints (so it never claims more
    than the checkpoint holds). epoch = completed epochs, the epoch a resumed run starts at."""

    epoch: int
    n_epochs: int
    env_steps: int
    state: str  # one of STATES
    updated: float  # unix time of the write
    extra: dict[str, Any] = field(default_factory=dict)  # any further fields given to write_status

    @property
    def finished(self) -> bool:
        return self.epoch >= self.n_epochs


def write_status(run_dir: Path, *, epoch: int, n_epochs: int, env_steps: int, state: str, **extra: Any) -> RunStatus:
    """Replace status.json atomically (temp file + os.replace): a reader never sees a half-written file."""
    if state not in STATES:
        raise ValueError(f"state {state!r} is not one of {', '.join(STATES)}")
    status = RunStatus(int(epoch), int(n_epochs), int(env_steps), state, time.time(), dict(extra))
    record = {k: v for k, v in asdict(status).items() if k != "extra"}
    _write_atomic(Path(run_dir) / STATUS, json.dumps({**extra, **record}, indent=1) + "\n")
    return status


def read_status(run_dir: Path) -> RunStatus | None:
    """status.json, or None if there is none (not started, or written by a version without status.json).

    Raises RunDirError if it exists but is not a status (write_status never leaves one like that)."""
    path = Path(run_dir) / STATUS
    record = _read_object(path, missing_ok=True)
    if record is None:
        return None
    try:
        fields = {k: record.pop(k) for k in ("epoch", "n_epochs", "env_steps", "state", "updated")}
        status = RunStatus(int(fields["epoch"]), int(fields["n_epochs"]), int(fields["env_steps"]),
                           str(fields["state"]), float(fields["updated"]), record)
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise RunDirError(f"{path} is not a run status ({type(exc).__name__}: {exc})") from exc
    if status.state not in STATES:
        raise RunDirError(f"{path}: unknown state {status.state!r}")
    return status


def mark_failed(run_dir: Path, n_epochs: int, error: str) -> RunStatus | None:
    """status.json says failed, keeping how far the checkpoint got: for a process that died without saying so.
    A status that already says failed (with its own reason) or done is kept; returns what was written, or None."""
    try:
        status = read_status(run_dir)
    except RunDirError:
        status = None
    if status is not None and (status.state == FAILED or status.finished):
        return None
    epoch, steps, extra = (status.epoch, status.env_steps, status.extra) if status else (0, 0, {})
    return write_status(run_dir, epoch=epoch, n_epochs=n_epochs, env_steps=steps, state=FAILED,
                        **{**extra, "error": error})


def runner() -> dict[str, Any]:
    """Who runs the run (status.json's extra fields): host and pid, and the Slurm job id as submitit names it
    (ARRAYJOB_TASK for an array task), so `qmp.sweep status` can tell a live run from a dead one."""
    env = os.environ
    if env.get("SLURM_ARRAY_JOB_ID") and env.get("SLURM_ARRAY_TASK_ID"):
        job: str | None = f"{env['SLURM_ARRAY_JOB_ID']}_{env['SLURM_ARRAY_TASK_ID']}"
    else:
        job = env.get("SLURM_JOB_ID")
    return {"host": socket.gethostname(), "pid": os.getpid(), **({"slurm_job_id": job} if job else {})}


# ---------------------------------------------------------------------------------------------- the sweep's job
def write_job(run_dir: Path, record: dict[str, Any]) -> None:
    """job.json (directory created): which job of which cluster was submitted to run this directory."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    _write_atomic(Path(run_dir) / JOB, json.dumps(record, indent=1) + "\n")


def read_job(run_dir: Path) -> dict[str, Any] | None:
    """job.json, or None if the run was not submitted by the sweep; RunDirError if it is not a JSON object."""
    return _read_object(Path(run_dir) / JOB, missing_ok=True)


# ---------------------------------------------------------------------------------------------- writing
def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + TMP_SUFFIX)
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
