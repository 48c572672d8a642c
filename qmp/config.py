"""Every hyperparameter in one typed dataclass, with the original run.py's flag names and defaults.

`parse_args` builds the argparse parser from the dataclass, applies the per-env preset (an explicit
flag always wins) and validates everything before any simulator is imported or any file is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any

from qmp.environments import ENVS
from qmp.flag_scope import env_option_error, given_flags, scope_error
from qmp.methods import ARCHITECTURES, METHODS, QSWITCH_ACTIONS, QSWITCH_SCORES, check_method

# The original's replay: garage buffers of 1e6 transitions, one per task for the DnC family, ONE shared by
# all tasks for sac/mtsac/qmp_sac. Per-task caps where that does not fit in memory: MT50's 50 x 1e6 float32
# transitions would be 16.8 GB of buffers alone, 5e5 keeps a run under 16 GB (docs/performance.md).
ORIGINAL_REPLAY_SIZE = 1_000_000
REPLAY_MEMORY_CAP = {"MetaWorldMT50-v2": 500_000}

GARAGE_ONLY_FLAGS = ("sampler_type", "worker_type", "max_n_worker")


def garage_only_warnings(argv: list[str]) -> list[str]:
    """One warning per garage-only flag on the command line (accepted for old SLURM lines, ignored)."""
    return [f"--{flag} only meant something inside garage; it is accepted and ignored"
            for flag in GARAGE_ONLY_FLAGS if any(arg == f"--{flag}" or arg.startswith(f"--{flag}=") for arg in argv)]


def _f(default: Any, help: str, **kwargs: Any) -> Any:
    return field(default=default, metadata={"help": help, **kwargs})


def _list(default: list, help: str, item: type) -> Any:
    return field(default_factory=lambda: list(default), metadata={"help": help, "nargs": "+", "item": item})


@dataclass
class Config:
    method: str = _f("qmp_dnc", "experiment: sac, mtsac, dnc_sac, qmp_dnc, qmp_sac, uds_dnc, qmp_uds_dnc, resume",
                     positional=True)
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
    norm_obs: bool = _f(False, "running observation normalisation (not supported; must be false)")
    gradient_steps_per_itr: int = _f(1000, "gradient steps per collection cycle, split across tasks (DnC family)")
    min_buffer_size: int = _f(10000, "warm-up: steps per task buffer (total for sac/mtsac) before training")
    target_update_tau: float = _f(5e-3, "Polyak step of the target critics, every gradient step")
    target_entropy: float | None = _f(None, "SAC target entropy; default -dim(A)")
    discount: float = _f(0.99, "discount factor")
    buffer_batch_size: int = _f(32, "batch per task and step (DnC family); total batch (sac/mtsac)")
    reward_scale: float = _f(1.0, "multiplies the reward in the TD target")
    steps_per_epoch: int = _f(1, "collection/training cycles per epoch")
    hidden_sizes: list[int] = _list([256, 256], "hidden layer sizes of every policy and critic", int)
    layer_norm: bool = _f(False, "layer norm in the critics")
    use_pc_grad: bool = _f(False, "PCGrad (not supported; must be false)")
    skip_alpha_pc_grad: bool = _f(True, "PCGrad option; accepted")
    policy_architecture: str = _f("separate", "separate, multihead or shared")
    Q_architecture: str = _f("separate", "separate, multihead or shared")
    n_epochs: int = _f(1000, "epochs")
    batch_size: int = _f(1000, "env steps per collection cycle, summed over tasks")
    lr: float = _f(3e-4, "Adam learning rate of policies, critics and temperatures")
    grad_clip: float | None = _f(None, "unused by the original; accepted")
    sampler_type: str = _f("local", "garage only: accepted and ignored")
    worker_type: str = _f("default", "garage only: accepted and ignored")
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
    task_name: str | None = _f(None, "subset of tasks, comma-separated (Maze, Meta-World)")
    control_penalty: float = _f(0.0, "Kitchen control penalty (must be 0, as in the original)")
    reward_params: list[float] = _list([0.0, 0.0], "legacy reacher; unused", float)
    reward_type: str = _f("shift", "legacy reacher; unused")
    kl_coeff: list[float] = _list([0.0], "DnC KL weights: one value, or n_policies^2 values", float)
    regularize_representation: bool = _f(False, "DnC representation penalty (not supported; must be false)")
    distillation_period: int | None = _f(None, "DnC distillation (not supported; must be unset)")
    distillation_n_epochs: int = _f(100, "DnC distillation steps")
    stagewise: bool = _f(False, "DnC stage masking (not supported; must be false)")
    policy_sampling_freq: int = _f(1, "QMP: re-select the policy every this many steps")
    sharing_quantile: float = _f(0.0, "UDS: keep shared data above this quantile of own Q1 (0 keeps all)")
    unsupervised: bool = _f(True, "UDS: relabel shared rewards with the env minimum (must be true)")
    # new in this project
    run_dir: str | None = _f(None, "exact run directory (default: {log_dir}/{env}/{method}/{name}/seed{seed})")
    log_dir: str = _f("data", "root of the default run directories")
    overwrite: bool = _f(False, "start afresh even if the run directory holds a checkpoint")
    qswitch_score: str = _f("q1", "QMP scoring critic: q1 (original), min or mean of the twin Qs")
    qswitch_action: str = _f("mean", "QMP scored action: mean (original) or sample")
    multihead_double_tanh: bool = _f(False, "multihead policy only: squash twice as the original did, "
                                     "tanh(tanh(mu) + sigma*eps) in training and in mtsac's collection "
                                     "(the Q-switch's candidates and every evaluation stay single tanh, as there)")
    replay_buffer_size: int | None = _f(None, "transitions kept per task; default the original's: 1e6 per task for "
                                        "the DnC family, one 1e6 buffer shared by all tasks (ceil(1e6 / T) per task) "
                                        "for sac, mtsac and qmp_sac; MT50's DnC family keeps 5e5 per task to fit 16 GB")
    save_buffer: bool = _f(True, "include the replay buffers in checkpoints (needed for exact resume)")
    snapshot_interval_s: float = _f(1800.0, "also checkpoint between collection cycles or epochs once this many "
                                    "seconds passed since the last checkpoint (0: after every cycle)")
    max_update_rows: int = _f(8192, "a gradient step of separate networks runs in task chunks of at most this many "
                              "rows (tasks x batch), so activations stay in the CPU cache (0: all tasks at once)")
    torch_threads: int = _f(1, "torch CPU threads; 1 by default: small per-step ops gain nothing from more, "
                            "and 2 threads ran 40x slower when the other core was busy")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def str2bool(value: str) -> bool:
    lowered = value.lower()
    if lowered in ("true", "1", "yes", "t", "y"):
        return True
    if lowered in ("false", "0", "no", "f", "n"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {value!r}; valid: true, false")


def _optional(kind: type) -> Any:
    def parse(value: str) -> Any:
        return None if value.lower() == "none" else kind(value)

    parse.__name__ = kind.__name__
    return parse


class _Parser(argparse.ArgumentParser):
    """argparse that raises ConfigError (one line, exit code 2 in run.py) instead of printing the usage."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:  # type: ignore[override]
        self._argv = list(args) if args is not None else []
        return super().parse_known_args(args, namespace)

    def error(self, message: str) -> Any:  # type: ignore[override]
        if message.startswith("unrecognized arguments"):
            flags = [opt for action in self._actions for opt in action.option_strings if opt.startswith("--")]
            unknown = [word.split("=")[0] for word in message.split(":", 1)[1].split() if word.startswith("-")]
            hints = "".join(_closest(word, flags) for word in unknown[:1])
            message = f"{message}{hints}; see python run.py --help"
            for word in unknown[:1]:  # argparse reads "-1e-3" as a flag, not as the value of the flag before it
                before = ([a.split("=")[0] for a in self._argv[: self._argv.index(word)] if a.startswith("--")]
                          if word in self._argv else [])
                if before and _is_number(word):
                    message = (f"argument {before[-1]}: {word} is read as a flag, not a value; "
                               f"write {before[-1]}={word} for one value")
        raise ConfigError(message.replace("\n", "\\n"))  # one line, whatever the user typed


