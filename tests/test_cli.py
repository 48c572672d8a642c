"""The command line: the README's commands parse exactly, presets apply and explicit flags win, and
every bad input is one line on stderr with exit code 2, fast, with no simulator (or torch) imported
and no file written. Property tests (hypothesis) throw random values at every numeric flag."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qmp.cli import ConfigError, garage_only_warnings, parse_args
from qmp.config import Config
from qmp.environments import ENVS
from qmp.methods import METHODS

ROOT = Path(__file__).resolve().parents[1]
HEAVY = ("torch", "mujoco", "metaworld", "gymnasium_robotics", "dm_control", "d4rl", "tensorboard")
PARAM_SHARING = ["--policy_architecture", "multihead", "--Q_architecture", "multihead", "--lr", "0.001",
                 "--hidden_sizes", "512", "512"]
VALID_BASE = {m: (PARAM_SHARING[:2] if METHODS[m].multi_critic else
                  PARAM_SHARING[:4] if "separate" not in METHODS[m].architectures else []) for m in METHODS}


def parse(*argv: str) -> Config:
    return parse_args(list(argv), list(METHODS), list(ENVS))


# ------------------------------------------------------------------------------ README commands
@pytest.mark.parametrize(
    "argv",
    [
        ["qmp_dnc", "--env=JacoReachMT5-v1"],
        ["dnc_sac", "--env=JacoReachMT5-v1"],
        ["qmp_sac", "--env=JacoReachMT5-v1", *PARAM_SHARING],
        ["mtsac", "--env=JacoReachMT5-v1", *PARAM_SHARING],
        ["qmp_uds_dnc", "--env=JacoReachMT5-v1", "--sharing_quantile", "0"],
        ["uds_dnc", "--env=JacoReachMT5-v1", "--sharing_quantile", "0"],
    ],
)
def test_readme_commands_parse_exactly(argv: list[str]) -> None:
    cfg = parse(*argv)
    assert (cfg.method, cfg.env, cfg.n_policies, cfg.n_epochs, cfg.num_evaluation_episodes) == (
        argv[0], "JacoReachMT5-v1", 5, 2000, 50)
    if "--lr" in argv:
        assert (cfg.policy_architecture, cfg.Q_architecture, cfg.lr, cfg.hidden_sizes) == (
            "multihead", "multihead", 0.001, [512, 512])
    else:
        assert (cfg.policy_architecture, cfg.Q_architecture, cfg.lr, cfg.hidden_sizes) == (
            "separate", "separate", 3e-4, [256, 256])
    if "uds" in argv[0]:
        assert cfg.sharing_quantile == 0.0


@pytest.mark.parametrize("env", sorted(ENVS))
def test_presets_apply_and_explicit_flags_win(env: str) -> None:
    cfg = parse("dnc_sac", f"--env={env}")
    for key, value in ENVS[env].preset.items():
        assert getattr(cfg, key) == value, key
    explicit = parse("dnc_sac", f"--env={env}", "--batch_size", "123", "--lr", "0.0007", "--n_epochs", "3")
    assert (explicit.batch_size, explicit.lr, explicit.n_epochs) == (123, 0.0007, 3)
    assert explicit.n_policies == ENVS[env].preset["n_policies"]


def test_garage_only_flags_are_accepted_with_a_warning() -> None:
    argv = ["qmp_dnc", "--env=ToyReach-v0", "--sampler_type", "ray", "--worker_type=default", "--max_n_worker", "8"]
    cfg = parse(*argv)
    assert (cfg.sampler_type, cfg.worker_type, cfg.max_n_worker) == ("ray", "default", 8)
    warnings = garage_only_warnings(argv)
    assert len(warnings) == 3 and all("garage" in w and "ignored" in w for w in warnings)
    assert garage_only_warnings(["qmp_dnc", "--env=ToyReach-v0"]) == []


def test_the_fragment_worker_is_refused_with_its_q_switch_in_our_flags() -> None:
    """The original's fragment worker changed what QMP scored, so accepting and ignoring it would be silent."""
    with pytest.raises(ConfigError, match="--worker_type fragment .*--qswitch_score min --qswitch_action sample"):
        parse("qmp_dnc", "--env=ToyReach-v0", "--worker_type", "fragment")


