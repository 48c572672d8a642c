"""A sweep as a file (`python -m qmp.sweep --file sweeps/paper/mt10.toml ...`): envs, seeds, methods with their
own run.py flags, the job's resources and what a run costs. Read strictly: an unknown key, a method or env that
does not exist, or a value of the wrong type is a one-line error naming it and the valid choices.

    envs = ["MetaWorldMT10-v2"]
    seeds = [0, 1, 2, 3, 4]
    flags = ""                                     # run.py flags for every run (shell words)

    [methods]                                      # method = its own run.py flags
    dnc_sac = ""
    mtsac = "--policy_architecture multihead --Q_architecture multihead"

    [resources]                                    # defaults of --timeout_min, --cpus_per_task, --mem_gb
    cpus_per_task = 1

    [cost]                                         # measured (benchmarks/sweep_cost.py), for people
    cpu_hours_per_run = { dnc_sac = 120.0, mtsac = 150.0 }
"""

from __future__ import annotations

import shlex
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from qmp.cli import ConfigError
from qmp.environments import ENVS
from qmp.methods import METHODS

# Flags the sweep sets itself: given again, two runs could share (and clobber) one run directory.
RESERVED = ("--env", "--seed", "--log_dir", "--run_dir", "--snapshot_dir")
TOP = ("envs", "seeds", "flags", "methods", "resources", "cost")
RESOURCES = {"timeout_min": int, "cpus_per_task": int, "mem_gb": float, "gpus_per_node": int}
COST_PER_METHOD = ("cpu_hours_per_100k_env_steps", "cpu_hours_per_run", "memory_gb_per_run")
COST = ("measured", "env_steps_per_run", *COST_PER_METHOD)


@dataclass(frozen=True)
class SweepFile:
    """What a sweep file asks for; `methods` maps each method to its own run.py flags."""

    path: Path
    envs: list[str]
    seeds: list[int]
    flags: list[str]
    methods: dict[str, list[str]]
    resources: dict[str, float] = field(default_factory=dict)
    cost: dict[str, Any] = field(default_factory=dict)


def _choices(bad: str, what: str, valid: Any, where: str = "") -> str:
    return f"unknown {what} {bad!r}{where}; valid: {', '.join(valid)}"


def _check_keys(table: dict[str, Any], valid: Any, where: str) -> None:
    for key in table:
        if key not in valid:
            raise ConfigError(_choices(key, "key", valid, where))


def _words(value: Any, where: str) -> list[str]:
    """Shell words of a flags string, none of them a flag the sweep sets."""
    if not isinstance(value, str):
        raise ConfigError(f"{where} must be a string of run.py flags, got {value!r}")
    try:
        words = shlex.split(value)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}: {value!r}") from exc
    for word in words:
        if word.split("=")[0] in RESERVED:
            raise ConfigError(f"{word.split('=')[0]} in {where} is set by the sweep for every run; "
                              "use envs and seeds instead")
    return words


def _table(record: dict[str, Any], key: str) -> dict[str, Any]:
    value = record.get(key, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a table ([{key}]), got {value!r}")
    return value


def parse_sweep(record: dict[str, Any], path: Path) -> SweepFile:
    """A parsed TOML document as a SweepFile; ConfigError (one line) on anything unknown or malformed."""
    _check_keys(record, TOP, "")
    envs, seeds = record.get("envs"), record.get("seeds")
    if not isinstance(envs, list) or not envs or not all(isinstance(e, str) for e in envs):
        raise ConfigError(f"envs must be a non-empty list of env names, got {envs!r}")
    for env in envs:
        if env not in ENVS:
            raise ConfigError(_choices(env, "env", ENVS))
    if not isinstance(seeds, list) or not seeds or not all(type(s) is int and s >= 0 for s in seeds):
        raise ConfigError(f"seeds must be a non-empty list of integers >= 0, got {seeds!r}")
    methods = _table(record, "methods")
    if not methods:
        raise ConfigError(f"[methods] is missing or empty; valid methods: {', '.join(METHODS)}")
    for method in methods:
        if method not in METHODS:
            raise ConfigError(_choices(method, "method", METHODS, " in [methods]"))
    resources = _table(record, "resources")
    _check_keys(resources, RESOURCES, " in [resources]")
    for key, value in resources.items():
        kind = RESOURCES[key]
        if type(value) not in (int, kind) or not (value >= 0 if key == "gpus_per_node" else value > 0):
            raise ConfigError(f"[resources] {key} must be a positive {kind.__name__}, got {value!r}")
    cost = _table(record, "cost")
    _check_keys(cost, COST, " in [cost]")
    for key in COST_PER_METHOD:
        per_method = cost.get(key, {})
        if not isinstance(per_method, dict):
            raise ConfigError(f"[cost] {key} must be a table of method = number, got {per_method!r}")
        for method in per_method:
            if method not in methods:
                raise ConfigError(_choices(method, "method", methods, f" in [cost] {key} (not in [methods])"))
    return SweepFile(path, envs, seeds, _words(record.get("flags", ""), "flags"),
                     {m: _words(f, f"[methods] {m}") for m, f in methods.items()}, dict(resources), dict(cost))


def load_sweep(path: str | Path) -> SweepFile:
    """Read and check a sweep file; every error is one line starting with the file's path."""
    path = Path(path)
    try:
        record = tomllib.loads(path.read_text())
    except OSError as exc:
        raise ConfigError(f"--file {path}: cannot read it ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc
    try:
        return parse_sweep(record, path)
    except ConfigError as exc:
        raise ConfigError(f"{path}: {exc}") from exc
