"""JacoReachMT5-v1 and JacoReachMT5Raised-v1: the env contract, the original's start (qpos0, the joint-5
snap, the shoulder that cannot hold the arm), the raised variant, the stay target, the paper-success key,
reachability of every task by a scripted controller (raised variant), the reward terms of each task,
the stage one-hot and the instability handling."""

from __future__ import annotations

from pathlib import Path

import mujoco
import numpy as np
import pytest

from qmp.environments import make_spec
from qmp.environments.jaco import FRAME_SKIP, RAISED_QPOS, STABILITY_LIMITS, SUBGOALS, JacoReachTask
from qmp.environments.multitask import MultiTaskEnv

OBS_DIM, ACT_DIM, NUM_TASKS = 15, 6, 5
QPOS0 = np.array([0.0, 0.0, 0.0, 0.0, -2.8, 0.0])  # the original's start: joint 5 at its ref, outside its range
J5_LOW = -0.698132


def random_rollout(env: MultiTaskEnv, rng: np.random.Generator, steps: int) -> list[tuple]:
    """Random actions with resets of finished tasks; returns (obs, reward, terminated) per step."""
    stream = []
    for _ in range(steps):
        res = env.step(rng.uniform(-1, 1, (env.num_tasks, env.act_dim)).astype(np.float32))
        stream.append((res.next_obs.copy(), res.reward.copy(), res.terminated.copy()))
        if res.done.any():
            env.reset_tasks(res.done)
    return stream


@pytest.mark.parametrize("name, start_qpos", [("JacoReachMT5-v1", QPOS0), ("JacoReachMT5Raised-v1", RAISED_QPOS)])
def test_spec_and_spaces(name: str, start_qpos: np.ndarray) -> None:
    spec = make_spec(name)
    assert spec.name == name and spec.num_tasks == NUM_TASKS
    assert spec.max_episode_steps == 200 and spec.min_reward == -5.0
    assert spec.task_names == ("reach-g0g1g2", "reach-g0g1g3-shifted", "reach-g1g3g2", "reach-g1g2g0-sparse", "stay")
    assert spec.paper_success_key == "subgoal_reached" and spec.extra_info_keys == ("subgoal_reached",)
    env = MultiTaskEnv(spec, seed=0)
    obs = env.reset()
    assert obs.shape == (NUM_TASKS, OBS_DIM) and obs.dtype == np.float32
    for task_env in env.envs:
        assert task_env.observation_space.shape == (OBS_DIM,) and task_env.observation_space.dtype == np.float32
        assert task_env.action_space.shape == (ACT_DIM,)
        assert np.all(task_env.action_space.low == -1) and np.all(task_env.action_space.high == 1)
    np.testing.assert_allclose(obs[:, :6], np.broadcast_to(start_qpos, (NUM_TASKS, 6)), atol=0.0101)
    stream = random_rollout(env, np.random.default_rng(0), 450)  # crosses the 200-step horizon twice
    for next_obs, reward, _ in stream:
        assert next_obs.dtype == np.float32 and np.all(np.isfinite(next_obs)) and np.all(np.isfinite(reward))
    env.close()


@pytest.mark.parametrize("name", ["JacoReachMT5-v1", "JacoReachMT5Raised-v1"])
def test_state_roundtrip_and_seeding_are_bit_exact(name: str) -> None:
    spec = make_spec(name)
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


# ---- the original's start (JacoReachMT5-v1) against the raised one (JacoReachMT5Raised-v1)
def zero_action_steps(env: JacoReachTask, n: int) -> list[dict]:
    return [env.step(np.zeros(ACT_DIM, np.float32))[4] for _ in range(n)]


def shoulder_torque_ratio(model: mujoco.MjModel, qpos: np.ndarray) -> float:
    """|gravity torque on joint 2 at rest| / its torque limit (gear 10 x ctrl 1)."""
    data = mujoco.MjData(model)
    data.qpos[:] = qpos
    mujoco.mj_forward(model, data)  # qvel = 0: qfrc_bias is gravity only
    return abs(data.qfrc_bias[1]) / (model.actuator_gear[1, 0] * model.actuator_ctrlrange[1, 1])


