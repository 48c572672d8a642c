"""`python run.py <method> --env=<EnvName> [flags]` (or `qmp ...` once installed): the original QMP command line.

Flags are validated before any simulator (or torch) is imported or any file is written; a bad value
prints one line on stderr and exits with code 2. Other exit codes (docs/reliability.md): 3 = a NaN/inf
stopped training, 4 = a checkpoint cannot be read, written or does not match the run, 128 + N = stopped
by signal N after writing a checkpoint (run the same command again to resume).
"""

from __future__ import annotations

import sys
from pathlib import Path

from qmp.cli import ConfigError, garage_only_warnings, parse_args, reading_notes, validate
from qmp.config import Config
from qmp.environments import ENVS
from qmp.faults import EXIT_BAD_INPUT
from qmp.methods import METHODS
from qmp.run_dir import CONFIG, RunDirError, read_config


def resume_config(argv: list[str]) -> Config:
    """`run.py resume --snapshot_dir DIR`: the saved config of DIR, resumed in place."""
    if "--snapshot_dir" not in " ".join(argv):
        raise ConfigError("resume needs --snapshot_dir DIR (a run directory holding config.json)")
    import argparse

    parser = argparse.ArgumentParser(prog="run.py resume")
    parser.add_argument("method")
    parser.add_argument("--snapshot_dir", required=True)
    args, _ = parser.parse_known_args(argv)
    if not (Path(args.snapshot_dir) / CONFIG).exists():
        raise ConfigError(f"--snapshot_dir {args.snapshot_dir}: no config.json there; "
                          "valid: a run directory written by run.py")
    try:
        saved = read_config(Path(args.snapshot_dir))
    except RunDirError as exc:
        raise ConfigError(f"--snapshot_dir {args.snapshot_dir}: cannot read config.json ({exc})") from exc
    fields = {k: v for k, v in saved.items() if k in Config.__dataclass_fields__}
    fields.update(run_dir=args.snapshot_dir, overwrite=False)
    try:
        cfg = Config(**fields)
    except TypeError as exc:
        raise ConfigError(f"--snapshot_dir {args.snapshot_dir}: config.json is not a qmp config ({exc})") from exc
    validate(cfg, list(METHODS))
    return cfg


def main(argv: list[str]) -> int:
    try:
        cfg = resume_config(argv) if argv[:1] == ["resume"] else parse_args(argv, list(METHODS), list(ENVS))
    except ConfigError as exc:
        print(f"run.py: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    for message in [*garage_only_warnings(argv), *reading_notes(cfg)]:
        print(f"run.py: warning: {message}", file=sys.stderr)
    return train_to_exit_code(cfg)


def train_to_exit_code(cfg: Config) -> int:
    """Run training; the faults of docs/reliability.md become one message and an exit code."""
    from qmp.checkpoint import CheckpointError
    from qmp.faults import EXIT_CHECKPOINT, EXIT_NON_FINITE, NonFiniteError, StopRequested
    from qmp.launch import train

    try:
        run_dir = train(cfg)
    except ConfigError as exc:  # found once the env is built: a custom env's task count, a factory that fails
        print(f"run.py: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except StopRequested as exc:
        print(f"run.py: {exc}", file=sys.stderr)
        return 128 + exc.signum
    except NonFiniteError as exc:
        print(f"run.py: error: {exc}; training stopped, the last good checkpoint is kept", file=sys.stderr)
        return EXIT_NON_FINITE
    except CheckpointError as exc:
        print(f"run.py: error: {exc}", file=sys.stderr)
        return EXIT_CHECKPOINT
    except OSError as exc:  # e.g. progress.csv on a full or read-only disk
        print(f"run.py: error: I/O error: {exc}; the last checkpoint is kept", file=sys.stderr)
        return EXIT_CHECKPOINT
    print(f"Results in {run_dir} (progress.csv, tb/, checkpoint.pt)")
    return 0


def entry() -> None:
    """The `qmp` console command of `pip install .`."""
    sys.exit(main(sys.argv[1:]))
