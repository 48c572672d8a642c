"""`build(settings, spec, device) -> Parts`: every component of one run, wired once. A method is the
behaviour policy it collects with, the data it trains on and its update schedule (resolved from the
method table in qmp/settings.py), all wired here, so the loop never asks which method it runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import Protocol

import torch
from torch import Tensor

from qmp.domain_knowledge import domain_mixture
from qmp.environments import make_spec
from qmp.environments.base import MultiTaskSpec
from qmp.environments.multitask import MultiTaskEnv
from qmp.learning.buffer import Batch, MultiTaskReplayBuffer
from qmp.learning.levy import LevyMixture
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.learning.policies import OwnPolicy, QSwitchMixture
from qmp.learning.sac import MultiTaskSAC
from qmp.learning.sharing import UDSSharing
from qmp.settings import ScheduleSettings, Settings
from qmp.video import VideoRecorder


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
        return TrainingBatch(self.buffer.sample(self.batch_per_task), None, self.kl_states(), {})

    def kl_states(self) -> Tensor | None:
        return None if self.kl_states_per_task is None else self.buffer.sample(self.kl_states_per_task).obs


@dataclass
class SharedData:
    """UDS: the own batch plus relabelled transitions of every other task (learning/sharing.py)."""

    own: OwnData
    sharing: UDSSharing
    critic: DoubleQ  # task i's Q1 filters what task i takes from the others

    def sample(self) -> TrainingBatch:
        own = self.own.buffer.sample(self.own.batch_per_task)
        batch, weights, kept = self.sharing.build(self.own.buffer, self.critic, own)
        return TrainingBatch(batch, weights, self.own.kl_states(), {"shared_data_kept": kept})


@dataclass
class Parts:
    """Everything a run owns besides its counters (loop.Cursor)."""

    spec: MultiTaskSpec
    env: MultiTaskEnv
    eval_env: MultiTaskEnv | None
    agent: MultiTaskSAC
    buffer: MultiTaskReplayBuffer
    behaviour: OwnPolicy | QSwitchMixture | LevyMixture  # collects the training data
    own_policy: OwnPolicy  # the headline evaluation (eval/*)
    eval_mixture: QSwitchMixture | None  # QMP's second evaluation (eval_mixture/*)
    data: DataSource
    schedule: ScheduleSettings
    video: VideoRecorder | None

    @property
    def logs_selection(self) -> bool:
        """Whether collection makes choices worth logging (a mixture's T x T counts)."""
        return self.behaviour is not self.own_policy

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


def build(settings: Settings, spec: MultiTaskSpec, device: torch.device) -> Parts:
    cfg, net = settings.cfg, settings.network
    env = MultiTaskEnv(spec, cfg.seed)
    eval_env = MultiTaskEnv(spec, cfg.seed, evaluation=True) if settings.evaluation.episodes > 0 else None
    t, obs_dim, act_dim = spec.num_tasks, env.obs_dim, env.act_dim
    policy = TanhGaussianPolicy(net.policy_architecture, t, obs_dim, act_dim, list(net.hidden_sizes),
                                net.include_task_id, net.double_tanh)
    critic = DoubleQ(net.q_architecture, t, obs_dim, act_dim, list(net.hidden_sizes), net.include_task_id,
                     net.layer_norm)
    agent = MultiTaskSAC(policy, critic, t, act_dim, settings.sac, device)
    own_policy = OwnPolicy(agent.policy)
    behaviour: OwnPolicy | QSwitchMixture | LevyMixture = own_policy
    eval_mixture = None
    if settings.qswitch is not None:
        q = settings.qswitch
        args = (agent.policy, agent.critic, t, q.sampling_freq, q.score, q.action)
        mixture = None
        if q.rule == "domain":
            mixture = torch.tensor(q.mixture or domain_mixture(cfg.env, spec.task_names), dtype=torch.float32)
        options = {"rule": q.rule, "temperature": q.temperature, "entropy": q.entropy, "mixture": mixture,
                   "log_alpha": agent.log_alpha}
        behaviour = QSwitchMixture(*args, **options)
        # a mixture without a Q-switch (uniform, domain) has no deterministic form worth evaluating
        eval_mixture = QSwitchMixture(*args, **options) if q.rule in ("argmax", "softmax") else None
    if settings.levy is not None:
        lv = settings.levy
        behaviour = LevyMixture(agent.policy, t, obs_dim, lv.top_n, lv.alpha_min, lv.max_hold, lv.success_ema)
    schedule = settings.schedule
    buffer = MultiTaskReplayBuffer(t, schedule.replay_per_task, obs_dim, act_dim, device)
    own = OwnData(buffer, schedule.batch_per_task, settings.kl_states_per_task)
    data: DataSource = own
    if settings.uds_quantile is not None:
        sharing = UDSSharing(t, schedule.batch_per_task, spec.min_reward, settings.uds_quantile, device)
        data = SharedData(own, sharing, agent.critic)
    video = None
    v = settings.video
    if v.frequency > 0:
        render_spec = partial(make_spec, cfg.env, sparse_tasks=cfg.sparse_tasks, task_name=cfg.task_name,
                              render_mode="rgb_array")
        video = VideoRecorder(render_spec, cfg.seed, max(v.episodes // t, 1), v.width, v.height, v.fps, v.format)
    return Parts(spec, env, eval_env, agent, buffer, behaviour, own_policy, eval_mixture, data, schedule, video)
