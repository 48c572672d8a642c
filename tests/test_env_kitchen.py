"""KitchenMTEasy-v0: the env contract, the task set-up, success logic and a scripted arm controller."""

from __future__ import annotations

import mujoco
import numpy as np
import pytest

from qmp.environments import make_spec
from qmp.environments.kitchen import (
    ACTION_SCALE,
    ELEMENT_ON_GOAL,
    ELEMENT_QPOS,
    INIT_QPOS,
    MT_EASY_TASKS,
    SUCCESS_REWARD,
    KitchenTask,
    KitchenTaskEnv,
    goal_vector,
    tolerance,
)
from qmp.environments.multitask import MultiTaskEnv

TASK_INDEX = {task.name: i for i, task in enumerate(MT_EASY_TASKS)}


def random_actions(rng: np.random.Generator, env: MultiTaskEnv) -> np.ndarray:
    return rng.uniform(-1.0, 1.0, (env.num_tasks, env.act_dim)).astype(np.float32)


def test_facts_match_gymnasium_robotics() -> None:
    from gymnasium_robotics.envs.franka_kitchen import kitchen_env

    for element, idx in ELEMENT_QPOS.items():
        np.testing.assert_array_equal(idx, kitchen_env.OBS_ELEMENT_INDICES[element])
        np.testing.assert_array_equal(ELEMENT_ON_GOAL[element], kitchen_env.OBS_ELEMENT_GOALS[element])
    reference = kitchen_env.KitchenEnv()
    np.testing.assert_array_equal(INIT_QPOS, reference.robot_env.init_qpos)
    assert reference.robot_env.frame_skip == 40
    np.testing.assert_array_equal(reference.robot_env.act_rng, np.full(9, ACTION_SCALE))
    reference.close()


def test_contract_random_rollout() -> None:
    spec = make_spec("KitchenMTEasy-v0")
    assert spec.num_tasks == 10 and spec.max_episode_steps == 140 and spec.min_reward == -20.0
    assert len(set(spec.task_names)) == 10
    env = MultiTaskEnv(spec, seed=0)
    assert (env.obs_dim, env.act_dim) == (60, 9)
    for task_env in env.envs:
        assert task_env.observation_space.dtype == np.float32
        assert task_env.action_space.low.min() == -1.0 and task_env.action_space.high.max() == 1.0
    obs = env.reset()
    assert obs.shape == (10, 60) and obs.dtype == np.float32
    rng = np.random.default_rng(0)
    for _ in range(25):
        result = env.step(random_actions(rng, env))
        assert result.next_obs.shape == (10, 60) and np.isfinite(result.next_obs).all()
        ok = ((result.reward >= -20.0) & (result.reward <= 0.0)) | (result.reward == SUCCESS_REWARD)
        assert ok.all() and not result.truncated.any()
        obs = env.reset_tasks(result.done)
    env.close()


def _rollout(env: MultiTaskEnv, actions: np.ndarray, reset_at: int) -> tuple[np.ndarray, ...]:
    observations, rewards, terminations = [], [], []
    for k, action in enumerate(actions):
        if k == reset_at:
            env.reset_tasks(np.ones(env.num_tasks, bool))  # a new episode inside the window: RNG covered
        result = env.step(action)
        observations.append(result.next_obs)
        rewards.append(result.reward)
        terminations.append(result.terminated)
    return np.array(observations), np.array(rewards), np.array(terminations)


def test_state_round_trip_is_bit_identical() -> None:
    env = MultiTaskEnv(make_spec("KitchenMTEasy-v0"), seed=3)
    env.reset()
    rng = np.random.default_rng(1)
    for _ in range(3):
        env.step(random_actions(rng, env))
    state = env.get_state()
    actions = np.stack([random_actions(rng, env) for _ in range(6)])
    first = _rollout(env, actions, reset_at=3)
    env.set_state(state)
    second = _rollout(env, actions, reset_at=3)
    for a, b in zip(first, second, strict=True):
        np.testing.assert_array_equal(a, b)
    env.close()


def test_same_seed_same_stream_other_seed_other_noise() -> None:
    spec = make_spec("KitchenMTEasy-v0")
    envs = [MultiTaskEnv(spec, seed=s) for s in (7, 7, 8)]
    starts = [e.reset() for e in envs]
    np.testing.assert_array_equal(starts[0], starts[1])
    assert not np.array_equal(starts[0], starts[2])  # only the observation noise differs
    rng = np.random.default_rng(2)
    for _ in range(3):
        action = random_actions(rng, envs[0])
        a, b = envs[0].step(action), envs[1].step(action)
        np.testing.assert_array_equal(a.next_obs, b.next_obs)
        np.testing.assert_array_equal(a.reward, b.reward)
    for e in envs:
        e.close()


