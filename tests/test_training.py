"""End-to-end runs on the toy env: every method trains, Separated and QMP learn, runs are deterministic,
and evaluation uses each task's own policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from qmp.build import build
from qmp.cli import parse_args
from qmp.environments import ENVS, make_spec
from qmp.learning.policies import OwnPolicy
from qmp.loop import evaluate_policies
from qmp.methods import METHODS
from qmp.rollout import episode_metrics, evaluate, evaluation_seed
from qmp.settings import Settings
from tests.helpers import read_progress, tiny_flags, train, without_time

TOY = "ToyReach-v0"
MULTIHEAD_Q = ["--Q_architecture", "multihead"]
ARCH_FLAGS = {m: ["--policy_architecture", "multihead", *([] if method.multi_critic else MULTIHEAD_Q)]
              for m, method in METHODS.items() if "separate" not in method.architectures}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_every_method_trains_on_the_toy_env(method: str, tmp_path: Path) -> None:
    rows = train(method, TOY, tmp_path, *tiny_flags(4, 20), *ARCH_FLAGS.get(method, []))
    assert [int(r["epoch"]) for r in rows] == [0, 1]
    last = rows[-1]
    assert float(last["grad_steps"]) > 0 and float(last["train/qf1_loss"]) > 0
    assert float(last["collect/episodes"]) >= 4  # every task finished an episode
    assert float(last["eval/episodes"]) == 4
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "tb").is_dir()
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["method"] == method and config["resolved"]["num_tasks"] == 4
    if METHODS[method].qswitch:
        assert "eval_mixture/success" in last and "collect/own_policy_frac" in last
        record = json.loads((tmp_path / "qswitch_selection.jsonl").read_text().splitlines()[-1])
        assert np.asarray(record["counts"]).sum() == 4 * 20
    else:
        assert "eval_mixture/success" not in last
    if METHODS[method].sharing:
        assert float(last["train/shared_data_kept"]) == 1.0  # --sharing_quantile 0 keeps all


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dnc_sac", "qmp_dnc"])
def test_separated_and_qmp_learn_the_toy_env(method: str, tmp_path: Path) -> None:
    rows = train(method, TOY, tmp_path, "--seed", "1")
    success = [float(r["eval/success"]) for r in rows]
    assert np.mean(success[:3]) < 0.3  # it starts unable ...
    assert np.mean(success[-5:]) >= 0.75  # ... and learns within the preset's 30 epochs


def test_same_seed_gives_identical_logs(tmp_path: Path) -> None:
    flags = [*tiny_flags(4, 20), "--n_epochs", "3"]
    first = train("qmp_uds_dnc", TOY, tmp_path / "a", *flags)
    second = train("qmp_uds_dnc", TOY, tmp_path / "b", *flags)
    assert without_time(first) == without_time(second)
    third = train("qmp_uds_dnc", TOY, tmp_path / "c", *flags, "--seed", "7")
    assert without_time(first) != without_time(third)


def test_explicit_flags_and_presets_reach_the_run(tmp_path: Path) -> None:
    rows = train("dnc_sac", TOY, tmp_path, *tiny_flags(4, 20), "--evaluation_frequency", "2", "--n_epochs", "3")
    assert [r["eval/success"] != "" for r in rows] == [True, False, True]  # epochs 0 and 2 (the last)
    config = json.loads((tmp_path / "config.json").read_text())
    assert config["lr"] == 1e-3  # the toy preset
    assert config["evaluation_frequency"] == 2


def test_evaluation_uses_each_tasks_own_policy(tmp_path: Path) -> None:
    cfg = parse_args(["qmp_dnc", f"--env={TOY}", "--run_dir", str(tmp_path), "--num_evaluation_episodes", "4"],
                     list(METHODS), list(ENVS))
    exp = build(Settings.from_config(cfg, 4), make_spec(TOY), torch.device("cpu"))
    with torch.no_grad():  # rig every critic to prefer policy 3's proposals: the mixture now differs
        exp.agent.critic.net.body.out.bias.zero_()
        out = exp.agent.policy.net.body.out
        out.bias[3, 0, :2] = 3.0
        critic_last = exp.agent.critic.net.body.out
        critic_last.weight.zero_()
        first = exp.agent.critic.net.body.hidden[0]
        first.weight.zero_()
        first.bias.fill_(1.0)
        first.weight[:, 2:, :] = 1.0  # Q = sum of hidden = grows with the action's sum
        critic_last.weight.fill_(1.0)
    metrics = evaluate_policies(exp, cfg.num_evaluation_episodes, cfg.seed, epoch=0)
    own = episode_metrics(evaluate(exp.eval_env, OwnPolicy(exp.agent.policy), 1, evaluation_seed(cfg.seed, 0),
                                   exp.agent.device),
                          exp.spec.task_names, "eval")
    assert {k: metrics[k] for k in own} == own
    assert metrics["eval_mixture/return"] != metrics["eval/return"]


def test_resume_continues_where_it_stopped(tmp_path: Path) -> None:
    flags = [*tiny_flags(4, 20), "--n_epochs", "4"]
    full = train("qmp_dnc", TOY, tmp_path / "full", *flags)
    train("qmp_dnc", TOY, tmp_path / "split", *tiny_flags(4, 20))  # stops after 2 epochs
    resumed = train("qmp_dnc", TOY, tmp_path / "split", *flags)  # the same command, more epochs
    assert without_time(resumed) == without_time(full)
    assert len(read_progress(tmp_path / "split")) == 4


def test_videos_of_the_evaluation_episodes(tmp_path: Path) -> None:
    import imageio.v2 as imageio

    flags = [*tiny_flags(4, 20), "--n_epochs", "2", "--vis_freq", "2", "--vis_num", "4", "--vis_width", "32",
             "--vis_height", "24"]
    rows = train("dnc_sac", TOY, tmp_path, *flags)
    videos = sorted((tmp_path / "videos").iterdir())
    # epoch 1 is not a multiple of 2
    assert [v.name for v in videos] == sorted(f"epoch0_reach-{a}deg.mp4" for a in (0, 45, 90, 135))
    frames = imageio.mimread(videos[0])
    assert len(frames) == 20 and frames[0].shape == (24, 32, 3)
    assert rows[0]["time/video_s"] != "" and rows[1]["time/video_s"] == ""


def test_a_mujoco_env_renders_offscreen() -> None:
    """The video path on a real simulator: one frame of the Jaco arm through EGL."""
    from qmp.environments.multitask import MultiTaskEnv

    env = MultiTaskEnv(make_spec("JacoReachMT5-v1", render_mode="rgb_array"), seed=0, evaluation=True)
    env.reset()
    frame = np.asarray(env.envs[0].render())
    env.close()
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.std() > 1.0  # not a blank image


def test_wandb_logging_continues_the_same_run_on_resume(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--wandb true: a stand-in wandb module records init calls and logged steps."""
    import sys
    import types

    inits: list[dict] = []
    logged: list[tuple[int, float]] = []

    class FakeRun:
        def log(self, metrics: dict, step: int) -> None:
            logged.append((step, metrics["env_steps"]))

        def finish(self) -> None:
            pass

    fake = types.ModuleType("wandb")
    fake.util = types.SimpleNamespace(generate_id=lambda: "abc123")
    fake.init = lambda **kwargs: inits.append(kwargs) or FakeRun()
    monkeypatch.setitem(sys.modules, "wandb", fake)
    monkeypatch.setattr("importlib.util.find_spec", lambda name, *a: object() if name == "wandb" else None)
    flags = [*tiny_flags(4, 20), "--wandb", "true", "--wandb_project", "proj", "--n_epochs", "1"]
    train("dnc_sac", TOY, tmp_path, *flags)
    train("dnc_sac", TOY, tmp_path, *flags[:-2], "--n_epochs", "2")  # resume for one more epoch
    assert [i["id"] for i in inits] == ["abc123", "abc123"] and inits[0]["project"] == "proj"
    assert inits[1]["resume"] == "allow"
    assert [step for step, _ in logged] == [0, 1]
    assert (tmp_path / "wandb_run_id.txt").read_text() == "abc123"


@pytest.mark.parametrize(("method", "per_task"), [("mtsac", 250_000), ("dnc_sac", 1_000_000)])
def test_config_json_states_the_replay_capacity(method: str, per_task: int, tmp_path: Path) -> None:
    """Without --replay_buffer_size: the original's one 1e6 buffer split over 4 tasks (sac family), or 1e6
    per task (DnC family); config.json says so."""
    flags = tiny_flags(4, 20)
    at = flags.index("--replay_buffer_size")
    del flags[at : at + 2]
    train(method, TOY, tmp_path, *flags, "--n_epochs", "1", *ARCH_FLAGS.get(method, []))
    resolved = json.loads((tmp_path / "config.json").read_text())["resolved"]
    assert (resolved["replay_per_task"], resolved["replay_total"]) == (per_task, 4 * per_task)