# --------------------------------------------------------------------------- bad input, end to end
BAD = [
    (["qmp_dmc", "--env=ToyReach-v0"], "did you mean 'qmp_dnc'"),
    (["qmp_dnc", "--env=JacoReachMT5-v2"], "did you mean 'JacoReachMT5-v1'"),
    (["qmp_dnc", "--env=ToyReach-v0", "--n_epochs", "0"], "--n_epochs must be positive"),
    (["qmp_dnc", "--env=ToyReach-v0", "--batch_size", "-5"], "--batch_size must be positive"),
    (["qmp_dnc", "--env=ToyReach-v0", "--hidden_sizes", "256", "0"], "--hidden_sizes must all be positive"),
    (["uds_dnc", "--env=ToyReach-v0", "--sharing_quantile", "1.5"], "--sharing_quantile must be in [0, 1]"),
    (["qmp_dnc", "--env=ToyReach-v0", "--lr", "0"], "--lr must be positive"),
    (["qmp_dnc", "--env=ToyReach-v0", "--lr=-1e-3"], "--lr must be positive"),
    (["qmp_dnc", "--env=ToyReach-v0", "--policy_architecture", "multihead", "--Q_architecture", "multihead"],
     "qmp_dnc needs --policy_architecture in {separate}"),
    (["qmp_dnc", "--env=JacoReachMT5-v1", "--n_policies", "4"],
     "--n_policies 4 does not match the 5 tasks of JacoReachMT5-v1"),
    (["qmp_dnc", "--env=ToyReach-v0", "--n_epocs", "4"], "did you mean '--n_epochs'"),
    (["qmp_dnc", "--env=ToyReach-v0", "--n_epochs", "ten"], "argument --n_epochs: invalid int value"),
    ([], "the following arguments are required: method"),
    (["resume"], "resume needs --snapshot_dir"),
    (["resume", "--snapshot_dir", "nowhere"], "no config.json there"),
]

PROBE = """
import json, sys, time
sys.path.insert(0, {root!r})
start = time.perf_counter()
import run
code = run.main(sys.argv[1:])
heavy = [m for m in {heavy!r} if m in sys.modules]
print(json.dumps({{"code": code, "heavy": heavy, "seconds": time.perf_counter() - start}}))
"""


@pytest.mark.parametrize(("argv", "expected"), BAD, ids=[" ".join(a[:1] + a[2:]) or "empty" for a, _ in BAD])
def test_bad_input_is_one_line_exit_2_fast_and_touches_nothing(argv: list[str], expected: str, tmp_path: Path) -> None:
    probe = PROBE.format(root=str(ROOT), heavy=HEAVY)
    start = time.monotonic()
    done = subprocess.run([sys.executable, "-c", probe, *argv], cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)
    elapsed = time.monotonic() - start
    report = json.loads(done.stdout)
    lines = done.stderr.strip().splitlines()
    assert report["code"] == 2 and len(lines) == 1 and lines[0].startswith("run.py: error: "), done.stderr
    assert expected in lines[0]
    assert report["heavy"] == []  # no simulator, no torch, no tensorboard
    assert list(tmp_path.iterdir()) == []  # no run directory, no file
    assert report["seconds"] < 2.0 and elapsed < 10.0


def test_real_entry_point_exits_with_code_2(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, str(ROOT / "run.py"), "qmp_dnc", "--env=ToyReach-v0", "--hidden_sizes", "0"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and "--hidden_sizes" in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_resume_refuses_an_invalid_saved_config(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({**Config(env="ToyReach-v0", n_policies=4).to_dict(), "lr": -1.0}))
    import qmp.command as cli

    with pytest.raises(ConfigError, match="--lr must be positive"):
        cli.resume_config(["resume", "--snapshot_dir", str(tmp_path)])
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ConfigError, match="cannot read config.json"):
        cli.resume_config(["resume", "--snapshot_dir", str(tmp_path)])


# ------------------------------------------------------------------------------- property tests
INT_FLAGS = ["seed", "gradient_steps_per_itr", "min_buffer_size", "buffer_batch_size", "steps_per_epoch", "n_epochs",
             "batch_size", "num_evaluation_episodes", "evaluation_frequency", "vis_freq", "vis_num", "vis_width",
             "vis_height", "vis_fps", "snapshot_gap", "n_policies", "policy_sampling_freq", "replay_buffer_size",
             "torch_threads", "gpu", "max_n_worker", "distillation_n_epochs"]
FLOAT_FLAGS = ["target_update_tau", "target_entropy", "discount", "reward_scale", "lr", "grad_clip", "sharing_quantile",
               "control_penalty", "snapshot_interval_s"]
