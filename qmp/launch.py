"""`train(cfg) -> run_dir`: one run from a validated Config, started or resumed from its run directory.

It builds the parts (qmp/build.py), restores the checkpoint if there is one, and drives the loop
(qmp/loop.py) epoch by epoch: evaluation, logging, checkpoints (after every `snapshot_gap`-th epoch,
between cycles once `snapshot_interval_s` passed, and on SIGTERM/SIGINT/SIGUSR1, which then raise
StopRequested) and NaN/inf checks before every checkpoint they would spoil.
"""

from __future__ import annotations

import random
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

import qmp
from qmp.build import Parts, build
from qmp.checkpoint import (
    CheckpointError,
    capture_rng,
    check_compatible,
    load_checkpoint,
    restore_rng,
    save_checkpoint,
)
from qmp.cli import ConfigError
from qmp.config import Config
from qmp.environments import make_spec
from qmp.environments.base import MultiTaskSpec
from qmp.faults import StopRequested, StopSignals
from qmp.flag_scope import RECORDED_FLAGS, VARIANT_FLAGS
from qmp.logger import Logger, ProgressSink, headline_columns
from qmp.loop import Cursor, check_finite, evaluate_policies, run_epoch
from qmp.run_dir import (
    CHECKPOINT,
    DONE,
    FAILED,
    QSWITCH_LOG,
    RUNNING,
    STOPPED,
    VIDEOS,
    prepare_run_dir,
    runner,
    truncate_jsonl,
    write_status,
)
from qmp.run_dir import write_config as write_config_file
from qmp.settings import Settings


def pick_device(gpu: int | None) -> torch.device:
    if gpu is None:
        return torch.device("cpu")
    if torch.cuda.is_available():
        return torch.device(f"cuda:{gpu}")
    warnings.warn(f"--gpu {gpu} given but CUDA is not available; using the CPU", stacklevel=2)
    return torch.device("cpu")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def run_meta(cfg: Config, parts: Parts) -> dict[str, Any]:
    """What a checkpoint must share with the run that loads it (a variant flag only when it is not the default,
    so checkpoints written before those flags existed still load; RECORDED_FLAGS always)."""
    defaults = Config()
    variant = {flag: getattr(cfg, flag) for flag in VARIANT_FLAGS if getattr(cfg, flag) != getattr(defaults, flag)}
    variant |= {flag: getattr(cfg, flag) for flag in RECORDED_FLAGS}
    return {"env": cfg.env, "method": cfg.method, "policy_architecture": cfg.policy_architecture,
            "Q_architecture": cfg.Q_architecture, "hidden_sizes": list(cfg.hidden_sizes),
            "num_tasks": parts.spec.num_tasks, "obs_dim": parts.env.obs_dim, "act_dim": parts.env.act_dim,
            "include_task_id": cfg.include_task_id, "layer_norm": cfg.layer_norm, **variant}


