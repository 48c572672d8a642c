"""Reliability (docs/reliability.md): kill/resume exactness, stop signals, NaN/inf, unstable simulators,
unwritable disks, bad checkpoints. Everything runs on the toy env; the subprocess tests are the only
way to test SIGKILL and real signal delivery."""

from __future__ import annotations

import csv
import errno
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import qmp
import qmp.checkpoint as checkpoint_mod
import qmp.command as cli
from qmp.build import build
from qmp.checkpoint import CHECKPOINT_NAME, load_checkpoint
from qmp.cli import parse_args
from qmp.environments import ENVS, make_spec
from qmp.environments.toy import ToyReachTask
from qmp.faults import EXIT_CHECKPOINT, EXIT_NON_FINITE, NonFiniteError, StopRequested
from qmp.learning.sac import MultiTaskSAC
from qmp.logger import Logger, read_complete_rows
from qmp.loop import Cursor, check_finite
from qmp.methods import METHODS
from qmp.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
TOY = "ToyReach-v0"
# 4 epochs x 3 cycles of 20 steps per task, 40 batched updates per cycle: ~1.5 s of training
FLAGS = ["--env=ToyReach-v0", "--n_epochs", "4", "--steps_per_epoch", "3", "--snapshot_gap", "1", "--seed", "7",
         "--num_evaluation_episodes", "4", "--hidden_sizes", "32", "32"]


# ----------------------------------------------------------------------------------- helpers
def rows_of(run_dir: Path) -> list[dict[str, str]]:
    with open(run_dir / "progress.csv", newline="") as f:
        return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in csv.DictReader(f)]


