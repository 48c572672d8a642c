"""Walker2dMT4-v0: the env contract and analytic rewards, terminations and success from set states."""

from __future__ import annotations

import pickle

import mujoco
import numpy as np
import pytest

from qmp.environments import make_spec
from qmp.environments.multitask import MultiTaskEnv
from qmp.environments.walker import WalkerTask
from tests.helpers import assert_same, rollout

NAME = "Walker2dMT4-v0"
TASKS = ("forward", "backward", "balance", "crawl")


def test_contract_random_rollout_and_exact_resume() -> None:
    spec = make_spec(NAME)
    assert spec.task_names == TASKS and spec.max_episode_steps == 1000 and spec.min_reward == 0.0
    assert "x_velocity" in spec.extra_info_keys
    env = MultiTaskEnv(spec, seed=0)
    obs = env.reset()
    assert obs.shape == (4, 17) and obs.dtype == np.float32 and env.act_dim == 6
    rng = np.random.default_rng(1)
    episodes = []
    for _ in range(300):
        result = env.step(rng.uniform(-1, 1, (4, 6)))
        assert result.next_obs.dtype == np.float32 and np.isfinite(result.next_obs).all()
        assert np.isfinite(result.reward).all() and np.abs(result.next_obs[:, 8:]).max() <= 10.0
        episodes += result.episodes
        env.reset_tasks(result.done)
    assert {e.task for e in episodes} == {0, 1, 2, 3}  # random actions fall: every task terminates
    assert all(e.terminated and not e.success and np.isfinite(e.extras["x_velocity"]) for e in episodes)

    actions = rng.uniform(-1, 1, (30, 4, 6))
    state = pickle.loads(pickle.dumps(env.get_state()))
    first = rollout(env, actions, forced_reset_at=8)
    env.set_state(state)
    assert_same(first, rollout(env, actions, forced_reset_at=8))

    twin_a, twin_b = MultiTaskEnv(spec, seed=3), MultiTaskEnv(spec, seed=3)
    np.testing.assert_array_equal(twin_a.reset(), twin_b.reset())
    assert_same(rollout(twin_a, actions, 4), rollout(twin_b, actions, 4))
    assert not np.array_equal(MultiTaskEnv(spec, seed=4).reset(), twin_a.reset(seed=3))


def task_env(name: str) -> WalkerTask:
    env = make_spec(NAME).make_task_env(TASKS.index(name), 0, False)
    env.reset(seed=0)
    return env


def set_pose(env: WalkerTask, x: float = 0.0, z: float = 1.25, angle: float = 0.0, x_speed: float = 0.0) -> None:
    """The upright rest pose (all joints 0), moving rigidly along x at `x_speed`."""
    env.data.qpos[:] = 0.0
    env.data.qpos[:3] = (x, z, angle)
    env.data.qvel[:] = 0.0
    env.data.qvel[0] = x_speed
    mujoco.mj_forward(env.model, env.data)


# In the rest pose in the air: no contact, so the walker keeps its x speed and pose for one step;
# nz = 1, dh = 1.25 (torso frame 1.25 above the foot frames), ctrl = 0 and foot = 0 for a zero action.
@pytest.mark.parametrize(
    "task, speed, expected",
    [
        ("forward", 2.0, (3 - 1) + 0.1 - 0.15 + 1),
        ("forward", 5.0, (3 - 2) + 0.1 - 0.15 + 1),
        ("backward", -2.0, (3 - 1) + 0.1 - 0.15 + 1),
        ("backward", 2.0, (3 - 5) + 0.1 - 0.15 + 1),
        ("balance", 2.0, -2 + 0.1 - 0.5 * 0.15 + 1),
        ("balance", -1.0, -1 + 0.1 - 0.5 * 0.15 + 1),
        ("crawl", 2.0, 2 * (3 - 1) + 0.1 + 1),
    ],
)
def test_rewards_at_a_known_velocity(task: str, speed: float, expected: float) -> None:
    env = task_env(task)
    set_pose(env, z=1.3, x_speed=speed)
    obs, reward, terminated, truncated, info = env.step(np.zeros(6))
    assert info["x_velocity"] == pytest.approx(speed, abs=1e-6)
    assert reward == pytest.approx(expected, abs=1e-5)
    assert not terminated and not truncated and not info["success"] and not info["touches_ceiling"]
    assert obs.shape == (17,) and obs[8] == pytest.approx(speed, abs=1e-6)  # qvel[0] follows qpos[1:]


