"""MazeLarge-10-v0: the env contract, the layout and tasks, analytic rewards and a scripted solve."""

from __future__ import annotations

import pickle
from collections import deque

import mujoco
import numpy as np
import pytest

from qmp.environments import make_spec
from qmp.environments.maze import LARGE_MAZE, MAZE_TASKS, WALL_OFFSET, MazeTask, is_open
from qmp.environments.multitask import MultiTaskEnv
from tests.helpers import assert_same, rollout

NAME = "MazeLarge-10-v0"


def test_contract_random_rollout_and_exact_resume() -> None:
    spec = make_spec(NAME)
    assert spec.num_tasks == 10 and spec.max_episode_steps == 600 and spec.min_reward == -1.0
    env = MultiTaskEnv(spec, seed=0)
    obs = env.reset()
    assert obs.shape == (10, 4) and obs.dtype == np.float32 and env.act_dim == 2
    rng = np.random.default_rng(1)
    ended = 0
    for _ in range(650):  # past the horizon, so every task truncates at least once
        result = env.step(rng.uniform(-1, 1, (10, 2)))
        assert result.next_obs.shape == (10, 4) and result.next_obs.dtype == np.float32
        assert np.isfinite(result.next_obs).all() and np.isfinite(result.reward).all()
        assert (result.reward <= 0).all() and (result.reward > -1).all()
        assert np.abs(result.next_obs[:, 2:]).max() < 5.5  # velocity clipped to 5 before each step
        ended += len(result.episodes)
        env.reset_tasks(result.done)
    assert ended >= 10

    actions = rng.uniform(-1, 1, (40, 10, 2))
    state = pickle.loads(pickle.dumps(env.get_state()))
    first = rollout(env, actions, forced_reset_at=10)
    env.set_state(state)
    assert_same(first, rollout(env, actions, forced_reset_at=10))

    twin_a, twin_b = MultiTaskEnv(spec, seed=3), MultiTaskEnv(spec, seed=3)
    np.testing.assert_array_equal(twin_a.reset(), twin_b.reset())
    assert_same(rollout(twin_a, actions, 5), rollout(twin_b, actions, 5))
    assert not np.array_equal(MultiTaskEnv(spec, seed=4).reset(), twin_a.reset(seed=3))


def test_layout_and_task_cells_are_open() -> None:
    assert len(LARGE_MAZE) == 9 and all(len(row) == 12 for row in LARGE_MAZE)
    assert all(set(row) <= {"#", "O"} for row in LARGE_MAZE)
    assert set(LARGE_MAZE[0]) == set(LARGE_MAZE[-1]) == {"#"}
    assert len(MAZE_TASKS) == 10
    for _, start, goal in MAZE_TASKS:
        assert is_open(LARGE_MAZE, start) and is_open(LARGE_MAZE, goal)
    assert [group for group, _, _ in MAZE_TASKS].count("long") == 2


def test_task_subset_names_and_sparse() -> None:
    spec = make_spec(NAME, task_name="0,9", sparse_tasks=[9])
    assert spec.task_names == ("short-(1,3)->(5,8)", "long-(7,2)->(6,8)")
    dense, sparse = spec.make_task_env(0, 0, False), spec.make_task_env(1, 0, False)
    assert not dense.sparse and sparse.sparse
    np.testing.assert_array_equal(sparse.goal, [6, 8])
    with pytest.raises(ValueError):
        make_spec(NAME, task_name="10")


def place(env: MazeTask, xy: tuple[float, float], vel: tuple[float, float] = (0.0, 0.0)) -> None:
    env.data.qpos[:] = xy
    env.data.qvel[:] = vel
    mujoco.mj_forward(env.model, env.data)


def test_reset_distribution() -> None:
    env = make_spec(NAME).make_task_env(3, 0, False)
    starts = np.array([env.reset(seed=s)[0] for s in range(200)])
    assert np.abs(starts[:, :2] - [7, 4]).max() <= 0.1
    assert 0.07 < starts[:, 2:].std() < 0.13


