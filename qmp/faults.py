"""Faults a multi-day run must survive or report: preemption signals, non-finite numbers, unstable simulators.

- `StopSignals` turns SIGTERM / SIGINT / SIGUSR1 (what SLURM sends before preemption or a time limit)
  into a flag that the training loop polls between gradient steps and collection cycles, so the run
  writes a checkpoint and exits within seconds instead of dying mid-write.
- `NonFiniteError` names the quantity, the task and the epoch of the first NaN/inf, so a diverged run
  stops before it overwrites the last good checkpoint.
Unstable simulators are not a fault of the run: the task env ends the episode (environments/stability.py)
and MultiTaskEnv marks the Episode, so the loop logs them under stability/* and training goes on.
"""

from __future__ import annotations

import signal
from collections.abc import Callable, Sequence
from types import FrameType
from typing import Any

import numpy as np

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGUSR1)

# Exit codes of run.py (2 is argparse's "bad input"); a signal stop exits with 128 + the signal number.
EXIT_BAD_INPUT = 2
EXIT_NON_FINITE = 3
EXIT_CHECKPOINT = 4


class NonFiniteError(RuntimeError):
    """A NaN or inf in a loss, a parameter, an observation or a reward: training cannot go on."""


class StopRequested(Exception):
    """Raised by the training loop after it has written a checkpoint in response to a signal."""

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = signum


class StopSignals:
    """Context manager: while active, the stop signals only set `self.received` (polled by the loop).

    A second SIGINT (Ctrl-C twice) raises KeyboardInterrupt at once; checkpoints are atomic, so even
    that leaves the previous one intact. Previous handlers are restored on exit.
    """

    def __init__(self, signals: Sequence[signal.Signals] = STOP_SIGNALS) -> None:
        self.signals = tuple(signals)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.received == signal.SIGINT and signum == signal.SIGINT:
            raise KeyboardInterrupt
        if self.received is None:
            self.received = signum
            print(f"\nReceived {signal.Signals(signum).name}: "
                  "writing a checkpoint and stopping at the next safe point", flush=True)

    def __enter__(self) -> StopSignals:
        for sig in self.signals:
            self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def requested(self) -> bool:
        """Whether a stop signal arrived (the loop polls this between collections and gradient steps)."""
        return self.received is not None

    @property
    def name(self) -> str:
        return signal.Signals(self.received).name if self.received is not None else ""


def _first_bad_task(finite: np.ndarray, task_axis: int, task_names: Sequence[str]) -> str:
    """Name of the first task whose slice along `task_axis` holds a non-finite value. The axis may hold
    k * T entries, copy-major (the twin critics are one ensemble of 2T networks: entry c*T + i is task i)."""
    bad, t = ~finite, len(task_names)
    if bad.ndim == 0 or bad.shape[task_axis] % t != 0:
        return "all tasks"
    bad = np.moveaxis(bad, task_axis, 0)
    per_task = bad.reshape(bad.shape[0] // t, t, -1).any(axis=(0, 2))
    return task_names[int(np.argmax(per_task))]


def check_finite_array(quantity: str, values: np.ndarray, task_axis: int, task_names: Sequence[str],
                       epoch: int) -> None:
    """Raise NonFiniteError if `values` (task axis `task_axis`) holds a NaN or inf."""
    finite = np.isfinite(values)
    if not finite.all():
        task = _first_bad_task(finite, task_axis, task_names)
        raise NonFiniteError(f"non-finite {quantity} in task {task} at epoch {epoch}")


def check_finite_metrics(sums: dict[str, Any], task_names: Sequence[str], epoch: int,
                         what: str = "loss/metric") -> None:
    """Per-task metric sums {name: tensor (T,)}: one device sync for all of them, then name the culprit."""
    if not sums:
        return
    import torch

    stacked = torch.stack([v.reshape(-1) for v in sums.values()])
    if bool(torch.isfinite(stacked).all()):
        return
    for key, value in sums.items():
        check_finite_array(f"{what} {key!r}", value.detach().cpu().numpy(), 0, task_names, epoch)


def check_finite_parameters(named: dict[str, Any], task_names: Sequence[str], epoch: int,
                            task_major: Callable[[str], bool] = lambda name: True) -> None:
    """Parameters {name: tensor}. Where `task_major(name)` (ensemble tensors of (copies*T, ...)) the
    task is named; shared parameters (a multihead trunk, a shared network) say 'all tasks'."""
    import torch

    flags = torch.stack([torch.isfinite(t).all() for t in named.values()])
    if bool(flags.all()):  # one device sync per check, not one per parameter
        return
    for name, tensor in named.items():
        if not bool(torch.isfinite(tensor).all()):
            values = tensor.detach().cpu().numpy()
            if not task_major(name):
                raise NonFiniteError(f"non-finite parameter {name!r} (shared by all tasks) at epoch {epoch}")
            check_finite_array(f"parameter {name!r}", values, 0, task_names, epoch)
