"""The one training loop, for every method (the original's garage_experiments.py).

Per epoch: `steps_per_epoch` cycles of (collect `batch_size` env steps summed over tasks with the
behaviour policy -> gradient steps on every task at once), then evaluation, logging and a checkpoint.
Methods differ only in the behaviour policy (own policy or Q-switch), the training batch (own data
or UDS sharing), the network architecture and the sac/mtsac vs DnC schedule (qmp/methods.py).
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import torch

import qmp
from qmp.checkpoint import CHECKPOINT_NAME, CheckpointError, capture_rng, check_compatible, load_checkpoint, restore_rng, save_checkpoint
from qmp.config import Config, replay_capacity
from qmp.environments import make_spec
from qmp.environments.base import MultiTaskSpec
from qmp.environments.multitask import Episode, MultiTaskEnv
from qmp.faults import (
    NonFiniteError,
    StopRequested,
    StopSignals,
    check_finite_array,
    check_finite_metrics,
    check_finite_parameters,
)
from qmp.learning.buffer import MultiTaskReplayBuffer
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.learning.policies import OwnPolicy, QSwitchMixture
from qmp.learning.sac import MultiTaskSAC, SACConfig, kl_states_per_task
from qmp.learning.sharing import UDSSharing
from qmp.logger import Logger, truncate_jsonl
from qmp.methods import METHODS, Method
from qmp.rollout import collect, episode_metrics, evaluate, unstable_per_task
from qmp.run_dir import QSWITCH_LOG, prepare_run_dir, write_status
from qmp.video import VideoRecorder


@dataclass(frozen=True)
class Schedule:
    """The original's collection/update schedule in lockstep form (all numbers per task)."""

    steps_per_cycle: int  # env steps of each task per collection cycle
    warmup: int  # each task buffer must hold this many steps before training
    updates_per_cycle: int  # batched gradient steps per cycle (each trains every task once)
    batch_per_task: int

    @staticmethod
    def of(cfg: Config, method: Method, num_tasks: int) -> Schedule:
        steps = math.ceil(cfg.batch_size / num_tasks)
        if method.sac_family:  # one shared buffer in the original: G steps of a total batch B
            return Schedule(steps, math.ceil(cfg.min_buffer_size / num_tasks), cfg.gradient_steps_per_itr, math.ceil(cfg.buffer_batch_size / num_tasks))
        # DnC family: task i gets max(1, G * n_i / sum n) steps of B from its own buffer; n_i are equal here
        return Schedule(steps, cfg.min_buffer_size, max(1, cfg.gradient_steps_per_itr // num_tasks), cfg.buffer_batch_size)


@dataclass
class EpochProgress:
    """The in-progress epoch. It is part of the checkpoint, so a checkpoint written between two
    cycles (or two gradient steps, on a signal) resumes exactly where the epoch was.

    A cycle = one collection, then `updates_per_cycle` gradient steps: `collected` and
    `cycle_updates` say how far the current cycle got; the rest accumulates the epoch's metrics."""

    num_tasks: int
    cycle: int = 0
    collected: bool = False
    cycle_updates: int = 0
    updates: int = 0
    sums: dict[str, torch.Tensor] = field(default_factory=dict)  # per-task metric sums, each (T,)
    episodes: list[Episode] = field(default_factory=list)
    choices: np.ndarray | None = None  # (T, T) Q-switch choice counts
    timer: dict[str, float] = field(default_factory=lambda: {"collect": 0.0, "train": 0.0})

    def __post_init__(self) -> None:
        if self.choices is None:
            self.choices = np.zeros((self.num_tasks, self.num_tasks), np.int64)

    def state_dict(self) -> dict[str, Any]:
        return dict(vars(self))


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


class Experiment:
    """Everything one run owns; `state_dict` is the checkpoint."""

    def __init__(self, cfg: Config, spec: MultiTaskSpec, device: torch.device) -> None:
        self.cfg, self.spec, self.device = cfg, spec, device
        self.method = METHODS[cfg.method]
        self.env = MultiTaskEnv(spec, cfg.seed)
        self.eval_env = MultiTaskEnv(spec, cfg.seed, evaluation=True) if cfg.num_evaluation_episodes > 0 else None
        t, obs_dim, act_dim = spec.num_tasks, self.env.obs_dim, self.env.act_dim
        policy = TanhGaussianPolicy(cfg.policy_architecture, t, obs_dim, act_dim, cfg.hidden_sizes, cfg.include_task_id,
                                    cfg.multihead_double_tanh)
        critic = DoubleQ(cfg.Q_architecture, t, obs_dim, act_dim, cfg.hidden_sizes, cfg.include_task_id, cfg.layer_norm)
        sac_cfg = SACConfig(
            lr=cfg.lr, discount=cfg.discount, tau=cfg.target_update_tau, reward_scale=cfg.reward_scale,
            target_entropy=cfg.target_entropy, alpha_loss="exp" if self.method.sac_family else "log",
            shared_alpha=self.method.shared_alpha, kl_coeff=cfg.kl_coeff, kl_states=cfg.sampling_type,
            max_update_rows=cfg.max_update_rows,
        )
        self.agent = MultiTaskSAC(policy, critic, t, act_dim, sac_cfg, device)
        self.own_policy = OwnPolicy(self.agent.policy)
        self.behaviour: OwnPolicy | QSwitchMixture = self.own_policy
        self.eval_mixture: QSwitchMixture | None = None
        if self.method.qswitch:
            args = (self.agent.policy, self.agent.critic, t, cfg.policy_sampling_freq, cfg.qswitch_score, cfg.qswitch_action)
            self.behaviour, self.eval_mixture = QSwitchMixture(*args), QSwitchMixture(*args)
        self.schedule = Schedule.of(cfg, self.method, t)
        self.buffer = MultiTaskReplayBuffer(t, replay_capacity(cfg, t), obs_dim, act_dim, device)
        self.sharing = UDSSharing(t, cfg.buffer_batch_size, spec.min_reward, cfg.sharing_quantile, device) if self.method.sharing else None
        self.video = None
        if cfg.vis_freq > 0:
            render_spec = partial(make_spec, cfg.env, sparse_tasks=cfg.sparse_tasks, task_name=cfg.task_name, render_mode="rgb_array")
            self.video = VideoRecorder(render_spec, cfg.seed, max(cfg.vis_num // t, 1), cfg.vis_width, cfg.vis_height, cfg.vis_fps, cfg.vis_format)
        self.epoch = 0
        self.env_steps = 0
        self.grad_steps = 0
        self.wall_time = 0.0
        self.partial = self.new_epoch_progress()

    # ---------------------------------------------------------------- one epoch
    def new_epoch_progress(self) -> EpochProgress:
        return EpochProgress(self.spec.num_tasks)

    def train_epoch(self, progress: Any = None, stop: Callable[[], bool] = lambda: False,
                    after_cycle: Callable[[], None] | None = None) -> dict[str, float] | None:
        """Run the current epoch's remaining cycles and return its metrics, or None as soon as `stop()`
        is true (polled before each collection and gradient step; `self.partial` says where to go on).
        Observations, metric sums and parameters are checked for NaN/inf once per cycle."""
        p = self.partial
        while p.cycle < self.cfg.steps_per_epoch:
            if stop():
                return None
            if not p.collected:
                self._collect_cycle(progress)
            start = time.perf_counter()
            try:
                while self.buffer.size >= self.schedule.warmup and p.cycle_updates < self.schedule.updates_per_cycle:
                    if stop():
                        return None
                    for key, value in self.update_step().items():
                        p.sums[key] = p.sums[key] + value if key in p.sums else value.clone()
                    p.updates += 1
                    p.cycle_updates += 1
            finally:
                p.timer["train"] += time.perf_counter() - start
            self.check_finite()
            p.cycle, p.collected, p.cycle_updates = p.cycle + 1, False, 0
            if after_cycle is not None:
                after_cycle()
        return self._finish_epoch()

    def _collect_cycle(self, progress: Any) -> None:
        """Collect one cycle's steps (more during warm-up); NaN/inf data never reaches the buffer."""
        p, t = self.partial, self.spec.num_tasks
        start = time.perf_counter()
        steps = self.schedule.steps_per_cycle
        if self.buffer.size < self.schedule.warmup:
            steps = max(steps, self.schedule.warmup - self.buffer.size)
        rollout = collect(self.env, self.behaviour, steps, self.device)
        for key, quantity in (("obs", "observation"), ("next_obs", "observation"), ("rew", "reward"), ("act", "action")):
            check_finite_array(quantity, rollout.data[key], 1, self.spec.task_names, self.epoch)
        self.buffer.extend(rollout.data)
        self.env_steps += steps * t
        p.episodes += rollout.episodes
        p.choices += rollout.choices
        p.collected = True
        p.timer["collect"] += time.perf_counter() - start
        if progress is not None:
            progress.update(steps * t)

    def check_finite(self) -> None:
        """Raise NonFiniteError naming the first NaN/inf loss or metric, then parameter (with its task)."""
        names = self.spec.task_names
        check_finite_metrics(self.partial.sums, names, self.epoch)
        a = self.agent
        params = {f"{prefix}.{n}": v for prefix, module in (("policy", a.policy), ("critic", a.critic), ("critic_target", a.critic_target))
                  for n, v in module.named_parameters()}
        params["log_alpha"] = a.log_alpha
        arch = {"policy": self.cfg.policy_architecture, "critic": self.cfg.Q_architecture, "critic_target": self.cfg.Q_architecture}

        def task_major(name: str) -> bool:  # separate: every tensor is (copies*T, ...); multihead: the heads only
            if name == "log_alpha":
                return not self.method.shared_alpha
            kind = arch[name.split(".")[0]]
            return kind == "separate" or (kind == "multihead" and ".heads." in name)

        check_finite_parameters(params, names, self.epoch, task_major)

    def _finish_epoch(self) -> dict[str, float]:
        """The finished epoch's metrics; starts a fresh EpochProgress."""
        p = self.partial
        sums, updates, episodes, choices, timer = p.sums, p.updates, p.episodes, p.choices, p.timer
        metrics: dict[str, float] = {"env_steps": float(self.env_steps), "grad_steps": float(self.grad_steps)}
        for key, total in sums.items():
            per_task = (total / updates).cpu().numpy()
            metrics[f"train/{key}"] = float(per_task.mean())
            for name, value in zip(self.spec.task_names, per_task, strict=True):
                metrics[f"train/{name}/{key}"] = float(value)
        metrics.update(episode_metrics(episodes, self.spec.task_names, "collect"))
        if self.method.qswitch:
            own = np.diag(choices) / np.maximum(choices.sum(1), 1)
            for name, frac in zip(self.spec.task_names, own, strict=True):
                metrics[f"collect/{name}/own_policy_frac"] = float(frac)
            metrics["collect/own_policy_frac"] = float(own.mean())
        self.last_choices = choices
        unstable = unstable_per_task(episodes, self.spec.num_tasks)
        metrics["stability/collect_unstable_episodes"] = float(unstable.sum())
        for name, count in zip(self.spec.task_names, unstable, strict=True):
            metrics[f"stability/{name}/collect_unstable_episodes"] = float(count)
        metrics["time/collect_s"], metrics["time/train_s"] = timer["collect"], timer["train"]
        self.partial = self.new_epoch_progress()
        return metrics

    def update_step(self) -> dict[str, torch.Tensor]:
        batch = self.buffer.sample(self.schedule.batch_per_task)
        weights = None
        extra: dict[str, torch.Tensor] = {}
        if self.sharing is not None:
            batch, weights, kept = self.sharing.build(self.buffer, self.agent.critic, batch)
            extra["shared_data_kept"] = kept
        kl_obs = self._kl_states() if self.agent.kl_beta is not None else None
        metrics = self.agent.update(batch, weights, kl_obs)
        self.grad_steps += 1
        return {**metrics, **extra}

    def _kl_states(self) -> torch.Tensor:
        """States of the DnC KL penalty: (T, n, O), n from every task buffer (--sampling_type)."""
        per_task = kl_states_per_task(self.cfg.sampling_type, self.cfg.buffer_batch_size, self.spec.num_tasks)
        return self.buffer.sample(per_task).obs

    def evaluate(self, epoch: int) -> dict[str, float]:
        """Each task's own policy, deterministic (the headline); QMP also logs its mixture."""
        assert self.eval_env is not None
        per_task = max(1, self.cfg.num_evaluation_episodes // self.spec.num_tasks)
        seed = self.cfg.seed * 1_000_003 + epoch
        names = self.spec.task_names
        episodes = evaluate(self.eval_env, self.own_policy, per_task, seed, self.device)
        metrics = episode_metrics(episodes, names, "eval")
        if self.eval_mixture is not None:
            mixture_episodes = evaluate(self.eval_env, self.eval_mixture, per_task, seed, self.device)
            metrics.update(episode_metrics(mixture_episodes, names, "eval_mixture"))
            episodes = episodes + mixture_episodes
        metrics["stability/eval_unstable_episodes"] = float(unstable_per_task(episodes, self.spec.num_tasks).sum())
        for key, value in metrics.items():  # a NaN/inf reward in evaluation shows up in the returns
            if key.endswith("/return") and not math.isfinite(value):
                raise NonFiniteError(f"non-finite evaluation return {key!r} at epoch {epoch}")
        return metrics

    # ---------------------------------------------------------------- checkpoint
    def meta(self) -> dict[str, Any]:
        c = self.cfg
        return {"env": c.env, "method": c.method, "policy_architecture": c.policy_architecture, "Q_architecture": c.Q_architecture,
                "hidden_sizes": list(c.hidden_sizes), "num_tasks": self.spec.num_tasks, "obs_dim": self.env.obs_dim,
                "act_dim": self.env.act_dim, "include_task_id": c.include_task_id, "layer_norm": c.layer_norm}

    def state_dict(self) -> dict[str, Any]:
        return {
            "meta": self.meta(), "code_version": qmp.__version__, "epoch": self.epoch, "env_steps": self.env_steps,
            "grad_steps": self.grad_steps, "wall_time": self.wall_time, "agent": self.agent.state_dict(),
            "behaviour": self.behaviour.state_dict(), "env": self.env.get_state(), "rng": capture_rng(),
            "buffer": self.buffer.state_dict() if self.cfg.save_buffer else None,
            "partial": self.partial.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any], path: Path) -> None:
        """Restore a checkpoint; any mismatch or missing piece is a CheckpointError naming it."""
        check_compatible(state["meta"], self.meta(), path, state.get("code_version"), qmp.__version__)
        try:
            self.agent.load_state_dict(state["agent"])
            self.behaviour.load_state_dict(state["behaviour"])
            self.env.set_state(state["env"])
            if state["buffer"] is not None:
                self.buffer.load_state_dict(state["buffer"])
            partial = dict(state["partial"])
            partial["sums"] = {k: v.to(self.device) for k, v in partial["sums"].items()}
            self.partial = EpochProgress(**partial)
            self.epoch, self.env_steps, self.grad_steps = state["epoch"], state["env_steps"], state["grad_steps"]
            self.wall_time = state["wall_time"]
            restore_rng(state["rng"])
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise CheckpointError(f"checkpoint {path} does not fit this run: {type(exc).__name__}: {exc}; nothing was overwritten") from exc


def write_config(run_dir: Path, cfg: Config, exp: Experiment) -> None:
    record = {**cfg.to_dict(), "run_dir": str(run_dir), "code_version": qmp.__version__,
              "resolved": {"task_names": list(exp.spec.task_names), "num_tasks": exp.spec.num_tasks, "obs_dim": exp.env.obs_dim,
                           "act_dim": exp.env.act_dim, "max_episode_steps": exp.spec.max_episode_steps,
                           "min_reward": exp.spec.min_reward, "schedule": exp.schedule.__dict__, "device": str(exp.device),
                           "replay_per_task": exp.buffer.capacity, "replay_total": exp.buffer.capacity * exp.spec.num_tasks}}
    tmp = run_dir / "config.json.tmp"
    tmp.write_text(json.dumps(record, indent=2))
    tmp.replace(run_dir / "config.json")


def start_wandb(cfg: Config, run_dir: Path) -> Any:
    """A wandb run tied to the run directory: its id is kept in wandb_run_id.txt, so a resumed run
    continues the same wandb run (as the original did). Re-logged epochs carry the same step and values."""
    import wandb

    id_file = run_dir / "wandb_run_id.txt"
    run_id = id_file.read_text().strip() if id_file.exists() else wandb.util.generate_id()
    id_file.write_text(run_id)
    name = f"{cfg.method}_{cfg.env}_{cfg.name}_{cfg.seed}"
    return wandb.init(project=cfg.wandb_project, entity=cfg.wandb_entity, name=name, notes=cfg.notes, config=cfg.to_dict(),
                      dir=str(run_dir), id=run_id, resume="allow")


def run(cfg: Config) -> Path:
    """Train (or resume) one run; returns its run directory."""
    torch.set_num_threads(cfg.torch_threads)
    device = pick_device(cfg.gpu)
    seed_everything(cfg.seed)
    spec = make_spec(cfg.env, sparse_tasks=cfg.sparse_tasks, task_name=cfg.task_name)
    exp = Experiment(cfg, spec, device)
    run_dir = prepare_run_dir(cfg.run_dir, cfg.log_dir, cfg.env, cfg.method, cfg.name, cfg.seed, cfg.overwrite)
    ckpt_path = run_dir / CHECKPOINT_NAME
    if ckpt_path.exists():
        exp.load_state_dict(load_checkpoint(ckpt_path), ckpt_path)
        print(f"Resuming {run_dir} at epoch {exp.epoch} ({exp.env_steps} env steps)", flush=True)
    write_config(run_dir, cfg, exp)
    truncate_jsonl(run_dir / QSWITCH_LOG, exp.epoch)
    logger = Logger(run_dir, resume_epoch=exp.epoch, wandb_run=start_wandb(cfg, run_dir) if cfg.wandb else None)
    # signal handlers can only be installed from the main thread (tests may call run() elsewhere)
    signals = StopSignals() if threading.current_thread() is threading.main_thread() else None
    try:
        if signals is not None:
            with signals:
                train(exp, cfg, logger, ckpt_path, signals)
        else:
            train(exp, cfg, logger, ckpt_path)
    finally:
        logger.close()
        exp.env.close()
        if exp.eval_env is not None:
            exp.eval_env.close()
        if exp.video is not None:
            exp.video.close()
    return run_dir


def train(exp: Experiment, cfg: Config, logger: Logger, ckpt_path: Path, signals: StopSignals | None = None) -> None:
    """Epochs until n_epochs. Checkpoints: after every snapshot_gap-th epoch, between cycles or epochs
    once snapshot_interval_s seconds passed since the last one, and on a stop signal (then raises
    StopRequested). A NaN/inf raises NonFiniteError before the checkpoint it would have spoilt."""
    from tqdm import tqdm

    last_save = time.monotonic()

    def stop() -> bool:
        return signals is not None and signals.received is not None

    def checkpoint(state: str = "running") -> None:
        nonlocal last_save
        exp.check_finite()
        save_checkpoint(ckpt_path, exp.state_dict())
        write_status(ckpt_path.parent, epoch=exp.epoch, n_epochs=cfg.n_epochs, env_steps=exp.env_steps,
                     state="done" if exp.epoch >= cfg.n_epochs else state)
        last_save = time.monotonic()

    def due() -> bool:
        return time.monotonic() - last_save >= cfg.snapshot_interval_s

    def after_cycle() -> None:
        if exp.partial.cycle < cfg.steps_per_epoch and due():
            checkpoint()

    def stop_now(saved: bool = False) -> StopRequested:
        assert signals is not None and signals.received is not None
        if not saved:
            checkpoint("stopped")
        else:
            write_status(ckpt_path.parent, epoch=exp.epoch, n_epochs=cfg.n_epochs, env_steps=exp.env_steps,
                         state="stopped")
        where = f"epoch {exp.epoch}, cycle {exp.partial.cycle}/{cfg.steps_per_epoch}" if exp.epoch < cfg.n_epochs else "the end"
        return StopRequested(signals.received, f"stopped by {signals.name} at {where}; checkpoint written to {ckpt_path}. "
                                               f"Resume by running the same command again, or: python run.py resume --snapshot_dir {ckpt_path.parent}")

    planned = exp.spec.num_tasks * (exp.schedule.steps_per_cycle * cfg.steps_per_epoch * cfg.n_epochs)
    progress = tqdm(total=planned, initial=exp.env_steps, unit="step", unit_scale=True, disable=None, dynamic_ncols=True)
    while exp.epoch < cfg.n_epochs:
        epoch, start, steps_before = exp.epoch, time.perf_counter(), exp.env_steps
        metrics = exp.train_epoch(progress, stop, after_cycle)
        if metrics is None:
            progress.close()
            raise stop_now()
        eval_start = time.perf_counter()
        if exp.eval_env is not None and (epoch % cfg.evaluation_frequency == 0 or epoch == cfg.n_epochs - 1):
            metrics.update(exp.evaluate(epoch))
        metrics["time/eval_s"] = time.perf_counter() - eval_start
        if exp.video is not None and epoch % cfg.vis_freq == 0:
            video_start = time.perf_counter()
            exp.video.record(exp.own_policy, epoch, ckpt_path.parent / "videos", exp.device)
            metrics["time/video_s"] = time.perf_counter() - video_start
        elapsed = time.perf_counter() - start
        exp.wall_time += elapsed
        metrics["time/epoch_s"], metrics["time/total_s"] = elapsed, exp.wall_time
        metrics["time/env_steps_per_s"] = (exp.env_steps - steps_before) / elapsed
        logger.log(epoch, metrics)
        if exp.method.qswitch:
            logger.log_json(QSWITCH_LOG, {"epoch": epoch, "env_steps": exp.env_steps, "tasks": list(exp.spec.task_names),
                                          "counts": exp.last_choices.tolist()})
        exp.epoch = epoch + 1
        saved = exp.epoch % cfg.snapshot_gap == 0 or exp.epoch == cfg.n_epochs or due()
        if saved:
            checkpoint()
        if stop() and exp.epoch < cfg.n_epochs:
            progress.close()
            raise stop_now(saved)
        success = metrics.get("eval/success", metrics.get("collect/success"))
        progress.set_postfix(epoch=epoch, success=f"{success:.2f}" if success is not None else "-")
    progress.close()
