"""qmp.paper_results, qmp.paper_tables (and qmp.results) on hand-made scores and run directories whose answers
are worked out by hand: IQM, the stratified bootstrap, per-task score matrices, IQM curves, the paper's values,
the paper-comparison table and the per-seed table."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from qmp import paper_results, paper_tables, results
from qmp.methods import METHODS
from qmp.smoothing import Smoothing

JACO = "JacoReachMT5-v1"
MAZE = "MazeLarge-10-v0"
TASKS = ["t0", "t1"]
STEP = 100_000  # env steps per epoch of the synthetic runs


def write_paper_run(run_dir: Path, env: str, method: str, seed: int, n_epochs: int, own: dict[int, list[float]],
                    mixture: dict[int, list[float]] | None = None, name: str = "None", torn: str = "") -> Path:
    """A run directory with per-task columns: epoch e is at env steps STEP * (e + 1) and evaluates only if it is
    in `own` (epoch -> per-task paper_success v). Strict success is v / 2 and stages 3 v. `torn` is appended
    without a newline, like a row a running job is still writing."""
    run_dir.mkdir(parents=True)
    config = {"env": env, "method": method, "name": name, "seed": seed,
              "resolved": {"task_names": TASKS, "num_tasks": len(TASKS)}}
    (run_dir / "config.json").write_text(json.dumps(config))
    columns = ["epoch", "env_steps", "eval/success", "eval/paper_success", "eval/stages_completed"]
    columns += [f"eval/{t}/{m}" for t in TASKS for m in ("success", "paper_success", "stages_completed")]
    columns += ["eval_mixture/paper_success"] + [f"eval_mixture/{t}/paper_success" for t in TASKS] + ["train/qf_loss"]
    rows = []
    for epoch in range(n_epochs):
        row: dict[str, float] = {"epoch": epoch, "env_steps": STEP * (epoch + 1), "train/qf_loss": 1.0}
        if epoch in own:
            values = own[epoch]
            row.update({"eval/success": np.mean(values) / 2, "eval/paper_success": np.mean(values),
                        "eval/stages_completed": 3 * np.mean(values)})
            for task, v in zip(TASKS, values, strict=True):
                row.update({f"eval/{task}/success": v / 2, f"eval/{task}/paper_success": v,
                            f"eval/{task}/stages_completed": 3 * v})
        if mixture and epoch in mixture:
            row["eval_mixture/paper_success"] = np.mean(mixture[epoch])
            row.update({f"eval_mixture/{task}/paper_success": v for task, v in zip(TASKS, mixture[epoch], strict=True)})
        rows.append(row)
    with open(run_dir / "progress.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, columns, restval="")
        writer.writeheader()
        writer.writerows(rows)
        f.write(torn)
    return run_dir


def dnc_evals(epoch1: list[float]) -> dict[int, list[float]]:
    """6 epochs, no evaluation at epoch 2, [0.6, 0.8] from epoch 3 on."""
    return {0: [0.0, 0.0], 1: epoch1, 3: [0.6, 0.8], 4: [0.6, 0.8], 5: [0.6, 0.8]}


@pytest.fixture
def paper_root(tmp_path: Path) -> Path:
    """Multistage Reacher: dnc_sac, 2 seeds to 600k (seed 1 with a torn 700k row); qmp_dnc, 2 seeds to 300k with
    a mixture, plus a seed that has not evaluated yet."""
    base = tmp_path / "runs"
    write_paper_run(base / "dnc0", JACO, "dnc_sac", 0, 6, dnc_evals([0.2, 0.4]))
    write_paper_run(base / "dnc1", JACO, "dnc_sac", 1, 6, dnc_evals([0.4, 0.2]), torn="6,700000,1.0,1.0")
    for seed in (0, 1):
        write_paper_run(base / f"qmp{seed}", JACO, "qmp_dnc", seed, 3, {0: [0.1, 0.4], 2: [0.9, 1.0]},
                        mixture={0: [0.5, 0.5], 2: [1.0, 1.0]})
    write_paper_run(base / "qmp2", JACO, "qmp_dnc", 2, 1, {})
    return base


# ---------------------------------------------------------------------------------------------- IQM


def test_iqm_cuts_a_quarter_from_each_end_like_trim_mean() -> None:
    assert paper_results.iqm(np.arange(1, 9)) == pytest.approx(4.5)  # 3, 4, 5, 6
    assert paper_results.iqm(np.arange(1, 11)) == pytest.approx(5.5)  # n=10: int(2.5) = 2 cut each end -> 3..8
    # n=6: int(1.5) = 1 cut each end -> (2 + 3 + 10 + 20) / 4; cutting 2 would give 6.5, the median 6.5 too
    assert paper_results.iqm([100, 1, 20, 3, 10, 2]) == pytest.approx(8.75)
    assert paper_results.iqm([1, 2, 3, 4, 1000]) == pytest.approx(3.0)  # n=5: one cut each end -> 2, 3, 4
    assert paper_results.iqm([7.0]) == 7.0 and paper_results.iqm([1.0, 3.0]) == pytest.approx(2.0)  # nothing to cut
    # a (runs, tasks) matrix is flattened: the same 1..8 in any shape and order
    assert paper_results.iqm([[8, 1], [3, 6], [2, 7], [5, 4]]) == pytest.approx(4.5)
    np.testing.assert_allclose(paper_results.iqm([[1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 0, 80]], axis=1),
                               [4.5, 0.0])


# ---------------------------------------------------------------------------------------------- bootstrap


SPREAD = np.array([[0.0, 0.1, 0.9], [0.2, 0.5, 1.0], [0.4, 0.2, 0.3], [0.9, 0.8, 0.6], [0.5, 0.4, 0.7]])


def test_bootstrap_interval_contains_the_point_and_is_deterministic_per_seed() -> None:
    point, low, high = paper_results.stratified_bootstrap_ci(SPREAD, seed=3)
    assert point == pytest.approx(paper_results.iqm(SPREAD))
    assert low < point < high and 0.0 <= low and high <= 1.0
    assert paper_results.stratified_bootstrap_ci(SPREAD, seed=3) == (point, low, high)
    assert paper_results.stratified_bootstrap_ci(SPREAD, seed=4) != (point, low, high)
    # the vectorised IQM path gives the replicates a generic statistic gets
    generic = paper_results.stratified_bootstrap_ci(SPREAD, statistic=lambda m: paper_results.iqm(m), seed=3)
    assert generic == pytest.approx((point, low, high))
    # a wider confidence gives a wider interval
    _, low50, high50 = paper_results.stratified_bootstrap_ci(SPREAD, confidence=0.5, seed=3)
    assert low <= low50 < high50 <= high and high50 - low50 < high - low


def test_bootstrap_interval_is_the_percentiles_of_stratified_replicates() -> None:
    resampled = paper_results.stratified_resamples(SPREAD, 2000, np.random.default_rng(7))
    stats = [paper_results.iqm(sample) for sample in resampled]
    expected = np.percentile(stats, [2.5, 97.5])
    _, low, high = paper_results.stratified_bootstrap_ci(SPREAD, seed=7)
    np.testing.assert_allclose([low, high], expected)


def test_bootstrap_collapses_when_all_seeds_are_equal() -> None:
    same = np.tile([[0.2, 0.9, 0.5]], (4, 1))  # tasks differ, seeds do not
    middle = (0.2 + 4 * 0.5 + 0.9) / 6  # 12 scores, 3 cut from each end of 0.2 x4, 0.5 x4, 0.9 x4
    assert paper_results.stratified_bootstrap_ci(same, seed=1) == pytest.approx((middle, middle, middle))
    assert paper_results.stratified_bootstrap_ci(np.full((3, 2), 0.25)) == pytest.approx((0.25, 0.25, 0.25))


def test_bootstrap_resamples_seeds_within_each_task() -> None:
    scores = np.array([[0.0, 10.0], [1.0, 11.0], [2.0, 12.0], [3.0, 13.0]])
    seen: list[np.ndarray] = []

    def record(sample: np.ndarray) -> float:
        seen.append(sample.copy())
        return float(sample.mean())

    paper_results.stratified_bootstrap_ci(scores, statistic=record, reps=300, seed=0)
    replicates = seen[:300]  # then the point estimate on the scores themselves
    assert len(seen) == 301 and np.array_equal(seen[-1], scores)
    for sample in replicates:
        assert sample.shape == (4, 2)  # exactly `runs` scores per task
        assert set(sample[:, 0]) <= {0.0, 1.0, 2.0, 3.0} and set(sample[:, 1]) <= {10.0, 11.0, 12.0, 13.0}
    # with replacement: some replicate repeats a seed within a task
    assert any(len(set(sample[:, 0])) < 4 for sample in replicates)


def test_stratified_and_unstratified_resampling_differ() -> None:
    # task 0 always scores 0, task 1 always 1: a stratified replicate keeps four of each, so its IQM is always 0.5;
    # resampling the eight scores as one pool would often draw five or more of one kind
    scores = np.array([[0.0, 1.0]] * 4)
    assert paper_results.stratified_bootstrap_ci(scores, seed=0) == pytest.approx((0.5, 0.5, 0.5))
    rng = np.random.default_rng(0)
    pooled = [paper_results.iqm(rng.choice(scores.ravel(), size=8)) for _ in range(200)]
    assert min(pooled) < 0.5 < max(pooled)


def test_bootstrap_rejects_a_non_matrix() -> None:
    with pytest.raises(ValueError, match="runs, tasks"):
        paper_results.stratified_bootstrap_ci(np.array([0.1, 0.2]))


# ---------------------------------------------------------------------------------------------- curves from runs


def test_task_scores_skip_empty_cells_torn_rows_and_seeds_without_evaluations(paper_root: Path) -> None:
    groups = results.group_runs(results.load_runs([paper_root]))
    dnc = groups[next(k for k in groups if k.method == "dnc_sac")]
    ts = paper_results.task_scores(dnc, "paper_success", "eval")
    assert ts is not None and ts.tasks == ("t0", "t1") and not ts.cut
    np.testing.assert_array_equal(ts.x, [100_000, 200_000, 400_000, 500_000, 600_000])  # no 300k, no torn 700k
    np.testing.assert_allclose(ts.scores[1], [[0.2, 0.4], [0.4, 0.2]])  # (seeds, tasks) at 200k
    assert paper_results.task_scores(dnc, "paper_success", "eval_mixture") is None  # dnc_sac logs no mixture
    qmp = groups[next(k for k in groups if k.method == "qmp_dnc")]
    assert len(qmp) == 3
    qmp_scores = paper_results.task_scores(qmp, "paper_success", "eval_mixture")
    assert qmp_scores is not None and [run.seed for run in qmp_scores.runs] == [0, 1]
    np.testing.assert_allclose(qmp_scores.scores[-1], [[1.0, 1.0], [1.0, 1.0]])


def test_iqm_curve_of_a_group(paper_root: Path) -> None:
    groups = results.group_runs(results.load_runs([paper_root]))
    dnc = groups[next(k for k in groups if k.method == "dnc_sac")]
    curve = paper_results.iqm_curve(dnc, "paper_success", "eval", reps=500)
    assert curve is not None and (curve.seeds, curve.tasks) == (2, 2)
    # each seed's task mean: 0.3 and 0.3 at 200k, 0.7 and 0.7 from 400k: no spread over seeds
    np.testing.assert_allclose(curve.point, [0.0, 0.3, 0.7, 0.7, 0.7])
    np.testing.assert_allclose(curve.low, curve.point)
    np.testing.assert_allclose(curve.high, curve.point)
    # smoothed per seed and task before the IQM: two evaluations average across the gap at 300k, a span of
    # 150k env steps does not (only 200k's point and the one before it lie within 150k of 200k)
    by_count = paper_results.iqm_curve(dnc, "paper_success", "eval", smoothing=Smoothing(2), reps=50)
    by_span = paper_results.iqm_curve(dnc, "paper_success", "eval", smoothing=Smoothing(span=150_000), reps=50)
    assert by_count is not None and by_span is not None
    np.testing.assert_allclose(by_count.point, [0.0, 0.15, 0.5, 0.7, 0.7])
    np.testing.assert_allclose(by_span.point, [0.0, 0.15, 0.7, 0.7, 0.7])


def test_a_seed_scores_its_mean_over_tasks_not_an_iqm_over_tasks() -> None:
    """One seed solving only the last of 5 tasks scores 0.2 (the paper's mean), where an IQM over the (1, 5)
    matrix would trim that task away and report 0; across seeds the IQM trims seeds, and the band spans them."""
    one_seed = np.array([[0.0, 0.0, 0.0, 0.0, 1.0]])
    assert paper_results.iqm(one_seed) == 0.0
    assert paper_results.stratified_bootstrap_ci(paper_results.seed_means(one_seed))[0] == pytest.approx(0.2)
    seeds = np.array([[0.0, 0.0], [0.2, 0.2], [0.4, 0.4], [0.6, 0.6], [1.0, 1.0]])  # task means 0, .2, .4, .6, 1
    point, low, high = paper_results.stratified_bootstrap_ci(paper_results.seed_means(seeds), reps=500)
    assert point == pytest.approx(0.4)  # IQM of 5 seeds: mean of the middle 3
    assert 0.0 <= low < 0.4 < high <= 1.0


# ---------------------------------------------------------------------------------------------- paper values


def test_paper_values() -> None:
    assert paper_results.paper_value(JACO, "qmp_dnc", 500_000) == pytest.approx(0.97)
    assert paper_results.paper_value(JACO, "dnc_sac", 2_000_000) == pytest.approx(0.80)
    assert paper_results.paper_value(JACO, "dnc_sac", 1_000_000) is None
    assert paper_results.paper_value(MAZE, "qmp_sac", 4_000_000) == pytest.approx(1.0)
    assert [v.env_steps for v in paper_results.paper_values(JACO, "dnc_sac")] == [500_000, 2_000_000]
    assert all(v.method in METHODS and 0.0 <= v.success <= 1.0 for v in paper_results.PAPER_VALUES)
    assert "read off" in (paper_results.paper_values.__doc__ or "")


def test_paper_labels_name_a_run_only_when_needed() -> None:
    keys = [results.GroupKey(JACO, 3, "qmp_dnc", "None"), results.GroupKey(JACO, 3, "qmp_dnc", "big"),
            results.GroupKey(JACO, 2, "dnc_sac", "long"), results.GroupKey(MAZE, 3, "qmp_dnc", "big")]
    assert list(results.paper_labels(keys).values()) == [
        "Separated + QMP", "Separated + QMP [big]", "Separated", "Separated + QMP [big]"]
    # one name per method: no name, whichever env
    assert list(results.paper_labels([keys[1], keys[3]]).values()) == ["Separated + QMP"] * 2


# ---------------------------------------------------------------------------------------------- paper table


def table_rows(table: str) -> dict[str, list[str]]:
    rows = {}
    for line in table.splitlines():
        if line.startswith("| ") and "`" in line:
            cells = [c.strip() for c in line.strip("|").split(" | ")]
            rows[cells[0]] = cells[1:]
    return rows


def test_paper_table_puts_the_paper_beside_ours(paper_root: Path) -> None:
    groups = results.group_runs(results.load_runs([paper_root]))
    table = paper_tables.format_paper_table(groups, at=[300_000, 500_000, 2_000_000], reps=300)
    header = next(line for line in table.splitlines() if line.startswith("| method"))
    assert header == ("| method | seeds | env steps | own @300k | mixture @300k | paper @300k | own @500k "
                      "| mixture @500k | paper @500k | own @2M | mixture @2M | paper @2M "
                      "| success (strict, final) | stages (final) |")
    rows = table_rows(table)
    # dnc_sac at 300k: no evaluation at 300k, so the one at 200k: seed means 0.3 and 0.3 of [[0.2, 0.4], [0.4, 0.2]]
    at_200k = "0.30 [0.30, 0.30]"
    assert rows["Separated (`dnc_sac`)"] == [
        "2", "600,000",  # the torn 700k row is not counted
        at_200k, "—", "—",
        "0.70 [0.70, 0.70]", "—", "~0.65",
        "—", "—", "~0.80",  # not trained to 2M
        "0.35 [0.35, 0.35]", "2.10 [2.10, 2.10]"]  # finals: success v/2 of [0.6, 0.8], stages 3v
    # qmp_dnc: 3 seeds, one without evaluations; IQM of {0.9, 1.0, 0.9, 1.0} = 0.95; not trained to 500k
    assert rows["Separated + QMP (`qmp_dnc`)"] == [
        "3", "100,000–300,000",
        "0.95 [0.95, 0.95] (n=2)", "1.00 [1.00, 1.00] (n=2)", "—",
        "—", "—", "~0.97",
        "—", "—", "—",
        # finals: mean of the last 3 evaluations (only 2 here): success (0.1 + 0.9) / 4 and (0.4 + 1) / 4 -> IQM 0.3;
        # stages 3 (0.1 + 0.9) / 2 and 3 (0.4 + 1) / 2 -> 1.8
        "0.30 [0.30, 0.30] (n=2)", "1.80 [1.80, 1.80] (n=2)"]
    # methods the paper reports but we did not run
    assert rows["Parameters (MTSAC) (`mtsac`)"] == ["0", "—"] + ["—"] * 8 + ["~0.45", "—", "—"]
    assert rows["Parameters + QMP (`qmp_sac`)"][-3] == "~0.80"
    assert table.startswith(f"### {JACO}\n") and "read off the paper's figure" in table
    # a table of one family's runs leaves out the paper's rows of methods it did not run
    rows = table_rows(paper_tables.format_paper_table(groups, at=[300_000], reps=50, paper_only_rows=False))
    assert list(rows) == ["Separated (`dnc_sac`)", "Separated + QMP (`qmp_dnc`)"]


def test_paper_table_shows_no_stages_for_an_env_that_never_logged_one(tmp_path: Path) -> None:
    run = write_paper_run(tmp_path / "maze", MAZE, "mtsac", 0, 3, {0: [0.2, 0.4], 2: [0.6, 0.8]})
    progress = run / "progress.csv"  # Maze logs stages_completed as 0 throughout
    rows = list(csv.DictReader(progress.open()))
    for row in rows:
        for column in row:
            if column.endswith("stages_completed") and row[column]:
                row[column] = "0.0"
    with progress.open("w", newline="") as f:
        writer = csv.DictWriter(f, list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    groups = results.group_runs(results.load_runs([tmp_path]))
    cells = table_rows(paper_tables.format_paper_table(groups, at=[300_000], reps=50))["Parameters (MTSAC) (`mtsac`)"]
    assert cells[-2:] == ["0.25 [0.25, 0.25]", "—"]  # strict success: mean of 0.3 / 2 and 0.7 / 2; no zeros


def test_paper_table_defaults_to_the_papers_steps_and_flags_a_stale_evaluation(tmp_path: Path) -> None:
    # evaluations stop at 300k while training goes on to 600k: the 4M column is not reached
    write_paper_run(tmp_path / "maze", MAZE, "mtsac", 0, 6, {0: [0.1, 0.3], 1: [0.2, 0.4], 2: [0.4, 0.6]})
    groups = results.group_runs(results.load_runs([tmp_path]))
    rows = table_rows(paper_tables.format_paper_table(groups, reps=50))
    assert rows["Parameters (MTSAC) (`mtsac`)"][:5] == ["1", "600,000", "—", "—", "~0.65"]
    rows = table_rows(paper_tables.format_paper_table(groups, at=[300_000, 500_000], reps=50))
    assert rows["Parameters (MTSAC) (`mtsac`)"][2] == "0.50 [0.50, 0.50]"  # one seed: no spread
    assert rows["Parameters (MTSAC) (`mtsac`)"][5] == "0.50 [0.50, 0.50] (at 300k)"
    assert rows["Parameters + QMP (`qmp_sac`)"][:2] == ["0", "—"]


def test_results_table_gives_each_env_its_own_columns(tmp_path: Path) -> None:
    write_paper_run(tmp_path / "jaco", JACO, "dnc_sac", 0, 2, {0: [0.2, 0.4], 1: [0.6, 1.0]})
    write_paper_run(tmp_path / "maze", MAZE, "mtsac", 0, 2, {1: [0.0, 0.5]})
    groups = results.group_runs(results.load_runs([tmp_path]))
    table = results.format_table(groups, {JACO: ["eval/t1/paper_success"], MAZE: ["eval/success", "eval/t0/success"]})
    jaco, maze = table.split(f"### {MAZE}")
    assert "| method | seeds | env steps | eval/t1/paper_success (final) |" in jaco.splitlines()
    assert table_rows(jaco)["Separated (`dnc_sac`)"][-1] == "0.70 ± 0.00"  # mean of t1's 0.4 and 1.0
    assert "| method | seeds | env steps | eval/success (final) | eval/t0/success (final) |" in maze.splitlines()
    assert table_rows(maze)["Parameters (MTSAC) (`mtsac`)"][-2:] == ["0.12 ± 0.00", "0.00 ± 0.00"]
    with pytest.raises(results.ResultsError, match=f"no columns given for env '{MAZE}'; given for: {JACO}"):
        results.format_table(groups, {JACO: ["eval/t1/paper_success"]})


def test_seed_table_shows_every_seed_at_exactly_the_evaluations_asked(paper_root: Path) -> None:
    groups = results.group_runs(results.load_runs([paper_root]))
    table = paper_tables.format_seed_table(groups, at=[200_000, 300_000, 400_000])
    assert "| method | seed | 200k | 300k | 400k |" in table.splitlines()
    lines = [line for line in table.splitlines() if "`" in line]
    assert lines == [
        # dnc_sac: seed means of [0.2, 0.4] and [0.4, 0.2] at 200k; no evaluation at 300k (not the one before it)
        "| Separated (`dnc_sac`) | 0 | 0.30 | — | 0.70 |",
        "| Separated (`dnc_sac`) | 1 | 0.30 | — | 0.70 |",
        # qmp_dnc: the mixture in brackets; the seed that has not evaluated keeps its row
        "| Separated + QMP (`qmp_dnc`) | 0 | — | 0.95 (1.00) | — |",
        "| Separated + QMP (`qmp_dnc`) | 1 | — | 0.95 (1.00) | — |",
        "| Separated + QMP (`qmp_dnc`) | 2 | — | — | — |",
    ]
    # by default every evaluation of any seed, the torn 700k row of seed 1 not among them
    header = paper_tables.format_seed_table(groups).splitlines()[2]
    assert header == "| method | seed | 100k | 200k | 300k | 400k | 500k | 600k |"
    # without headings (a page section that names its env) the table starts at its header row
    bare = paper_tables.format_seed_table(groups, at=[200_000], headings=False)
    assert bare.splitlines()[:2] == ["| method | seed | 200k |", "|---|---|---|"] and "###" not in bare


def test_seed_score_needs_every_task_at_that_evaluation(tmp_path: Path) -> None:
    run_dir = write_paper_run(tmp_path / "run", JACO, "qmp_sac", 0, 2, {0: [0.2, 0.6], 1: [0.4, 1.0]},
                              mixture={1: [1.0, 0.5]})
    progress = run_dir / "progress.csv"
    progress.write_text(progress.read_text().replace(",0.6,", ",,", 1))  # task t1 missing at the first evaluation
    run = results.load_run(run_dir)
    first, second, between = paper_tables.seed_scores(run, [100_000, 200_000, 150_000])
    assert first is None
    assert second == pytest.approx(0.7)
    assert paper_tables.seed_scores(run, [200_000], prefix="eval_mixture")[0] == pytest.approx(0.75)
    assert between is None


def test_results_imports_neither_torch_nor_matplotlib() -> None:
    code = ("import sys, qmp.results, qmp.paper_results, qmp.paper_tables, qmp.qswitch_selection; "
            "print(sorted(m for m in ('torch', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                         cwd=Path(__file__).resolve().parents[1]).stdout
    assert out.strip() == "[]"
