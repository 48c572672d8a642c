"""`build(cfg, spec, device) -> Parts`: every component of one run, wired once. The only reader of the
method table (qmp/methods.py): a method is the behaviour policy it collects with, the data it trains on
and its update schedule, all decided here, so the loop never asks which method it runs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import partial
from typing import Protocol

import torch
from torch import Tensor

from qmp.config import Config, replay_capacity
from qmp.environments import make_spec
from qmp.environments.base import MultiTaskSpec
from qmp.environments.multitask import MultiTaskEnv
from qmp.learning.buffer import Batch, MultiTaskReplayBuffer
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.learning.policies import OwnPolicy, QSwitchMixture
from qmp.learning.sac import MultiTaskSAC, SACConfig, kl_states_per_task
from qmp.learning.sharing import UDSSharing
from qmp.methods import METHODS, Method
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
            return Schedule(steps, math.ceil(cfg.min_buffer_size / num_tasks), cfg.gradient_steps_per_itr,
                            math.ceil(cfg.buffer_batch_size / num_tasks))
        # DnC family: task i gets max(1, G * n_i / sum n) steps of B from its own buffer; n_i are equal here
        return Schedule(steps, cfg.min_buffer_size, max(1, cfg.gradient_steps_per_itr // num_tasks), cfg.buffer_batch_size)

    def steps_to_collect(self, buffer_size: int) -> int:
        """Steps per task of the next cycle: more while the buffers are below the warm-up."""
        return max(self.steps_per_cycle, self.warmup - buffer_size) if buffer_size < self.warmup else self.steps_per_cycle


@dataclass
class TrainingBatch:
    """What one gradient step trains on."""

    batch: Batch  # (T, B, ...)
    weights: Tensor | None  # (T, B) row weights (UDS drops shared rows by weight 0)
    kl_states: Tensor | None  # (T, n, O): states of the DnC KL term, n from each task buffer
    metrics: dict[str, Tensor]  # per-task metrics of the data itself, each (T,)


class DataSource(Protocol):
    def sample(self) -> TrainingBatch: ...


@dataclass
class OwnData:
    """Each task trains on its own buffer (plus the DnC KL states when the KL term is on)."""

    buffer: MultiTaskReplayBuffer
    batch_per_task: int
    kl_states_per_task: int | None = None

    def sample(self) -> TrainingBatch:
        batch = self.buffer.sample(self.batch_per_task)
        return TrainingBatch(batch, None, self._kl_states(), {})

    def _kl_states(self) -> Tensor | None:
        return None if self.kl_states_per_task is None else self.buffer.sample(self.kl_states_per_task).obs


@dataclass
class SharedData(OwnData):
    """UDS: the own batch plus relabelled transitions of every other task (learning/sharing.py)."""

    sharing: UDSSharing | None = None
    critic: DoubleQ | None = None

    def sample(self) -> TrainingBatch:
        assert self.sharing is not None and self.critic is not None
        own = self.buffer.sample(self.batch_per_task)
        batch, weights, kept = self.sharing.build(self.buffer, self.critic, own)
        return TrainingBatch(batch, weights, self._kl_states(), {"shared_data_kept": kept})


@dataclass
class Parts:
    """Everything a run owns besides its counters (loop.Cursor)."""

    spec: MultiTaskSpec
    env: MultiTaskEnv
    eval_env: MultiTaskEnv | None
    agent: MultiTaskSAC
    buffer: MultiTaskReplayBuffer
    behaviour: OwnPolicy | QSwitchMixture  # collects the training data
    own_policy: OwnPolicy  # the headline evaluation (eval/*)
    eval_mixture: QSwitchMixture | None  # QMP's second evaluation (eval_mixture/*)
    data: DataSource
    schedule: Schedule
    video: VideoRecorder | None
    shared_alpha: bool  # `sac`: one temperature (its finiteness check is not per task)

    @property
    def logs_selection(self) -> bool:
        """Whether collection makes choices worth logging (the Q-switch's T x T counts)."""
        return self.eval_mixture is not None

    def learn(self) -> dict[str, Tensor]:
        """One gradient step of every task on a fresh batch; per-task metrics, each (T,)."""
        data = self.data.sample()
        return {**self.agent.update(data.batch, data.weights, data.kl_states), **data.metrics}

    def close(self) -> None:
        self.env.close()
        if self.eval_env is not None:
            self.eval_env.close()
        if self.video is not None:
            self.video.close()


def build(cfg: Config, spec: MultiTaskSpec, device: torch.device) -> Parts:
    method = METHODS[cfg.method]
    env = MultiTaskEnv(spec, cfg.seed)
    eval_env = MultiTaskEnv(spec, cfg.seed, evaluation=True) if cfg.num_evaluation_episodes > 0 else None
    t, obs_dim, act_dim = spec.num_tasks, env.obs_dim, env.act_dim
    policy = TanhGaussianPolicy(cfg.policy_architecture, t, obs_dim, act_dim, cfg.hidden_sizes, cfg.include_task_id,
                                cfg.multihead_double_tanh)
    critic = DoubleQ(cfg.Q_architecture, t, obs_dim, act_dim, cfg.hidden_sizes, cfg.include_task_id, cfg.layer_norm)
    sac_cfg = SACConfig(
        lr=cfg.lr, discount=cfg.discount, tau=cfg.target_update_tau, reward_scale=cfg.reward_scale,
        target_entropy=cfg.target_entropy, alpha_loss="exp" if method.sac_family else "log",
        shared_alpha=method.shared_alpha, kl_coeff=cfg.kl_coeff, kl_states=cfg.sampling_type,
        max_update_rows=cfg.max_update_rows,
    )
    agent = MultiTaskSAC(policy, critic, t, act_dim, sac_cfg, device)
    own_policy = OwnPolicy(agent.policy)
    behaviour: OwnPolicy | QSwitchMixture = own_policy
    eval_mixture = None
    if method.qswitch:
        args = (agent.policy, agent.critic, t, cfg.policy_sampling_freq, cfg.qswitch_score, cfg.qswitch_action)
        behaviour, eval_mixture = QSwitchMixture(*args), QSwitchMixture(*args)
    schedule = Schedule.of(cfg, method, t)
    buffer = MultiTaskReplayBuffer(t, replay_capacity(cfg, t), obs_dim, act_dim, device)
    kl_states = kl_states_per_task(cfg.sampling_type, cfg.buffer_batch_size, t) if agent.kl_beta is not None else None
    data: DataSource = OwnData(buffer, schedule.batch_per_task, kl_states)
    if method.sharing:
        sharing = UDSSharing(t, cfg.buffer_batch_size, spec.min_reward, cfg.sharing_quantile, device)
        data = SharedData(buffer, schedule.batch_per_task, kl_states, sharing, agent.critic)
    video = None
    if cfg.vis_freq > 0:
        render_spec = partial(make_spec, cfg.env, sparse_tasks=cfg.sparse_tasks, task_name=cfg.task_name,
                              render_mode="rgb_array")
        video = VideoRecorder(render_spec, cfg.seed, max(cfg.vis_num // t, 1), cfg.vis_width, cfg.vis_height, cfg.vis_fps,
                              cfg.vis_format)
    return Parts(spec, env, eval_env, agent, buffer, behaviour, own_policy, eval_mixture, data, schedule, video,
                 method.shared_alpha)
