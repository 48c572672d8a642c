"""Meta-World MT10 / MT50 / CDS: the env contract, scripted success, goal-variant cycling, seeding.

MT10 costs about 9 s to build (its benchmark is cached per seed, so later builds are cheaper). The
full MT50 benchmark takes about 35 s, so its task-env test is marked slow (it still runs in `make test`).
"""

from __future__ import annotations

import numpy as np
import pytest

from qmp.environments import make_spec
from qmp.environments.metaworld import metaworld_cds, metaworld_mt10, metaworld_mt50
from qmp.environments.multitask import MultiTaskEnv

pytestmark = pytest.mark.filterwarnings("ignore:Constant.*too high")

OBS_DIMS = {"MetaWorldMT10-v2": 39, "MetaWorldCDS-v1": 21}


@pytest.fixture(scope="module")
def mt10_spec():
    return metaworld_mt10()


@pytest.fixture(scope="module")
def cds_spec():
    return metaworld_cds()


def random_actions(rng: np.random.Generator, env: MultiTaskEnv) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, (env.num_tasks, env.act_dim)).astype(np.float32)


def rollout(env: MultiTaskEnv, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Step a fixed action sequence, resetting finished tasks; returns the streams."""
    obs, rewards, dones = [], [], []
    for act in actions:
        res = env.step(act)
        obs.append(res.next_obs)
        rewards.append(res.reward)
        dones.append(res.terminated.copy())
        env.reset_tasks(res.done)
    return np.array(obs), np.array(rewards), np.array(dones)


@pytest.mark.parametrize("spec_name", ["mt10_spec", "cds_spec"])
def test_contract(spec_name: str, request: pytest.FixtureRequest) -> None:
    spec = request.getfixturevalue(spec_name)
    env = MultiTaskEnv(spec, seed=0)
    assert env.obs_dim == OBS_DIMS[spec.name] and env.act_dim == 4
    assert spec.max_episode_steps == 500 and spec.min_reward == 0.0
    for task_env in env.envs:
        assert task_env.action_space.shape == (4,)
        assert np.all(task_env.action_space.low == -1) and np.all(task_env.action_space.high == 1)
    obs = env.reset()
    assert obs.shape == (spec.num_tasks, env.obs_dim) and obs.dtype == np.float32
    rng = np.random.default_rng(0)
    episodes = []
    for _ in range(spec.max_episode_steps + 5):  # crosses the time limit: no metaworld error, resets work
        res = env.step(random_actions(rng, env))
        assert res.next_obs.dtype == np.float32 and np.isfinite(res.next_obs).all()
        assert np.isfinite(res.reward).all() and (res.reward >= spec.min_reward).all() and (res.reward <= 10).all()
        assert not res.terminated.any()
        episodes += res.episodes
        env.reset_tasks(res.done)
    assert len(episodes) == spec.num_tasks and all(ep.length == 500 for ep in episodes)

    # get_state -> K steps -> set_state -> same K steps is bit-identical, across an episode reset
    for _ in range(spec.max_episode_steps - 10 - 5):
        env.step(random_actions(rng, env))
    assert (env.elapsed == spec.max_episode_steps - 10).all()
    snapshot = env.get_state()
    actions = rng.uniform(-1.0, 1.0, (20, env.num_tasks, env.act_dim)).astype(np.float32)
    first = rollout(env, actions)
    env.set_state(snapshot)
    second = rollout(env, actions)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)

    # same seed -> identical streams (a fresh env against the re-seeded old one)
    twin = MultiTaskEnv(spec, seed=0)
    np.testing.assert_array_equal(twin.reset(), env.reset(seed=0))
    for x, y in zip(rollout(twin, actions[:5]), rollout(env, actions[:5]), strict=True):
        np.testing.assert_array_equal(x, y)


def test_mt10_scripted_policies_succeed(mt10_spec) -> None:
    """metaworld's own scripted policies, driven through OUR task envs, solve every MT10 task."""
    from metaworld.policies import ENV_POLICY_MAP

    for task, name in enumerate(mt10_spec.task_names):
        env = mt10_spec.make_task_env(task, 0, False)
        policy = ENV_POLICY_MAP[name]()
        obs, _ = env.reset(seed=task)
        for _ in range(300):
            obs, reward, terminated, truncated, info = env.step(policy.get_action(obs.astype(np.float64)))
            assert not terminated and not truncated
            if info["success"]:
                break
        assert info["success"], name


def hinge_of(env) -> np.ndarray:
    """The door hinge in world coordinates (doorlockB's door_link sits at (-0.185, -0.1, 0))."""
    return env.env.model.body("door").pos + np.array([-0.185, -0.1, 0.0])


def move(hand: np.ndarray, target: np.ndarray, gain: float = 10.0) -> np.ndarray:
    return np.clip((target - hand) * gain, -1.0, 1.0)


def arc_target(hand: np.ndarray, hinge: np.ndarray, radius: float, turn: float, z: float) -> np.ndarray:
    """A point on the circle around the hinge, `turn` radians further than the hand."""
    angle = np.arctan2(hand[1] - hinge[1], hand[0] - hinge[0]) + turn
    return np.array([hinge[0] + radius * np.cos(angle), hinge[1] + radius * np.sin(angle), z])


def cds_controller(name: str, env, obs: np.ndarray) -> np.ndarray:
    """Hand-written waypoint controllers for the shared door/drawer scene."""
    hand, drawer, handle = obs[:3], obs[4:7], obs[11:14]
    grip = -1.0
    if name == "drawer-open":  # over the handle, drop behind it, pull towards -y
        if np.linalg.norm(hand[:2] - drawer[:2]) > 0.02 and hand[2] < drawer[2] + 0.1:
            target = np.array([hand[0], hand[1], drawer[2] + 0.15])
        elif np.linalg.norm(hand[:2] - drawer[:2]) > 0.02:
            target = drawer + np.array([0.0, 0.0, 0.15])
        elif hand[2] > drawer[2] + 0.01:
            target = drawer + np.array([0.0, 0.0, -0.02])
        else:
            target = drawer + np.array([0.0, -0.1, -0.02])
    elif name == "drawer-close":  # in front of the handle, drop, push towards +y
        front = drawer + np.array([0.0, -0.08, 0.0])
        if np.linalg.norm(hand[:2] - front[:2]) > 0.02:
            target = front + np.array([0.0, 0.0, 0.2])
        elif hand[2] > drawer[2] + 0.02:
            target = front
        else:
            target = drawer + np.array([0.0, 0.2, 0.0])
    elif name == "door-open":  # drop into the gap between handle bar and door, then swing clockwise
        hinge = hinge_of(env)
        hook = handle + np.array([0.02, 0.05, 0.0])
        engaged = abs(hand[2] - handle[2]) < 0.03 and np.linalg.norm(hand[:2] - handle[:2]) < 0.1
        if engaged:
            target = arc_target(hand, hinge, np.linalg.norm(hand[:2] - hinge[:2]), -0.4, handle[2])
        elif np.linalg.norm(hand[:2] - hook[:2]) > 0.02:
            target = hook + np.array([0.0, 0.0, 0.15])
        else:
            target = hook
    else:  # door-close: get on the outside of the open door, swing it counter-clockwise
        hinge = hinge_of(env)
        outside = arc_target(handle, hinge, 0.25, -0.5, handle[2])
        if (np.linalg.norm(hand[:2] - outside[:2]) > 0.03
                and abs(np.arctan2(*(hand - hinge)[1::-1]) - np.arctan2(*(handle - hinge)[1::-1])) > 0.3):
            target = outside
        else:
            target = arc_target(hand, hinge, 0.25, 0.5, handle[2])
    return np.append(move(hand, target), grip).astype(np.float32)


@pytest.mark.parametrize("task", range(4))
def test_cds_scripted_controllers_succeed(cds_spec, task: int) -> None:
    name = cds_spec.task_names[task]
    env = cds_spec.make_task_env(task, 0, False)
    for episode in range(2):
        obs, _ = env.reset(seed=episode)
        for _ in range(300):
            obs, reward, terminated, truncated, info = env.step(cds_controller(name, env, obs))
            if info["success"]:
                break
        assert info["success"], (name, episode)


@pytest.mark.parametrize("spec_name", ["mt10_spec", "cds_spec"])
def test_goal_variants_cycle_and_seeding(spec_name: str, request: pytest.FixtureRequest) -> None:
    spec = request.getfixturevalue(spec_name)
    env = spec.make_task_env(0, 0, False)  # seed 0: reuses the benchmark cached by the other tests
    env.reset(seed=1)
    goals = [env.goal]
    for _ in range(49):
        env.reset()
        goals.append(env.goal)
    assert not np.array_equal(goals[0], goals[1])
    assert len({tuple(g) for g in goals}) == 50  # a full pass covers the 50 variants
    env.reset()  # second pass: the same 50 variants, reshuffled
    second_pass = [env.goal]
    for _ in range(49):
        env.reset()
        second_pass.append(env.goal)
    assert {tuple(g) for g in goals} == {tuple(g) for g in second_pass}
    assert [tuple(g) for g in goals] != [tuple(g) for g in second_pass]

    same = spec.make_task_env(0, 0, False)
    same.reset(seed=1)
    np.testing.assert_array_equal(same.goal, goals[0])
    others = [spec.make_task_env(0, 0, True)]  # the evaluation instance
    if spec.name == "MetaWorldCDS-v1":
        others.append(spec.make_task_env(0, 8, False))  # another run seed (an MT10 build costs 6 s)
    for other in others:
        other_goals = set()
        for i in range(50):
            other.reset(seed=1 if i == 0 else None)
            other_goals.add(tuple(other.goal))
        assert len(other_goals) == 50 and not other_goals & {tuple(g) for g in goals}


def test_task_name_subset_and_registry() -> None:
    spec = metaworld_mt50(task_name="reach-v3, 1,window-close-v3")
    assert spec.task_names == ("reach-v3", "basketball-v3", "window-close-v3")
    assert metaworld_mt50().num_tasks == 50
    assert make_spec("MetaWorldCDS-v1").task_names == ("door-open", "door-close", "drawer-open", "drawer-close")
    with pytest.raises(ValueError, match="unknown Meta-World task"):
        metaworld_mt10(task_name="not-a-task")
    with pytest.raises(ValueError, match="sparse"):
        metaworld_cds(sparse_tasks=[0])


@pytest.mark.slow  # the MT50 benchmark takes ~35 s to build
def test_mt50_task_envs() -> None:
    spec = metaworld_mt50()
    for task in (0, 49):
        env = spec.make_task_env(task, 0, False)
        obs, _ = env.reset(seed=0)
        assert obs.shape == (39,) and obs.dtype == np.float32
        for _ in range(5):
            obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
            assert np.isfinite(obs).all() and 0.0 <= reward <= 10.0 and not terminated and not truncated
