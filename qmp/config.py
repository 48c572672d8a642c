"""Every hyperparameter in one typed dataclass, with the original run.py's flag names and defaults, and the
replay size each method keeps. The command line around it (parsing, presets, validation) is qmp/cli.py.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from qmp.methods import METHODS

ORIGINAL_REPLAY_SIZE = 1_000_000

def _f(default: Any, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **kwargs})


def _list(default: list, help: str, item: type) -> Any:
    return field(default_factory=lambda: list(default), metadata={"help": help, "nargs": "+", "item": item})


@dataclass
class Config:
    method: str = _f("qmp_dnc", f"experiment: {', '.join(METHODS)}, resume", positional=True)
    env: str = _f("JacoReachMT5-v1", "benchmark name (see README)")
    seed: int = _f(0, "seed of python, numpy, torch and the environments")
    name: str = _f("None", "run name, part of the run directory")
    notes: str = _f("", "free text stored in config.json (and wandb)")
    gpu: int | None = _f(None, "CUDA device index; the CPU if absent or unavailable")
    max_n_worker: int = _f(4, "garage only: accepted and ignored")
    wandb: bool = _f(False, "also log to Weights & Biases (needs the wandb package)")
    wandb_project: str = _f("p-task-mod", "wandb project")
    wandb_entity: str = _f("clvr", "wandb entity")
    discrete_action: bool = _f(False, "unused by the original; accepted")
    norm_obs: bool = _f(False, "garage's running normalisation of each task's observations (mean and variance "
                        "moving by 0.001 per observation)")
    gradient_steps_per_itr: int = _f(1000, "gradient steps per collection cycle, split across tasks (DnC family)")
    min_buffer_size: int = _f(10000, "warm-up: steps per task buffer (total for sac/mtsac) before training")
    target_update_tau: float = _f(5e-3, "Polyak step of the target critics, every gradient step")
    target_entropy: float | None = _f(None, "SAC target entropy; default -dim(A); 0 also means -dim(A), as the "
                                      "original read it")
    discount: float = _f(0.99, "discount factor")
    buffer_batch_size: int = _f(32, "batch per task and step (DnC family); total batch (sac/mtsac)")
    reward_scale: float = _f(1.0, "multiplies the reward in the TD target")
    steps_per_epoch: int = _f(1, "collection/training cycles per epoch")
    hidden_sizes: list[int] = _list([256, 256], "hidden layer sizes of every policy and critic", int)
    layer_norm: bool = _f(False, "layer norm in the critics, where garage put it: on each hidden layer's input, "
                          "the raw (s, a) included")
    use_pc_grad: bool = _f(False, "PCGrad: project conflicting per-task gradients of critics and policy "
                           "(sac, mtsac, qmp_sac)")
    skip_alpha_pc_grad: bool = _f(True, "with --use_pc_grad true: leave the temperature out of PCGrad "
                                  "(false: project its per-task gradients too)")
    policy_architecture: str = _f("separate", "separate, multihead or shared")
    Q_architecture: str = _f("separate", "separate, multihead or shared")
    n_epochs: int = _f(1000, "epochs")
    batch_size: int = _f(1000, "env steps per collection cycle, summed over tasks")
    lr: float = _f(3e-4, "Adam learning rate of policies, critics and temperatures")
    grad_clip: float | None = _f(None, "unused by the original; accepted")
    sampler_type: str = _f("local", "garage only: accepted and ignored")
    worker_type: str = _f("default", "garage only: 'default' is accepted and ignored; 'fragment' is refused "
                                     "(it changed the original's Q-switch)")
    num_evaluation_episodes: int = _f(10, "evaluation episodes summed over tasks (0: no evaluation)")
    evaluation_frequency: int = _f(1, "evaluate every this many epochs")
    vis_freq: int = _f(-1, "videos every this many epochs (-1: off). Off by default, unlike the original's 10: "
                       "software rendering costs about a minute per video epoch on a CPU-only machine")
    vis_num: int = _f(10, "episodes recorded per video epoch, summed over tasks")
    vis_width: int = _f(500, "video width")
    vis_height: int = _f(500, "video height")
    vis_fps: int = _f(40, "video frames per second")
    vis_format: str = _f("mp4", "video format: mp4 or gif")
    snapshot_gap: int = _f(1, "checkpoint every this many epochs")
    snapshot_dir: str | None = _f(None, "run directory to resume (`resume` method)")
    n_policies: int = _f(4, "number of policies; must equal the env's task count")
    partition: str = _f("task_id", "task of an episode: task_id only")
    sampling_type: str = _f("all", "states of the DnC KL term of pair (i, j): all (B/T from every buffer, pooled), "
                            "j (B from buffer j) or i+j (B/2 from buffer i and B/2 from buffer j); "
                            "i crashed in the original and is refused")
    include_task_id: bool = _f(False, "append the task one-hot to network inputs")
    sparse_tasks: list[int] = _list([], "indices of tasks with sparse reward (Maze)", int)
    task_name: str | None = _f(None, "subset of tasks, comma-separated (Maze, Meta-World); --n_policies follows "
                                          "its count unless given")
    control_penalty: float = _f(0.0, "Kitchen control penalty (must be 0, as in the original)")
    reward_params: list[float] = _list([0.0, 0.0], "legacy reacher; unused", float)
    reward_type: str = _f("shift", "legacy reacher; unused")
    kl_coeff: list[float] = _list([0.0], "DnC KL weights: one value, or n_policies^2 values", float)
    regularize_representation: bool = _f(False, "DnC: penalise the squared difference of the policies' last hidden "
                                         "layers instead of their KL (needs --kl_coeff > 0)")
    distillation_period: int | None = _f(None, "DnC: every this many epochs distill all task policies into a central "
                                         "one and overwrite them with it (default: never)")
    distillation_n_epochs: int = _f(100, "DnC: gradient steps of each distillation")
    stagewise: bool = _f(False, "DnC: the penalty counts only on states of the first two stages (needs --kl_coeff "
                         "> 0 and an env whose observations carry the stage)")
    policy_sampling_freq: int = _f(1, "QMP: re-select the policy every this many steps")
    sharing_quantile: float = _f(0.0, "UDS: keep shared data above this quantile of own Q1 (0 keeps all)")
    unsupervised: bool = _f(True, "UDS: relabel shared rewards with the env minimum; false: with the receiving "
                            "task's own reward (CDS; envs whose reward is a function of (s, a, s'))")
    # new in this project
    run_dir: str | None = _f(None, "exact run directory (default: {log_dir}/{env}/{method}/{name}/seed{seed})")
    log_dir: str = _f("data", "root of the default run directories")
    overwrite: bool = _f(False, "start afresh even if the run directory holds a checkpoint")
    qswitch_score: str = _f("q1", "QMP scoring critic: q1 (original), min or mean of the twin Qs")
    qswitch_action: str = _f("mean", "QMP scored action: mean (original) or sample")
    multihead_double_tanh: bool | None = _f(None, "multihead policy only: squash twice as the original did, "
                                            "tanh(tanh(mu) + sigma*eps) in training and in mtsac's collection "
                                            "(the Q-switch's candidates and every evaluation stay single tanh, as "
                                            "there). Unset: true with --policy_architecture multihead (the "
                                            "original's, behind the paper's Parameters numbers; mtlevy_sac: "
                                            "false, as MT-Levy's released actor), else false; "
                                            "false with multihead squashes once (our fix, docs/methods.md)")
    collect_single_tanh: bool = _f(False, "sac, mtsac with the double-squashed multihead policy: collect with one "
                                   "tanh, tanh(mu + sigma*eps), as QMP's Q-switch draws its candidates, while "
                                   "training keeps the two (not in the original: an ablation that separates "
                                   "QMP's behaviour sharing from its wider exploration)")
    replay_buffer_size: int | None = _f(None, "transitions kept per task; default the original's: 1e6 per task for "
                                        "the DnC family, one 1e6 buffer shared by all tasks (ceil(1e6 / T) per task) "
                                        "for sac, mtsac and qmp_sac")
    save_buffer: bool = _f(True, "include the replay buffers in checkpoints (needed for exact resume)")
    snapshot_interval_s: float = _f(1800.0, "also checkpoint between collection cycles or epochs once this many "
                                    "seconds passed since the last checkpoint (0: after every cycle)")
    max_update_rows: int = _f(8192, "a gradient step of separate networks runs in task chunks of at most this many "
                              "rows (tasks x batch), so activations stay in the CPU cache (0: all tasks at once)")
    torch_threads: int = _f(1, "torch CPU threads; 1 by default: small per-step ops gain nothing from more, "
                            "and 2 threads ran 40x slower when the other core was busy")
    flush_denormal: bool = _f(True, "CPU: flush denormal floats to zero. Adam's moments of units whose gradients "
                              "fade decay into denormals, which made the Parameters runs' optimiser steps about 3x "
                              "slower; the parameters stayed bit-identical (docs/performance.md). It is the main "
                              "thread's mode: torch's extra threads (--torch_threads > 1) keep denormals. false: "
                              "IEEE denormals, as runs before 2026-12-01")
    # the paper's ablations of the Q-switch, and MT-Levy (docs/methods.md)
    qswitch_rule: str = _f("argmax", "QMP: how task i picks the policy it executes: argmax of the scores (QMP), "
                           "softmax (drawn with probability proportional to exp(score / --qswitch_temperature)), "
                           "uniform (QMP-Uniform: any policy, no critic) or domain (QMP-Domain-Knowledge: the env's "
                           "fixed mixture, or --qswitch_mixture)")
    qswitch_temperature: float = _f(1.0, "QMP --qswitch_rule softmax: temperature, in the units of the scores")
    qswitch_entropy: bool = _f(False, "QMP: add the paper's entropy term to the score, "
                               "score_j = Q_i(s, a_j) - alpha_i log pi_j(a_j | s), a_j the scored action")
    qswitch_mixture: list[float] = _list([], "QMP --qswitch_rule domain: your own n_policies^2 weights, row i = "
                                         "the policies task i may execute (default: the env's, docs/methods.md)", float)
    mtlevy_top_n: int = _f(5, "MT-Levy: a switch picks uniformly among the n tasks of highest training success "
                           "and the task itself")
    mtlevy_alpha_min: float = _f(3.0, "MT-Levy: the hold length's power-law exponent at zero success; it grows as "
                                 "alpha_min - 1 + obs_dim^success")
    mtlevy_max_hold: int | None = _f(None, "MT-Levy: cap on the steps a switched-to policy is kept (default: none)")
    mtlevy_success_ema: float = _f(0.01, "MT-Levy: weight of a finished training episode in its task's success rate")
    min_task_probs: list[float] = _list([0.0], "QMP-MCAL: task i executes its own policy with at least this "
                                        "probability (one value, or one per task); 0: the Q-switch alone", float)

    def __post_init__(self) -> None:
        if self.multihead_double_tanh is None:  # the squashing of the method's source, where it is multihead
            method = METHODS.get(self.method)
            self.multihead_double_tanh = (self.policy_architecture == "multihead" and method is not None
                                          and method.squashes_multihead_twice)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def field_defaults() -> dict[str, Any]:
    """Each field's declared default, before __post_init__ derives any from the others (the parser's defaults:
    a derived one must stay unset until the flags it depends on are known)."""
    return {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[misc]
            for f in dataclasses.fields(Config)}


def replay_capacity(cfg: Config, num_tasks: int) -> int:
    """Transitions kept per task: --replay_buffer_size, else the original's replay split as our per-task ring
    holds it (ceil(1e6 / T) per task where the original shared one buffer)."""
    if cfg.replay_buffer_size is not None:
        return cfg.replay_buffer_size
    shared = cfg.method in METHODS and METHODS[cfg.method].sac_family
    return math.ceil(ORIGINAL_REPLAY_SIZE / num_tasks) if shared else ORIGINAL_REPLAY_SIZE
