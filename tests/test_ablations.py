"""The paper's QMP ablations as options of the QMP methods: flags act or are refused, the domain knowledge is
what docs/methods.md says, runs on Multistage Reacher and Meta-World log their switching, and resume exactly."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qmp.cli import ConfigError, parse_args
from qmp.domain_knowledge import STAGE_TARGETS, domain_mixture
from qmp.environments import ENVS
from qmp.flag_scope import variant_name
from qmp.methods import METHODS
from qmp.qswitch_selection import load_selection, switch_rates
from tests.helpers import assert_resumes_exactly, read_progress, tiny_flags, train, without_time


def parse(*argv: str) -> object:
    return parse_args(list(argv), list(METHODS), list(ENVS))


@pytest.mark.parametrize(("argv", "message"), [
    (["qmp_dnc", "--qswitch_rule", "greedy"], "valid: argmax, softmax, uniform, domain"),
    (["dnc_sac", "--qswitch_rule", "uniform"], "--qswitch_rule does nothing for dnc_sac"),
    (["qmp_dnc", "--qswitch_temperature", "2"], "--qswitch_temperature does nothing with --qswitch_rule argmax"),
    (["qmp_dnc", "--qswitch_rule", "uniform", "--qswitch_score", "q1"], "--qswitch_score does nothing with"),
    (["qmp_dnc", "--qswitch_rule", "domain", "--qswitch_entropy", "true"], "--qswitch_entropy does nothing with"),
    (["qmp_dnc", "--qswitch_rule", "softmax", "--qswitch_temperature", "0"], "must be positive and finite"),
    (["qmp_dnc", "--qswitch_mixture", *["1"] * 25], "--qswitch_mixture does nothing with --qswitch_rule argmax"),
    (["qmp_dnc", "--env=MetaWorldMT10-v2", "--qswitch_rule", "domain"], "no mixture for MetaWorldMT10-v2"),
    (["qmp_dnc", "--qswitch_rule", "domain", "--qswitch_mixture", "1", "1"], "takes n_policies^2 = 25 weights"),
    (["qmp_dnc", "--qswitch_rule", "domain", "--qswitch_mixture", *["1"] * 5, *["0"] * 20], "rows [1, 2, 3, 4]"),
])
def test_ablation_flags_refuse_what_has_no_meaning(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("^", r"\^")):
        parse(*argv)


def test_ablation_flags_parse() -> None:
    cfg = parse("qmp_sac", "--policy_architecture", "multihead", "--Q_architecture", "multihead", "--qswitch_rule",
                "softmax", "--qswitch_temperature", "0.5", "--qswitch_entropy", "true", "--policy_sampling_freq", "5")
    assert (cfg.qswitch_rule, cfg.qswitch_temperature, cfg.qswitch_entropy, cfg.policy_sampling_freq) == (
        "softmax", 0.5, True, 5)
    toy = parse("qmp_uds_dnc", "--env=ToyReach-v0", "--qswitch_rule", "domain", "--qswitch_mixture", *["1"] * 16)
    assert toy.qswitch_mixture == [1.0] * 16


def test_jaco_domain_knowledge_is_the_envs_subgoal_order() -> None:
    """Task i may use policy j where both pursue the same subgoal at the same stage, as in jaco.py."""
    from qmp.environments import jaco

    targets = STAGE_TARGETS["JacoReachMT5-v1"]
    assert tuple(targets) == jaco.TASK_NAMES
    for name, sequence in zip(jaco.TASK_NAMES, jaco.TASK_SEQUENCES, strict=True):
        assert targets[name] == (tuple(f"g{k}" for k in sequence) if sequence is not None else ("start",) * 3)
    mixture = np.array(domain_mixture("JacoReachMT5-v1", jaco.TASK_NAMES))
    allowed = mixture > 0
    for i, mine in enumerate(jaco.TASK_SEQUENCES):
        for j, theirs in enumerate(jaco.TASK_SEQUENCES):
            both_reach = mine is not None and theirs is not None
            shared = i == j or (both_reach and any(a == b for a, b in zip(mine, theirs, strict=True)))
            assert allowed[i, j] == shared
    np.testing.assert_allclose(mixture.sum(1), 1.0)
    assert allowed.sum(1).tolist() == [3, 2, 3, 2, 1]  # the stay task has no partner


def test_cds_domain_knowledge_pairs_the_tasks_of_one_object_and_follows_a_task_subset() -> None:
    names = ("door-open", "door-close", "drawer-open", "drawer-close")
    np.testing.assert_array_equal(domain_mixture("MetaWorldCDS-v1", names),
                                  [[0.5, 0.5, 0, 0], [0.5, 0.5, 0, 0], [0, 0, 0.5, 0.5], [0, 0, 0.5, 0.5]])
    assert domain_mixture("MetaWorldCDS-v1", ("drawer-close", "door-open")) == [[1.0, 0.0], [0.0, 1.0]]
    with pytest.raises(ValueError, match="defined for"):
        domain_mixture("MetaWorldMT10-v2", ("reach-v3",))


RULES = {
    "uniform": ["--qswitch_rule", "uniform"],
    "domain_h5": ["--qswitch_rule", "domain", "--policy_sampling_freq", "5"],
    "softmax_entropy_h3": ["--qswitch_rule", "softmax", "--qswitch_temperature", "0.5", "--qswitch_entropy", "true",
                           "--policy_sampling_freq", "3"],
}


def check_run(rows: list[dict[str, str]], run_dir: Path, tasks: int, steps: int, rule: list[str]) -> None:
    """A finished run: selection counts of every collected step, a switch rate per task, and the mixture
    evaluated only where it has a deterministic form."""
    row = rows[-1]
    assert float(row["grad_steps"]) > 0 and 0.0 <= float(row["collect/own_policy_frac"]) <= 1.0
    if "eval/return" in row:
        assert ("eval_mixture/return" in row) == ("softmax" in rule)
    record = json.loads((run_dir / "qswitch_selection.jsonl").read_text().splitlines()[-1])
    counts = np.asarray(record["counts"])
    assert counts.shape == (tasks, tasks) and counts.sum() == steps
    rates = [r for r in record["switch_rate"] if r is not None]
    assert rates and all(0.0 <= r <= 1.0 for r in rates)
    steps, table = switch_rates(load_selection(run_dir))
    assert steps.tolist() == [float(record["env_steps"])]
    np.testing.assert_array_equal(table[-1], [np.nan if r is None else r for r in record["switch_rate"]])
    hold = int(rule[rule.index("--policy_sampling_freq") + 1]) if "--policy_sampling_freq" in rule else 1
    assert max(rates) <= 1.0 / hold + 1e-9  # a choice is re-made only every H steps


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rules_on_multistage_reacher(rule: str, tmp_path: Path) -> None:
    flags = [*tiny_flags(5, 200), "--n_epochs", "1", *RULES[rule]]
    rows = train("qmp_dnc", "JacoReachMT5-v1", tmp_path, *flags)
    check_run(rows, tmp_path, 5, 1000, RULES[rule])
    if rule == "domain_h5":  # never a policy outside the env's domain knowledge
        from qmp.environments.jaco import TASK_NAMES

        counts = np.asarray(json.loads((tmp_path / "qswitch_selection.jsonl").read_text())["counts"])
        assert not counts[np.array(domain_mixture("JacoReachMT5-v1", TASK_NAMES)) == 0].any()


# Meta-World (its CDS scene builds in a second, MT10 takes far longer): two tasks of one object, 100 steps each
META_WORLD = ["--task_name", "door-open,door-close", *tiny_flags(2, 100, evaluation=False), "--n_epochs", "1",
              "--n_policies", "2", "--steps_per_epoch", "1"]


@pytest.mark.parametrize("rule", sorted(RULES))
def test_rules_on_meta_world(rule: str, tmp_path: Path) -> None:
    rows = train("qmp_dnc", "MetaWorldCDS-v1", tmp_path, *META_WORLD, *RULES[rule])
    check_run(rows, tmp_path, 2, 200, RULES[rule])


@pytest.mark.parametrize("rule", ["softmax_entropy_h3", "uniform"])
def test_stochastic_rules_resume_exactly(rule: str, tmp_path: Path) -> None:
    """The draws come from torch's global generator, which checkpoints hold; the held choice is behaviour state."""
    assert_resumes_exactly("qmp_dnc", tmp_path, *tiny_flags(4, 20), *RULES[rule], "--policy_sampling_freq", "7")