class Checkpointer:
    """Writes and restores the whole state of a run (parts, cursor, every RNG), and keeps status.json in step."""

    def __init__(self, run_dir: Path, meta: dict[str, Any], n_epochs: int, save_buffer: bool,
                 interval_s: float) -> None:
        self.run_dir, self.path = run_dir, run_dir / CHECKPOINT
        self.meta, self.n_epochs, self.save_buffer, self.interval_s = meta, n_epochs, save_buffer, interval_s
        self.last_save = time.monotonic()
        self.marked = (0, 0)  # (epoch, env_steps) of the last status.json: what the checkpoint on disk holds
        self.process = {**runner(), "start_epoch": 0}  # who runs it, and from which epoch this process started

    def due(self) -> bool:
        """Whether `interval_s` passed since the last checkpoint (then one is written between cycles)."""
        return time.monotonic() - self.last_save >= self.interval_s

    def save(self, parts: Parts, cursor: Cursor, state: str = RUNNING) -> None:
        check_finite(parts, cursor)  # a NaN/inf never reaches a checkpoint
        counters = cursor.state_dict()
        partial = counters.pop("partial")
        save_checkpoint(self.path, {
            "meta": self.meta, "code_version": qmp.__version__, **counters, "agent": parts.agent.state_dict(),
            "behaviour": parts.behaviour.state_dict(), "env": parts.env.get_state(), "rng": capture_rng(),
            "buffer": parts.buffer.state_dict() if self.save_buffer else None, "partial": partial,
            "distillation": parts.distillation.state_dict() if parts.distillation is not None else None,
        })
        self.last_save = time.monotonic()
        self.mark(cursor, state)

    def mark(self, cursor: Cursor, state: str = RUNNING) -> None:
        """status.json: how far the run is and whether it runs, stopped or is done (the sweep reads it)."""
        done = cursor.epoch >= self.n_epochs
        write_status(self.run_dir, epoch=cursor.epoch, n_epochs=self.n_epochs, env_steps=cursor.env_steps,
                     state=DONE if done else state, **self.process)
        self.marked = (cursor.epoch, cursor.env_steps)

    def start(self, cursor: Cursor) -> None:
        """status.json at a (re)start: running, from the checkpoint's epoch, by this process (so a run that dies
        before its first checkpoint is not mistaken for one that never started)."""
        self.process["start_epoch"] = cursor.epoch
        self.mark(cursor)

    def fail(self, exc: BaseException) -> None:
        """status.json after an error that ends the run: failed (stopped for Ctrl-C), at the last checkpoint's
        epoch, with the error. Never raises: the original error is what the caller must see."""
        state = STOPPED if isinstance(exc, KeyboardInterrupt) else FAILED
        error = (str(exc).strip().splitlines() or [""])[-1]
        try:
            write_status(self.run_dir, epoch=self.marked[0], n_epochs=self.n_epochs, env_steps=self.marked[1],
                         state=state, **self.process, error=f"{type(exc).__name__}: {error}")
        except OSError:
            pass

    def between_cycles(self, parts: Parts, cursor: Cursor) -> None:
        """A checkpoint inside a long epoch, once `interval_s` passed (not after its last cycle: the epoch's
        own checkpoint follows)."""
        assert cursor.progress is not None
        if cursor.progress.cycle < parts.schedule.cycles_per_epoch and self.due():
            self.save(parts, cursor)

    def load(self, parts: Parts) -> Cursor | None:
        """The saved cursor with the parts restored, or None without a checkpoint. Any mismatch or missing
        piece is a CheckpointError naming it."""
        if not self.path.exists():
            return None
        state = load_checkpoint(self.path)
        check_compatible(state["meta"], self.meta, self.path, state.get("code_version"), qmp.__version__,
                         unrecorded_before=RECORDED_FLAGS)
        try:
            parts.agent.load_state_dict(state["agent"])
            parts.behaviour.load_state_dict(state["behaviour"])
            parts.env.set_state(state["env"])
            if state["buffer"] is not None:
                parts.buffer.load_state_dict(state["buffer"])
            if parts.distillation is not None:
                parts.distillation.load_state_dict(state["distillation"])
            cursor = Cursor.from_state(state, parts.agent.device)
            restore_rng(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {self.path} does not fit this run: {type(exc).__name__}: {exc}; "
                                  "nothing was overwritten") from exc
        self.last_save = time.monotonic()
        return cursor


def write_config(run_dir: Path, cfg: Config, parts: Parts, device: torch.device) -> None:
    schedule = parts.schedule
    record = {**cfg.to_dict(), "run_dir": str(run_dir), "code_version": qmp.__version__,
              "resolved": {"task_names": list(parts.spec.task_names), "num_tasks": parts.spec.num_tasks,
                           "obs_dim": parts.env.obs_dim, "act_dim": parts.env.act_dim,
                           "max_episode_steps": parts.spec.max_episode_steps, "min_reward": parts.spec.min_reward,
                           "main_metric": parts.spec.main_metric,
                           "schedule": asdict(schedule), "device": str(device),
                           "replay_per_task": parts.buffer.capacity,
                           "replay_total": parts.buffer.capacity * parts.spec.num_tasks}}
    write_config_file(run_dir, record)


