"""Restructuring the code must not change what a run computes: the same command gives a bit-identical
progress.csv (except the wall-clock `time/*` columns) at BASELINE and at the working tree.

BASELINE is the last commit whose behaviour is the reference. A change that is *meant* to alter what
runs compute (a fix, a new default) moves BASELINE to the commit that makes it, in the same commit.
The baseline's code is taken with `git archive` into a temporary directory and run with this
interpreter, so both sides use the same packages and the same CPU.
"""

from __future__ import annotations

import csv
import subprocess
import sys
import tarfile
from io import BytesIO
from pathlib import Path

import pytest

from tests.helpers import tiny_flags

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "cf81708c8784168989f4d6e673e5e56c526b408b"
PARAMETERS = ["--policy_architecture", "multihead", "--Q_architecture", "multihead"]
COMMANDS = {
    "qmp_dnc": ["qmp_dnc", "--env=ToyReach-v0", *tiny_flags(4, 20), "--n_epochs", "3"],
    "qmp_uds_dnc": ["qmp_uds_dnc", "--env=ToyReach-v0", *tiny_flags(4, 20), "--n_epochs", "3",
                    "--sharing_quantile", "0.5"],
    # the squashing is explicit: its multihead default changed on purpose (one tanh, then the original's two)
    "mtsac": ["mtsac", "--env=ToyReach-v0", *tiny_flags(4, 20), "--n_epochs", "3", *PARAMETERS,
              "--multihead_double_tanh", "false"],
    "mtsac_double_tanh": ["mtsac", "--env=ToyReach-v0", *tiny_flags(4, 20), "--n_epochs", "3", *PARAMETERS,
                          "--multihead_double_tanh", "true"],
    "qmp_sac_double_tanh": ["qmp_sac", "--env=ToyReach-v0", *tiny_flags(4, 20), "--n_epochs", "3", *PARAMETERS,
                            "--multihead_double_tanh", "true"],
    "dnc_kl": ["dnc_sac", "--env=ToyReach-v0", *tiny_flags(4, 20), "--n_epochs", "3", "--kl_coeff", "0.01",
               "--sampling_type", "i+j"],
    "jaco_qmp": ["qmp_dnc", "--env=JacoReachMT5-v1", *tiny_flags(5, 200), "--n_epochs", "2",
                 "--min_buffer_size", "100"],
}


@pytest.fixture(scope="module")
def baseline_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The BASELINE commit's files, unpacked (no checkout of the working tree is touched)."""
    shallow = subprocess.run(["git", "rev-parse", "--is-shallow-repository"], cwd=ROOT, capture_output=True, text=True)
    if shallow.returncode != 0 or shallow.stdout.strip() == "true":
        pytest.skip("needs the repository's history (this is not a git clone, or a shallow one)")
    try:
        archive = subprocess.run(["git", "archive", "--format=tar", BASELINE], cwd=ROOT, capture_output=True,
                                 check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        stderr = getattr(exc, "stderr", b"") or b""
        pytest.fail(f"cannot read baseline commit {BASELINE[:10]} with git archive ({exc}; {stderr.decode().strip()}): "
                    "this test needs the repository's history (not a shallow clone)")
    target = tmp_path_factory.mktemp("baseline")
    with tarfile.open(fileobj=BytesIO(archive.stdout)) as tar:
        tar.extractall(target, filter="data")
    return target


def run_at(tree: Path, argv: list[str], run_dir: Path) -> list[dict[str, str]]:
    done = subprocess.run([sys.executable, "run.py", *argv, "--run_dir", str(run_dir)], cwd=tree, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    with open(run_dir / "progress.csv", newline="") as f:
        return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in csv.DictReader(f)]


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_same_command_same_progress_as_the_baseline(name: str, baseline_tree: Path, tmp_path: Path) -> None:
    before = run_at(baseline_tree, COMMANDS[name], tmp_path / "baseline")
    after = run_at(ROOT, COMMANDS[name], tmp_path / "now")
    assert len(before) == len(after) > 0
    assert list(before[0]) == list(after[0]), "the columns of progress.csv changed"
    for epoch, (old, new) in enumerate(zip(before, after, strict=True)):
        changed = {k: (old[k], new[k]) for k in old if old[k] != new[k]}
        assert not changed, f"epoch {epoch}: {dict(list(changed.items())[:5])}"
