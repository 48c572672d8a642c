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
from qmp.learning.decaf import DECAFCritic
from qmp.learning.distill import Distillation
from qmp.learning.dnc import first_stages
from qmp.learning.levy import LevyMixture
from qmp.learning.mcal import MinOwnProbability, MultiCriticActor
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
    actor_states: Tensor | None = None  # (S, T, n, O): MCAL's all-task batches of its S actor steps


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
class MultiCriticData:
    """MCAL: each task's own batch for its critic, and T all-task batches for the shared actor's T steps."""

    own: OwnData
    states_per_task: int

    def sample(self) -> TrainingBatch:
        buffer = self.own.buffer
        steps = buffer.num_tasks
        states = buffer.sample(steps * self.states_per_task).obs  # one gather for all the actor's steps
        states = states.view(buffer.num_tasks, steps, self.states_per_task, -1).transpose(0, 1)
        return TrainingBatch(buffer.sample(self.own.batch_per_task), None, None, {}, states)


@dataclass
class Parts:
    """Everything a run owns besides its counters (loop.Cursor)."""

    spec: MultiTaskSpec
    env: MultiTaskEnv
    eval_env: MultiTaskEnv | None
    agent: MultiTaskSAC
    buffer: MultiTaskReplayBuffer
    behaviour: OwnPolicy | QSwitchMixture | LevyMixture | MinOwnProbability  # collects the training data
    own_policy: OwnPolicy  # the headline evaluation (eval/*)
    eval_mixture: QSwitchMixture | None  # QMP's second evaluation (eval_mixture/*)
    data: DataSource
    schedule: ScheduleSettings
    video: VideoRecorder | None
    distillation: Distillation | None = None  # DnC's periodic distillation, run by the epoch loop

    @property
    def logs_selection(self) -> bool:
        """Whether collection makes choices worth logging (a mixture's T x T counts)."""
        return self.behaviour is not self.own_policy

    def learn(self) -> dict[str, Tensor]:
        """One gradient step of every task on a fresh batch; per-task metrics, each (T,)."""
        data = self.data.sample()
        extra = {} if data.actor_states is None else {"actor_states": data.actor_states}
        return {**self.agent.update(data.batch, data.weights, data.kl_states, **extra), **data.metrics}

    def close(self) -> None:
        self.env.close()
        if self.eval_env is not None:
            self.eval_env.close()
        if self.video is not None:
            self.video.close()


def build(settings: Settings, spec: MultiTaskSpec, device: torch.device) -> Parts:
    cfg, net = settings.cfg, settings.network
    env = MultiTaskEnv(spec, cfg.seed, normalize_obs=cfg.norm_obs)
    eval_env = (MultiTaskEnv(spec, cfg.seed, evaluation=True, normalizer=env.normalizer)
                if settings.evaluation.episodes > 0 else None)
    t, obs_dim, act_dim = spec.num_tasks, env.obs_dim, env.act_dim
    policy = TanhGaussianPolicy(net.policy_architecture, t, obs_dim, act_dim, list(net.hidden_sizes),
                                net.include_task_id, net.double_tanh)
    critic = (DECAFCritic(t, obs_dim, act_dim, list(net.hidden_sizes), net.layer_norm, net.include_task_id)
              if settings.decaf else
              DoubleQ(net.q_architecture, t, obs_dim, act_dim, list(net.hidden_sizes), net.include_task_id,
                      net.layer_norm))
    if settings.stagewise and spec.stage_of is None:
        raise ValueError(f"--stagewise true needs an env whose observations carry the stage; {spec.name} has none")
    weight = first_stages(spec.stage_of) if settings.stagewise and spec.stage_of is not None else None
    agent_class = MultiTaskSAC if settings.actor_states_per_task is None else MultiCriticActor
    agent = agent_class(policy, critic, t, act_dim, settings.sac, device, kl_state_weight=weight)
    own_policy = OwnPolicy(agent.policy, single_tanh=settings.collect_single_tanh)  # evaluation: tanh(mu) either way
    behaviour: OwnPolicy | QSwitchMixture | LevyMixture | MinOwnProbability = own_policy
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
        if settings.min_own_probs is not None:
            behaviour = MinOwnProbability(behaviour, list(settings.min_own_probs))
    if settings.levy is not None:
        lv = settings.levy
        behaviour = LevyMixture(agent.policy, t, obs_dim, lv.top_n, lv.alpha_min, lv.max_hold, lv.success_ema)
    schedule = settings.schedule
    buffer = MultiTaskReplayBuffer(t, schedule.replay_per_task, obs_dim, act_dim, device)
    own = OwnData(buffer, schedule.batch_per_task, settings.kl_states_per_task)
    data: DataSource = own
    if settings.actor_states_per_task is not None:
        data = MultiCriticData(own, settings.actor_states_per_task)
    if settings.uds_quantile is not None:
        if settings.supervised_sharing and spec.reward is None:
            raise ValueError(f"--unsupervised false needs an env whose reward is a function of (s, a, s'); "
                             f"{spec.name}'s is not")
        sharing = UDSSharing(t, schedule.batch_per_task, spec.min_reward, settings.uds_quantile, device,
                             spec.reward if settings.supervised_sharing else None)
        data = SharedData(own, sharing, agent.critic)
    d = settings.distillation
    distillation = (None if d is None else Distillation(agent.policy, buffer, obs_dim, act_dim, list(net.hidden_sizes),
                                                        d.period, d.steps, d.states_per_task, settings.sac.lr))
    video = None
    v = settings.video
    if v.frequency > 0:
        render_spec = partial(make_spec, cfg.env, sparse_tasks=cfg.sparse_tasks, task_name=cfg.task_name,
                              render_mode="rgb_array")
        video = VideoRecorder(render_spec, cfg.seed, max(v.episodes // t, 1), v.width, v.height, v.fps, v.format,
                              env.normalizer)
    return Parts(spec, env, eval_env, agent, buffer, behaviour, own_policy, eval_mixture, data, schedule, video,
                 distillation)