def _is_number(word: str) -> bool:
    try:
        float(word)
    except ValueError:
        return False
    return True


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="run.py", description="QMP and multi-task SAC baselines.")
    for f in dataclasses.fields(Config):
        meta = dict(f.metadata)
        help_text = meta.pop("help")
        if meta.pop("positional", False):
            parser.add_argument(f.name, help=help_text)
            continue
        kwargs: dict[str, Any] = {"help": help_text, "dest": f.name}
        if "nargs" in meta:
            kwargs.update(nargs=meta["nargs"], type=meta["item"])
        elif f.type in ("bool",):
            kwargs.update(type=str2bool, metavar="true|false")
        elif f.type in ("int", "float", "str"):
            kwargs["type"] = {"int": int, "float": float, "str": str}[f.type]
        else:  # optional scalar
            kwargs["type"] = _optional(int if f.type.startswith("int")
                                       else float if f.type.startswith("float") else str)
        parser.add_argument(f"--{f.name}", **kwargs)
    return parser


class ConfigError(ValueError):
    """A bad flag value or combination; run.py prints it as one line and exits with code 2."""


def _closest(value: str, choices: list[str]) -> str:
    import difflib

    match = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    return f" (did you mean {match[0]!r}?)" if match else ""


def expected_tasks(cfg: Config) -> int | None:
    """Task count implied by the env preset and --task_name, known without importing simulators."""
    preset = (ENVS[cfg.env].preset if cfg.env in ENVS else {})
    if cfg.task_name:
        return len([part for part in cfg.task_name.split(",") if part.strip()])
    return preset.get("n_policies")


