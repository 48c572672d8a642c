"""qmp.run_dir: the layout of a run directory, torn-line-safe readers, status.json and --overwrite."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qmp import run_dir as rd

ROOT = Path(__file__).resolve().parents[1]


def test_default_layout_and_explicit_run_dir() -> None:
    expected = Path("data/ToyReach-v0/qmp_dnc/None/seed3")
    assert rd.default_run_dir("data", "ToyReach-v0", "qmp_dnc", "None", 3) == expected
    assert rd.resolve_run_dir(None, "data", "E", "m", "x", 0) == Path("data/E/m/x/seed0")
    assert rd.resolve_run_dir("/my/run", "data", "E", "m", "x", 0) == Path("/my/run")


def test_progress_ignores_a_torn_last_row(tmp_path: Path) -> None:
    (tmp_path / rd.PROGRESS).write_text("epoch,train/x\n0,0.5\n1,1.5\n1")  # "1" of a row "10,..." cut by a kill
    progress = rd.read_progress(tmp_path)
    assert progress.columns == ["epoch", "train/x"]
    assert progress.rows == [{"epoch": "0", "train/x": "0.5"}, {"epoch": "1", "train/x": "1.5"}]
    assert progress.epochs == 2
    assert rd.read_complete_rows(tmp_path / rd.PROGRESS) == progress.rows


@pytest.mark.parametrize("text", [None, "", "epoch,train/x\n", "epoch,train/x"])
def test_empty_progress(tmp_path: Path, text: str | None) -> None:
    """No file, an empty one, a header only, and a header torn before its newline: no epochs."""
    if text is not None:
        (tmp_path / rd.PROGRESS).write_text(text)
    progress = rd.read_progress(tmp_path)
    assert progress.rows == [] and progress.epochs == 0
    assert progress.columns == (["epoch", "train/x"] if text == "epoch,train/x\n" else [])


def test_jsonl_ignores_a_torn_last_record_and_truncates_by_epoch(tmp_path: Path) -> None:
    path = tmp_path / rd.QSWITCH_LOG
    lines = [json.dumps({"epoch": e, "counts": [[e, 1], [2, 3]]}) + "\n" for e in range(4)]
    path.write_text("".join(lines) + '{"epoch": 4, "cou')
    assert [r["epoch"] for r in rd.read_jsonl(path)] == [0, 1, 2, 3]
    rd.truncate_jsonl(path, 2)
    assert path.read_text() == "".join(lines[:2])  # the kept lines as written; epochs 2, 3 and the torn one gone
    assert not path.with_name(path.name + rd.TMP_SUFFIX).exists()
    rd.truncate_jsonl(tmp_path / "missing.jsonl", 0)  # nothing to do
    assert not (tmp_path / "missing.jsonl").exists() and rd.read_jsonl(tmp_path / "missing.jsonl") == []


def test_a_broken_complete_jsonl_line_is_named(tmp_path: Path) -> None:
    path = tmp_path / rd.QSWITCH_LOG
    path.write_text('{"epoch": 0}\nnot json\n{"epoch": 2}\n')
    with pytest.raises(rd.RunDirError, match=r"qswitch_selection.jsonl:2 is not JSON"):
        rd.read_jsonl(path)


def test_config_round_trip_and_errors(tmp_path: Path) -> None:
    with pytest.raises(rd.RunDirError, match="cannot read"):
        rd.read_config(tmp_path)
    rd.write_config(tmp_path, {"env": "E", "seed": 1})
    assert rd.read_config(tmp_path) == {"env": "E", "seed": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == [rd.CONFIG]
    (tmp_path / rd.CONFIG).write_text("[1, 2]")
    with pytest.raises(rd.RunDirError, match="not hold a JSON object"):
        rd.read_config(tmp_path)


def test_status_round_trip(tmp_path: Path) -> None:
    assert rd.read_status(tmp_path) is None  # not started (or written before status.json existed)
    before = time.time()
    written = rd.write_status(tmp_path, epoch=3, n_epochs=10, env_steps=1200, state=rd.RUNNING, host="node7")
    read = rd.read_status(tmp_path)
    assert read == written
    assert read is not None
    assert (read.epoch, read.n_epochs, read.env_steps, read.state) == (3, 10, 1200, "running")
    assert read.extra == {"host": "node7"}
    assert before <= read.updated <= time.time() and not read.finished
    assert json.loads((tmp_path / rd.STATUS).read_text())["state"] == "running"  # plain JSON for humans and scripts
    done = rd.write_status(tmp_path, epoch=10, n_epochs=10, env_steps=4000, state=rd.DONE)
    assert rd.read_status(tmp_path) == done and done.finished and done.extra == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == [rd.STATUS]  # no .tmp left behind
    with pytest.raises(ValueError, match="state 'finished' is not one of"):
        rd.write_status(tmp_path, epoch=10, n_epochs=10, env_steps=4000, state="finished")
    assert rd.read_status(tmp_path) == done


def test_status_is_never_half_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A death between writing the temp file and the rename leaves the previous status.json whole."""
    first = rd.write_status(tmp_path, epoch=1, n_epochs=5, env_steps=100, state=rd.RUNNING)

    def die(src: object, dst: object) -> None:
        raise KeyboardInterrupt  # stands in for a kill at the worst moment

    monkeypatch.setattr(os, "replace", die)
    with pytest.raises(KeyboardInterrupt):
        rd.write_status(tmp_path, epoch=2, n_epochs=5, env_steps=200, state=rd.RUNNING)
    monkeypatch.undo()
    assert rd.read_status(tmp_path) == first
    assert json.loads((tmp_path / (rd.STATUS + rd.TMP_SUFFIX)).read_text())["epoch"] == 2  # only the temp file has it


