"""Where a run's metrics go: a Logger fans every epoch's row out to its sinks.

- CsvSink: progress.csv (pandas-readable). On resume the rows of epochs that will be run again are
  dropped (including a last row torn by a kill mid-append), so nothing is duplicated.
- TensorBoardSink: tb/ (purge_step drops the events of re-run epochs, also when resuming at epoch 0).
- WandbSink: the wandb run (opt-in, --wandb true).
- ProgressSink: a bar on a terminal; elsewhere (a log file, a Slurm job, CI) one line every
  `every_s` seconds with env steps, the main metric, the speed and the time left.
JSON-lines logs (the Q-switch selections) are written next to them and truncated on resume likewise.
"""

from __future__ import annotations

import csv
import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, TextIO

from qmp.run_dir import PROGRESS, TENSORBOARD, TMP_SUFFIX, read_complete_rows, read_progress, truncate_jsonl

__all__ = ["Logger", "read_complete_rows", "truncate_jsonl"]  # the readers are qmp.run_dir's, re-exported

HEADLINE = ("eval/paper_success", "eval/success", "collect/success")  # the first one an epoch has is shown


def headline_columns(main_metric: str) -> tuple[str, ...]:
    """The columns the console shows for a spec's main metric: evaluation's, else collection's."""
    return (f"eval/{main_metric}", f"collect/{main_metric}")


class Sink(Protocol):
    def log(self, epoch: int, metrics: dict[str, float]) -> None: ...

    def close(self) -> None: ...


class CsvSink:
    def __init__(self, run_dir: Path, resume_epoch: int) -> None:
        self.path = Path(run_dir) / PROGRESS
        self.rows: list[dict[str, str]] = []
        if resume_epoch > 0:
            self.rows = [row for row in read_progress(run_dir).rows if int(row["epoch"]) < resume_epoch]
        self.columns: list[str] = list(self.rows[0].keys()) if self.rows else []
        self._rewrite()

    def log(self, epoch: int, metrics: dict[str, float]) -> None:
        row = {"epoch": epoch, **metrics}
        new_columns = [k for k in row if k not in self.columns]
        text = {k: _fmt(v) for k, v in row.items()}
        self.rows.append(text)
        if new_columns:
            self.columns += new_columns
            self._rewrite()
        else:
            with open(self.path, "a", newline="") as f:
                csv.DictWriter(f, self.columns).writerow(text)

    def _rewrite(self) -> None:
        tmp = self.path.with_name(PROGRESS + TMP_SUFFIX)
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns, restval="")
            if self.columns:
                writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def close(self) -> None:
        pass


class TensorBoardSink:
    def __init__(self, run_dir: Path, resume_epoch: int) -> None:
        from torch.utils.tensorboard import SummaryWriter

        tb_dir = Path(run_dir) / TENSORBOARD
        # purge_step drops events of epochs >= resume_epoch that a killed run wrote after its checkpoint
        purge = resume_epoch if resume_epoch > 0 or tb_dir.exists() else None
        self.writer = SummaryWriter(str(tb_dir), purge_step=purge)

    def log(self, epoch: int, metrics: dict[str, float]) -> None:
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key, value, epoch)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


class WandbSink:
    def __init__(self, run: Any) -> None:
        self.run = run

    def log(self, epoch: int, metrics: dict[str, float]) -> None:
        self.run.log(metrics, step=epoch)

    def close(self) -> None:
        self.run.finish()


class ProgressSink:
    """Progress on the console: a tqdm bar on a terminal, else a line every `every_s` seconds (and at the end)."""

    def __init__(self, total_steps: int, start_steps: int, n_epochs: int, headline: Sequence[str] = HEADLINE,
                 stream: TextIO | None = None, every_s: float = 30.0) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.headline = tuple(headline)
        self.total, self.n_epochs, self.every_s = total_steps, n_epochs, every_s
        self.start_steps, self.steps = start_steps, start_steps
        self.started = self.last_line = time.monotonic()
        self.bar = None
        if self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total_steps, initial=start_steps, unit="step", unit_scale=True, dynamic_ncols=True,
                            file=self.stream)

    def advance(self, env_steps: int) -> None:
        """`env_steps` more were collected (called between epochs, after every collection)."""
        self.steps += env_steps
        if self.bar is not None:
            self.bar.update(env_steps)

    def log(self, epoch: int, metrics: dict[str, float]) -> None:
        key = next((k for k in self.headline if k in metrics), None)
        if self.bar is not None:
            self.bar.set_postfix(epoch=epoch, **({key.split("/", 1)[0] + "_" + key.rsplit("/", 1)[1]:
                                                 f"{metrics[key]:.2f}"} if key else {}))
            return
        now = time.monotonic()
        if now - self.last_line < self.every_s and epoch + 1 < self.n_epochs:
            return
        self.last_line = now
        rate = (self.steps - self.start_steps) / max(now - self.started, 1e-9)
        left = max(self.total - self.steps, 0) / rate if rate > 0 else math.inf
        shown = f" | {key} {metrics[key]:.2f}" if key else ""
        print(f"epoch {epoch + 1}/{self.n_epochs} | {self.steps:,} env steps{shown} | {rate:,.0f} steps/s"
              f" | {_duration(left)} left", file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Logger:
    """One row per epoch to every sink; JSON-lines logs beside progress.csv."""

    def __init__(self, run_dir: Path, sinks: list[Sink]) -> None:
        self.run_dir, self.sinks = Path(run_dir), sinks

    @staticmethod
    def for_run(run_dir: Path, resume_epoch: int = 0, wandb_run: Any = None,
                progress: ProgressSink | None = None) -> Logger:
        """progress.csv and TensorBoard always; wandb and the console progress when given."""
        sinks: list[Sink] = [CsvSink(run_dir, resume_epoch), TensorBoardSink(run_dir, resume_epoch)]
        if wandb_run is not None:
            sinks.append(WandbSink(wandb_run))
        if progress is not None:
            sinks.append(progress)
        return Logger(run_dir, sinks)

    def log(self, epoch: int, metrics: dict[str, float]) -> None:
        for sink in self.sinks:
            sink.log(epoch, metrics)

    def log_json(self, name: str, record: dict[str, Any]) -> None:
        """One JSON object per line (e.g. the Q-switch selection matrix of every epoch)."""
        with open(self.run_dir / name, "a") as f:
            f.write(json.dumps(record) + "\n")

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)


def _duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    minutes = int(seconds // 60)
    return f"{minutes // 60}h{minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m{int(seconds % 60):02d}s"