def test_a_run_directory_does_not_continue_another_variant(tmp_path: Path) -> None:
    import qmp.command as command

    train("qmp_dnc", "ToyReach-v0", tmp_path, *tiny_flags(4, 20), "--n_epochs", "1", *RULES["uniform"])
    for variant in ([], RULES["domain_h5"][:2] + ["--qswitch_mixture", *["1"] * 16]):
        code = command.main(["qmp_dnc", "--env=ToyReach-v0", "--run_dir", str(tmp_path), *tiny_flags(4, 20), *variant])
        assert code != 0


def test_results_name_each_variant_of_a_method() -> None:
    """Runs without --name are grouped by their collection options, so variants never pool as seeds."""
    assert variant_name({"method": "qmp_dnc"}) == "None"  # a config.json from before these flags
    assert variant_name({"qswitch_rule": "argmax", "policy_sampling_freq": 1}) == "None"
    assert variant_name({"qswitch_rule": "softmax", "qswitch_temperature": 0.5, "qswitch_entropy": True,
                         "policy_sampling_freq": 5}) == "softmax temperature=0.5 entropy H=5"
    assert variant_name({"qswitch_rule": "domain", "qswitch_mixture": [1.0] * 4}) == "domain own-mixture"
    assert variant_name({"mtlevy_top_n": 3, "mtlevy_max_hold": 20}) == "top_n=3 max_hold=20"
    assert variant_name({"qswitch_score": "min", "multihead_double_tanh": True}) == "score=min double_tanh"