def start_wandb(cfg: Config, run_dir: Path) -> Any:
    """A wandb run tied to the run directory: its id is kept in wandb_run_id.txt, so a resumed run
    continues the same wandb run (as the original did). Re-logged epochs carry the same step and values."""
    import wandb

    id_file = run_dir / "wandb_run_id.txt"
    run_id = id_file.read_text().strip() if id_file.exists() else wandb.util.generate_id()
    id_file.write_text(run_id)
    name = f"{cfg.method}_{cfg.env}_{cfg.name}_{cfg.seed}"
    return wandb.init(project=cfg.wandb_project, entity=cfg.wandb_entity, name=name, notes=cfg.notes,
                      config=cfg.to_dict(), dir=str(run_dir), id=run_id, resume="allow")


def denormals_flushed() -> bool:
    """Whether this thread's CPU flushes denormal floats to zero (torch has a setter and no getter)."""
    return bool((torch.tensor(1e-39) * 1.0).item() == 0.0)


@contextmanager
def denormal_mode(flush: bool) -> Iterator[None]:
    """The run's denormal mode on this thread (--flush_denormal), and the caller's back afterwards: tests,
    notebooks and in-process sweeps call train() in a process that goes on."""
    before = denormals_flushed()
    torch.set_flush_denormal(flush)
    try:
        yield
    finally:
        torch.set_flush_denormal(before)


def train(cfg: Config) -> Path:
    """Train (or resume) one run; returns its run directory."""
    with denormal_mode(cfg.flush_denormal):
        return _train(cfg)


def _train(cfg: Config) -> Path:
    torch.set_num_threads(cfg.torch_threads)
    device = pick_device(cfg.gpu)
    seed_everything(cfg.seed)
    try:
        spec = make_spec(cfg.env, sparse_tasks=cfg.sparse_tasks, task_name=cfg.task_name)
    except ValueError as exc:
        raise ConfigError(str(exc)) from exc
    if spec.num_tasks != cfg.n_policies:  # a registered env's preset sets it; a custom env needs the flag
        raise ConfigError(f"--n_policies {cfg.n_policies} does not match the {spec.num_tasks} tasks of {cfg.env}; "
                          f"give --n_policies {spec.num_tasks}")
    if cfg.stagewise and spec.stage_of is None:
        raise ConfigError(f"--stagewise true needs an env whose observations carry the stage; {cfg.env} has none")
    if not cfg.unsupervised and spec.reward is None:
        raise ConfigError(f"--unsupervised false needs an env whose reward is a function of (s, a, s'); "
                          f"{cfg.env}'s is not")
    settings = Settings.from_config(cfg, spec.num_tasks)
    parts = build(settings, spec, device)
    try:
        run_dir = prepare_run_dir(cfg.run_dir, cfg.log_dir, cfg.env, cfg.method, cfg.name, cfg.seed, cfg.overwrite)
        checkpointer = Checkpointer(run_dir, run_meta(cfg, parts), cfg.n_epochs, cfg.save_buffer,
                                    cfg.snapshot_interval_s)
        cursor = checkpointer.load(parts)
        if cursor is None:
            cursor = Cursor(spec.num_tasks)
        else:
            print(f"Resuming {run_dir} at epoch {cursor.epoch} ({cursor.env_steps} env steps)", flush=True)
        write_config(run_dir, cfg, parts, device)
        checkpointer.start(cursor)
        try:
            run(cfg, spec, parts, settings, cursor, checkpointer)
        except StopRequested:
            raise  # its checkpoint and status are written
        except BaseException as exc:
            checkpointer.fail(exc)
            raise
    finally:
        parts.close()
    return run_dir


