"""Typed, frozen settings for each component of a run, built from the command line's flat Config.

The command line (qmp/cli.py, qmp/config.py) keeps the original's whole flag surface, legacy flags included. A
component receives only the settings it uses, with the method table already resolved into plain
fields, so `Settings` is also the way to configure a run from Python (`Settings.from_config`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from qmp.config import Config, replay_capacity
from qmp.domain_knowledge import as_rows
from qmp.learning.sac import SACConfig, kl_states_per_task
from qmp.methods import METHODS


@dataclass(frozen=True)
class NetworkSettings:
    policy_architecture: str = "separate"
    """How the task policies share parameters: separate, multihead or shared."""
    q_architecture: str = "separate"
    """How the task critics share parameters: separate, multihead or shared."""
    hidden_sizes: tuple[int, ...] = (256, 256)
    """Hidden layer sizes of every policy and critic."""
    include_task_id: bool = False
    """Append the task one-hot to network inputs."""
    layer_norm: bool = False
    """Layer norm in the critics."""
    double_tanh: bool = False
    """The original multihead policy's double squashing, tanh(tanh(mu) + sigma*eps)."""


@dataclass(frozen=True)
class ScheduleSettings:
    """The original's collection/update schedule in lockstep form; every number is per task."""

    steps_per_cycle: int
    """Env steps of each task per collection cycle (ceil(batch_size / T))."""
    cycles_per_epoch: int
    """Collection/update cycles per epoch (--steps_per_epoch)."""
    warmup: int
    """Each task buffer holds this many steps before gradient steps start."""
    updates_per_cycle: int
    """Batched gradient steps per cycle; each trains every task once."""
    batch_per_task: int
    """Transitions of each task in one gradient step."""
    replay_per_task: int
    """Replay capacity of each task's ring."""

    @staticmethod
    def of(cfg: Config, num_tasks: int) -> ScheduleSettings:
        steps = math.ceil(cfg.batch_size / num_tasks)
        replay = replay_capacity(cfg, num_tasks)
        if METHODS[cfg.method].sac_family:  # one shared buffer in the original: G steps of a total batch B
            return ScheduleSettings(steps, cfg.steps_per_epoch, math.ceil(cfg.min_buffer_size / num_tasks),
                                    cfg.gradient_steps_per_itr, math.ceil(cfg.buffer_batch_size / num_tasks), replay)
        # DnC family: task i gets max(1, G * n_i / sum n) steps of B from its own buffer; n_i are equal here
        return ScheduleSettings(steps, cfg.steps_per_epoch, cfg.min_buffer_size,
                                max(1, cfg.gradient_steps_per_itr // num_tasks), cfg.buffer_batch_size, replay)

    def planned_steps(self, num_tasks: int, n_epochs: int) -> int:
        """Env steps of a whole run, summed over tasks: the first cycle fills the warm-up, the rest are regular."""
        cycles = n_epochs * self.cycles_per_epoch
        return num_tasks * (self.steps_to_collect(0) + (cycles - 1) * self.steps_per_cycle) if cycles else 0

    def steps_to_collect(self, buffer_size: int) -> int:
        """Steps per task of the next cycle: more while the buffers are below the warm-up."""
        return (max(self.steps_per_cycle, self.warmup - buffer_size) if buffer_size < self.warmup
                else self.steps_per_cycle)


@dataclass(frozen=True)
class QSwitchSettings:
    sampling_freq: int = 1
    """Re-select the executed policy every this many steps of an episode."""
    score: str = "q1"
    """Which critic scores a candidate: q1 (the original), min or mean of the twins."""
    action: str = "mean"
    """Which candidate action is scored: mean (the original) or sample."""
    rule: str = "argmax"
    """How task i picks the policy: argmax (QMP), softmax, uniform (QMP-Uniform) or domain (QMP-Domain-Knowledge)."""
    temperature: float = 1.0
    """The softmax rule's temperature, in the units of the scores."""
    entropy: bool = False
    """Add the paper's entropy term -alpha_i log pi_j(a_j | s) to the score."""
    mixture: tuple[tuple[float, ...], ...] | None = None
    """The domain rule's T x T weights (row i: task i's); None: the env's (qmp/domain_knowledge.py)."""


@dataclass(frozen=True)
class LevySettings:
    """MT-Levy's collection (Lee et al., IROS 2025; qmp/learning/levy.py)."""

    top_n: int = 5
    """A switch picks uniformly among the n tasks of highest success rate and the task itself."""
    alpha_min: float = 3.0
    """The hold length's power-law exponent at zero success: alpha_i = alpha_min - 1 + obs_dim^success_i."""
    max_hold: int | None = None
    """Cap on the steps a switched-to policy is kept; None: no cap (the released code's)."""
    success_ema: float = 0.01
    """Weight of a finished training episode in its task's success rate (an exponential moving average)."""


@dataclass(frozen=True)
class DistillationSettings:
    period: int
    """Distill after the evaluation of every this many epochs (not epoch 0)."""
    steps: int
    """Adam steps of the central policy per distillation."""
    states_per_task: int
    """(state, action) pairs drawn from each task buffer per step."""


@dataclass(frozen=True)
class EvaluationSettings:
    episodes: int = 10
    """Evaluation episodes summed over tasks (0: no evaluation)."""
    frequency: int = 1
    """Evaluate every this many epochs (and after the last)."""


@dataclass(frozen=True)
class VideoSettings:
    frequency: int = -1
    """Record every this many epochs (-1: never)."""
    episodes: int = 10
    """Episodes recorded per video epoch, summed over tasks."""
    width: int = 500
    """Frame width in pixels."""
    height: int = 500
    """Frame height in pixels."""
    fps: int = 40
    """Frames per second of the written file."""
    format: str = "mp4"
    """mp4 or gif."""


@dataclass(frozen=True)
class Settings:
    """Everything a run needs besides the env spec; `cfg` keeps the flat flags for config.json and wandb."""

    cfg: Config
    """The flat command-line flags, kept for config.json, wandb and the run-level options of launch.py."""
    qswitch: QSwitchSettings | None
    """Collect with the Q-switch mixture (QMP methods), else each task's own policy."""
    uds_quantile: float | None
    """Train on UDS-shared data (uds_dnc, qmp_uds_dnc), keeping a shared transition if task i's Q1 on it
    exceeds this quantile of its own Q1 (0 keeps all); None: each task trains on its own data."""
    kl_states_per_task: int | None
    """States of each task buffer drawn for the DnC KL term; None: no KL term."""
    network: NetworkSettings
    """The policies' and critics' shapes."""
    sac: SACConfig
    """The learner: learning rate, discount, temperatures, DnC KL weights."""
    schedule: ScheduleSettings
    """Collection and update counts per cycle, warm-up, batch and replay size."""
    evaluation: EvaluationSettings
    """How often and how many deterministic evaluation episodes."""
    video: VideoSettings
    """Evaluation videos (off by default)."""
    levy: LevySettings | None = None
    """Collect with MT-Levy (mtlevy_* methods), else as `qswitch` says."""
    distillation: DistillationSettings | None = None
    """DnC's periodic distillation into a central policy; None: off."""
    stagewise: bool = False
    """DnC: only the states of the first two stages count in the penalty (the env's `stage_of`)."""
    actor_states_per_task: int | None = None
    """MCAL: states drawn from each buffer for each of the T actor steps of a gradient step; None: not MCAL."""
    min_own_probs: tuple[float, ...] | None = None
    """QMP-MCAL: the least probability of task i executing its own policy; None: the Q-switch alone."""
    decaf: bool = False
    """DECAF critics: task i's Q is a learned mixture of every task's Q."""
    supervised_sharing: bool = False
    """UDS methods with --unsupervised false: shared rewards are task i's own reward of the transition."""
    collect_single_tanh: bool = False
    """sac, mtsac: the double-squashed policy collects with one tanh, as QMP's candidates are drawn."""

    @staticmethod
    def from_config(cfg: Config, num_tasks: int) -> Settings:
        method = METHODS[cfg.method]
        kl_on = any(cfg.kl_coeff)
        return Settings(
            cfg=cfg,
            qswitch=(QSwitchSettings(cfg.policy_sampling_freq, cfg.qswitch_score, cfg.qswitch_action, cfg.qswitch_rule,
                                     cfg.qswitch_temperature, cfg.qswitch_entropy,
                                     tuple(map(tuple, as_rows(cfg.qswitch_mixture, num_tasks)))
                                     if cfg.qswitch_mixture else None)
                     if method.qswitch else None),
            uds_quantile=cfg.sharing_quantile if method.sharing else None,
            kl_states_per_task=(kl_states_per_task(cfg.sampling_type, cfg.buffer_batch_size, num_tasks)
                                if kl_on else None),
            network=NetworkSettings(cfg.policy_architecture, cfg.Q_architecture, tuple(cfg.hidden_sizes),
                                    cfg.include_task_id, cfg.layer_norm, cfg.multihead_double_tanh),
            sac=SACConfig(lr=cfg.lr, discount=cfg.discount, tau=cfg.target_update_tau, reward_scale=cfg.reward_scale,
                          target_entropy=cfg.target_entropy or None,  # 0 is unset, as the original read it
                          alpha_loss="exp" if method.sac_family else "log",
                          shared_alpha=method.shared_alpha, kl_coeff=list(cfg.kl_coeff), kl_states=cfg.sampling_type,
                          kl_representation=cfg.regularize_representation,
                          max_update_rows=cfg.max_update_rows, pc_grad=cfg.use_pc_grad,
                          pc_grad_alpha=not cfg.skip_alpha_pc_grad),
            schedule=ScheduleSettings.of(cfg, num_tasks),
            evaluation=EvaluationSettings(cfg.num_evaluation_episodes, cfg.evaluation_frequency),
            video=VideoSettings(cfg.vis_freq, cfg.vis_num, cfg.vis_width, cfg.vis_height, cfg.vis_fps, cfg.vis_format),
            levy=(LevySettings(cfg.mtlevy_top_n, cfg.mtlevy_alpha_min, cfg.mtlevy_max_hold, cfg.mtlevy_success_ema)
                  if method.levy else None),
            distillation=(DistillationSettings(cfg.distillation_period, cfg.distillation_n_epochs,
                                               kl_states_per_task(cfg.sampling_type, cfg.buffer_batch_size, num_tasks))
                          if cfg.distillation_period is not None else None),
            stagewise=cfg.stagewise,
            actor_states_per_task=(kl_states_per_task(cfg.sampling_type, cfg.buffer_batch_size, num_tasks)
                                   if method.multi_critic else None),
            min_own_probs=tuple(cfg.min_task_probs) if method.qswitch and any(cfg.min_task_probs) else None,
            decaf=method.decaf_critics,
            supervised_sharing=method.sharing and not cfg.unsupervised,
            collect_single_tanh=cfg.collect_single_tanh,
        )