def test_default_starts_at_qpos0_and_joint5_snaps_into_range() -> None:
    peak_qvel = peak_qacc = 0.0
    for seed in range(20):
        env = JacoReachTask(seed % NUM_TASKS)
        np.testing.assert_array_equal(env.model.qpos0, QPOS0)  # joint 5's ref=-2.8 is its qpos0
        assert env.model.jnt_range[4, 0] == pytest.approx(J5_LOW)
        obs, _ = env.reset(seed=seed)
        assert np.all(np.abs(obs[:6] - QPOS0) <= 0.01 + 1e-6) and np.all(np.abs(obs[6:12]) <= 0.001 + 1e-7)
        # the first steps under zero action, substep by substep on a copy, for the peaks the guard sees
        data = mujoco.MjData(env.model)
        data.qpos[:], data.qvel[:] = env.data.qpos, env.data.qvel
        for _ in range(3 * FRAME_SKIP):
            mujoco.mj_step(env.model, data)
            peak_qvel = max(peak_qvel, float(np.abs(data.qvel).max()))
            peak_qacc = max(peak_qacc, float(np.abs(data.qacc).max()))
        joint5 = []
        for _ in range(5):
            assert not zero_action_steps(env, 1)[0]["unstable"]
            joint5.append(env.data.qpos[4])
        assert -1.42 < joint5[0] < -1.39  # measured -1.409..-1.403: 1.4 rad of the 2.1 in the first step
        assert -0.89 < joint5[1] < -0.87  # measured -0.877..-0.876
        assert J5_LOW - 0.03 < joint5[2] < J5_LOW  # back in range up to the soft limit's violation (<= 0.029)
        assert J5_LOW - 0.005 < joint5[4]
    # measured over these seeds (and 200 seeds with zero or random actions): |qvel| <= 41.1, |qacc| <= 5.3e3
    assert 30.0 < peak_qvel < 60.0 and 1e3 < peak_qacc < 1e4
    assert STABILITY_LIMITS.max_abs_qvel >= 10 * 60.0 and STABILITY_LIMITS.max_abs_qacc >= 100 * 1e4


def test_shoulder_torque_ratio_default_above_one_raised_below() -> None:
    env = JacoReachTask(0)
    model = env.model
    clamped = QPOS0.copy()
    clamped[4] = J5_LOW
    assert 1.07 <= shoulder_torque_ratio(model, QPOS0) <= 1.075  # measured 1.0715 (before the snap)
    assert 1.115 <= shoulder_torque_ratio(model, clamped) <= 1.12  # measured 1.1167 (joint 5 at its bound)
    env.reset(seed=0)
    zero_action_steps(env, 3)
    assert 1.07 <= shoulder_torque_ratio(model, env.data.qpos) <= 1.12  # measured 1.094 (snapped, already sagging)
    assert 0.85 <= shoulder_torque_ratio(model, RAISED_QPOS) <= 0.88  # measured 0.867


def hand_heights(env: JacoReachTask, steps: int, gravity_compensation: bool) -> np.ndarray:
    heights = [env.hand_pos[2]]
    for _ in range(steps):
        action = np.zeros(ACT_DIM)
        if gravity_compensation:  # the best static effort: each motor cancels gravity as far as it can
            action = np.clip(env.data.qfrc_bias / env.model.actuator_gear[:, 0], -1.0, 1.0)
        env.step(action)
        mujoco.mj_kinematics(env.model, env.data)
        heights.append(env.hand_pos[2])
    return np.array(heights)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_default_arm_sags_raised_arm_holds(seed: int) -> None:
    z = hand_heights(_reset(JacoReachTask(4), seed), 50, gravity_compensation=False)
    assert 0.11 < z[0] - z[3] < 0.12  # measured 0.113: the snap swings the hand down
    assert 0.015 < z[3] - z[50] < 0.03  # measured 0.017-0.026 more over the next 47 steps
    z = hand_heights(_reset(JacoReachTask(4), seed), 100, gravity_compensation=True)
    assert z[0] - z[100] > 0.06  # measured 0.067-0.110: even full shoulder torque cannot hold it
    z = hand_heights(_reset(JacoReachTask(4, start="raised"), seed), 100, gravity_compensation=True)
    assert np.abs(z - z[0]).max() < 1e-3  # measured < 3e-4
    z = hand_heights(_reset(JacoReachTask(4, start="raised"), seed), 50, gravity_compensation=False)
    assert z[0] - z[50] > 0.3  # with zero torque any pose falls


