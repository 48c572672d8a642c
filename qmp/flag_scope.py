"""Where each flag applies. A flag given where it would do nothing is refused, never ignored.

The original run.py added its method-specific flags only for the experiment names that used them (so it
rejected, say, `dnc_sac --policy_sampling_freq 2` as an unknown argument), and it parsed a few flags that
nothing ever read. We keep every flag's spelling, and refuse both kinds with the reason.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from typing import Any

from qmp.environments import ENVS
from qmp.methods import METHODS

QMP_METHODS = tuple(name for name, m in METHODS.items() if m.qswitch)
UDS_METHODS = tuple(name for name, m in METHODS.items() if m.sharing)
DNC_NAMED = tuple(name for name in METHODS if "dnc" in name or "decaf" in name)  # the original's test of the name
SAC_FAMILY = tuple(name for name, m in METHODS.items() if m.sac_family)  # the original's SAC class and MoPSAC

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
    "use_pc_grad": SAC_FAMILY,
    "min_task_probs": ("qmp_mcal",),
    "skip_alpha_pc_grad": SAC_FAMILY,
}

# method flags the original parsed for every method, though only the methods above read them
PARSED_EVERYWHERE = {"use_pc_grad", "skip_alpha_pc_grad"}

# flag -> (what it needs to do anything, whether the config has it): refused when given without it
NEEDS: dict[str, tuple[str, Callable[[Any], bool]]] = {
    "skip_alpha_pc_grad": ("--use_pc_grad true", lambda cfg: cfg.use_pc_grad),
    "regularize_representation": ("--kl_coeff > 0 (it replaces DnC's KL)", lambda cfg: any(cfg.kl_coeff)),
    "stagewise": ("--kl_coeff > 0 (it masks DnC's penalty)", lambda cfg: any(cfg.kl_coeff)),
    "distillation_n_epochs": ("--distillation_period", lambda cfg: cfg.distillation_period is not None),
}

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