def test_control_and_foot_terms_recomputed_from_the_states() -> None:
    """Forward with a non-zero action: every reward term rebuilt from the states before and after."""
    env = task_env("forward")
    set_pose(env, z=1.3, x_speed=1.0)
    before = env.data.qpos.copy()
    action = np.array([0.5, -0.5, 1.0, -1.0, 0.25, 0.0])
    _, reward, _, _, info = env.step(action)
    after, dt = env.data.qpos.copy(), 0.008
    v = (after[0] - before[0]) / dt
    foot = -0.01 * (abs(after[5] - before[5]) + abs(after[8] - before[8])) / dt
    delta_h = env.data.body("torso").xpos[2] - max(env.data.body("foot").xpos[2], env.data.body("foot_left").xpos[2])
    ctrl = -1e-3 * (0.25 + 0.25 + 1 + 1 + 0.0625)
    expected = (3 - abs(v - 3)) + 0.1 * np.cos(after[2]) - abs(1.1 - delta_h) + ctrl + 1 + foot
    assert foot < -0.01 and abs(delta_h - 1.25) > 1e-4  # the joints really moved
    assert reward == pytest.approx(expected, abs=1e-9) and info["x_velocity"] == pytest.approx(v)


def test_actions_are_clipped_and_observed_speeds_too() -> None:
    env = task_env("balance")
    rewards = []
    for scale in (1.0, 3.0):  # the same physics and the same control cost once clipped to [-1, 1]
        set_pose(env, z=1.3)
        rewards.append(env.step(scale * np.array([1, -1, 1, -1, 1, -1.0]))[1])
    assert rewards[0] == rewards[1]
    set_pose(env, z=1.3)
    env.data.qvel[3] = 50.0  # thigh joint speed beyond the observation clip
    obs, *_ = env.step(np.zeros(6))
    assert obs[8 + 3] == 10.0


def test_fall_terminates_by_height_threshold() -> None:
    for task, ends in (("forward", True), ("backward", True), ("balance", True), ("crawl", False)):
        env = task_env(task)
        set_pose(env, z=0.5, angle=np.pi / 2)  # lying horizontally in the air at 0.5 m
        *_, terminated, _, info = env.step(np.zeros(6))
        assert terminated is ends and not info["success"], task


def test_crawl_ceiling_contact_penalised_and_terminal() -> None:
    env = task_env("crawl")
    assert env.model.ngeom == task_env("forward").model.ngeom + 1
    set_pose(env, x=5.0, z=1.25)  # torso 1.0-1.5 m inside the ceiling slab (x 2-14, z 0.9-1.1)
    _, reward, terminated, _, info = env.step(np.zeros(6))
    assert info["touches_ceiling"] and terminated and not info["success"]
    assert reward <= 2 * 3 + 0.1 + 1 - 10  # the velocity term is at most 2*3, foot and ctrl <= 0
    set_pose(env, x=5.0, z=0.75, angle=np.pi / 2)  # lying under the ceiling: free
    _, reward, terminated, _, info = env.step(np.zeros(6))
    assert not info["touches_ceiling"] and not terminated and reward > 0


def test_success_at_step_1000_is_not_terminal() -> None:
    spec = make_spec(NAME)
    env = MultiTaskEnv(spec, seed=0)
    env.reset()
    for task in env.envs:
        set_pose(task, z=1.3)
        task.t = 998
    env.elapsed[:] = 998
    result = env.step(np.zeros((4, 6)))
    assert not result.done.any() and not env.ep_success.any()
    result = env.step(np.zeros((4, 6)))
    assert not result.terminated.any() and result.truncated.all()
    assert all(e.success and not e.terminated and e.length == 1000 for e in result.episodes)


def test_reset_is_perturbed_and_seeded() -> None:
    env = make_spec(NAME).make_task_env(0, 0, False)
    a, _ = env.reset(seed=5)
    b, _ = env.reset(seed=5)
    c, _ = env.reset(seed=6)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert env.t == 0 and abs(a[0] - 1.25) < 0.1  # 5 random actions moved it, but it still stands