@pytest.mark.parametrize("text", ['{"epoch": 3, "n_epo', "", '{"epoch": 3}', "[3]", '{"epoch": 1, "n_epochs": 2, '
                                  '"env_steps": 3, "state": "sleeping", "updated": 0}'])
def test_a_damaged_status_is_a_clear_error(tmp_path: Path, text: str) -> None:
    (tmp_path / rd.STATUS).write_text(text)
    with pytest.raises(rd.RunDirError, match="status.json"):
        rd.read_status(tmp_path)


def test_overwrite_clears_exactly_the_run_files(tmp_path: Path) -> None:
    run = tmp_path / "run"
    for name in (rd.TENSORBOARD, rd.VIDEOS):
        (run / name).mkdir(parents=True)
        (run / name / "inside").write_text("x")
    for name in (rd.CONFIG, rd.PROGRESS, rd.CHECKPOINT, rd.STATUS, rd.QSWITCH_LOG, rd.WANDB_RUN_ID,
                 rd.CHECKPOINT + rd.TMP_SUFFIX, rd.STATUS + rd.TMP_SUFFIX):
        (run / name).write_text("x")
    (run / "notes.md").write_text("mine")
    (run / "analysis").mkdir()
    (run / "analysis" / rd.PROGRESS).write_text("mine too")  # a run file's name, but not in the run's place
    everything = sorted(p.relative_to(run) for p in run.rglob("*"))

    assert rd.prepare_run_dir(run, "unused", "E", "m", "x", 0, overwrite=False) == run
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == everything  # without --overwrite nothing goes
    assert rd.prepare_run_dir(run, "unused", "E", "m", "x", 0, overwrite=True) == run
    assert sorted(p.relative_to(run) for p in run.rglob("*")) == [Path("analysis"), Path("analysis") / rd.PROGRESS,
                                                                   Path("notes.md")]


def test_prepare_creates_the_default_directory(tmp_path: Path) -> None:
    made = rd.prepare_run_dir(None, tmp_path, "E", "m", "None", 2, overwrite=True)
    assert made == tmp_path / "E" / "m" / "None" / "seed2" and made.is_dir() and list(made.iterdir()) == []


def test_imports_no_torch() -> None:
    code = "import sys, qmp.run_dir, qmp.results; assert 'torch' not in sys.modules, 'torch'"
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, capture_output=True)
