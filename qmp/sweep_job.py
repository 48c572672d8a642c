"""The job qmp.sweep submits for one run: `python run.py ARGV` as a child process, requeue-safe.

Kept apart from the CLI (qmp/sweep.py) because submitit pickles it: a job on the cluster imports only this.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import submitit

from qmp.cli import parse_args
from qmp.environments import ENVS
from qmp.methods import METHODS
from qmp.run_dir import mark_failed, resolve_run_dir

ROOT = Path(__file__).resolve().parents[1]
RUN_PY = ROOT / "run.py"
STOP_GRACE_S = 60.0  # below submitit's default 90 s between the Slurm signal and the kill


def run_dir_from_argv(argv: list[str]) -> Path:
    cfg = parse_args(argv, list(METHODS), list(ENVS))
    return resolve_run_dir(cfg.run_dir, cfg.log_dir, cfg.env, cfg.method, cfg.name, cfg.seed)


def exit_reason(code: int) -> str | None:
    """Why run.py's exit code means a failed run, or None when it is not one: 0, or 128 + N (run.py stopped
    itself on signal N after writing a checkpoint; the run resumes when it runs again)."""
    if code == 0 or 128 < code < 128 + 65:
        return None
    if code < 0:
        return f"run.py was killed by {signal.Signals(-code).name}"
    return f"run.py exited with code {code}"


class RunJob(submitit.helpers.Checkpointable):
    """`python run.py ARGV` in CWD as a child process.

    A child (not run.main in this process) because preemption must end with a fresh checkpoint:
    submitit's signal handler interrupts this process anywhere, whereas run.py stops at a safe point
    when sent SIGUSR1. The child ignores submitit's preemption signal (Slurm sends it to every process
    of the job step) and is told to stop by `checkpoint()` instead. A child that dies without saying why
    (killed, a traceback) leaves status.json saying failed, so `qmp.sweep status` does not show it running."""

    def __init__(self, argv: list[str], cwd: str) -> None:
        self.argv = list(argv)
        self.cwd = cwd
        self._proc: subprocess.Popen[bytes] | None = None

    def __call__(self) -> str:
        preempt = getattr(signal, "SIG" + os.environ.get("SUBMITIT_PREEMPT_SIGNAL", "USR2"), signal.SIGUSR2)

        def ignore_preemption() -> None:
            signal.signal(preempt, signal.SIG_IGN)

        self._proc = subprocess.Popen([sys.executable, str(RUN_PY), *self.argv], cwd=self.cwd,
                                      preexec_fn=ignore_preemption)
        # poll, not wait(): checkpoint() runs in a signal handler on this thread, and would deadlock on
        # the lock an interrupted Popen.wait() holds
        while (code := self._proc.poll()) is None:
            time.sleep(0.5)
        self._proc = None
        run_dir = Path(self.cwd) / run_dir_from_argv(self.argv)
        reason = exit_reason(code)
        if reason is not None and run_dir.is_dir():
            mark_failed(run_dir, parse_args(self.argv, list(METHODS), list(ENVS)).n_epochs, reason)
        if code != 0:
            hint = "; its checkpoint is kept: run the sweep again to resume" if code > 128 else ""
            raise RuntimeError(f"run.py {shlex.join(self.argv)} exited with code {code}{hint}")
        return str(run_dir)

    def checkpoint(self, *args: Any, **kwargs: Any) -> submitit.helpers.DelayedSubmission:
        """Preempted or timed out: let the run write its checkpoint, then requeue the same command."""
        proc = self._proc
        if proc is not None and proc.returncode is None:
            try:
                os.kill(proc.pid, signal.SIGUSR1)
                deadline = time.monotonic() + STOP_GRACE_S
                while time.monotonic() < deadline and os.waitpid(proc.pid, os.WNOHANG) == (0, 0):
                    time.sleep(0.2)
            except (ChildProcessError, ProcessLookupError):
                pass
        return super().checkpoint(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        """A Popen does not pickle, and a requeued job starts without a child anyway."""
        return {**self.__dict__, "_proc": None}

    def __repr__(self) -> str:
        return f"RunJob({shlex.join(['run.py', *self.argv])})"
