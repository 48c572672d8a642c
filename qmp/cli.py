"""The command line: the original run.py's whole flag surface, parsed into a Config, with each env's preset
(an explicit flag always wins), typo hints, and validation that names the bad value and the valid choices,
all before any simulator is imported or any file is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from typing import Any

from qmp.config import Config, field_defaults, replay_capacity
from qmp.domain_knowledge import STAGE_TARGETS, mixture_error
from qmp.environments import ENVS, is_custom
from qmp.flag_scope import RULE_FLAGS, dependency_error, env_option_error, given_flags, rule_scope_error, scope_error
from qmp.methods import ARCHITECTURES, METHODS, QSWITCH_ACTIONS, QSWITCH_RULES, QSWITCH_SCORES, check_method

GARAGE_ONLY_FLAGS = ("sampler_type", "worker_type", "max_n_worker")


def garage_only_warnings(argv: list[str]) -> list[str]:
    """One warning per garage-only flag on the command line (accepted for old SLURM lines, ignored)."""
    return [f"--{flag} only meant something inside garage; it is accepted and ignored"
            for flag in GARAGE_ONLY_FLAGS if any(arg == f"--{flag}" or arg.startswith(f"--{flag}=") for arg in argv)]


def reading_notes(cfg: Config) -> list[str]:
    """Values read as the original read them, where that is not what they say (printed as warnings)."""
    if cfg.target_entropy == 0:
        return ["--target_entropy 0 is read as the original read it (a falsy value is unset): -dim(A)"]
    return []


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
        elif f.type in ("bool", "bool | None"):  # unset (None) only as a default, derived in Config
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


def parse_args(argv: list[str], methods: list[str] | None = None, envs: list[str] | None = None) -> Config:
    """Flags -> validated Config: dataclass defaults, then the env preset, then explicit flags. `methods` and
    `envs` (default: every registered one) are the names accepted."""
    methods = list(METHODS) if methods is None else methods
    envs = list(ENVS) if envs is None else envs
    parser = build_parser()
    parser.set_defaults(**field_defaults())
    first, _ = parser.parse_known_args(argv)
    if first.env not in envs and not is_custom(first.env):
        raise ConfigError(f"unknown env {first.env!r}{_closest(first.env, envs)}; valid: {', '.join(envs)}, "
                          "or package.module:function (your own tasks)")
    if first.env in ENVS:
        parser.set_defaults(**ENVS[first.env].preset)
    cfg = Config(**vars(parser.parse_args(argv)))
    given = given_flags(parser, argv)
    subset = expected_tasks(cfg) if cfg.task_name else None
    if subset and "n_policies" not in given:  # the preset counts every task of the env; a subset has its own count
        cfg = dataclasses.replace(cfg, n_policies=subset)
    validate(cfg, methods)
    qswitch = cfg.method in METHODS and METHODS[cfg.method].qswitch
    reason = scope_error(cfg.method, given) or (rule_scope_error(cfg.qswitch_rule, given) if qswitch else None) \
        or dependency_error(cfg, given)
    if reason:
        raise ConfigError(reason)
    return cfg


_POSITIVE = ("n_epochs", "batch_size", "steps_per_epoch", "gradient_steps_per_itr", "buffer_batch_size",
             "evaluation_frequency", "snapshot_gap", "policy_sampling_freq", "n_policies",
             "vis_width", "vis_height", "vis_fps", "vis_num", "torch_threads")
_NON_NEGATIVE = ("min_buffer_size", "num_evaluation_episodes", "seed", "max_update_rows")
_UNSUPPORTED = {"control_penalty": 0.0}


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
    multi_critic = cfg.method in METHODS and METHODS[cfg.method].multi_critic
    if (cfg.sampling_type != "all" and not any(cfg.kl_coeff) and cfg.distillation_period is None
            and not multi_critic):
        raise ConfigError(f"--sampling_type {cfg.sampling_type} only chooses the states of the DnC KL term, "
                          "of distillation or of MCAL's actor, and none is on; "
                          "give --kl_coeff > 0 (dnc_sac, qmp_dnc) or leave --sampling_type all")
    if not all(0.0 <= p <= 1.0 for p in cfg.min_task_probs) or len(cfg.min_task_probs) not in (1, cfg.n_policies):
        raise ConfigError(f"--min_task_probs takes 1 or n_policies = {cfg.n_policies} probabilities in [0, 1], "
                          f"got {cfg.min_task_probs}")
    if cfg.norm_obs and (cfg.stagewise or not cfg.unsupervised):
        other = "--stagewise true" if cfg.stagewise else "--unsupervised false"
        raise ConfigError(f"--norm_obs true cannot go with {other}, which reads the raw observation "
                          "(the stage one-hot, the reward's inputs)")
    if cfg.worker_type != "default":
        raise ConfigError(f"--worker_type {cfg.worker_type} is not supported: in the original it also changed the run "
                          "(QMP's switch scored min(Q1, Q2) on sampled actions; batch size and gradient steps x8 "
                          "when batch_size < 10); for that switch give --qswitch_score min --qswitch_action sample; "
                          "valid: default")
    if cfg.partition == "random":
        raise ConfigError("--partition random (each episode acted and stored by a policy drawn at random instead "
                          "of its task's) is not supported: here policy i is task i's, the first axis of every "
                          "tensor, and the task buffers fill in lockstep; valid: task_id")
    choices = {"qswitch_score": QSWITCH_SCORES, "qswitch_action": QSWITCH_ACTIONS, "qswitch_rule": QSWITCH_RULES,
               "vis_format": ("mp4", "gif"),
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
        raise ConfigError(f"--n_policies {cfg.n_policies} does not match the {tasks} tasks of {cfg.env}; "
                          f"valid: --n_policies {tasks}")
    sac_family = cfg.method in METHODS and METHODS[cfg.method].sac_family
    warmup = math.ceil(cfg.min_buffer_size / cfg.n_policies) if sac_family else cfg.min_buffer_size
    capacity = replay_capacity(cfg, cfg.n_policies)
    if warmup > capacity:
        raise ConfigError(f"--min_buffer_size {cfg.min_buffer_size} needs {warmup} transitions per task "
                          "but the replay keeps "
                          f"{capacity} per task (--replay_buffer_size): the warm-up would never end")
    if cfg.distillation_period is not None and cfg.distillation_period <= 0:
        raise ConfigError(f"--distillation_period must be positive (epochs), got {cfg.distillation_period}")
    if cfg.distillation_n_epochs <= 0:
        raise ConfigError(f"--distillation_n_epochs must be positive (steps), got {cfg.distillation_n_epochs}")
    if cfg.distillation_period is not None and cfg.include_task_id:
        raise ConfigError("--distillation_period needs --include_task_id false: the central policy is one network "
                          "for every task's states")
    for flag, wanted, needed, what in (("--stagewise true", cfg.stagewise, "stages", "observations carry the stage"),
                                       ("--unsupervised false", not cfg.unsupervised, "reward",
                                        "reward is a function of (s, a, s')")):
        if wanted and cfg.env in ENVS and needed not in ENVS[cfg.env].capabilities:
            valid = [name for name, entry in ENVS.items() if needed in entry.capabilities]
            raise ConfigError(f"{flag} needs an env whose {what}; {cfg.env} is not one; valid: {', '.join(valid)}")
    if cfg.multihead_double_tanh and cfg.policy_architecture != "multihead":
        raise ConfigError("--multihead_double_tanh true needs --policy_architecture multihead, "
                          f"got {cfg.policy_architecture!r}")
    if len(cfg.kl_coeff) not in (1, cfg.n_policies**2):
        raise ConfigError(f"--kl_coeff takes 1 or n_policies^2 = {cfg.n_policies**2} values, got {len(cfg.kl_coeff)}")
    reason = _collection_error(cfg)
    if reason:
        raise ConfigError(reason)
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


def _collection_error(cfg: Config) -> str | None:
    """What is wrong with the options of the Q-switch ablations and MT-Levy, or None."""
    if not 0.0 < cfg.qswitch_temperature < math.inf:
        return f"--qswitch_temperature must be positive and finite, got {cfg.qswitch_temperature}"
    if cfg.method in METHODS and METHODS[cfg.method].qswitch:
        defaults = Config()
        changed = {flag for flag in RULE_FLAGS if getattr(cfg, flag) != getattr(defaults, flag)}
        reason = rule_scope_error(cfg.qswitch_rule, changed)  # a Config built in Python, not from flags
        if reason:
            return reason
        reason = mixture_error(cfg.qswitch_mixture, cfg.n_policies) if cfg.qswitch_mixture else None
        if reason:
            return reason
        if cfg.qswitch_rule == "domain" and not cfg.qswitch_mixture and cfg.env not in STAGE_TARGETS:
            return (f"--qswitch_rule domain has no mixture for {cfg.env} (defined for {', '.join(STAGE_TARGETS)}); "
                    "give one with --qswitch_mixture: n_policies^2 weights, row i = the policies task i may execute")
    if cfg.mtlevy_top_n < 1:
        return f"--mtlevy_top_n must be >= 1, got {cfg.mtlevy_top_n}"
    if not 0.0 < cfg.mtlevy_alpha_min < math.inf:
        return f"--mtlevy_alpha_min must be positive and finite, got {cfg.mtlevy_alpha_min}"
    if cfg.mtlevy_max_hold is not None and cfg.mtlevy_max_hold < 1:
        return f"--mtlevy_max_hold must be >= 1 (or none), got {cfg.mtlevy_max_hold}"
    if not 0.0 < cfg.mtlevy_success_ema <= 1.0:
        return f"--mtlevy_success_ema must be in (0, 1], got {cfg.mtlevy_success_ema}"
    return None