def _reset(env: JacoReachTask, seed: int) -> JacoReachTask:
    env.reset(seed=seed)
    return env


def hand_at(env: JacoReachTask, qpos: np.ndarray) -> np.ndarray:
    data = mujoco.MjData(env.model)
    data.qpos[:] = qpos
    mujoco.mj_kinematics(env.model, data)
    return data.xpos[env.hand_id].copy()


@pytest.mark.parametrize("start", ["original", "raised"])
def test_stay_target_is_taken_at_every_reset_and_survives_set_state(start: str) -> None:
    env = JacoReachTask(4, start=start)
    nominal = hand_at(env, env.init_qpos)
    targets = []
    for seed in (0, None, None):
        obs, _ = env.reset(seed=seed)
        np.testing.assert_allclose(env.stay_target, hand_at(env, obs[:6].astype(np.float64)), atol=1e-6)
        np.testing.assert_array_equal(env.data.mocap_pos[0], env.stay_target)
        assert np.linalg.norm(env.stay_target - nominal) < 0.03  # only the reset noise moves it
        targets.append(env.stay_target.copy())
        zero_action_steps(env, 10)
        np.testing.assert_array_equal(env.stay_target, targets[-1])  # fixed within the episode
    assert len({tuple(t) for t in targets}) == 3
    if start == "original":  # the hand at qpos0 exactly: low and in front of the base
        np.testing.assert_allclose(nominal, [0.41, 0.1192, 0.2394], atol=1e-3)
    snapshot = env.get_state()
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (20, ACT_DIM))
    first = [env.step(a)[:2] for a in actions]
    env.reset()
    assert not np.array_equal(env.stay_target, targets[-1])
    env.set_state(snapshot)
    np.testing.assert_array_equal(env.stay_target, targets[-1])
    second = [env.step(a)[:2] for a in actions]
    for (o1, r1), (o2, r2) in zip(first, second, strict=True):
        np.testing.assert_array_equal(o1, o2)
        assert r1 == r2


@pytest.mark.parametrize("start", ["original", "raised"])
def test_stay_task_counts_as_paper_success_at_step_1(start: str) -> None:
    env = JacoReachTask(4, start=start)
    env.reset(seed=0)
    infos = zero_action_steps(env, 5)
    assert infos[0]["subgoal_reached"] and infos[0]["dist"] < 0.05 and not infos[0]["success"]
    if start == "original":  # measured 0.019 (the hand of step 1 as the original read it; 0.028 after it)
        assert 0.015 < infos[0]["dist"] < 0.025
        assert not infos[4]["subgoal_reached"]  # the snap and the sag carry the hand away


def test_paper_success_is_any_step_on_the_current_target() -> None:
    """Task 0 touches g0 on its first step, then sags away: a paper success but not a success."""
    spec = make_spec("JacoReachMT5-v1")
    env = MultiTaskEnv(spec, seed=0)
    env.reset()
    task0 = env.envs[0]
    actions = np.zeros((NUM_TASKS, ACT_DIM), np.float32)
    actions[0] = place_at(task0, SUBGOALS[0])
    episodes = []
    for _ in range(spec.max_episode_steps):
        res = env.step(actions)
        episodes += res.episodes
        actions[:] = 0.0
    by_task = {ep.task: ep for ep in episodes}
    assert len(by_task) == NUM_TASKS
    assert by_task[0].paper_success and not by_task[0].success and by_task[0].stages == 1
    assert by_task[0].extras["subgoal_reached"] == pytest.approx(1 / 200)  # exactly one step on a target
    assert by_task[4].paper_success and not by_task[4].success  # the stay task, at step 1
    for task in (1, 2, 3):  # a sagging arm touches none of the other first subgoals
        assert not by_task[task].paper_success and by_task[task].stages == 0


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


def scripted_episode(task: int, seed: int, start: str = "raised") -> tuple[dict, int]:
    """Reach tasks: tuck the elbow and lift the shoulder above the IK pose, then drop into it (the
    shoulder motor cannot hold the far subgoals statically). Stay: hold the reset pose."""
    env = JacoReachTask(task, start=start)
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
def test_scripted_controller_completes_every_task_in_the_raised_variant(task: int) -> None:
    info, steps = scripted_episode(task, seed=task, start="raised")
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