def parse_args(argv: list[str], methods: list[str], envs: list[str]) -> Config:
    """Flags -> validated Config: dataclass defaults, then the env preset, then explicit flags."""
    parser = build_parser()
    parser.set_defaults(**Config().to_dict())
    first, _ = parser.parse_known_args(argv)
    if first.env not in envs:
        raise ConfigError(f"unknown env {first.env!r}{_closest(first.env, envs)}; valid: {', '.join(envs)}")
    parser.set_defaults(**ENVS[first.env].preset)
    cfg = Config(**vars(parser.parse_args(argv)))
    validate(cfg, methods)
    reason = scope_error(cfg.method, cfg.env, given_flags(parser, argv))
    if reason:
        raise ConfigError(reason)
    return cfg


_POSITIVE = ("n_epochs", "batch_size", "steps_per_epoch", "gradient_steps_per_itr", "buffer_batch_size",
             "evaluation_frequency", "snapshot_gap", "policy_sampling_freq", "n_policies",
             "vis_width", "vis_height", "vis_fps", "vis_num", "torch_threads")
_NON_NEGATIVE = ("min_buffer_size", "num_evaluation_episodes", "seed", "max_update_rows")
_UNSUPPORTED = {"norm_obs": False, "use_pc_grad": False, "regularize_representation": False,
                "distillation_period": None, "stagewise": False, "unsupervised": True, "control_penalty": 0.0}


def replay_capacity(cfg: Config, num_tasks: int) -> int:
    """Transitions kept per task: --replay_buffer_size, else the original's replay split as our per-task ring
    holds it (ceil(1e6 / T) per task where the original shared one buffer), capped by REPLAY_MEMORY_CAP."""
    if cfg.replay_buffer_size is not None:
        return cfg.replay_buffer_size
    shared = cfg.method in METHODS and METHODS[cfg.method].sac_family
    per_task = math.ceil(ORIGINAL_REPLAY_SIZE / num_tasks) if shared else ORIGINAL_REPLAY_SIZE
    return min(per_task, REPLAY_MEMORY_CAP.get(cfg.env, per_task))


