"""Supervised data sharing (CDS, --unsupervised false): a transition shared with task i gets the reward task
i's own env gives for the same action from the same state (checked by stepping the env); envs whose
reward is not a function of (s, a, s') refuse the flag."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest
import torch

from qmp.cli import ConfigError, parse_args
from qmp.environments import ENVS, make_spec
from qmp.learning.buffer import MultiTaskReplayBuffer
from qmp.learning.nets import DoubleQ
from qmp.learning.sharing import UDSSharing


def filled_buffer(spec, rng: np.random.Generator, steps: int = 30) -> MultiTaskReplayBuffer:  # noqa: ANN001
    """Each task's buffer holds transitions of its own env under random actions."""
    t = spec.num_tasks
    envs = [spec.make_task_env(i, 0, False) for i in range(t)]
    obs = np.stack([env.reset(seed=i)[0] for i, env in enumerate(envs)])
    data = {key: [] for key in ("obs", "act", "rew", "next_obs", "terminated")}
    for _ in range(steps):
        act = rng.uniform(-1, 1, (t, envs[0].action_space.shape[0])).astype(np.float32)
        results = [env.step(a) for env, a in zip(envs, act, strict=True)]
        next_obs = np.stack([r[0] for r in results])
        for key, value in (("obs", obs), ("act", act), ("rew", [r[1] for r in results]), ("next_obs", next_obs),
                           ("terminated", [float(r[2]) for r in results])):
            data[key].append(np.asarray(value, np.float32))
        obs = next_obs
    buffer = MultiTaskReplayBuffer(t, steps, obs.shape[1], act.shape[1], torch.device("cpu"))
    buffer.extend({key: np.stack(value) for key, value in data.items()})
    return buffer


def env_reward(spec, task: int, obs: np.ndarray, act: np.ndarray) -> float:  # noqa: ANN001
    """Task `task`'s env put in state `obs`, stepped with `act`: its reward."""
    env = spec.make_task_env(task, 0, False)
    env.reset(seed=0)
    if hasattr(env, "data"):  # the point maze: obs = (qpos, qvel)
        env.data.qpos[:], env.data.qvel[:] = obs[:2], obs[2:]
        mujoco.mj_forward(env.model, env.data)
    else:
        env.pos = obs.astype(np.float64)
    return env.step(act)[1]


@pytest.mark.parametrize(("env", "kwargs"), [("ToyReach-v0", {}), ("MazeLarge-10-v0", {"task_name": "0,3,7",
                                                                                        "sparse_tasks": "3"})])
def test_shared_rewards_are_the_receiving_tasks_env_rewards(env: str, kwargs: dict) -> None:
    spec = make_spec(env, **kwargs)
    buffer = filled_buffer(spec, np.random.default_rng(0))
    t = spec.num_tasks
    sharing = UDSSharing(t, 6, spec.min_reward, 0.0, torch.device("cpu"), spec.reward)
    critic = DoubleQ("separate", t, buffer.storage["obs"].shape[-1], buffer.storage["act"].shape[-1], [8], False,
                     False)
    torch.manual_seed(0)
    batch, _, _ = sharing.build(buffer, critic, buffer.sample(6))
    checked = 0
    for i in range(t):
        for row in range(6, batch.rew.shape[1]):  # the shared rows
            obs, act = batch.obs[i, row].numpy(), batch.act[i, row].numpy()
            assert batch.rew[i, row].item() == pytest.approx(env_reward(spec, i, obs, act), abs=1e-4)
            checked += 1
    assert checked == t * (t - 1) * (6 // (t - 1))


def test_unsupervised_keeps_the_minimum_reward() -> None:
    spec = make_spec("ToyReach-v0")
    buffer = filled_buffer(spec, np.random.default_rng(1))
    sharing = UDSSharing(4, 6, spec.min_reward, 0.0, torch.device("cpu"))
    batch, _, _ = sharing.build(buffer, DoubleQ("separate", 4, 2, 2, [8], False, False), buffer.sample(6))
    assert torch.all(batch.rew[:, 6:] == spec.min_reward)


def test_flag_acts_only_where_the_reward_is_computable() -> None:
    for method in ("uds_dnc", "qmp_uds_dnc"):
        assert not parse_args([method, "--env=MazeLarge-10-v0", "--unsupervised", "false"]).unsupervised
    computable = sorted(name for name, entry in ENVS.items() if "reward" in entry.capabilities)
    assert computable == ["MazeLarge-10-v0", "ToyReach-v0"]
    for env in ("JacoReachMT5-v1", "MetaWorldCDS-v1", "Walker2dMT4-v0", "KitchenMTEasy-v0"):
        with pytest.raises(ConfigError, match=f"--unsupervised false needs an env whose reward is a function of "
                                              rf"\(s, a, s'\); {env} is not one; valid: MazeLarge-10-v0, ToyReach-v0"):
            parse_args(["uds_dnc", f"--env={env}", "--unsupervised", "false"])


def test_specs_provide_what_the_registry_promises() -> None:
    for name in ("ToyReach-v0", "MazeLarge-10-v0", "JacoReachMT5-v1", "Walker2dMT4-v0"):
        spec = make_spec(name)
        assert (spec.reward is not None) == ("reward" in ENVS[name].capabilities), name
        assert (spec.stage_of is not None) == ("stages" in ENVS[name].capabilities), name