LIST_FLAGS = {"hidden_sizes": int, "kl_coeff": float, "sparse_tasks": int}
NUMBERS = st.one_of(st.integers(-(10**20), 10**20), st.floats(allow_nan=True, allow_infinity=True),
                    st.sampled_from([0, 1, -1, 0.5, 2**32]))


def _check(argv: list[str], flag: str) -> Config | None:
    """Either a valid Config or a one-line ConfigError naming `flag`; anything else fails the test."""
    try:
        cfg = parse(*argv)
    except ConfigError as exc:
        message = str(exc)
        assert "\n" not in message and message
        assert f"--{flag}" in message, message
        return None
    return cfg


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(method=st.sampled_from(sorted(METHODS)), env=st.sampled_from(sorted(ENVS)),
       flag=st.sampled_from(INT_FLAGS + FLOAT_FLAGS), value=NUMBERS)
def test_numeric_flags_parse_or_fail_with_one_line_naming_the_flag(method: str, env: str, flag: str,
                                                                    value: float) -> None:
    cfg = _check([method, f"--env={env}", *VALID_BASE[method], f"--{flag}={value!r}"], flag)
    if cfg is not None:
        parsed = getattr(cfg, flag)
        expected = float(value) if flag in FLOAT_FLAGS else value
        assert parsed == expected and not (isinstance(parsed, float) and math.isnan(parsed))  # NaN never gets through
        if flag in INT_FLAGS:
            assert isinstance(parsed, int) and float(value).is_integer()


@settings(max_examples=150, deadline=None)
@given(flag=st.sampled_from(sorted(LIST_FLAGS)), values=st.lists(NUMBERS, min_size=1, max_size=5))
def test_list_flags_parse_or_fail_with_one_line_naming_the_flag(flag: str, values: list[float]) -> None:
    cfg = _check(["dnc_sac", "--env=ToyReach-v0", f"--{flag}", *[repr(v) for v in values]], flag)
    if cfg is not None:
        parsed = getattr(cfg, flag)
        floats = all(isinstance(item, float) for item in parsed)  # 2**53 + 1 as a float is 2**53: compare as parsed
        assert parsed == ([float(v) for v in values] if floats else values)
        if flag == "hidden_sizes":
            assert all(h > 0 for h in values)


@settings(max_examples=150, deadline=None)
@given(method=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                      max_size=12),
       env=st.text(st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), min_size=1,
                   max_size=20))
def test_any_method_or_env_name_is_accepted_or_one_line_error(method: str, env: str) -> None:
    try:
        cfg = parse(method, f"--env={env}")
    except ConfigError as exc:
        assert "\n" not in str(exc)
    else:
        assert cfg.method in METHODS and cfg.env in ENVS


# ------------------------------------------------------------------------- faithful defaults
@pytest.mark.parametrize(("argv", "per_task"), [
    (["dnc_sac", "--env=JacoReachMT5-v1"], 1_000_000),  # DnC family: one 1e6 buffer per task
    (["qmp_uds_dnc", "--env=MetaWorldMT10-v2", "--sharing_quantile", "0"], 1_000_000),
    (["mtsac", "--env=JacoReachMT5-v1", *PARAM_SHARING], 200_000),  # one shared 1e6 buffer: ceil(1e6 / 5) each
    (["qmp_sac", "--env=MetaWorldMT10-v2", *PARAM_SHARING], 100_000),
    (["sac", "--env=MetaWorldMT50-v2", *PARAM_SHARING], 20_000),
    (["dnc_sac", "--env=MetaWorldMT50-v2"], 1_000_000),  # fits 16 GB since each obs is stored once
    (["mtsac", "--env=JacoReachMT5-v1", *PARAM_SHARING, "--replay_buffer_size", "7777"], 7777),  # the flag wins
])
def test_replay_capacity_is_the_originals_total(argv: list[str], per_task: int) -> None:
    from qmp.config import replay_capacity

    cfg = parse(*argv)
    assert replay_capacity(cfg, cfg.n_policies) == per_task


@pytest.mark.parametrize(("argv", "message"), [
    (["dnc_sac", "--env=JacoReachMT5-v1", "--kl_coeff", "0.01", "--sampling_type", "i"],
     "--sampling_type i crashed in the original"),
    (["dnc_sac", "--env=JacoReachMT5-v1", "--sampling_type", "j"],
     "--sampling_type j only chooses the states of the DnC KL term"),
    (["dnc_sac", "--env=JacoReachMT5-v1", "--kl_coeff", "0.01", "--sampling_type", "k"], "valid: all, j, i+j"),
    (["dnc_sac", "--env=JacoReachMT5-v1", "--multihead_double_tanh", "true"], "needs --policy_architecture multihead"),
    (["mtsac", "--env=JacoReachMT5-v1", *PARAM_SHARING, "--replay_buffer_size", "10", "--min_buffer_size", "100"],
     "the warm-up would never end"),
])
def test_faithfulness_flags_refuse_what_has_no_meaning(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("+", r"\+")):
        parse(*argv)