def test_the_readmes_ablation_commands_parse() -> None:
    """Every command of the README's method table that names an ablation or MT-Levy parses on Multistage Reacher."""
    import re

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("### Methods")[1].split("###")[0]
    cells = [line.split("|")[2] for line in table.splitlines() if line.startswith("| ")]
    commands = [re.findall(r"`([^`]+)`", cell)[0] for cell in cells
                if any(word in cell for word in ("qswitch", "mtlevy", "sampling_freq"))]
    assert len(commands) == 7
    for command in commands:
        argv = command.replace("τ", "0.5").replace(" H", " 5").split()
        cfg = parse(*argv, "--env=JacoReachMT5-v1")
        assert cfg.method == argv[0]


def test_a_run_directory_does_not_continue_another_hold_and_old_checkpoints_still_resume(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--policy_sampling_freq (and the other recorded collection options) are compared on resume, defaults
    included; a checkpoint written before they were recorded resumes as before."""
    import qmp.command as command
    from qmp.checkpoint import load_checkpoint, save_checkpoint
    from qmp.run_dir import CHECKPOINT

    flags = ["qmp_dnc", "--env=ToyReach-v0", "--run_dir", str(tmp_path), *tiny_flags(4, 20)]
    assert command.main([*flags, "--n_epochs", "1", "--policy_sampling_freq", "5"]) == 0
    assert command.main([*flags, "--n_epochs", "2"]) != 0
    assert "policy_sampling_freq: checkpoint 5 != run 1" in capsys.readouterr().err
    assert command.main([*flags, "--n_epochs", "2", "--qswitch_score", "min", "--policy_sampling_freq", "5"]) != 0
    assert "qswitch_score: checkpoint 'q1' != run 'min'" in capsys.readouterr().err

    state = load_checkpoint(tmp_path / CHECKPOINT)  # as written before these options were recorded
    for flag in ("qswitch_score", "qswitch_action", "min_task_probs", "multihead_double_tanh",
                 "policy_sampling_freq"):
        del state["meta"][flag]
    save_checkpoint(tmp_path / CHECKPOINT, state)
    assert command.main([*flags, "--n_epochs", "2", "--policy_sampling_freq", "5"]) == 0
    assert load_checkpoint(tmp_path / CHECKPOINT)["meta"]["policy_sampling_freq"] == 5


def test_collect_single_tanh_is_an_own_policy_ablation_of_the_double_squashing(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--collect_single_tanh acts for sac and mtsac on the double-squashed multihead policy, is refused
    elsewhere, names the run, and a run directory does not continue across it."""
    import qmp.command as command

    multihead = ["--policy_architecture", "multihead", "--Q_architecture", "multihead"]
    assert parse("mtsac", "--env=JacoReachMT5-v1", *multihead, "--collect_single_tanh", "true").collect_single_tanh
    for argv, message in (
            (["qmp_sac", *multihead], "--collect_single_tanh does nothing for qmp_sac"),
            (["dnc_sac"], "valid for: sac, mtsac"),
            (["mtsac", *multihead, "--multihead_double_tanh", "false"],
             "--collect_single_tanh does nothing without the double squashing")):
        with pytest.raises(ConfigError, match=message):
            parse(*argv, "--env=JacoReachMT5-v1", "--collect_single_tanh", "true")
    assert variant_name({"policy_architecture": "multihead", "multihead_double_tanh": True,
                         "collect_single_tanh": True}) == "single_tanh_collection"

    flags = ["mtsac", "--env=ToyReach-v0", *tiny_flags(4, 20), *multihead]
    runs = {}
    for single in (False, True):
        run_dir = tmp_path / f"single{single}"
        assert command.main([*flags, "--run_dir", str(run_dir), "--n_epochs", "1",
                             "--collect_single_tanh", str(single).lower()]) == 0
        runs[single] = without_time(read_progress(run_dir))  # the wall-clock columns differ anyway
        assert json.loads((run_dir / "config.json").read_text())["collect_single_tanh"] is single
    assert runs[False] != runs[True]  # the collected actions, hence the updates, differ
    assert command.main([*flags, "--run_dir", str(tmp_path / "singleTrue"), "--n_epochs", "2"]) != 0
    assert "collect_single_tanh: checkpoint True != run default" in capsys.readouterr().err
