"""benchmarks/reproduction.sh validates every run line with the current CLI before a batch starts."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BATCHES = ["jaco_separated", "jaco_parameters", "jaco_parameters_double_tanh", "maze_parameters"]


def check(*args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", "benchmarks/reproduction.sh", "check", *args], cwd=ROOT, capture_output=True,
                          text=True, env={**os.environ, "PYTHON": sys.executable, **env}, timeout=120)


@pytest.mark.parametrize("batch", BATCHES)
def test_every_batch_parses_with_the_current_cli(batch: str) -> None:
    result = check(batch, "0", "3")
    assert result.returncode == 0, result.stderr
    assert f"4 run lines of {batch} are valid" in result.stdout


def test_a_bad_run_line_fails_the_check() -> None:
    result = check("jaco_separated", "0", EPOCHS="many")
    assert result.returncode != 0
    assert "many" in result.stderr


def test_an_unknown_batch_is_refused_with_the_valid_ones() -> None:
    result = check("jaco_everything", "0")
    assert result.returncode == 2
    assert "unknown batch 'jaco_everything'" in result.stderr and "jaco_parameters" in result.stderr