def test_faithfulness_flags_parse() -> None:
    assert parse("dnc_sac", "--env=JacoReachMT5-v1", "--kl_coeff", "0.01", "--sampling_type",
                 "i+j").sampling_type == "i+j"
    assert parse("qmp_sac", "--env=JacoReachMT5-v1", *PARAM_SHARING, "--multihead_double_tanh",
                 "true").multihead_double_tanh


def test_the_multihead_policy_squashes_twice_unless_told_otherwise() -> None:
    """The original's multihead policy squashed twice, and the paper's Parameters numbers come from it: that is
    the default wherever the policy is multihead, from flags or from Python; false opts into one tanh."""
    from qmp.flag_scope import variant_name

    assert parse("mtsac", "--env=JacoReachMT5-v1", *PARAM_SHARING).multihead_double_tanh is True
    assert parse("qmp_sac", "--env=MazeLarge-10-v0", *PARAM_SHARING).multihead_double_tanh is True
    assert parse("mtsac", "--env=JacoReachMT5-v1", *PARAM_SHARING,
                 "--multihead_double_tanh", "false").multihead_double_tanh is False
    assert parse("qmp_dnc", "--env=JacoReachMT5-v1").multihead_double_tanh is False
    assert parse("mcal", "--env=JacoReachMT5-v1", "--policy_architecture", "multihead").multihead_double_tanh is True
    # MT-Levy's released multihead actor squashes once, so its method does too unless told otherwise
    assert parse("mtlevy_sac", "--env=JacoReachMT5-v1", *PARAM_SHARING).multihead_double_tanh is False
    assert parse("mtlevy_sac", "--env=JacoReachMT5-v1", *PARAM_SHARING,
                 "--multihead_double_tanh", "true").multihead_double_tanh is True
    assert Config(policy_architecture="multihead").multihead_double_tanh is True
    assert Config().multihead_double_tanh is False
    # runs without --name are named by what differs from the default of their own architecture
    assert variant_name({"policy_architecture": "multihead", "multihead_double_tanh": True}) == "None"
    assert variant_name({"policy_architecture": "multihead", "multihead_double_tanh": False}) == "single_tanh"
    assert variant_name({"policy_architecture": "multihead"}) == "single_tanh"  # written before the flag: one tanh
    assert variant_name({"policy_architecture": "separate", "multihead_double_tanh": False}) == "None"
    assert variant_name({"method": "mtlevy_sac", "policy_architecture": "multihead",
                         "multihead_double_tanh": False}) == "None"


# ------------------------------------------------------------------- every flag acts or is refused
def _other_value(flag: str, default: object) -> list[str]:
    """A value different from the default, as command-line words."""
    special = {"env": ["JacoReachMT5-v1"], "policy_architecture": ["multihead"], "Q_architecture": ["multihead"],
               "partition": ["random"], "sampling_type": ["j"], "qswitch_score": ["min"], "qswitch_action": ["sample"],
               "qswitch_rule": ["softmax"],
               "vis_format": ["gif"], "task_name": ["0,1"], "sparse_tasks": ["1"], "kl_coeff": ["0.01"],
               "hidden_sizes": ["32", "32"], "reward_params": ["1", "1"], "reward_type": ["other"],
               "snapshot_dir": ["somewhere"], "run_dir": ["somewhere"], "log_dir": ["elsewhere"], "name": ["x"],
               "notes": ["a note"], "wandb_project": ["p"], "wandb_entity": ["e"], "sampler_type": ["ray"],
               "worker_type": ["fragment"], "n_policies": ["3"], "gpu": ["0"], "target_entropy": ["-1.5"],
               "min_task_probs": ["0.5"]}
    if flag in special:
        return special[flag]
    if isinstance(default, bool):
        return [str(not default).lower()]
    if isinstance(default, int | float) and not isinstance(default, bool):
        return [str(default * 2 if default else 1)]
    return ["3"]  # an optional number that is None by default


