"""One checkpoint format: a dict of state_dicts, counters and RNG states, written atomically.

The file is written to a temporary name, fsynced and renamed over the old one, so a crash at any
moment leaves either the previous checkpoint or the new one, never a torn file. Every way a
checkpoint can be unusable (unreadable, another format, env, method, architecture or code version)
raises `CheckpointError` with what does not match, before anything in the run directory is written.
"""

from __future__ import annotations

import errno
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

CHECKPOINT_NAME = "checkpoint.pt"
# 2: EpochProgress ("partial"); 3: unstable episodes from Episode records; 4: MujocoTaskEnv state;
# 5: the replay buffer stores each observation once (layout "step-major, obs once", plus its side store of final s')
FORMAT_VERSION = 5
REQUIRED_KEYS = ("meta", "code_version", "epoch", "agent", "env", "rng")


class CheckpointError(RuntimeError):
    """A checkpoint that cannot be read or written, or that does not belong to this run."""


def capture_rng() -> dict[str, Any]:
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _fsync_dir(directory: Path) -> None:
    dir_fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Atomic write: temp file in the same directory, fsync, rename, fsync the directory.

    An OSError (read-only or full disk, quota) becomes a CheckpointError; the temp file is removed
    and the previous checkpoint is left untouched.
    """
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with open(tmp, "wb") as f:
            torch.save({"format_version": FORMAT_VERSION, **state}, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as exc:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass
        reason = errno.errorcode.get(exc.errno or 0, "error")
        kept = "the previous checkpoint is intact" if path.exists() else "no earlier checkpoint exists"
        raise CheckpointError(f"cannot write checkpoint {path}: {exc.strerror or exc} ({reason}); {kept}. "
                              "Free space or fix the permissions of the run directory, "
                              "then run the same command again") from exc


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Memory-mapped: a resumed run copies the saved replay buffers into its own without holding a
    second in-memory copy (an MT50 buffer is several GB)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False, mmap=True)
    except Exception as exc:  # torch raises several types for a damaged file
        raise CheckpointError(f"cannot read checkpoint {path} (corrupted or not a checkpoint): "
                              f"{type(exc).__name__}: {exc}; "
                              "it was left as it is: move it away to start afresh, or use --overwrite true") from exc
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        found = state.get("format_version") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"checkpoint {path} has format {found!r}; this code reads format {FORMAT_VERSION}")
    missing = [k for k in REQUIRED_KEYS if k not in state]
    if missing:
        raise CheckpointError(f"checkpoint {path} is incomplete (missing {', '.join(missing)}); it was left as it is")
    return state


def check_compatible(meta: dict[str, Any], expected: dict[str, Any], path: Path, code_version: str | None = None,
                     expected_version: str | None = None, unrecorded_before: tuple[str, ...] = ()) -> None:
    """The checkpoint must come from the same code version, env, method, network shapes and variant. Keys in
    `unrecorded_before` that the checkpoint lacks are not compared: it was written before they were recorded."""
    wrong = [f"{k}: checkpoint {meta.get(k)!r} != run {v!r}" for k, v in expected.items()
             if meta.get(k) != v and not (k in unrecorded_before and k not in meta)]
    wrong += [f"{k}: checkpoint {v!r} != run default" for k, v in meta.items() if k not in expected]
    if expected_version is not None and code_version != expected_version:
        wrong.insert(0, f"code version: checkpoint {code_version!r} != installed qmp {expected_version!r}")
    if wrong:
        raise CheckpointError(f"checkpoint {path} does not match this run ({'; '.join(wrong)}); "
                              "nothing was overwritten: "
                              "use --overwrite true or another --run_dir")