def assert_same_state(a: Any, b: Any, where: str = "agent") -> None:
    """Bit-identical nested state (tensors with torch.equal, arrays with array_equal)."""
    if isinstance(a, torch.Tensor):
        assert isinstance(b, torch.Tensor) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, np.ndarray):
        assert np.array_equal(a, b), where
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same_state(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same_state(x, y, f"{where}[{i}]")
    else:
        assert a == b, where


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def launch(args: list[str], **env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "run.py", *args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1", **env})


# `python -c CRASH_IN_CHECKPOINT_RENAME N run.py ARGS`: run.py, but os._exit(99) in place of the N-th rename of
# a checkpoint temp file onto checkpoint.pt, i.e. a death after the temp file is fully written and before the
# rename: the worst moment for a SIGKILL.
CRASH_IN_CHECKPOINT_RENAME = f"""
import os, runpy, sys
crash_at, real_replace, renames = int(sys.argv.pop(1)), os.replace, [0]
def replace(src, dst, *args, **kwargs):
    if os.path.basename(dst) == {CHECKPOINT_NAME!r}:
        renames[0] += 1
        if renames[0] == crash_at:
            os._exit(99)
    return real_replace(src, dst, *args, **kwargs)
os.replace = replace
sys.argv.pop(0)
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def crash_in_checkpoint_rename(args: list[str], nth: int) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", CRASH_IN_CHECKPOINT_RENAME, str(nth), "run.py", *args], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for_new_checkpoint(proc: subprocess.Popen, path: Path, timeout: float = 60.0) -> bool:
    """Block until `path` is (re)written after now; False if the process ended first."""
    before = path.stat().st_mtime_ns if path.exists() else 0
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if path.exists() and path.stat().st_mtime_ns != before:
            return True
        time.sleep(0.005)
    raise AssertionError("no checkpoint written in time")


def tb_scalars(run_dir: Path, tag: str) -> list[tuple[int, float]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tb"))
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]


def toy_cfg(run_dir: Path, *flags: str, method: str = "dnc_sac") -> Any:
    return parse_args([method, *FLAGS, "--run_dir", str(run_dir), *flags], list(METHODS), list(ENVS))


# ------------------------------------------------------------------------ exactness (subprocess)
@pytest.mark.parametrize("method", ["dnc_sac", "qmp_dnc"])
def test_killed_and_resumed_run_is_bit_identical(method: str, tmp_path: Path) -> None:
    """SIGKILL inside a checkpoint write, SIGKILL at random moments, SIGTERM; then the same command
    (or `run.py resume`) until it finishes: same parameters, progress.csv rows and TensorBoard scalars."""
    rng = random.Random(int(os.environ.get("QMP_TEST_SEED", time.time_ns() % 10_000)))
    reference, split = tmp_path / "reference", tmp_path / "split"
    args = [method, *FLAGS, "--snapshot_interval_s", "0"]  # a checkpoint after every cycle
    done = subprocess.run([sys.executable, "run.py", *args, "--run_dir", str(reference)], cwd=ROOT, capture_output=True,
                          text=True)
    assert done.returncode == 0, done.stderr

    cmd = [*args, "--run_dir", str(split)]
    ckpt = split / CHECKPOINT_NAME
    # 1. killed between writing the temp file and the rename of its 4th checkpoint
    crashed = crash_in_checkpoint_rename(cmd, 4)
    assert crashed.wait(timeout=120) == 99
    assert (split / (CHECKPOINT_NAME + ".tmp")).exists()
    # saves: epoch 0 after cycles 1 and 2, end of epoch 0, then epoch 1 after cycle 1 (crashed): the 3rd survives
    intact = load_checkpoint(ckpt)
    assert (intact["epoch"], intact["partial"]["cycle"]) == (1, 0)
    # 2. SIGKILL at random moments after a checkpoint write (in the next cycle, or during a write)
    kills = 0
    for _ in range(2):
        proc = launch(cmd)
        if wait_for_new_checkpoint(proc, ckpt):
            time.sleep(rng.uniform(0.0, 0.15))
            proc.send_signal(signal.SIGKILL)
            kills += proc.wait(timeout=30) == -signal.SIGKILL
    assert kills >= 1
    # 3. SIGTERM: checkpoint and exit within seconds with a message on how to resume
    proc = launch(cmd)
    if wait_for_new_checkpoint(proc, ckpt):
        sent = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
        if proc.returncode != 0:  # 0 only if the run finished before the signal arrived
            assert proc.returncode == 128 + signal.SIGTERM, err
            # well inside Slurm's default KillWait (30 s); under load the final checkpoint write alone can take 5 s
            assert time.monotonic() - sent < 20.0
            assert "SIGTERM" in err and "resume --snapshot_dir" in err and "same command" in err
    # 4. resume until finished, the last time with `run.py resume --snapshot_dir`
    for attempt in range(5):
        final = [sys.executable, "run.py", *(cmd if attempt % 2 else ["resume", "--snapshot_dir", str(split)])]
        done = subprocess.run(final, cwd=ROOT, capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        if load_checkpoint(ckpt)["epoch"] == 4:
            break

    ref_state, split_state = load_checkpoint(reference / CHECKPOINT_NAME), load_checkpoint(ckpt)
    assert_same_state(ref_state["agent"], split_state["agent"])
    assert_same_state(ref_state["buffer"], split_state["buffer"], "buffer")
    assert rows_of(split) == rows_of(reference) and len(rows_of(split)) == 4
    tag = "train/qf1_loss"
    assert (tb_scalars(split, tag) == tb_scalars(reference, tag)
            and [s for s, _ in tb_scalars(split, tag)] == [0, 1, 2, 3])
    if METHODS[method].qswitch:
        assert (split / "qswitch_selection.jsonl").read_text() == (reference / "qswitch_selection.jsonl").read_text()


# --------------------------------------------------------------------- signals (in-process)
def poison_update(monkeypatch: pytest.MonkeyPatch, at_call: int, action: Any) -> None:
    """Run `action(metrics)` right after the `at_call`-th gradient update (1-based)."""
    original, calls = MultiTaskSAC.update, [0]

    def update(self: MultiTaskSAC, *args: Any, **kwargs: Any) -> dict[str, torch.Tensor]:
        metrics = original(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == at_call:
            action(metrics)
        return metrics

    monkeypatch.setattr(MultiTaskSAC, "update", update)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGUSR1])
def test_signal_mid_cycle_checkpoints_and_resumes_exactly(sig: int, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """A signal between two gradient steps of a cycle: checkpoint, StopRequested, exact resume."""
    before = signal.getsignal(sig)  # SIG_IGN for SIGINT when the suite runs in a background job
    reference = cli.train_to_exit_code(toy_cfg(tmp_path / "ref", "--n_epochs", "2", method="qmp_dnc"))
    assert reference == 0
    with monkeypatch.context() as patch:
        poison_update(patch, 150, lambda _: os.kill(os.getpid(), sig))  # epoch 1, cycle 0, 31st update
        with pytest.raises(StopRequested) as stopped:
            qmp.launch.train(toy_cfg(tmp_path / "split", "--n_epochs", "2", method="qmp_dnc"))
    assert stopped.value.signum == sig and "resume" in str(stopped.value)
    state = load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)
    assert (state["epoch"], state["partial"]["cycle"], state["partial"]["cycle_updates"]) == (1, 0, 30)
    assert signal.getsignal(sig) == before  # the handler in place before the run is restored
    assert cli.train_to_exit_code(toy_cfg(tmp_path / "split", "--n_epochs", "2", method="qmp_dnc")) == 0
    assert_same_state(load_checkpoint(tmp_path / "ref" / CHECKPOINT_NAME)["agent"],
                      load_checkpoint(tmp_path / "split" / CHECKPOINT_NAME)["agent"])
    assert rows_of(tmp_path / "split") == rows_of(tmp_path / "ref")


# --------------------------------------------------------------------------------- NaN / inf
class NaNToyTask(ToyReachTask):
    """Returns a NaN observation on its 70th step (epoch 1: 60 steps per task and epoch)."""

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.calls = getattr(self, "calls", 0) + 1
        obs, reward, terminated, truncated, info = super().step(action)
        return (obs * np.nan if self.calls == 70 else obs), reward, terminated, truncated, info


def patch_toy_task(monkeypatch: pytest.MonkeyPatch, task: int, cls: type) -> None:
    """Make task `task` of the toy env an instance of `cls` (same goal)."""
    import qmp.launch as launch

    def spec_with(name: str, **kwargs: Any) -> Any:
        spec = make_spec(name, **kwargs)
        make = spec.make_task_env

        def factory(i: int, seed: int, evaluation: bool) -> Any:
            env = make(i, seed, evaluation)
            return cls(env.goal) if i == task and not evaluation else env

        import dataclasses

        return dataclasses.replace(spec, make_task_env=factory)

    monkeypatch.setattr(launch, "make_spec", spec_with)


def test_nan_observation_stops_with_task_and_epoch_and_keeps_last_checkpoint(tmp_path: Path,
                                                                             monkeypatch: pytest.MonkeyPatch,
                                                                             capsys: pytest.CaptureFixture) -> None:
    patch_toy_task(monkeypatch, 2, NaNToyTask)
    cfg = toy_cfg(tmp_path, "--min_buffer_size", "10")  # no long warm-up: 20 steps per task and cycle
    assert cli.train_to_exit_code(cfg) == EXIT_NON_FINITE
    err = capsys.readouterr().err
    assert "non-finite observation in task reach-90deg at epoch 1" in err and "last good checkpoint" in err
    kept = load_checkpoint(tmp_path / CHECKPOINT_NAME)
    replay = kept["buffer"]  # every s' is a row's obs or a final in the side store
    assert kept["epoch"] == 1 and np.isfinite(replay["data"]["obs"].numpy()).all()
    assert np.isfinite(replay["finals"].numpy()).all()
    assert [r["epoch"] for r in rows_of(tmp_path)] == ["0"]


def test_nan_loss_and_parameter_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def poison(metrics: dict[str, torch.Tensor]) -> None:
        metrics["qf2_loss"][1] = float("inf")

    poison_update(monkeypatch, 150, poison)  # epoch 1 (120 updates per epoch)
    cfg = toy_cfg(tmp_path)
    with pytest.raises(NonFiniteError, match=r"loss/metric 'qf2_loss' in task reach-45deg at epoch 1"):
        qmp.launch.train(cfg)
    kept = load_checkpoint(tmp_path / CHECKPOINT_NAME)  # epoch 0's checkpoint is the last one
    assert (kept["epoch"], kept["partial"]["cycle"]) == (1, 0)
    assert all(torch.isfinite(v).all() for v in kept["agent"]["policy"].values())

    parts = build(Settings.from_config(cfg, 4), make_spec(TOY), torch.device("cpu"))
    cursor = Cursor(parts.spec.num_tasks, epoch=5)
    check_finite(parts, cursor)
    with torch.no_grad():
        next(parts.agent.critic.parameters())[3, 0, 0] = float("nan")
    with pytest.raises(NonFiniteError, match=r"parameter 'critic\.\S+' in task reach-135deg at epoch 5"):
        check_finite(parts, cursor)


# -------------------------------------------------------------------------- unstable simulator
class UnstableToyTask(ToyReachTask):
    """Goes 'unstable' on the 7th step of every episode: terminated, info['unstable'] (as Jaco does)."""

    def reset(self, **kwargs: Any) -> tuple[np.ndarray, dict]:
        self.t = 0
        return super().reset(**kwargs)

    def step(self, action: np.ndarray) -> tuple[np.ndarray, float, bool, bool, dict]:
        self.t += 1
        obs, reward, _, truncated, info = super().step(action)
        unstable = self.t == 7
        return obs, (-100.0 if unstable else reward), unstable, truncated, {**info, "unstable": unstable}

    def get_state(self) -> dict[str, Any]:
        return {**super().get_state(), "t": self.t}

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        self.t = state["t"]


def test_unstable_episodes_end_are_counted_and_training_goes_on(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    patch_toy_task(monkeypatch, 0, UnstableToyTask)
    assert cli.train_to_exit_code(toy_cfg(tmp_path, "--n_epochs", "2")) == 0
    rows = rows_of(tmp_path)
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    for row in rows:
        assert float(row["stability/reach-45deg/collect_unstable_episodes"]) == 0
    # epoch 0: 100 warm-up + 2 x 20 steps = 20 episodes of 7 steps; after epoch 1 (60 more steps): 200 // 7
    counts = [float(r["stability/reach-0deg/collect_unstable_episodes"]) for r in rows]
    assert counts[0] == 140 // 7 and sum(counts) == (140 + 60) // 7  # every unstable step ended an episode
    assert float(rows[-1]["grad_steps"]) > 0


# ------------------------------------------------------------------ disk full / unwritable
def test_full_disk_while_checkpointing_is_a_clear_error_and_keeps_the_previous(tmp_path: Path,
                                                                               monkeypatch: pytest.MonkeyPatch,
                                                                               capsys: pytest.CaptureFixture) -> None:
    original, calls = torch.save, [0]

    def save(obj: Any, f: Any, *args: Any, **kwargs: Any) -> None:
        calls[0] += 1
        if calls[0] == 2:
            f.write(b"partial bytes")
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        original(obj, f, *args, **kwargs)

    monkeypatch.setattr(checkpoint_mod.torch, "save", save)
    assert cli.train_to_exit_code(toy_cfg(tmp_path)) == EXIT_CHECKPOINT
    err = capsys.readouterr().err.strip()
    assert ("cannot write checkpoint" in err and "No space left on device (ENOSPC)" in err
            and "previous checkpoint is intact" in err)
    assert len(err.splitlines()) == 1
    assert load_checkpoint(tmp_path / CHECKPOINT_NAME)["epoch"] == 1  # the first checkpoint survived
    assert not (tmp_path / (CHECKPOINT_NAME + ".tmp")).exists()


# ------------------------------------------------------------------------ bad checkpoints
@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("finished")
    assert cli.train_to_exit_code(toy_cfg(run_dir, "--n_epochs", "1")) == 0
    return run_dir


def _rerun_is_refused(run_dir: Path, cfg_flags: list[str], expected: str, capsys: pytest.CaptureFixture,
                      method: str = "dnc_sac") -> None:
    files = {p: digest(p) for p in run_dir.iterdir() if p.is_file()}
    assert cli.train_to_exit_code(toy_cfg(run_dir, "--n_epochs", "2", *cfg_flags, method=method)) == EXIT_CHECKPOINT
    err = capsys.readouterr().err
    assert expected in err and len(err.strip().splitlines()) == 1, err
    assert {p: digest(p) for p in run_dir.iterdir() if p.is_file()} == files  # nothing overwritten


@pytest.mark.parametrize(
    ("flags", "method", "expected"),
    [
        (["--hidden_sizes", "16", "16"], "dnc_sac", "hidden_sizes: checkpoint [32, 32] != run [16, 16]"),
        ([], "qmp_dnc", "method: checkpoint 'dnc_sac' != run 'qmp_dnc'"),
        (["--policy_architecture", "multihead", "--Q_architecture", "multihead"], "mtsac", "policy_architecture"),
    ],
)
def test_checkpoint_of_another_run_is_refused(finished_run: Path, flags: list[str], method: str, expected: str,
                                              capsys: pytest.CaptureFixture) -> None:
    _rerun_is_refused(finished_run, flags, expected, capsys, method)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "version", "env", "format"])
def test_corrupted_or_foreign_checkpoint_is_refused(finished_run: Path, damage: str, tmp_path: Path,
                                                    capsys: pytest.CaptureFixture) -> None:
    import shutil

    run_dir = tmp_path / "copy"
    shutil.copytree(finished_run, run_dir)
    path = run_dir / CHECKPOINT_NAME
    data = path.read_bytes()
    if damage == "truncate":
        path.write_bytes(data[: len(data) // 2])
        expected = "cannot read checkpoint"
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
        expected = "corrupted or not a checkpoint"
    else:
        state = torch.load(path, weights_only=False)
        if damage == "version":
            state["code_version"], expected = ("0.0.1",
                                               f"code version: checkpoint '0.0.1' != installed qmp '{qmp.__version__}'")
        elif damage == "env":
            state["meta"]["env"], expected = "JacoReachMT5-v1", "env: checkpoint 'JacoReachMT5-v1' != run 'ToyReach-v0'"
        else:
            state["format_version"], expected = 1, "has format 1"
        torch.save(state, path)
    _rerun_is_refused(run_dir, [], expected, capsys)


# -------------------------------------------------------------------------------- logs
def test_torn_progress_row_and_tensorboard_are_not_duplicated_on_resume(tmp_path: Path) -> None:
    logger = Logger.for_run(tmp_path)
    for epoch in range(3):
        logger.log(epoch, {"train/x": float(epoch)})
    logger.close()
    with open(tmp_path / "progress.csv", "a") as f:
        f.write("1")  # a kill mid-append of epoch 10's row would leave "1" (looks like epoch 1)
    assert [r["epoch"] for r in read_complete_rows(tmp_path / "progress.csv")] == ["0", "1", "2"]
    logger = Logger.for_run(tmp_path, resume_epoch=2)  # the checkpoint was at epoch 2
    logger.log(2, {"train/x": 20.0})
    logger.close()
    assert [(r["epoch"], r["train/x"]) for r in read_complete_rows(tmp_path / "progress.csv")] == [
        ("0", "0.0"), ("1", "1.0"), ("2", "20.0")]
    assert tb_scalars(tmp_path, "train/x") == [(0, 0.0), (1, 1.0), (2, 20.0)]
    Logger.for_run(tmp_path, resume_epoch=0).close()  # killed before the first checkpoint: start clean
    assert read_complete_rows(tmp_path / "progress.csv") == []
    logger = Logger.for_run(tmp_path, resume_epoch=0)
    logger.log(0, {"train/x": 5.0})
    logger.close()
    assert tb_scalars(tmp_path, "train/x") == [(0, 5.0)]


def test_checkpoint_holds_the_full_state(finished_run: Path) -> None:
    state = load_checkpoint(finished_run / CHECKPOINT_NAME)
    assert set(state["agent"]) == {"policy", "critic", "critic_target", "log_alpha", "policy_opt", "critic_opt",
                                   "alpha_opt"}
    assert set(state["rng"]) >= {"python", "numpy", "torch"}
    assert state["buffer"]["size"] > 0 and state["code_version"] == qmp.__version__
    assert len(state["env"]["envs"]) == 4 and "rng" in state["env"]["envs"][0]  # task env RNGs
    assert json.loads((finished_run / "config.json").read_text())["code_version"] == qmp.__version__


def test_progress_lines_when_the_console_is_not_a_terminal() -> None:
    """In a log file (Slurm, CI, `make run > log`) progress is a line every `every_s` seconds and at the last
    epoch: env steps, the main metric, the speed and the time left; on a terminal it is a bar instead."""
    import io

    from qmp.logger import ProgressSink

    out = io.StringIO()
    sink = ProgressSink(total_steps=4000, start_steps=0, n_epochs=4, stream=out, every_s=0.0)
    for epoch in range(4):
        sink.advance(1000)
        sink.log(epoch, {"collect/success": 0.1, **({"eval/paper_success": 0.5} if epoch % 2 == 0 else {})})
    lines = out.getvalue().splitlines()
    assert len(lines) == 4 and sink.bar is None
    assert lines[0].startswith("epoch 1/4 | 1,000 env steps | eval/paper_success 0.50 | ")
    assert "collect/success 0.10" in lines[1] and lines[-1].startswith("epoch 4/4 | 4,000 env steps")
    assert all(line.endswith(" left") and " steps/s" in line for line in lines)
    quiet = io.StringIO()
    sink = ProgressSink(total_steps=4000, start_steps=0, n_epochs=4, stream=quiet, every_s=3600.0)
    for epoch in range(4):
        sink.log(epoch, {})
    assert quiet.getvalue().splitlines() == [quiet.getvalue().splitlines()[-1]]  # only the last epoch's line
    assert quiet.getvalue().startswith("epoch 4/4")
