"""Per-epoch metrics to progress.csv (pandas-readable), TensorBoard and optionally wandb.

On resume the rows of epochs that will be run again are dropped, so nothing is duplicated: from
progress.csv (including a last row torn by a kill mid-append), from TensorBoard (purge_step, also when
resuming at epoch 0) and from the JSON-lines logs.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path
from typing import Any

from qmp.run_dir import PROGRESS, TENSORBOARD, TMP_SUFFIX, read_complete_rows, read_progress, truncate_jsonl

__all__ = ["Logger", "read_complete_rows", "truncate_jsonl"]  # the readers are qmp.run_dir's, re-exported


class Logger:
    def __init__(self, run_dir: Path, resume_epoch: int = 0, wandb_run: Any = None) -> None:
        from torch.utils.tensorboard import SummaryWriter

        self.run_dir = Path(run_dir)
        self.path = self.run_dir / PROGRESS
        self.rows: list[dict[str, str]] = []
        if resume_epoch > 0:
            self.rows = [row for row in read_progress(self.run_dir).rows if int(row["epoch"]) < resume_epoch]
        self.columns: list[str] = list(self.rows[0].keys()) if self.rows else []
        self._rewrite()
        tb_dir = self.run_dir / TENSORBOARD
        # purge_step drops events of epochs >= resume_epoch that a killed run wrote after its checkpoint
        self.tb = SummaryWriter(str(tb_dir), purge_step=resume_epoch if resume_epoch > 0 or tb_dir.exists() else None)
        self.wandb_run = wandb_run

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
        for key, value in metrics.items():
            if isinstance(value, (int, float)) and math.isfinite(value):
                self.tb.add_scalar(key, value, epoch)
        self.tb.flush()
        if self.wandb_run is not None:
            self.wandb_run.log(metrics, step=epoch)

    def log_json(self, name: str, record: dict[str, Any]) -> None:
        """One JSON object per line (e.g. the Q-switch selection matrix of every epoch)."""
        with open(self.run_dir / name, "a") as f:
            f.write(json.dumps(record) + "\n")

    def _rewrite(self) -> None:
        tmp = self.path.with_name(PROGRESS + TMP_SUFFIX)
        with open(tmp, "w", newline="") as f:
            writer = csv.DictWriter(f, self.columns, restval="")
            if self.columns:
                writer.writeheader()
            writer.writerows(self.rows)
        os.replace(tmp, self.path)

    def close(self) -> None:
        self.tb.close()
        if self.wandb_run is not None:
            self.wandb_run.finish()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return repr(value)
    return str(value)
