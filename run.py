"""python run.py <method> --env=<EnvName> [flags]: the original QMP command line.

Flags are validated before any simulator is imported or any file is written; a bad value prints one
line on stderr and exits with code 2.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

from qmp.config import GARAGE_ONLY_FLAGS, Config, ConfigError, parse_args
from qmp.environments import ENVS
from qmp.methods import METHODS


def resume_config(argv: list[str]) -> Config:
    """`run.py resume --snapshot_dir DIR`: the saved config of DIR, resumed in place."""
    if "--snapshot_dir" not in " ".join(argv):
        raise ConfigError("resume needs --snapshot_dir DIR (a run directory holding config.json)")
    import argparse

    parser = argparse.ArgumentParser(prog="run.py resume")
    parser.add_argument("method")
    parser.add_argument("--snapshot_dir", required=True)
    args, _ = parser.parse_known_args(argv)
    path = Path(args.snapshot_dir) / "config.json"
    if not path.exists():
        raise ConfigError(f"--snapshot_dir {args.snapshot_dir}: no config.json there; valid: a run directory written by run.py")
    saved = json.loads(path.read_text())
    fields = {k: v for k, v in saved.items() if k in Config.__dataclass_fields__}
    fields.update(run_dir=args.snapshot_dir, overwrite=False)
    return Config(**fields)


def main(argv: list[str]) -> int:
    try:
        cfg = resume_config(argv) if argv[:1] == ["resume"] else parse_args(argv, list(METHODS), list(ENVS))
    except ConfigError as exc:
        print(f"run.py: error: {exc}", file=sys.stderr)
        return 2
    for flag in GARAGE_ONLY_FLAGS:
        if any(arg.startswith(f"--{flag}") for arg in argv):
            warnings.warn(f"--{flag} only meant something inside garage; it is accepted and ignored", stacklevel=1)

    from qmp.experiments import run

    run_dir = run(cfg)
    print(f"Results in {run_dir} (progress.csv, tb/, checkpoint.pt)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