def run(cfg: Config, spec: MultiTaskSpec, parts: Parts, settings: Settings, cursor: Cursor,
        checkpointer: Checkpointer) -> None:
    """Logging around fit(), with the stop signals installed when this is the main thread."""
    truncate_jsonl(checkpointer.run_dir / QSWITCH_LOG, cursor.epoch)
    planned = parts.schedule.planned_steps(spec.num_tasks, cfg.n_epochs)
    progress = ProgressSink(planned, cursor.env_steps, cfg.n_epochs, headline_columns(spec.main_metric))
    wandb_run = start_wandb(cfg, checkpointer.run_dir) if cfg.wandb else None
    logger = Logger.for_run(checkpointer.run_dir, cursor.epoch, wandb_run, progress)
    try:
        # signal handlers can only be installed from the main thread (tests may call train() elsewhere)
        if threading.current_thread() is threading.main_thread():
            with StopSignals() as signals:
                fit(parts, settings, cursor, logger, progress, checkpointer, signals)
        else:
            fit(parts, settings, cursor, logger, progress, checkpointer, None)
        checkpointer.mark(cursor)  # also when a finished run is started again: nothing to train, status done
    finally:
        logger.close()


def fit(parts: Parts, settings: Settings, cursor: Cursor, logger: Logger, progress: ProgressSink,
        checkpointer: Checkpointer, signals: StopSignals | None) -> None:
    """Epochs until n_epochs: train, evaluate, log, checkpoint. After a stop signal: a checkpoint, then
    StopRequested (polled between collections and gradient steps, so a signal never waits for an epoch)."""
    cfg, evaluation = settings.cfg, settings.evaluation
    stop = signals.requested if signals is not None else lambda: False
    while cursor.epoch < cfg.n_epochs:
        epoch, start, steps_before = cursor.epoch, time.perf_counter(), cursor.env_steps
        result = run_epoch(parts, cursor, stop, lambda: checkpointer.between_cycles(parts, cursor), progress.advance)
        if result is None:
            checkpointer.save(parts, cursor, STOPPED)
            raise stopped(signals, cursor, checkpointer, parts.schedule.cycles_per_epoch)
        metrics = result.metrics
        eval_start = time.perf_counter()
        if parts.eval_env is not None and (epoch % evaluation.frequency == 0 or epoch == cfg.n_epochs - 1):
            metrics.update(evaluate_policies(parts, evaluation.episodes, cfg.seed, epoch))
        metrics["time/eval_s"] = time.perf_counter() - eval_start
        if parts.video is not None and epoch % settings.video.frequency == 0:
            video_start = time.perf_counter()
            parts.video.record(parts.own_policy, epoch, checkpointer.run_dir / VIDEOS, parts.agent.device)
            metrics["time/video_s"] = time.perf_counter() - video_start
        if parts.distillation is not None and parts.distillation.due(epoch):  # after the evaluation, as the original
            metrics.update(parts.distillation.run())
        elapsed = time.perf_counter() - start
        cursor.wall_time += elapsed
        metrics["time/epoch_s"], metrics["time/total_s"] = elapsed, cursor.wall_time
        metrics["time/env_steps_per_s"] = (cursor.env_steps - steps_before) / elapsed
        logger.log(epoch, metrics)
        if parts.logs_selection:
            switch_rate = [None if np.isnan(rate) else float(rate) for rate in result.switch_rate]
            logger.log_json(QSWITCH_LOG, {"epoch": epoch, "env_steps": cursor.env_steps,
                                          "tasks": list(parts.spec.task_names), "counts": result.choices.tolist(),
                                          "switch_rate": switch_rate})
        cursor.epoch = epoch + 1
        if cursor.epoch % cfg.snapshot_gap == 0 or cursor.epoch == cfg.n_epochs or checkpointer.due() or stop():
            checkpointer.save(parts, cursor, STOPPED if stop() else RUNNING)
        if stop() and cursor.epoch < cfg.n_epochs:
            raise stopped(signals, cursor, checkpointer, parts.schedule.cycles_per_epoch)


def stopped(signals: StopSignals | None, cursor: Cursor, checkpointer: Checkpointer, cycles: int) -> StopRequested:
    """The exception that ends a run after a stop signal's checkpoint, saying where and how to resume."""
    assert signals is not None and signals.received is not None and cursor.progress is not None
    where = f"epoch {cursor.epoch}, cycle {cursor.progress.cycle}/{cycles}"
    return StopRequested(signals.received, f"stopped by {signals.name} at {where}; checkpoint written to "
                                           f"{checkpointer.path}. Resume by running the same command again, or: "
                                           f"python run.py resume --snapshot_dir {checkpointer.run_dir}")