def test_dense_and_sparse_rewards_at_known_positions() -> None:
    spec = make_spec(NAME, task_name="0", sparse_tasks="0")
    dense_env = make_spec(NAME, task_name="0").make_task_env(0, 0, False)
    sparse_env = spec.make_task_env(0, 0, False)
    for env in (dense_env, sparse_env):
        env.reset(seed=0)
        place(env, (5.0, 7.0))  # one unit from the goal (5, 8), in an open corridor, at rest
        obs, reward, terminated, _, info = env.step(np.zeros(2))
        np.testing.assert_allclose(obs, [5.0, 7.0, 0.0, 0.0], atol=1e-12)
        assert not terminated and not info["success"]
        expected = 0.0 if env.sparse else np.exp(-1.0) - 1.0
        assert reward == pytest.approx(expected, abs=1e-9)
        place(env, (5.3, 8.0))  # within 0.5 of the goal: success ends the episode
        _, reward, terminated, _, info = env.step(np.zeros(2))
        assert terminated and info["success"]
        assert reward == pytest.approx(1.0 if env.sparse else np.exp(-0.3) - 1.0, abs=1e-9)


def test_velocity_is_clipped_before_the_step() -> None:
    env = make_spec(NAME).make_task_env(0, 0, False)
    env.reset(seed=0)
    place(env, (3.0, 3.0), vel=(20.0, -20.0))
    obs, *_ = env.step(np.zeros(2))
    assert 4.9 < obs[2] <= 5.0 and -5.0 <= obs[3] < -4.9
    assert obs[0] == pytest.approx(3.0 + 0.01 * obs[2], abs=1e-9)  # semi-implicit Euler, no jump


def test_walls_block_the_particle() -> None:
    env = make_spec(NAME).make_task_env(0, 0, False)
    env.reset(seed=0)
    place(env, (1.0, 3.0))  # cell (1, 3); cell (2, 3) below is a wall whose face is at x = 2 - 0.2 - 0.5
    for _ in range(200):
        obs, *_ = env.step(np.array([1.0, 0.0]))
    assert obs[0] == pytest.approx(1.2, abs=0.02)  # D4RL: wall centre 2 + 1.0 - 1.2, half 0.5, ball 0.1


def bfs_cells(start: tuple[int, int], goal: tuple[int, int]) -> list[tuple[int, int]]:
    parents: dict[tuple[int, int], tuple[int, int] | None] = {start: None}
    queue = deque([start])
    while queue:
        cell = queue.popleft()
        for dr, dc in ((1, 0), (-1, 0), (0, 1), (0, -1)):
            nxt = (cell[0] + dr, cell[1] + dc)
            if is_open(LARGE_MAZE, nxt) and nxt not in parents:
                parents[nxt] = cell
                queue.append(nxt)
    path = [goal]
    while parents[path[-1]] is not None:
        path.append(parents[path[-1]])
    return path[::-1]


def test_groups_follow_the_shortest_path_length() -> None:
    """The metadata groups tasks by optimal path length: a check of the (row, column) convention."""
    lengths = {group: [len(bfs_cells(s, g)) for grp, s, g in MAZE_TASKS if grp == group]
               for group in ("short", "medium", "long")}
    assert max(lengths["short"]) < min(lengths["medium"]) and max(lengths["medium"]) < min(lengths["long"])


@pytest.mark.parametrize("task", range(len(MAZE_TASKS)))
def test_scripted_waypoint_controller_reaches_the_goal(task: int) -> None:
    env = make_spec(NAME).make_task_env(task, 0, False)
    obs, _ = env.reset(seed=1)
    _, start, goal = MAZE_TASKS[task]
    waypoints = [np.array(c, float) - WALL_OFFSET for c in bfs_cells(start, goal)[1:]] + [np.array(goal, float)]
    index, total, success, steps = 0, 0.0, False, 0
    for steps in range(1, 601):  # noqa: B007 (read after the loop)
        pos, vel = obs[:2].astype(float), obs[2:].astype(float)
        if index < len(waypoints) - 1 and np.linalg.norm(waypoints[index] - pos) < 0.3:
            index += 1
        action = np.clip(2.0 * (waypoints[index] - pos) - 0.3 * vel, -1, 1)
        obs, reward, terminated, _, info = env.step(action)
        total += reward
        if terminated:
            success = info["success"]
            break
    assert success, f"stopped at {obs[:2]} after {steps} steps"
    assert -steps < total < 0
