"""qmp.plot on hand-written run directories: grouping, seed alignment, table numbers, PNGs and errors."""

from __future__ import annotations

import csv
import json
import struct
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from qmp import figure_style, paper_figure, plot, qswitch_selection, results, smoothing
from qmp.methods import METHODS
from tests.test_results import JACO, MAZE, dnc_evals, write_paper_run

ENV = "ToyEnv-v0"
TASKS = ["reach", "push"]
COLUMNS = ["epoch", "env_steps", "eval/success", "eval/stages_completed", "eval/reach/success", "eval_mixture/success",
           "train/qf_loss"]


def write_run(run_dir: Path, method: str, seed: int, rows: list[dict[str, float | str]], name: str = "None",
              selection: list[list[list[int]]] | None = None) -> Path:
    """A run directory as qmp/launch.py leaves it; missing keys of a row become empty cells."""
    run_dir.mkdir(parents=True)
    config = {"env": ENV, "method": method, "name": name, "seed": seed,
              "resolved": {"task_names": TASKS, "num_tasks": len(TASKS)}}
    (run_dir / "config.json").write_text(json.dumps(config))
    with open(run_dir / "progress.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, COLUMNS, restval="")
        writer.writeheader()
        writer.writerows(rows)
    if selection is not None:
        with open(run_dir / "qswitch_selection.jsonl", "w") as f:
            for epoch, counts in enumerate(selection):
                record = {"epoch": epoch, "env_steps": 100 * (epoch + 1), "tasks": TASKS, "counts": counts}
                f.write(json.dumps(record) + "\n")
    return run_dir


def epochs(n: int, evals: dict[int, tuple[float, float]]) -> list[dict[str, float | str]]:
    """n epochs of 100 env steps; eval columns only on the epochs in `evals` (epoch -> success, stages)."""
    rows: list[dict[str, float | str]] = []
    for epoch in range(n):
        row: dict[str, float | str] = {"epoch": epoch, "env_steps": 100 * (epoch + 1),
                                       "train/qf_loss": 1.0 / (epoch + 1)}
        if epoch in evals:
            success, stages = evals[epoch]
            row.update({"eval/success": success, "eval/stages_completed": stages, "eval/reach/success": success})
        rows.append(row)
    return rows


SELECTION = [[[10, 0], [0, 10]], [[6, 4], [1, 9]], [[2, 8], [0, 0]]]


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """qmp_dnc: 2 seeds evaluated at different env steps and of different lengths; dnc_sac: 1 seed; a named
    qmp_dnc run; a run that has not logged an epoch; and a stray directory that is not a run."""
    base = tmp_path / "runs"
    # seed 0 evaluates at 100, 300, 500, 600 env steps; seed 1 at 100, 300, 400
    write_run(base / ENV / "qmp_dnc" / "None" / "seed0", "qmp_dnc", 0,
              epochs(6, {0: (0.0, 1.0), 2: (0.2, 2.0), 4: (0.6, 2.0), 5: (0.8, 3.0)}), selection=SELECTION)
    write_run(base / ENV / "qmp_dnc" / "None" / "seed1", "qmp_dnc", 1,
              epochs(4, {0: (0.2, 0.0), 2: (0.4, 1.0), 3: (0.6, 1.0)}))
    dnc = epochs(3, {0: (0.1, 0.0), 2: (0.3, 0.0)})
    for row in dnc:
        row.pop("eval/stages_completed", None)
    write_run(base / ENV / "dnc_sac" / "None" / "seed0", "dnc_sac", 0, dnc)
    write_run(base / ENV / "qmp_dnc" / "big" / "seed0", "qmp_dnc", 0, epochs(2, {1: (1.0, 3.0)}), name="big")
    empty = base / ENV / "uds_dnc" / "None" / "seed0"
    empty.mkdir(parents=True)
    (empty / "config.json").write_text(json.dumps({"env": ENV, "method": "uds_dnc", "name": "None", "seed": 0}))
    (empty / "progress.csv").write_text("")
    (base / "notes").mkdir()
    (base / "notes" / "config.json").write_text("{}")  # no progress.csv: not a run
    return base


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert len(data) > 10_000
    return struct.unpack(">II", data[16:24])


def test_grouping_skips_empty_runs_and_orders_like_the_paper(root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    groups = results.group_runs(results.load_runs([root]))
    assert "has no epochs yet" in capsys.readouterr().err
    assert [(k.method, k.name, [r.seed for r in runs]) for k, runs in groups.items()] == [
        ("dnc_sac", "None", [0]), ("qmp_dnc", "None", [0, 1]), ("qmp_dnc", "big", [0])]
    labels = [k.label() for k in groups]
    assert labels == ["Separated", "Separated + QMP", "Separated + QMP [big]"]
    assert len(set(figure_style.group_colours(list(groups)).values())) == 3


def test_every_method_and_two_variants_get_distinct_colours() -> None:
    keys = [results.GroupKey(ENV, rank, method, "None") for rank, method in enumerate(METHODS)]
    keys += [results.GroupKey(ENV, 3, "qmp_dnc", "big"), results.GroupKey(ENV, 0, "sac", "small")]
    colours = figure_style.group_colours(keys)
    assert len(set(colours.values())) == len(keys)
    assert colours[keys[0]] == figure_style.group_colours(keys[:1])[keys[0]]  # a method keeps its colour across figures


def test_a_method_run_only_under_names_keeps_its_colour() -> None:
    unnamed = results.GroupKey(ENV, 3, "qmp_dnc", "None")
    first, second = results.GroupKey(ENV, 3, "qmp_dnc", "a"), results.GroupKey(ENV, 3, "qmp_dnc", "b")
    other_env = results.GroupKey("Other-v0", 3, "qmp_dnc", "b")
    method_colour = figure_style.group_colours([unnamed])[unnamed]
    assert figure_style.group_colours([first])[first] == method_colour
    colours = figure_style.group_colours([first, second, other_env])
    assert colours[first] == method_colour != colours[second] == colours[other_env]
    colours = figure_style.group_colours([first, unnamed])  # unnamed runs keep the method's colour
    assert colours[unnamed] == method_colour != colours[first]


def test_series_skips_empty_eval_cells(root: Path) -> None:
    run = results.load_run(root / ENV / "qmp_dnc" / "None" / "seed0")
    x, y = run.series("eval/success", "env_steps")
    np.testing.assert_array_equal(x, [100, 300, 500, 600])
    np.testing.assert_array_equal(y, [0.0, 0.2, 0.6, 0.8])
    assert run.series("eval_mixture/success", "env_steps")[0].size == 0
    assert run.last_value("env_steps") == 600


def test_seeds_are_interpolated_onto_their_common_range(root: Path) -> None:
    runs = results.group_runs(results.load_runs([root]))
    qmp_key = next(k for k in runs if k.method == "qmp_dnc" and k.name == "None")
    curve = results.group_curve(runs[qmp_key], "eval/success", "env_steps")
    assert curve is not None and curve.seeds == 2 and curve.cut
    # seed 1 ends at 400, where seed 0 is interpolated between 0.2 (300) and 0.6 (500)
    np.testing.assert_allclose(curve.x, [100, 300, 400])
    np.testing.assert_allclose(curve.mean, [0.1, 0.3, 0.5])
    np.testing.assert_allclose(curve.low, [0.0, 0.2, 0.4])
    np.testing.assert_allclose(curve.high, [0.2, 0.4, 0.6])
    np.testing.assert_allclose(curve.std, [0.1, 0.1, 0.1])
    assert results.group_curve(runs[qmp_key], "eval_mixture/success", "env_steps") is None


def test_smoothing_is_a_trailing_average() -> None:
    np.testing.assert_allclose(smoothing.smooth(np.array([0.0, 1.0, 2.0, 4.0]), 2), [0.0, 0.5, 1.5, 3.0])
    np.testing.assert_allclose(smoothing.smooth(np.array([0.0, 3.0, 6.0]), 5), [0.0, 1.5, 3.0])


def test_smoothing_over_a_span_counts_the_evaluations_inside_it() -> None:
    """A span of 60 averages the points less than 60 before each one: three where evaluations are 20 apart,
    only the point itself after a gap of 120 (a Maze panel is not smoothed where a Jaco panel is)."""
    x, y = np.array([0.0, 20.0, 40.0, 60.0, 180.0]), np.array([0.0, 1.0, 2.0, 4.0, 8.0])
    np.testing.assert_allclose(smoothing.smooth_span(x, y, 60.0), [0.0, 0.5, 1.0, 7 / 3, 8.0])
    np.testing.assert_allclose(smoothing.Smoothing(span=60.0)(x, y), [0.0, 0.5, 1.0, 7 / 3, 8.0])
    np.testing.assert_allclose(smoothing.Smoothing(3)(x, y), [0.0, 0.5, 1.0, 7 / 3, 14 / 3])
    np.testing.assert_array_equal(smoothing.NO_SMOOTHING(x, y), y)
    assert smoothing.Smoothing(span=60_000).describe() == "trailing average over 60k env steps"
    assert smoothing.Smoothing(3).describe("epochs") == "moving average of 3 epochs"
    assert smoothing.NO_SMOOTHING.describe() == ""
    assert smoothing.Smoothing(3).in_title(" ({})", "epochs") == " (moving average of 3 epochs)"
    assert smoothing.NO_SMOOTHING.in_title(" ({})") == ""
    with pytest.raises(ValueError, match="not both"):
        smoothing.Smoothing(3, span=60.0)


def test_aggregate_without_overlap_is_empty() -> None:
    early = (np.array([1.0, 2.0]), np.array([0.0, 0.0]))
    late = (np.array([3.0, 4.0]), np.array([1.0, 1.0]))
    assert results.aggregate([early, late]) is None
    assert results.aggregate([]) is None


def test_table_numbers(root: Path) -> None:
    groups = results.group_runs(results.load_runs([root]))
    table = results.format_table(groups, ["eval/success", "eval/stages_completed"])
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if "`" in line}
    # seed 0: mean(0.2, 0.6, 0.8) = 0.533; seed 1: mean(0.2, 0.4, 0.6) = 0.4 -> 0.467 +- 0.067 (ddof=0)
    # stages: 7/3 and 2/3 -> 1.5 +- 0.833
    assert rows["Separated + QMP (`qmp_dnc`)"] == (
        "| Separated + QMP (`qmp_dnc`) | 2 | 400–600 | 0.47 ± 0.07 | 1.50 ± 0.83 |")
    assert rows["Separated (`dnc_sac`)"].endswith("| 1 | 300 | 0.20 ± 0.00 | — |")
    assert rows["Separated + QMP [big] (`qmp_dnc`)"].endswith("| 1 | 200 | 1.00 ± 0.00 | 3.00 ± 0.00 |")
    assert table.startswith(f"### {ENV}\n")
    run = groups[next(k for k in groups if k.method == "qmp_dnc" and k.name == "None")][0]
    assert results.final_value(run, "eval/success") == pytest.approx((0.2 + 0.6 + 0.8) / 3)


def test_a_row_still_being_appended_is_ignored(root: Path) -> None:
    run_dir = root / ENV / "qmp_dnc" / "None" / "seed1"
    with open(run_dir / "progress.csv", "a") as f:
        f.write("4,5")  # epoch 4, env_steps cut from 500 to "5"
    run = results.load_run(run_dir)
    assert len(run.rows) == 4 and run.last_value("env_steps") == 400


def test_default_metrics_add_stages_only_when_some_run_has_them(root: Path, tmp_path: Path) -> None:
    assert results.default_metrics(results.load_runs([root])) == ["eval/success", "eval/stages_completed"]
    flat = write_run(tmp_path / "flat", "dnc_sac", 0, epochs(2, {0: (0.5, 0.0), 1: (0.5, 0.0)}))
    assert results.default_metrics(results.load_runs([flat])) == ["eval/success"]


def test_selection_fractions_and_own_policy_share() -> None:
    records = [{"epoch": e, "env_steps": 100 * (e + 1), "tasks": TASKS, "counts": c} for e, c in enumerate(SELECTION)]
    # last 2 epochs: task 0 row = [8, 12] -> [0.4, 0.6]; task 1 row = [1, 9] -> [0.1, 0.9]
    np.testing.assert_allclose(qswitch_selection.selection_fractions(records, 2), [[0.4, 0.6], [0.1, 0.9]])
    steps, own = qswitch_selection.own_policy_fractions(records)
    np.testing.assert_array_equal(steps, [100, 200, 300])
    np.testing.assert_allclose(own, [[1.0, 1.0], [0.6, 0.9], [0.2, np.nan]])


def test_cli_curves_and_table(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "curves.png"
    argv = [str(root), "--out", str(out), "--metric", "eval/success", "--metric", "eval/stages_completed",
            "--metric", "eval_mixture/success", "--smooth", "2", "--table"]
    assert plot.main(argv) == 0
    width, height = png_size(out)
    assert width > 2 * height  # one row of three panels
    captured = capsys.readouterr()
    assert "| Separated + QMP (`qmp_dnc`) | 2 |" in captured.out
    assert "cut at env_steps=400 " in captured.err
    assert plot.main([str(root), "--out", str(tmp_path / "std.png"), "--band", "std", "--x", "epoch"]) == 0
    png_size(tmp_path / "std.png")


def test_curves_title_names_the_smoothing_in_the_x_columns_units(root: Path, tmp_path: Path) -> None:
    groups = results.group_runs(results.load_runs([root]))
    by_epoch = plot.plot_curves(groups, ["eval/success"], "epoch", smoothing.Smoothing(span=3), "minmax",
                                tmp_path / "epoch.png")
    assert by_epoch.get_suptitle().endswith("min-max band, trailing average over 3 epoch)")
    by_steps = plot.plot_curves(groups, ["eval/success"], "env_steps", smoothing.Smoothing(span=60_000), "std",
                                tmp_path / "steps.png")
    assert by_steps.get_suptitle().endswith("\u00b1 std band, trailing average over 60k env steps)")
    plain = plot.plot_curves(groups, ["eval/success"], "env_steps", smoothing.NO_SMOOTHING, "std", tmp_path / "p.png")
    assert plain.get_suptitle().endswith("\u00b1 std band)")


def test_cli_heatmap(root: Path, tmp_path: Path) -> None:
    run_dir = root / ENV / "qmp_dnc" / "None" / "seed0"
    with open(run_dir / "qswitch_selection.jsonl", "a") as f:
        f.write('{"epoch": 3, "env_')  # a record still being written is skipped
    assert len(qswitch_selection.load_selection(run_dir)) == 3
    out = tmp_path / "heatmap.png"
    assert plot.main(["--heatmap", str(run_dir), "--out", str(out), "--last", "2", "--smooth", "2"]) == 0
    png_size(out)


def test_cli_refuses_two_smoothings(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "curves.png"
    assert plot.main([str(root), "--out", str(out), "--smooth", "3", "--smooth_steps", "60k"]) == 2
    assert "give --smooth 3 or --smooth_steps 60000, not both" in capsys.readouterr().err
    assert not out.exists()
    assert plot.main([str(root), "--out", str(out), "--smooth_steps", "200"]) == 0
    png_size(out)


def test_file_names_match_the_training_loop() -> None:
    """The hand-written run directories here use the names the training loop writes (qmp.run_dir owns them)."""
    from qmp import run_dir

    names = (run_dir.CONFIG, run_dir.PROGRESS, run_dir.QSWITCH_LOG)
    assert names == ("config.json", "progress.csv", "qswitch_selection.jsonl")
    assert (results.CONFIG, results.PROGRESS, qswitch_selection.QSWITCH_LOG) == names


@pytest.mark.parametrize(("argv", "message"), [
    (["{empty}", "--table"], "no run directory"),
    (["{root}", "--table", "--metric", "eval/sucess"], "starting with 'eval/': eval/stages_completed, eval/success"),
    (["{root}", "--table", "--metric", "eval/reach/sucess"], "eval/reach/success"),
    (["{root}", "--table", "--x", "env_step"], "env_steps"),
    (["{root}"], "nothing to do"),
    (["{root}/missing", "--table"], "does not exist"),
    (["--heatmap", "{root}/ToyEnv-v0/dnc_sac/None/seed0", "--out", "{empty}/h.png"], "only QMP methods"),
    (["--heatmap", "{root}/ToyEnv-v0/qmp_dnc/None/seed0"], "needs --out"),
    (["{root}", "--table", "--paper"], "'eval/paper_success' is in no progress.csv; columns starting with 'eval/'"),
    (["{root}", "--table", "--at", "500000"], "go with --paper"),
    (["{root}", "--table", "--prefix", "eval"], "go with --paper"),
    (["{root}", "--out", "{empty}/p.png", "--max_steps", "300k"], "go with --paper"),
    (["{root}", "--table", "--paper", "--max_steps", "300k"], "add --out"),
    (["{root}", "--paper", "--out", "{empty}/p.png", "--at", "5e5"], "add --table"),
    (["{root}", "--paper", "--out", "{empty}/p.png", "--metric", "eval/success"], "not --metric"),
    (["{root}", "--table", "--per_seed"], "--per_seed is a form of --table --paper"),
    (["{root}", "--selection"], "--selection is a table of its own"),
    (["{root}", "--table", "--paper", "--selection"], "--selection is a table of its own"),
    (["{root}", "--paper", "--out", "{empty}/p.png", "--per_seed"], "--per_seed is a form of --table --paper"),
])
def test_errors_are_one_line_with_exit_2(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        argv: list[str], message: str) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert plot.main([a.format(root=root, empty=empty) for a in argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("qmp.plot: error: ") and message in err[-1], err


def test_module_entry_point_exits_2(tmp_path: Path) -> None:
    result = subprocess.run([sys.executable, "-m", "qmp.plot", str(tmp_path), "--table"], capture_output=True,
                            text=True, cwd=Path(__file__).resolve().parents[1], timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no run directory" in result.stderr


# ---------------------------------------------------------------------------------------------- paper layout


@pytest.fixture
def paper_root(tmp_path: Path) -> Path:
    """Multistage Reacher: dnc_sac and qmp_dnc (with a mixture), 2 seeds each, to 600k env steps; Maze: two
    qmp_sac runs of different names, so their labels carry the name."""
    base = tmp_path / "paper"
    for seed in (0, 1):
        write_paper_run(base / f"dnc{seed}", JACO, "dnc_sac", seed, 6, dnc_evals([0.2, 0.4]))
        write_paper_run(base / f"qmp{seed}", JACO, "qmp_dnc", seed, 6, {e: [0.9, 1.0] for e in range(6)},
                        mixture={e: [1.0, 1.0] for e in range(6)})
    for name in ("None", "big"):
        write_paper_run(base / f"maze_{name}", MAZE, "qmp_sac", 0, 4, {e: [0.5, 0.7] for e in range(4)}, name=name)
    return base


def labelled_lines(ax: Any) -> dict[str, Any]:
    return {line.get_label(): line for line in ax.get_lines() if not line.get_label().startswith("_")}


def paper_markers(ax: Any) -> list[tuple[float, float, str]]:
    return sorted((float(line.get_xdata()[0]), float(line.get_ydata()[0]), line.get_color())
                  for line in ax.get_lines() if line.get_marker() == "x")


def test_paper_layout_one_panel_per_env_with_the_papers_values(paper_root: Path, tmp_path: Path) -> None:
    groups = results.group_runs(results.load_runs([paper_root]))
    out = tmp_path / "paper.png"
    fig = paper_figure.plot_paper(groups, out, prefixes=("eval", "eval_mixture"), reps=200)
    png_size(out)
    assert [ax.get_title() for ax in fig.axes] == [JACO, MAZE]
    jaco, maze = fig.axes
    lines = labelled_lines(jaco)
    assert sorted(lines) == ["Separated + QMP, mixture (n=2)", "Separated + QMP, own policy (n=2)",
                             "Separated, own policy (n=2)"]  # dnc_sac has no mixture
    separated = lines["Separated, own policy (n=2)"]
    qmp_own, qmp_mix = lines["Separated + QMP, own policy (n=2)"], lines["Separated + QMP, mixture (n=2)"]
    np.testing.assert_allclose(separated.get_xdata(), [1e5, 2e5, 4e5, 5e5, 6e5])
    np.testing.assert_allclose(separated.get_ydata(), [0.0, 0.3, 0.7, 0.7, 0.7])  # IQM over seeds x tasks
    np.testing.assert_allclose(qmp_own.get_ydata(), np.full(6, 0.95))
    assert qmp_mix.get_linestyle() == "--" and qmp_own.get_linestyle() == "-"
    assert qmp_mix.get_color() == qmp_own.get_color() != separated.get_color()
    assert len(jaco.collections) == 3  # one band per curve
    # the paper's values where it has them for the methods drawn, in the method's colour
    assert paper_markers(jaco) == sorted([(5e5, 0.65, separated.get_color()), (2e6, 0.80, separated.get_color()),
                                          (5e5, 0.97, qmp_own.get_color())])
    assert "paper (read off its figure)" in [t.get_text() for t in jaco.get_legend().get_texts()]
    # two names of one method: the name is added; the paper's marker is drawn once
    assert sorted(labelled_lines(maze)) == ["Parameters + QMP [big], own policy (n=1)",
                                            "Parameters + QMP, own policy (n=1)"]
    assert [(x, y) for x, y, _ in paper_markers(maze)] == [(4e6, 1.0)]
    assert jaco.get_ylim() == pytest.approx((-0.03, 1.03))


def test_paper_layout_one_prefix_and_unused_panels_removed(paper_root: Path, tmp_path: Path) -> None:
    for env in ("A-v0", "B-v0"):
        write_paper_run(paper_root / env, env, "mtsac", 0, 2, {0: [0.1, 0.2], 1: [0.3, 0.4]})
    groups = results.group_runs(results.load_runs([paper_root]))
    fig = paper_figure.plot_paper(groups, tmp_path / "four.png", reps=50)
    assert [ax.get_title() for ax in fig.axes] == ["A-v0", "B-v0", JACO, MAZE]  # 2 x 3 grid, 2 panels removed
    assert sorted(labelled_lines(fig.axes[2])) == ["Separated (n=2)", "Separated + QMP (n=2)"]
    assert paper_markers(fig.axes[0]) == [] and fig.axes[0].get_legend().get_texts()[0].get_text() == (
        "Parameters (MTSAC) (n=1)")
    # another score: no paper markers (the paper's values are paper_success)
    fig = paper_figure.plot_paper(groups, tmp_path / "strict.png", score="success", reps=50)
    assert all(paper_markers(ax) == [] for ax in fig.axes)
    np.testing.assert_allclose(labelled_lines(fig.axes[2])["Separated (n=2)"].get_ydata()[-1], 0.35)


def test_paper_layout_max_steps_ends_the_axis_and_drops_the_papers_later_values(paper_root: Path,
                                                                             tmp_path: Path) -> None:
    groups = results.group_runs(results.load_runs([paper_root]))
    fig = paper_figure.plot_paper(groups, tmp_path / "short.png", reps=50, max_steps=500_000)
    jaco, maze = fig.axes
    assert jaco.get_xlim() == (0, 500_000)
    assert [(x, y) for x, y, _ in paper_markers(jaco)] == [(5e5, 0.65), (5e5, 0.97)]  # not Separated's 2M value
    assert paper_markers(maze) == []  # the paper's Maze values are at 4M: no marker, no legend entry for them
    assert "paper (read off its figure)" not in [t.get_text() for t in maze.get_legend().get_texts()]
    assert "paper (read off its figure)" in [t.get_text() for t in jaco.get_legend().get_texts()]
    # mtsac's paper value is at 2M; Separated's at 500k are not drawn without Separated's runs
    write_paper_run(tmp_path / "mtsac", JACO, "mtsac", 0, 2, {0: [0.1, 0.2], 1: [0.3, 0.4]})
    groups = results.group_runs(results.load_runs([tmp_path / "mtsac"]))
    fig = paper_figure.plot_paper(groups, tmp_path / "mtsac.png", reps=50, max_steps=1_000_000)
    assert paper_markers(fig.axes[0]) == []
    assert "paper (read off its figure)" not in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def test_cli_paper_figure_and_table(paper_root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "paper.png"
    argv = [str(paper_root), "--paper", "--out", str(out), "--prefix", "eval", "eval_mixture", "--reps", "100",
            "--table", "--at", "500k", "2M"]
    assert plot.main(argv) == 0
    width, height = png_size(out)
    assert width > height  # two panels side by side
    table = capsys.readouterr().out
    assert "| method | seeds | env steps | own @500k | mixture @500k | paper @500k | own @2M |" in table
    rows = {line.split(" | ")[0].lstrip("| "): line for line in table.splitlines() if "`" in line}
    assert rows["Separated (`dnc_sac`)"].startswith(
        "| Separated (`dnc_sac`) | 2 | 600,000 | 0.70 [0.70, 0.70] | — | ~0.65 | — | — | ~0.80 |")
    assert rows["Separated + QMP (`qmp_dnc`)"].startswith(
        "| Separated + QMP (`qmp_dnc`) | 2 | 600,000 | 0.95 [0.95, 0.95] | 1.00 [1.00, 1.00] | ~0.97 | — | — | — |")
    # Maze: the two names of qmp_sac are two rows; the paper has nothing at 500k or 2M there
    assert rows["Parameters + QMP (`qmp_sac`)"].startswith(
        "| Parameters + QMP (`qmp_sac`) | 1 | 400,000 | — | — | — |")
    assert rows["Parameters + QMP [big] (`qmp_sac`)"].startswith(
        "| Parameters + QMP [big] (`qmp_sac`) | 1 | 400,000 |")


def test_cli_per_seed_table(paper_root: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert plot.main([str(paper_root), "--table", "--paper", "--per_seed", "--at", "100k", "300k"]) == 0
    rows = [line for line in capsys.readouterr().out.splitlines() if "`" in line]
    assert "| Separated (`dnc_sac`) | 1 | 0.00 | — |" in rows  # dnc_sac does not evaluate at 300k
    assert "| Separated + QMP (`qmp_dnc`) | 0 | 0.95 (1.00) | 0.95 (1.00) |" in rows
    assert "| Parameters + QMP [big] (`qmp_sac`) | 0 | 0.60 | 0.60 |" in rows  # no mixture logged: no brackets


def test_cli_selection_table(root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # SELECTION's last 2 epochs: counts [[8, 12], [1, 9]]; all 3: [[18, 12], [1, 19]]; the last alone: task 2 idle
    expected = {2: "| 1–2 | 0.40 | 0.90 | — |", 10: "| 0–2 | 0.60 | 0.95 | — |", 1: "| 2–2 | 0.20 | — | — |"}
    for last, cells in expected.items():
        assert plot.main([str(root), "--table", "--selection", "--last", str(last)]) == 0
        rows = [line for line in capsys.readouterr().out.splitlines() if "`" in line]
        assert rows == [f"| Separated + QMP (`qmp_dnc`) | 0 {cells}"]  # runs without a log have no row
    run = write_run(tmp_path / "rated" / ENV / "qmp_sac" / "None" / "seed3", "qmp_sac", 3, epochs(2, {}),
                    selection=[[[3, 1], [0, 4]], [[4, 0], [2, 2]]])
    log = run / "qswitch_selection.jsonl"
    records = [json.loads(line) | {"switch_rate": rate} for line, rate in
               zip(log.read_text().splitlines(), ([0.2, 0.4], [None, 0.6]), strict=True)]
    log.write_text("".join(json.dumps(record) + "\n" for record in records))
    assert plot.main([str(tmp_path / "rated"), "--table", "--selection"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if "`" in line)
    assert row == "| Parameters + QMP (`qmp_sac`) | 3 | 0–1 | 0.88 | 0.75 | 0.40 |"  # 7/8, 6/8; mean of 0.2, 0.4, 0.6
    config = json.loads((run / "config.json").read_text())
    del config["resolved"]  # an old config.json without task names, and no per-task column: the log's own names
    (run / "config.json").write_text(json.dumps(config))
    (run / "progress.csv").write_text("epoch,env_steps\n0,100\n1,200\n")
    assert plot.main([str(tmp_path / "rated"), "--table", "--selection"]) == 0
    assert f"| method | seed | epochs | {' | '.join(TASKS)} | switch rate |" in capsys.readouterr().out
    assert plot.main([str(root / ENV / "dnc_sac"), "--table", "--selection"]) == 2
    assert "no run below the given roots has a qswitch_selection.jsonl" in capsys.readouterr().err


def test_heatmap_title_names_the_variant(tmp_path: Path) -> None:
    """Two variants of one method (the study's params and params_double_tanh) have heatmaps told apart by title."""
    from qmp.heatmap import plot_heatmap

    named = write_run(tmp_path / "a", "qmp_sac", 1, epochs(3, {}), name="params", selection=SELECTION)
    plain = write_run(tmp_path / "b", "qmp_sac", 1, epochs(3, {}), selection=SELECTION)
    titles = [plot_heatmap(run, 2, smoothing.NO_SMOOTHING, tmp_path / f"{run.name}.png").get_suptitle()
              for run in (named, plain)]
    assert titles == [f"{ENV} qmp_sac [params] seed1", f"{ENV} qmp_sac seed1"]


def test_paper_panel_with_a_long_legend_puts_it_beside_the_axes(paper_root: Path, tmp_path: Path) -> None:
    """A legend of more than five entries would hide curves (a flat base line under it): it goes beside the panel;
    a short one stays inside."""
    for name in ("a", "b", "c"):
        write_paper_run(paper_root / f"dnc_{name}", JACO, "dnc_sac", 0, 2, dnc_evals([0.2, 0.4]), name=name)
    groups = results.group_runs(results.load_runs([paper_root]))
    jaco, maze = paper_figure.plot_paper(groups, tmp_path / "long.png", reps=50).axes
    assert len(jaco.get_legend().get_texts()) > paper_figure.LEGEND_INSIDE_MAX
    assert jaco.get_legend().get_bbox_to_anchor().x0 > jaco.bbox.x1  # right of the axes
    assert len(maze.get_legend().get_texts()) <= paper_figure.LEGEND_INSIDE_MAX
    assert maze.get_legend().get_bbox_to_anchor().x0 == pytest.approx(maze.bbox.x0)  # inside
