"""benchmarks/reproduction.sh validates every run line with the current CLI before a batch starts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BATCHES = {"jaco_separated": 2, "jaco_parameters": 2, "jaco_parameters_double_tanh": 2,  # batch -> runs per seed
           "jaco_parameters_collect_single_tanh": 1, "maze_parameters": 2, "maze_parameters_double_tanh": 2,
           "maze_parameters_collect_single_tanh": 1}


def check(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "benchmarks/reproduction.sh", "check", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHON": sys.executable, **env}, timeout=120)


@pytest.mark.parametrize("batch", sorted(BATCHES))
def test_every_batch_parses_with_the_current_cli(batch: str) -> None:
    result = check(batch, "0", "3")
    assert result.returncode == 0, result.stderr
    assert f"{2 * BATCHES[batch]} run lines of {batch} are valid" in result.stdout


def test_a_bad_run_line_fails_the_check() -> None:
    result = check("jaco_separated", "0", EPOCHS="many")
    assert result.returncode != 0
    assert "many" in result.stderr


def test_a_queue_checks_the_lines_of_every_batch() -> None:
    result = check("jaco_parameters_double_tanh", "1", "2", "+", "jaco_separated", "2", "+", "maze_parameters")
    assert result.returncode == 0, result.stderr
    # 2 seeds x 2 methods, then 1 x 2, then the default seeds 0 and 1 x 2
    assert "10 run lines of jaco_parameters_double_tanh + jaco_separated + maze_parameters are valid" in result.stdout
    for bad in (["+", "jaco_separated"], ["jaco_separated", "0", "+"], ["jaco_separated", "+", "+", "maze_parameters"]):
        result = check(*bad)
        assert result.returncode == 2 and "a '+' with no batch beside it" in result.stderr, bad
    result = check("jaco_separated", "+", "maze_everything", "1")
    assert result.returncode == 2 and "unknown batch 'maze_everything'" in result.stderr


def test_a_queue_runs_its_batches_in_order_in_one_pool_of_lanes(tmp_path: Path) -> None:
    """Two lanes, three runs of 2 s each: the third (the second batch's) starts when a lane frees, not when the
    whole first batch has ended."""
    queue = ("jaco_parameters_double_tanh", "1", "+", "jaco_parameters_collect_single_tanh")
    result, runs = run_batch(tmp_path, "now + 60 seconds", ["2"], queue, FAKE_SECONDS="2")
    assert result.returncode == 0, result.stderr
    started = [line for line in runs if line.startswith("started")]
    assert len(started) == 3
    assert all("--seed 1" in line and "--name params_double_tanh " in line + " " for line in started[:2])
    assert "--seed 2" in started[2] and "--collect_single_tanh true" in started[2]
    assert sum(line.startswith("exit 0") for line in result.stdout.splitlines()) == 3


def test_an_unknown_batch_is_refused_with_the_valid_ones() -> None:
    result = check("jaco_everything", "0")
    assert result.returncode == 2
    assert "unknown batch 'jaco_everything'" in result.stderr and "jaco_parameters" in result.stderr


# A stand-in interpreter: `run.py ...` becomes a run that notes its arguments, then waits until SIGTERM, which it
# answers as run.py does (after its checkpoint): exit 128 + 15. Anything else goes to the real interpreter.
FAKE_PYTHON = """#!/usr/bin/env bash
if [ "$1" = run.py ]; then
  shift
  echo "started $*" >> "$FAKE_LOG"
  sleep "${{FAKE_SECONDS:-120}}" & trap 'kill $!; echo "SIGTERM $*" >> "$FAKE_LOG"; exit 143' TERM
  wait
  exit 0
fi
exec {real} "$@"
"""


def run_batch(tmp_path: Path, until: str, seeds: list[str], queue: tuple[str, ...] = ("jaco_separated",),
              **env: str) -> tuple[subprocess.CompletedProcess, list[str]]:
    fake, log = tmp_path / "python", tmp_path / "runs.log"
    fake.write_text(FAKE_PYTHON.format(real=sys.executable))
    fake.chmod(0o755)
    env = {**os.environ, "PYTHON": str(fake), "FAKE_LOG": str(log), "UNTIL": until, "MIN_LEFT_S": "6",
           "LOG_DIR": str(tmp_path / "runs"), "RESULTS_DIR": str(tmp_path / "kept"), **env}
    result = subprocess.run(["bash", "benchmarks/reproduction.sh", *queue, *seeds], cwd=ROOT,
                            capture_output=True, text=True, env=env, timeout=120)
    return result, log.read_text().splitlines() if log.exists() else []


def test_until_stops_the_running_lines_with_sigterm_and_starts_no_more(tmp_path: Path) -> None:
    import time

    start = time.monotonic()
    result, runs = run_batch(tmp_path, "now + 20 seconds", ["0", "1"])
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - start < 60  # not the stand-in's 120 s: the deadline ended the runs
    started = [line for line in runs if line.startswith("started")]
    assert len(started) == 2 and all("--seed 0" in line for line in started)  # the 2 lanes took seed 0's pair
    assert sorted(line.replace("started", "SIGTERM") for line in started) == sorted(
        line for line in runs if line.startswith("SIGTERM"))
    out = result.stdout.splitlines()
    assert sum(line.startswith("stopped at UNTIL") and "--seed 0" in line for line in out) == 2
    assert sum(line.startswith("not started") and "--seed 1" in line for line in out) == 2


@pytest.mark.parametrize("until, why", [("soonish", "not a time"), ("now + 2 seconds", "less than MIN_LEFT_S=6 s")])
def test_a_bad_or_too_close_until_is_refused_before_any_run(tmp_path: Path, until: str, why: str) -> None:
    result, runs = run_batch(tmp_path, until, ["0"])
    assert result.returncode == 2 and why in result.stderr and until in result.stderr
    assert runs == [] and not (tmp_path / "runs").exists()


def test_a_clock_time_already_past_today_means_tomorrow() -> None:
    import datetime as dt

    now = dt.datetime.now()
    until = (now - dt.timedelta(minutes=2)).strftime("%H:%M")
    result = check("maze_parameters", "0", UNTIL=until)
    assert result.returncode == 0, result.stderr
    stop = dt.datetime.strptime(result.stderr.split("runs stop at ")[1].strip(), "%Y-%m-%d %H:%M:%S")
    assert dt.timedelta(hours=23) < stop - now < dt.timedelta(hours=24)


def test_keep_takes_finished_runs_and_refreshes_kept_ones_but_waits_for_a_new_partial_one(tmp_path: Path) -> None:
    """A new seed stopped half-way would cut its group's curves at its length: it waits until it is done. (The last
    run found has no selection log: keep must not stop there, before it rewrites the configs' paths.)"""
    logs, kept = tmp_path / "runs", tmp_path / "kept"

    def run(name: str, state: str, steps: int) -> Path:
        run_dir = logs / "JacoReachMT5-v1" / "dnc_sac" / "paper" / name
        run_dir.mkdir(parents=True)
        (run_dir / "config.json").write_text('{"seed": 0}\n')
        (run_dir / "progress.csv").write_text(f"epoch,env_steps\n0,{steps}\n")
        (run_dir / "status.json").write_text(f'{{\n "epoch": 1,\n "state": "{state}"\n}}\n')
        (run_dir / "checkpoint.pt").write_bytes(b"not kept")
        return run_dir

    run("seed0", "done", 1000)
    run("seed1", "running", 500)
    extended = run("seed2", "running", 800)
    kept_before = kept / "JacoReachMT5-v1" / "dnc_sac" / "paper" / "seed2"
    kept_before.mkdir(parents=True)
    (kept_before / "progress.csv").write_text("epoch,env_steps\n0,400\n")

    def keep(**env: str) -> subprocess.CompletedProcess:
        return subprocess.run(["bash", "benchmarks/reproduction.sh", "keep"], cwd=ROOT, capture_output=True, text=True,
                              env={**os.environ, "LOG_DIR": str(logs), "RESULTS_DIR": str(kept), **env}, timeout=60)

    result = keep()
    assert result.returncode == 0, result.stderr
    paper = kept / "JacoReachMT5-v1" / "dnc_sac" / "paper"
    assert sorted(p.name for p in paper.iterdir()) == ["seed0", "seed2"]
    assert "not kept yet, not done (KEEP_PARTIAL=1 keeps it):" in result.stderr and "seed1" in result.stderr
    assert sorted(p.name for p in (paper / "seed0").iterdir()) == ["config.json", "progress.csv"]  # no checkpoint
    assert (paper / "seed2" / "progress.csv").read_text() == (extended / "progress.csv").read_text()  # refreshed
    assert keep(KEEP_PARTIAL="1").returncode == 0
    assert (paper / "seed1" / "progress.csv").is_file()
    # seed2 restarted from scratch (its checkpoint lost): the longer kept copy stays until the new run passes it
    (extended / "progress.csv").write_text("epoch,env_steps\n")
    result = keep()
    assert result.returncode == 0 and "kept copy is longer" in result.stderr and "seed2" in result.stderr
    assert (paper / "seed2" / "progress.csv").read_text() == "epoch,env_steps\n0,800\n"
    (extended / "progress.csv").write_text("epoch,env_steps\n0,200\n1,400\n")
    assert keep().returncode == 0 and (paper / "seed2" / "progress.csv").read_text().endswith("1,400\n")
