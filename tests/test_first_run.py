"""What a first run shows: the env's main metric on the console, a per-task summary, curves, and a progress
total that matches what the run really collects."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import pytest

from qmp.environments.base import MultiTaskSpec
from qmp.logger import ProgressSink, headline_columns
from qmp.results import load_run
from qmp.run_dir import read_status
from qmp.summary import main as summary_main
from qmp.summary import rises, summary_table
from tests.helpers import tiny_flags, train

ROOT = Path(__file__).resolve().parents[1]
PENDULUMS = "examples.pendulum_tasks:pendulums"


def fake_run(run_dir: Path, method: str, returns: list[tuple[float, float]], main_metric: str = "return") -> Path:
    """A run directory of two tasks whose eval returns are `returns` (one pair per evaluation, every 2nd epoch)."""
    run_dir.mkdir(parents=True)
    (run_dir / "config.json").write_text(json.dumps({
        "method": method, "env": "pendulums", "name": "None", "seed": 0,
        "resolved": {"task_names": ["a", "b"], "main_metric": main_metric}}))
    lines = ["epoch,env_steps,eval/return,eval/a/return,eval/b/return"]
    for k, (a, b) in enumerate(returns):
        lines.append(f"{2 * k},{2000 * (k + 1)},{(a + b) / 2},{a},{b}")
        lines.append(f"{2 * k + 1},{2000 * (k + 1) + 1000},,,")
    (run_dir / "progress.csv").write_text("\n".join(lines) + "\n")
    return run_dir


def test_summary_table_shows_first_and_last_evaluation_per_task_and_the_mean(tmp_path: Path) -> None:
    up = load_run(fake_run(tmp_path / "up", "dnc_sac", [(-1500, -1300), (-900, -700), (-150, -110)]))
    flat = load_run(fake_run(tmp_path / "flat", "qmp_dnc", [(-1500, -1300), (-1490, -1320), (-1510, -1290)]))
    table = summary_table([("dnc_sac", up), ("qmp_dnc", flat)], "return")
    lines = table.splitlines()
    assert lines[0] == "eval/return per task, first -> last evaluation"
    assert lines[1].split() == ["task", "dnc_sac", "qmp_dnc"]
    assert lines[3].split() == ["a", "-1500", "->", "-150", "-1500", "->", "-1510"]
    assert lines[5].split() == ["mean", "-1400", "->", "-130", "-1400", "->", "-1400"]
    assert lines[6].split() == ["env", "steps", "2,000", "->", "6,000", "2,000", "->", "6,000"]
    assert rises(up, "return") and not rises(flat, "return")


def test_summary_cli_writes_curves_into_each_run_and_refuses_what_is_not_a_run(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    runs = [fake_run(tmp_path / m, m, [(-1500, -1300), (-300, -200)]) for m in ("dnc_sac", "qmp_dnc")]
    assert summary_main([*map(str, runs), "--compare", str(tmp_path / "both.png")]) == 0
    assert "eval/return per task" in capsys.readouterr().out
    for path in [*(run / "curves.png" for run in runs), tmp_path / "both.png"]:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert summary_main([str(tmp_path)]) == 2
    assert f"{tmp_path} is not a run directory" in capsys.readouterr().err


def test_the_console_shows_the_envs_main_metric_and_never_a_negative_time_left() -> None:
    out = io.StringIO()
    sink = ProgressSink(total_steps=2000, start_steps=0, n_epochs=3, headline=headline_columns("return"),
                        stream=out, every_s=0.0)
    for epoch in range(3):
        sink.advance(1000)  # one epoch more than the total: the estimate must not go below zero
        sink.log(epoch, {"collect/success": 0.0, "collect/return": -900.0 + epoch,
                         **({"eval/return": -500.0} if epoch == 1 else {})})
    lines = out.getvalue().splitlines()
    assert "collect/return -900.00" in lines[0] and "eval/return -500.00" in lines[1]
    assert not any("success" in line for line in lines)
    assert lines[-1].endswith("| 0m00s left")


def test_a_spec_refuses_an_unknown_main_metric() -> None:
    with pytest.raises(ValueError, match="unknown main_metric 'reward'; valid: paper_success, success, return"):
        MultiTaskSpec("x", ("a",), 10, 0.0, lambda *_: None, main_metric="reward")


@pytest.mark.parametrize("env,flags", [
    ("ToyReach-v0", tiny_flags(4, 20)),
    ("JacoReachMT5-v1", [*tiny_flags(5, 200), "--min_buffer_size", "300", "--batch_size", "600"]),
])
def test_the_planned_total_is_what_the_run_collects(env: str, flags: list[str], tmp_path: Path) -> None:
    """The progress total (and so the time left) counts the warm-up cycle, which collects more than the others."""
    from qmp.config import Config
    from qmp.environments import ENVS
    from qmp.settings import ScheduleSettings

    method = "qmp_dnc"
    rows = train(method, env, tmp_path, *flags)
    record = json.loads((tmp_path / "config.json").read_text())
    cfg = Config(**{k: v for k, v in record.items() if k in Config.__dataclass_fields__})
    tasks = len(record["resolved"]["task_names"])
    planned = ScheduleSettings.of(cfg, tasks).planned_steps(tasks, cfg.n_epochs)
    assert float(rows[-1]["env_steps"]) == planned == read_status(tmp_path).env_steps
    assert record["resolved"]["main_metric"] == "paper_success" and env in ENVS


def test_make_runs_first_run_trains_both_methods_and_ends_with_a_summary(tmp_path: Path) -> None:
    """The first run, shortened: both runs finish, the table and the pictures are there."""
    done = subprocess.run([sys.executable, "-m", "examples.first_run", "--epochs", "5", "--out", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    out = done.stdout
    assert "eval/return per task, first -> last evaluation" in out
    for task in ("pendulum-g5", "pendulum-g9.81", "pendulum-g15", "mean"):
        assert any(line.startswith(task) for line in out.splitlines()), task
    assert "[dnc_sac] epoch" in out and "[qmp_dnc] epoch" in out  # progress lines (not a terminal)
    for method in ("dnc_sac", "qmp_dnc"):
        assert (tmp_path / method / "curves.png").stat().st_size > 0
        assert json.loads((tmp_path / method / "config.json").read_text())["resolved"]["main_metric"] == "return"
    assert (tmp_path / "comparison.png").stat().st_size > 0
