"""benchmarks/reproduction_report.py: the tables of docs/results.md from the kept runs, between the page's markers."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from qmp import results
from tests.test_results import JACO, MAZE, TASKS, table_rows, write_paper_run

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import reproduction_report as report  # noqa: E402

EVERY_EPOCH = {e: [0.2, 0.2] for e in range(8)}


def write_selection(run_dir: Path, epochs: int) -> None:
    with open(run_dir / "qswitch_selection.jsonl", "w") as f:
        for epoch in range(epochs):
            f.write(json.dumps({"epoch": epoch, "env_steps": 100_000 * (epoch + 1), "tasks": TASKS,
                                "counts": [[3, 1], [2, 2]]}) + "\n")


@pytest.fixture
def kept(tmp_path: Path) -> Path:
    """docs/results/ as `keep` leaves it: Jaco Separated, Jaco Parameters with two squashings (the two-tanh
    seed 1 shorter, evaluating only every other epoch), and Maze."""
    root = tmp_path / "results"
    write_paper_run(root / JACO / "dnc_sac" / "paper" / "seed0", JACO, "dnc_sac", 0, 4, EVERY_EPOCH, name="paper")
    qmp_dnc = write_paper_run(root / JACO / "qmp_dnc" / "paper" / "seed0", JACO, "qmp_dnc", 0, 4, EVERY_EPOCH,
                              mixture=EVERY_EPOCH, name="paper")
    write_selection(qmp_dnc, 4)
    for method in ("mtsac", "qmp_sac"):
        mixture = EVERY_EPOCH if method == "qmp_sac" else None
        write_paper_run(root / JACO / method / "params" / "seed0", JACO, method, 0, 2, EVERY_EPOCH, mixture,
                        name="params")
        write_paper_run(root / JACO / method / "params_double_tanh" / "seed0", JACO, method, 0, 8,
                        {e: [0.0, 1.0] for e in range(8)}, mixture, name="params_double_tanh")
        write_paper_run(root / JACO / method / "params_double_tanh" / "seed1", JACO, method, 1, 6,
                        {e: [1.0, 1.0] for e in (0, 2, 4, 5)}, mixture, name="params_double_tanh")
        write_paper_run(root / MAZE / method / "params_double_tanh" / "seed0", MAZE, method, 0, 3,
                        {e: [0.5, 0.5] for e in range(3)}, mixture, name="params_double_tanh")
    return root


def test_common_evaluations_are_those_of_every_run_thinned_evenly_keeping_the_last(kept: Path) -> None:
    runs = results.load_runs([kept / JACO / "mtsac" / "params_double_tanh"])
    # seed 0 evaluates at 100k..800k, seed 1 at 100k, 300k, 500k and 600k
    assert report.common_evaluations(runs, 0) == [100_000, 300_000, 500_000, 600_000]
    assert report.common_evaluations(runs, 200_000, 500_000) == [300_000, 500_000]
    seed0 = [run for run in runs if run.seed == 0]
    assert report.common_evaluations(seed0, 0, most=4) == [100_000, 300_000, 600_000, 800_000]  # indices 0, 2.3, 4.7, 7
    assert report.common_evaluations(seed0, 0, most=8) == [100_000 * k for k in range(1, 9)]


def test_tables_cover_each_section_with_its_own_runs(kept: Path) -> None:
    tables = report.tables(results.load_runs([kept]))
    assert set(tables) == {"paper", "pertask", "strict", "selection", "parameters", "parameters_seeds",
                           "parameters_seeds_later", "maze_seeds"}
    # the Parameters table: both squashings of mtsac and qmp_sac, no row for the Separated methods
    rows = table_rows(tables["parameters"])
    assert len(rows) == 4 and all("mtsac" in label or "qmp_sac" in label for label in rows)
    # the per-seed tables sit under sections that name their env: no heading of their own
    for name in ("parameters_seeds", "parameters_seeds_later", "maze_seeds"):
        assert tables[name].startswith("| method | seed |"), name
    # past 130k: only the two-tanh pairs, at the evaluations both seeds logged
    later = tables["parameters_seeds_later"].splitlines()
    assert later[0] == "| method | seed | 300k | 500k | 600k |"
    # (the one-tanh runs end at 200k, so their rows would also have cut the columns to nothing)
    assert len(table_rows(tables["parameters_seeds_later"])) == 2  # a row per method; the seeds share its label
    assert sum("`" in line for line in later) == 4
    assert "| Parameters + QMP (`qmp_sac`) | 1 | 1.00 (0.20) | 1.00 (0.20) | 1.00 (0.20) |" in later
    # a cluster sweep's unnamed runs run the original's squashing too: they join the table past 130k
    for method in ("mtsac", "qmp_sac"):
        write_paper_run(kept / JACO / method / "None" / "seed0", JACO, method, 0, 8, {e: [0.5, 0.5] for e in range(8)},
                        EVERY_EPOCH if method == "qmp_sac" else None)
    later = report.tables(results.load_runs([kept]))["parameters_seeds_later"]
    assert len(table_rows(later)) == 4 and "| Parameters (MTSAC) (`mtsac`) | 0 | 0.50 | 0.50 | 0.50 |" in later
    # per env its own task columns (Maze logs no stages, so the strict table has none for it)
    pertask_maze = tables["pertask"].split(f"### {MAZE}")[1]
    assert "eval/t0/paper_success (final)" in pertask_maze
    assert "stages_completed" in tables["strict"].split(f"### {MAZE}")[0]


def test_the_page_keeps_its_prose_and_gets_each_table_between_its_markers(tmp_path: Path) -> None:
    page = "intro\n<!-- table:a -->\nold a\n<!-- /table:a -->\nmiddle\n<!-- table:b -->\n<!-- /table:b -->\nend\n"
    filled = report.fill(page, {"a": "| new a |", "b": "| new b |"})
    assert filled == ("intro\n<!-- table:a -->\n| new a |\n<!-- /table:a -->\nmiddle\n"
                      "<!-- table:b -->\n| new b |\n<!-- /table:b -->\nend\n")
    assert report.fill(filled, {"a": "| new a |", "b": "| new b |"}) == filled  # a second report changes nothing
    with pytest.raises(report.ReportError, match="no <!-- table:c -->"):
        report.fill(page, {"c": "x"})


def test_a_page_without_a_tables_marker_is_left_untouched(kept: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    doc = tmp_path / "results.md"
    doc.write_text("<!-- table:paper -->\n<!-- /table:paper -->\n")  # the other sections' markers are missing
    img = tmp_path / "img"
    img.mkdir()
    assert report.main(["--results", str(kept), "--doc", str(doc), "--img", str(img)]) == 2
    assert "no <!-- table:pertask -->" in capsys.readouterr().err
    assert not any(img.iterdir())  # no figure either
    assert report.main(["--results", str(kept), "--doc", str(doc), "--img", str(tmp_path / "no_img")]) == 2
    assert "no_img is not a directory" in capsys.readouterr().err
    assert doc.read_text() == "<!-- table:paper -->\n<!-- /table:paper -->\n"
    assert report.main(["--results", str(tmp_path / "nothing"), "--doc", str(doc)]) == 2
    assert "nothing does not exist" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert report.main(["--results", str(tmp_path / "empty"), "--doc", str(doc)]) == 2
    assert "empty" in capsys.readouterr().err
    assert doc.read_text() == "<!-- table:paper -->\n<!-- /table:paper -->\n"
    assert report.main(["--results", str(kept), "--doc", str(tmp_path / "missing.md")]) == 2
    assert "missing.md is not a file" in capsys.readouterr().err


def test_figures_show_the_paper_panels_as_the_original_ran_them(kept: Path, tmp_path: Path) -> None:
    runs = results.load_runs([kept])
    panel = {(run.key.env, run.key.method, run.key.name) for run in report.paper_panel_runs(runs)}
    # Jaco: Separated, and Parameters with the original's squashing only (not our one-tanh "params" runs)
    assert panel == {(JACO, "dnc_sac", "paper"), (JACO, "qmp_dnc", "paper"), (JACO, "mtsac", "params_double_tanh"),
                     (JACO, "qmp_sac", "params_double_tanh"), (MAZE, "mtsac", "params_double_tanh"),
                     (MAZE, "qmp_sac", "params_double_tanh")}
    # until Maze has runs with the original's squashing, its panel shows what it has
    one_tanh = [run for run in runs if run.key.env == MAZE]
    for run in one_tanh:
        run.key = results.GroupKey(run.key.env, run.key.method_rank, run.key.method, "params")
    assert {run.key.name for run in report.paper_panel_runs(one_tanh)} == {"params"}

    img = tmp_path / "img"
    img.mkdir()
    drawn = report.figures(results.load_runs([kept]), img)
    assert set(drawn) == {"repro_paper.png", "repro_stages.png", "repro_jaco_parameters.png",
                          f"repro_qswitch_{JACO}_qmp_dnc_paper.png"}  # only qmp_dnc logged selections here
    assert sorted(path.name for path in img.iterdir()) == sorted(drawn)
    jaco_panel, maze_panel = drawn["repro_paper.png"].axes[:2]
    assert not any("[params]" in text.get_text() for text in jaco_panel.get_legend().get_texts())
    assert "trailing average over 60k env steps" in drawn["repro_paper.png"].get_suptitle()
    # the Parameters figure has both squashings, and ends at the batches' planned 500k
    parameters = drawn["repro_jaco_parameters.png"].axes[0]
    assert any("[params]" in text.get_text() for text in parameters.get_legend().get_texts())
    assert parameters.get_xlim()[1] <= 550_000