@pytest.mark.parametrize("flag", [f.name for f in Config.__dataclass_fields__.values() if f.name != "method"])
def test_every_flag_reaches_the_config_or_is_refused(flag: str) -> None:
    """Given on a method and env it could apply to, each flag either changes the run's config (config.json)
    or is refused with a one-line error naming it; only the garage-only flags are accepted with a warning."""
    from qmp.flag_scope import METHOD_FLAGS

    method = METHOD_FLAGS.get(flag, ("qmp_dnc",))[0]
    method = "dnc_sac" if method == "resume" else method
    env = "MazeLarge-10-v0" if flag in ("task_name", "sparse_tasks") else "ToyReach-v0"
    base = [method, f"--env={env}", *VALID_BASE.get(method, [])]
    default = parse(*base)
    argv = [*base, f"--{flag}", *_other_value(flag, getattr(default, flag))]
    argv += ["--n_policies", "2"] if flag == "task_name" else []  # the 2 tasks of "0,1"
    try:
        cfg = parse(*argv)
    except ConfigError as exc:
        assert f"--{flag}" in str(exc) and "\n" not in str(exc)
        return
    if flag in ("sampler_type", "worker_type", "max_n_worker"):
        assert garage_only_warnings(argv) and getattr(cfg, flag) != getattr(default, flag)
        return
    assert cfg.to_dict() != default.to_dict(), f"--{flag} was accepted and changed nothing"


@pytest.mark.parametrize(("argv", "message"), [
    (["dnc_sac", "--env=JacoReachMT5-v1", "--policy_sampling_freq", "2"],
     "--policy_sampling_freq does nothing for dnc_sac"),
    (["mtsac", "--env=JacoReachMT5-v1", *PARAM_SHARING, "--qswitch_score", "min"], "valid for: qmp_dnc, qmp_sac"),
    (["qmp_dnc", "--env=JacoReachMT5-v1", "--sharing_quant", "0.5"], "--sharing_quantile does nothing for qmp_dnc"),
    (["qmp_dnc", "--env=JacoReachMT5-v1", "--stagewise", "false"], "--stagewise does nothing for qmp_dnc"),
    (["dnc_sac", "--env=JacoReachMT5-v1", "--snapshot_dir", "x"], "valid for: resume"),
    (["dnc_sac", "--env=JacoReachMT5-v1", "--grad_clip", "1"], "passed it to no algorithm"),
    (["dnc_sac", "--env=JacoReachMT5-v1", "--discrete_action", "false"], "--discrete_action is refused"),
    (["dnc_sac", "--env=JacoReachMT5-v1", "--task_name", "0,1,2", "--n_policies", "3"],
     "--task_name does nothing for JacoReachMT5-v1"),
    (["dnc_sac", "--env=Walker2dMT4-v0", "--sparse_tasks", "1"], "valid for: MazeLarge-10-v0"),
    (["dnc_sac", "--env=MetaWorldMT10-v2", "--sparse_tasks", "1"], "--sparse_tasks does nothing for MetaWorldMT10-v2"),
])
def test_flags_where_they_do_nothing_are_refused(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse(*argv)


def test_a_task_subset_sets_the_policy_count_unless_it_is_given() -> None:
    assert parse("dnc_sac", "--env=MetaWorldMT50-v2", "--task_name", "reach-v3, push-v3,1").n_policies == 3
    assert parse("dnc_sac", "--env=MazeLarge-10-v0", "--task_name", "0,1").n_policies == 2
    with pytest.raises(ConfigError, match="--n_policies 3 does not match the 2 tasks of MazeLarge-10-v0; "
                                          "valid: --n_policies 2"):
        parse("dnc_sac", "--env=MazeLarge-10-v0", "--task_name", "0,1", "--n_policies", "3")
    with pytest.raises(ConfigError, match="--task_name does nothing for JacoReachMT5-v1"):
        parse("dnc_sac", "--env=JacoReachMT5-v1", "--task_name", "0,1")


def test_flags_where_they_act_are_accepted() -> None:
    assert parse("qmp_dnc", "--env=JacoReachMT5-v1", "--policy_sampling_freq", "5").policy_sampling_freq == 5
    assert parse("uds_dnc", "--env=JacoReachMT5-v1", "--sharing_quantile", "0.5").sharing_quantile == 0.5
    assert parse("dnc_sac", "--env=MazeLarge-10-v0", "--task_name", "0,1", "--n_policies", "2").task_name == "0,1"
    assert parse("dnc_sac", "--env=MetaWorldMT10-v2", "--task_name", "reach-v3,push-v3", "--n_policies", "2")
