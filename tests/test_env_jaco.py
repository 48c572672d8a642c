"""JacoReachMT5-v1: the env contract, reachability of every task by a scripted controller, the
reward terms of each task, the stage one-hot and the instability handling."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

from qmp.environments import make_spec
from qmp.environments.jaco import INIT_QPOS, SUBGOALS, JacoReachTask
from qmp.environments.multitask import MultiTaskEnv

OBS_DIM, ACT_DIM, NUM_TASKS = 15, 6, 5


def random_rollout(env: MultiTaskEnv, rng: np.random.Generator, steps: int) -> list[tuple]:
    """Random actions with resets of finished tasks; returns (obs, reward, terminated) per step."""
    stream = []
    for _ in range(steps):
        res = env.step(rng.uniform(-1, 1, (env.num_tasks, env.act_dim)).astype(np.float32))
        stream.append((res.next_obs.copy(), res.reward.copy(), res.terminated.copy()))
        if res.done.any():
            env.reset_tasks(res.done)
    return stream


def test_spec_and_spaces() -> None:
    spec = make_spec("JacoReachMT5-v1")
    assert spec.name == "JacoReachMT5-v1" and spec.num_tasks == NUM_TASKS
    assert spec.max_episode_steps == 200 and spec.min_reward == -5.0
    assert spec.task_names == ("reach-g0g1g2", "reach-g0g1g3-shifted", "reach-g1g3g2", "reach-g1g2g0-sparse", "stay")
    env = MultiTaskEnv(spec, seed=0)
    obs = env.reset()
    assert obs.shape == (NUM_TASKS, OBS_DIM) and obs.dtype == np.float32
    for task_env in env.envs:
        assert task_env.observation_space.shape == (OBS_DIM,) and task_env.observation_space.dtype == np.float32
        assert task_env.action_space.shape == (ACT_DIM,)
        assert np.all(task_env.action_space.low == -1) and np.all(task_env.action_space.high == 1)
    np.testing.assert_allclose(obs[:, :6], np.broadcast_to(INIT_QPOS, (NUM_TASKS, 6)), atol=0.0101)
    stream = random_rollout(env, np.random.default_rng(0), 450)  # crosses the 200-step horizon twice
    for next_obs, reward, _ in stream:
        assert next_obs.dtype == np.float32 and np.all(np.isfinite(next_obs)) and np.all(np.isfinite(reward))
    env.close()


def test_state_roundtrip_and_seeding_are_bit_exact() -> None:
    spec = make_spec("JacoReachMT5-v1")
    env = MultiTaskEnv(spec, seed=3)
    env.reset()
    random_rollout(env, np.random.default_rng(1), 190)
    snapshot = env.get_state()
    first = random_rollout(env, np.random.default_rng(2), 25)  # the horizon resets every task at step 200
    env.set_state(snapshot)
    second = random_rollout(env, np.random.default_rng(2), 25)
    for a, b in zip(first, second, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    twins = [MultiTaskEnv(spec, seed=7) for _ in range(2)]
    streams = []
    for twin in twins:
        twin.reset()
        streams.append(random_rollout(twin, np.random.default_rng(4), 60))
    for a, b in zip(*streams, strict=True):
        for x, y in zip(a, b, strict=True):
            np.testing.assert_array_equal(x, y)
    other = MultiTaskEnv(spec, seed=8).reset()
    assert not np.array_equal(other, twins[0].reset(seed=7))


# ---- a scripted controller: damped-least-squares IK (mj_jacBody) + joint PD with gravity compensation
IK_SEED = np.array([0.0, -0.8, 0.6, 0.0, -0.688, 0.0])
LIFT, ELBOW_TUCK, KP = 1.0, 0.69, 100.0


def inverse_kinematics(env: JacoReachTask, goal: np.ndarray) -> np.ndarray:
    model, data = env.model, mujoco.MjData(env.model)
    low, high = model.jnt_range.T
    q, jac = IK_SEED.copy(), np.zeros((3, model.nv))
    for _ in range(100):
        data.qpos[:] = q
        mujoco.mj_kinematics(model, data)
        mujoco.mj_comPos(model, data)
        mujoco.mj_jacBody(model, data, jac, None, env.hand_id)
        err = goal - data.xpos[env.hand_id]
        q = np.clip(q + 0.5 * jac.T @ np.linalg.solve(jac @ jac.T + 1e-3 * np.eye(3), err), low, high)
    return q


def pd_action(env: JacoReachTask, q_ref: np.ndarray) -> np.ndarray:
    model, data = env.model, env.data
    mass = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, mass, data.qM)
    tau = np.diag(mass) * (KP * (q_ref - data.qpos) - 2 * np.sqrt(KP) * data.qvel) + data.qfrc_bias
    return np.clip(tau / model.actuator_gear[:, 0], -1.0, 1.0)


def scripted_episode(task: int, seed: int) -> tuple[dict, int]:
    """Reach tasks: tuck the elbow and lift the shoulder above the IK pose, then drop into it (the
    shoulder motor cannot hold the far subgoals statically). Stay: hold the reset pose."""
    env = JacoReachTask(task)
    env.reset(seed=seed)
    hold, stage, info = env.data.qpos.copy(), -1, {}
    for t in range(200):
        if not env.stay and env.stage != stage:
            stage, start = env.stage, t
            q_goal = inverse_kinematics(env, env.target)
            q_via = q_goal.copy()
            q_via[1], q_via[2] = max(-1.5, q_goal[1] - LIFT), ELBOW_TUCK
            approaching = True
        if env.stay:
            q_ref = hold
        else:
            if approaching and (np.abs(env.data.qpos - q_via).max() < 0.15 or t - start > 40):
                approaching = False
            q_ref = q_via if approaching else q_goal
        _, _, terminated, _, info = env.step(pd_action(env, q_ref))
        if terminated:
            return info, t + 1
    return info, 200


@pytest.mark.parametrize("task", range(NUM_TASKS))
def test_scripted_controller_completes_every_task(task: int) -> None:
    info, steps = scripted_episode(task, seed=task)
    assert info["success"] and info["stages_completed"] == 3 and not info["unstable"], (info, steps)
    assert steps < 200


# ---- reward terms on known states
def place_at(env: JacoReachTask, goal: np.ndarray) -> np.ndarray:
    """Put the arm at rest with the hand on `goal`; returns the gravity-compensating action."""
    env.data.qpos[:] = inverse_kinematics(env, goal)
    env.data.qvel[:] = 0.0
    mujoco.mj_forward(env.model, env.data)
    return np.clip(env.data.qfrc_bias / env.model.actuator_gear[:, 0], -1, 1)


def control_term(env: JacoReachTask, action: np.ndarray) -> float:
    d = env.data
    return -0.01 * float(np.sum(action**2)) - 0.001 * float(np.abs(d.qvel).mean()) - 1e-5 * float(np.abs(d.qacc).mean())


@pytest.mark.parametrize("task, first_goal", [(0, 0), (1, 0), (2, 1), (3, 1)])
def test_reward_on_a_subgoal_step_and_stage_one_hot(task: int, first_goal: int) -> None:
    env = JacoReachTask(task)
    obs, _ = env.reset(seed=0)
    np.testing.assert_array_equal(obs[12:], [1, 0, 0])
    action = place_at(env, SUBGOALS[first_goal])
    obs, reward, terminated, _, info = env.step(action)
    assert info["subgoal_reached"] and info["stages_completed"] == 1 and not info["success"] and not terminated
    np.testing.assert_array_equal(obs[12:], [0, 1, 0])
    np.testing.assert_allclose(env.data.mocap_pos[0], env.target)
    assert not np.allclose(env.target, SUBGOALS[first_goal])
    dist_term = 0.0 if task == 3 else -info["dist"]
    stage_term = 200.0 if task == 1 else -0.4 * 2
    shift = -2.0 if task == 1 else 0.0
    assert reward == pytest.approx(dist_term + stage_term + control_term(env, action) + shift, abs=1e-9)


@pytest.mark.parametrize("task", range(NUM_TASKS))
def test_reward_away_from_the_target(task: int) -> None:
    env = JacoReachTask(task)
    env.reset(seed=1)
    action = np.full(ACT_DIM, 0.5, np.float32)
    if task == 4:  # move the stay target away so that this step is out of range
        env.stay_target = env.stay_target + np.array([0.0, 0.0, 0.3])
    _, reward, _, _, info = env.step(action)
    assert not info["subgoal_reached"] and info["dist"] > 0.05
    dist_term = {3: 0.0}.get(task, -info["dist"])
    stage_term = {1: 0.0, 4: 0.0}.get(task, -1.2)
    shift = -2.0 if task == 1 else 0.0
    assert reward == pytest.approx(dist_term + stage_term + control_term(env, action) + shift, abs=1e-9)
    assert control_term(env, action) < -0.01 * 6 * 0.25  # the action cost alone is -0.015


def test_stay_counts_in_range_steps() -> None:
    env = JacoReachTask(4)
    env.reset(seed=2)
    np.testing.assert_allclose(env.stay_target, env.hand_pos)
    env.steps_in_range = 29
    action = place_at(env, env.stay_target)
    obs, _, terminated, _, info = env.step(action)
    assert info["subgoal_reached"] and env.steps_in_range == 30 and info["stages_completed"] == 1
    np.testing.assert_array_equal(obs[12:], [0, 1, 0])
    env.steps_in_range = 89
    _, _, terminated, _, info = env.step(action)
    assert terminated and info["success"] and info["stages_completed"] == 3


@pytest.mark.parametrize("corrupt", ["huge_qvel", "nan_qpos"])
def test_instability_is_penalised_and_terminates(corrupt: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo appends its warning to ./MUJOCO_LOG.TXT
    env = JacoReachTask(0)
    obs_before, _ = env.reset(seed=0)
    if corrupt == "huge_qvel":
        env.data.qvel[:] = 1e8
    else:
        env.data.qpos[2] = np.nan
    obs, reward, terminated, truncated, info = env.step(np.zeros(ACT_DIM, np.float32))
    assert reward == -100.0 and terminated and not truncated and info["unstable"] and not info["success"]
    assert np.all(np.isfinite(obs)) and obs[12:].tolist() == [1, 0, 0]
    if corrupt == "huge_qvel":
        np.testing.assert_array_equal(obs[:6], obs_before[:6])
    normal = JacoReachTask(0)
    normal.reset(seed=0)
    assert not normal.step(np.zeros(ACT_DIM, np.float32))[4]["unstable"]