def validate(cfg: Config, methods: list[str]) -> None:
    """Raise ConfigError naming the bad value and the valid choices; imports nothing heavy."""
    if cfg.method not in methods:
        raise ConfigError(f"unknown method {cfg.method!r}{_closest(cfg.method, methods)}; valid: {', '.join(methods)}")
    for name in _POSITIVE:
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"--{name} must be positive, got {getattr(cfg, name)}")
    for name in _NON_NEGATIVE:
        if getattr(cfg, name) < 0:
            raise ConfigError(f"--{name} must be >= 0, got {getattr(cfg, name)}")
    if any(h <= 0 for h in cfg.hidden_sizes):
        raise ConfigError(f"--hidden_sizes must all be positive, got {cfg.hidden_sizes}")
    if not 0 < cfg.lr < math.inf:
        raise ConfigError(f"--lr must be positive and finite, got {cfg.lr}")
    if not cfg.seed < 2**32:
        raise ConfigError(f"--seed must be below 2**32 (numpy's limit), got {cfg.seed}")
    if cfg.gpu is not None and cfg.gpu < 0:
        raise ConfigError(f"--gpu must be a device index >= 0 (or omitted for the CPU), got {cfg.gpu}")
    if not (cfg.vis_freq == -1 or cfg.vis_freq > 0):
        raise ConfigError(f"--vis_freq must be positive or -1 (off), got {cfg.vis_freq}")
    if not cfg.snapshot_interval_s >= 0:
        raise ConfigError(f"--snapshot_interval_s must be >= 0, got {cfg.snapshot_interval_s}")
    if cfg.target_entropy is not None and not math.isfinite(cfg.target_entropy):
        raise ConfigError(f"--target_entropy must be finite, got {cfg.target_entropy}")
    if cfg.grad_clip is not None and not 0 < cfg.grad_clip < math.inf:
        raise ConfigError(f"--grad_clip must be positive and finite, got {cfg.grad_clip}")
    if cfg.replay_buffer_size is not None and cfg.replay_buffer_size <= 0:
        raise ConfigError(f"--replay_buffer_size must be positive, got {cfg.replay_buffer_size}")
    if not 0.0 <= cfg.discount <= 1.0:
        raise ConfigError(f"--discount must be in [0, 1], got {cfg.discount}")
    if not 0.0 < cfg.target_update_tau <= 1.0:
        raise ConfigError(f"--target_update_tau must be in (0, 1], got {cfg.target_update_tau}")
    if not 0.0 <= cfg.sharing_quantile <= 1.0:
        raise ConfigError(f"--sharing_quantile must be in [0, 1], got {cfg.sharing_quantile}")
    if not (abs(cfg.reward_scale) < float("inf")):
        raise ConfigError(f"--reward_scale must be finite, got {cfg.reward_scale}")
    if not all(0 <= k < math.inf for k in cfg.kl_coeff):
        raise ConfigError(f"--kl_coeff must be >= 0 and finite, got {cfg.kl_coeff}")
    for name in ("policy_architecture", "Q_architecture"):
        if getattr(cfg, name) not in ARCHITECTURES:
            raise ConfigError(f"--{name} {getattr(cfg, name)!r} is not valid; valid: {', '.join(ARCHITECTURES)}")
    if cfg.sampling_type == "i":
        raise ConfigError("--sampling_type i crashed in the original and has no defined meaning here; "
                          "valid: all, j, i+j")
    if cfg.sampling_type != "all" and not any(cfg.kl_coeff):
        raise ConfigError(f"--sampling_type {cfg.sampling_type} only chooses the states of the DnC KL term, "
                          "which is off; "
                          "give --kl_coeff > 0 (dnc_sac, qmp_dnc) or leave --sampling_type all")
    choices = {"qswitch_score": QSWITCH_SCORES, "qswitch_action": QSWITCH_ACTIONS, "vis_format": ("mp4", "gif"),
               "partition": ("task_id",), "sampling_type": ("all", "j", "i+j")}
    for name, valid in choices.items():
        if getattr(cfg, name) not in valid:
            raise ConfigError(f"--{name} {getattr(cfg, name)!r} is not valid; valid: {', '.join(valid)}")
    for name, default in _UNSUPPORTED.items():
        if getattr(cfg, name) != default:
            raise ConfigError(f"--{name} {getattr(cfg, name)} is not supported; "
                              f"only {default} is (see docs/architecture.md)")
    reason = env_option_error(cfg.env, cfg.task_name, cfg.sparse_tasks)
    if reason:
        raise ConfigError(reason)
    tasks = expected_tasks(cfg)
    if tasks is not None and cfg.n_policies != tasks:
        raise ConfigError(f"--n_policies {cfg.n_policies} does not match the {tasks} tasks of {cfg.env}")
    sac_family = cfg.method in METHODS and METHODS[cfg.method].sac_family
    warmup = math.ceil(cfg.min_buffer_size / cfg.n_policies) if sac_family else cfg.min_buffer_size
    capacity = replay_capacity(cfg, cfg.n_policies)
    if warmup > capacity:
        raise ConfigError(f"--min_buffer_size {cfg.min_buffer_size} needs {warmup} transitions per task "
                          "but the replay keeps "
                          f"{capacity} per task (--replay_buffer_size): the warm-up would never end")
    if cfg.multihead_double_tanh and cfg.policy_architecture != "multihead":
        raise ConfigError("--multihead_double_tanh true needs --policy_architecture multihead, "
                          f"got {cfg.policy_architecture!r}")
    if len(cfg.kl_coeff) not in (1, cfg.n_policies**2):
        raise ConfigError(f"--kl_coeff takes 1 or n_policies^2 = {cfg.n_policies**2} values, got {len(cfg.kl_coeff)}")
    if cfg.method in METHODS:
        reason = check_method(METHODS[cfg.method], cfg.method, cfg.policy_architecture, cfg.Q_architecture,
                              cfg.kl_coeff, cfg.include_task_id)
        if reason:
            raise ConfigError(reason)
    if cfg.wandb:
        import importlib.util

        if importlib.util.find_spec("wandb") is None:
            raise ConfigError("--wandb true needs the wandb package (pip install wandb); "
                              "valid without it: --wandb false")
