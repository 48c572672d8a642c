"""Where each flag applies. A flag given where it would do nothing is refused, never ignored.

The original run.py added its method-specific flags only for the experiment names that used them (so it
rejected, say, `dnc_sac --policy_sampling_freq 2` as an unknown argument), and it parsed a few flags that
nothing ever read. We keep every flag's spelling, and refuse both kinds with the reason.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from qmp.config import Config
from qmp.environments import ENVS
from qmp.methods import METHODS

QMP_METHODS = tuple(name for name, m in METHODS.items() if m.qswitch)
UDS_METHODS = tuple(name for name, m in METHODS.items() if m.sharing)
DNC_NAMED = tuple(name for name in METHODS if "dnc" in name or "decaf" in name)  # the original's test of the name
LEVY_METHODS = tuple(name for name, m in METHODS.items() if m.levy)
SAC_FAMILY = tuple(name for name, m in METHODS.items() if m.sac_family)  # the original's SAC class and MoPSAC
OWN_POLICY_SAC = tuple(name for name in SAC_FAMILY if not (METHODS[name].qswitch or METHODS[name].levy))  # sac, mtsac

# flag -> the methods that take it (the original's, plus our own Q-switch options for the QMP methods)
METHOD_FLAGS: dict[str, tuple[str, ...]] = {
    "policy_sampling_freq": QMP_METHODS,
    "qswitch_score": QMP_METHODS,
    "qswitch_action": QMP_METHODS,
    "sharing_quantile": UDS_METHODS,
    "unsupervised": UDS_METHODS,
    "kl_coeff": DNC_NAMED,
    "regularize_representation": DNC_NAMED,
    "distillation_period": DNC_NAMED,
    "distillation_n_epochs": DNC_NAMED,
    "stagewise": tuple(name for name in DNC_NAMED if name not in QMP_METHODS),
    "snapshot_dir": ("resume",),
    "qswitch_rule": QMP_METHODS,
    "qswitch_temperature": QMP_METHODS,
    "qswitch_entropy": QMP_METHODS,
    "qswitch_mixture": QMP_METHODS,
    "mtlevy_top_n": LEVY_METHODS,
    "mtlevy_alpha_min": LEVY_METHODS,
    "mtlevy_max_hold": LEVY_METHODS,
    "mtlevy_success_ema": LEVY_METHODS,
    "use_pc_grad": SAC_FAMILY,
    "min_task_probs": ("qmp_mcal",),
    "skip_alpha_pc_grad": SAC_FAMILY,
    "collect_single_tanh": OWN_POLICY_SAC,
}

# method flags the original parsed for every method, though only the methods above read them
PARSED_EVERYWHERE = {"use_pc_grad", "skip_alpha_pc_grad"}

# flag -> (what it needs to do anything, whether the config has it): refused when given without it
NEEDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "skip_alpha_pc_grad": ("--use_pc_grad true", lambda cfg: cfg.use_pc_grad),
    "regularize_representation": ("--kl_coeff > 0 (it replaces DnC's KL)", lambda cfg: any(cfg.kl_coeff)),
    "stagewise": ("--kl_coeff > 0 (it masks DnC's penalty)", lambda cfg: any(cfg.kl_coeff)),
    "distillation_n_epochs": ("--distillation_period", lambda cfg: cfg.distillation_period is not None),
    "collect_single_tanh": ("the double squashing (--policy_architecture multihead, --multihead_double_tanh true)",
                            lambda cfg: cfg.multihead_double_tanh),
}

# Q-switch flag -> the --qswitch_rule values it acts under (uniform and domain read no critic)
RULE_FLAGS: dict[str, tuple[str, ...]] = {
    "qswitch_score": ("argmax", "softmax"),
    "qswitch_action": ("argmax", "softmax"),
    "qswitch_entropy": ("argmax", "softmax"),
    "qswitch_temperature": ("softmax",),
    "qswitch_mixture": ("domain",),
}

# collection variants that share a method name: a run directory must not continue another variant's run, and
# results tell the variants apart (qmp/results.py names a run without --name by them)
VARIANT_FLAGS = ("qswitch_rule", "qswitch_temperature", "qswitch_entropy", "qswitch_mixture", "mtlevy_top_n",
                 "mtlevy_alpha_min", "mtlevy_max_hold", "mtlevy_success_ema", "collect_single_tanh")

# collection and squashing options that every checkpoint records, defaults included (added 2026-12); a
# checkpoint without them predates that and is taken at the command's values, as it always was
RECORDED_FLAGS = ("qswitch_score", "qswitch_action", "min_task_probs", "multihead_double_tanh", "policy_sampling_freq")

# what a config.json written before a flag existed ran, where that is not the flag's default today
BEFORE_THE_FLAG = {"multihead_double_tanh": False}  # one tanh was the only squashing

# flags the original parsed and never acted on: refused when given, with why
NEVER_READ: dict[str, str] = {
    "discrete_action": "the original parsed it and never read it; every env here has continuous actions",
    "reward_params": "a legacy 2-D reacher flag that no registered env of the original read",
    "reward_type": "a legacy 2-D reacher flag that no registered env of the original read",
    "grad_clip": "the original parsed it but passed it to no algorithm, so the paper's runs had no clipping",
}

class _Given:
    """argparse default that marks a flag as absent from the command line."""


def given_flags(parser: argparse.ArgumentParser, argv: Sequence[str]) -> set[str]:
    """The flags (dest names) written on the command line, abbreviations included."""
    absent = _Given()
    probe = argparse.Namespace(**{action.dest: absent for action in parser._actions if action.dest != "help"})
    namespace, _ = parser.parse_known_args(list(argv), probe)
    return {name for name, value in vars(namespace).items() if value is not absent}


def scope_error(method: str, given: set[str]) -> str | None:
    """Why one of the `given` flags does not apply to this method (or is never read), or None."""
    for flag in sorted(given):
        if flag in NEVER_READ:
            return f"--{flag} is refused: {NEVER_READ[flag]}"
        takers = METHOD_FLAGS.get(flag)
        if takers is not None and method not in takers:
            why = "the original ignored it there" if flag in PARSED_EVERYWHERE else "the original did not accept it"
            return f"--{flag} does nothing for {method} and is refused ({why}); valid for: {', '.join(takers)}"
    return None


def dependency_error(cfg: Any, given: set[str]) -> str | None:
    """Why one of the `given` flags does nothing without another setting (NEEDS), or None."""
    for flag in sorted(given & set(NEEDS)):
        needed, present = NEEDS[flag]
        if not present(cfg):
            return f"--{flag} does nothing without {needed} and is refused"
    return None


def rule_scope_error(rule: str, flags: set[str]) -> str | None:
    """Why one of these Q-switch flags does nothing under --qswitch_rule `rule`, or None."""
    for flag in sorted(flags):
        rules = RULE_FLAGS.get(flag)
        if rules is not None and rule not in rules:
            return f"--{flag} does nothing with --qswitch_rule {rule} and is refused; valid for: {', '.join(rules)}"
    return None


def variant_name(cfg: dict[str, Any]) -> str:
    """A run without --name is named by its collection options that differ from the defaults ("uniform H=5",
    "softmax temperature=0.5 entropy"), so variants of one method never pool as seeds; "None" if there are none."""
    # the squashing's default follows the method and policy architecture
    defaults = Config(**{k: cfg[k] for k in ("method", "policy_architecture") if k in cfg}).to_dict()
    parts = []
    for flag in ("qswitch_rule", *VARIANT_FLAGS[1:], *RECORDED_FLAGS):
        value = cfg.get(flag, BEFORE_THE_FLAG.get(flag, defaults[flag]))
        if value == defaults[flag]:
            continue
        short = flag.removeprefix("qswitch_").removeprefix("mtlevy_")
        parts.append({"qswitch_rule": str(value), "qswitch_entropy": "entropy", "qswitch_mixture": "own-mixture",
                      "policy_sampling_freq": f"H={value}",
                      "multihead_double_tanh": "double_tanh" if value else "single_tanh",
                      "collect_single_tanh": "single_tanh_collection"}.get(flag, f"{short}={value}"))
    return " ".join(parts) or "None"


def env_option_error(env: str, task_name: str | None, sparse_tasks: Sequence[int]) -> str | None:
    """Why --task_name / --sparse_tasks does not apply to this env, or None."""
    if env not in ENVS:
        return None
    options = ENVS[env].options
    for flag, value in (("task_name", task_name), ("sparse_tasks", sparse_tasks)):
        if value and flag not in options:
            takers = [name for name, entry in ENVS.items() if flag in entry.options]
            return f"--{flag} does nothing for {env} and is refused; valid for: {', '.join(takers)}"
    return None