@pytest.mark.parametrize("task", MT_EASY_TASKS, ids=lambda t: t.name)
def test_reset_configuration(task: KitchenTask) -> None:
    env = KitchenTaskEnv(task)
    obs, _ = env.reset(seed=0)
    element = env.data.qpos[ELEMENT_QPOS[task.element]]
    if task.turn_on:
        np.testing.assert_array_equal(element, INIT_QPOS[ELEMENT_QPOS[task.element]])
    else:  # close/off tasks start open/on
        np.testing.assert_array_equal(element, ELEMENT_ON_GOAL[task.element])
    assert env.distances()[0] > task.threshold  # not solved at the start
    np.testing.assert_array_equal(obs[30:], goal_vector(task, quirk=True).astype(np.float32))
    noise = obs[:30] - env.data.qpos[:30]
    assert 0.0 < np.abs(noise[:9]).max() <= 0.01 + 1e-6  # 10% of the 0.1 robot noise amplitude


@pytest.mark.parametrize("task", MT_EASY_TASKS, ids=lambda t: t.name)
def test_success_logic_by_state(task: KitchenTask) -> None:
    """Put the element just inside / just outside its threshold and step once with a zero action."""
    env = KitchenTaskEnv(task)
    direction = (task.start - task.goal) / np.linalg.norm(task.start - task.goal)
    env.reset(seed=0)
    env.set_element(task.goal + 1.3 * task.threshold * direction)
    _, reward, terminated, _, info = env.step(np.zeros(9, np.float32))
    assert not info["success"] and not terminated and -20.0 <= reward <= 0.0
    env.set_element(task.goal + 0.7 * task.threshold * direction)
    _, reward, terminated, truncated, info = env.step(np.zeros(9, np.float32))
    assert info["success"] and terminated and not truncated and reward == SUCCESS_REWARD


def test_goal_quirk_hides_some_tasks() -> None:
    by_name = {t.name: t for t in MT_EASY_TASKS}
    on, off = by_name["light-switch-on"], by_name["light-switch-off"]
    np.testing.assert_array_equal(goal_vector(on, quirk=True), goal_vector(off, quirk=True))
    assert not np.array_equal(goal_vector(on, quirk=False), goal_vector(off, quirk=False))
    spec = make_spec("KitchenMTEasy-v0", goal_quirk=False)
    env = spec.make_task_env(TASK_INDEX["light-switch-off"], 0, False)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs[30 + 17 : 30 + 19], off.goal.astype(np.float32))


def test_tolerance_shape() -> None:
    assert tolerance(0.05, 0.1, 0.5) == 1.0
    assert tolerance(0.6, 0.1, 0.5) == pytest.approx(0.1)
    assert 1.0 > tolerance(0.2, 0.1, 0.5) > tolerance(0.4, 0.1, 0.5) > 0.0
    assert tolerance(0.2, 0.1, 0.0) == 0.0


# --- a scripted arm: damped-least-squares Cartesian control of the finger midpoint -------------
READY_POSE = np.array([0.0, -0.785, 0.0, -2.356, 0.0, 1.571, 0.785])  # null-space posture bias


def reach_action(env: KitchenTaskEnv, target: np.ndarray, grip: float) -> np.ndarray:
    model, data = env.model, env.data
    jac = np.zeros((3, model.nv))
    for body in env.finger_ids:
        part = np.zeros((3, model.nv))
        mujoco.mj_jacBody(model, data, part, None, body)
        jac += 0.5 * part
    jac = jac[:, :7]
    velocity = 10.0 * (target - env.gripper_pos())
    velocity *= min(1.0, 1.0 / max(np.linalg.norm(velocity), 1e-9))
    pinv = jac.T @ np.linalg.inv(jac @ jac.T + 1e-3 * np.eye(3))
    dq = pinv @ velocity + (np.eye(7) - pinv @ jac) @ (READY_POSE - data.qpos[:7])
    return np.append(np.clip(dq / ACTION_SCALE, -1.0, 1.0), [grip, grip]).astype(np.float32)


# (offset from the element's site, steps): approach in front, close in with open fingers, push.
PUSH_PLANS = {
    "light-switch-on": [((0, -0.15, 0.03), 20), ((0, -0.07, 0.03), 20), ((-0.25, -0.07, 0.03), 40)],
    "slide-cabinet-open": [((0, -0.15, 0), 20), ((0, -0.07, 0), 20), ((0.45, -0.07, 0), 60)],
    "slide-cabinet-close": [((0, -0.15, 0), 20), ((0, -0.07, 0), 20), ((-0.45, -0.07, 0), 60)],
}


@pytest.mark.parametrize("name", sorted(PUSH_PLANS))
def test_scripted_arm_solves_task(name: str) -> None:
    env = KitchenTaskEnv(MT_EASY_TASKS[TASK_INDEX[name]])
    env.reset(seed=5)
    site = env.data.site_xpos[env.site_id].copy()
    rewards = []
    for offset, steps in PUSH_PLANS[name]:
        for _ in range(steps):
            _, reward, terminated, _, info = env.step(reach_action(env, site + np.asarray(offset), grip=1.0))
            rewards.append(reward)
            if terminated:
                break
        if terminated:
            break
    assert terminated and info["success"] and len(rewards) <= 140
    assert rewards[-1] == SUCCESS_REWARD
    assert all(-20.0 <= r <= 0.0 for r in rewards[:-1])
    assert rewards[-2] > rewards[0]  # the shaped reward rose while the gripper approached
