"""The obs-once replay layout returns exactly what the previous layout (s' stored in every row) returned:
same rows, same values bit for bit, same random numbers, across episode ends, per-task terminations,
wrap-arounds, oversized extends and checkpoint round trips."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import qmp.learning.buffer as buffer_module
from qmp.learning.buffer import Batch, MultiTaskReplayBuffer

CPU = torch.device("cpu")
KEYS = ("obs", "act", "rew", "next_obs", "terminated")


class ReferenceBuffer:
    """The previous layout, reduced to its semantics: every field of a transition in its own row of one
    step-major (capacity, T, width) tensor, next_obs included."""

    def __init__(self, num_tasks: int, capacity: int, obs_dim: int, act_dim: int) -> None:
        self.num_tasks, self.capacity = num_tasks, capacity
        widths = [obs_dim, act_dim, 1, obs_dim, 1]
        bounds = np.cumsum([0, *widths])
        self.cols = {key: slice(int(a), int(b)) for key, a, b in zip(KEYS, bounds[:-1], bounds[1:], strict=True)}
        self.data = torch.zeros(capacity, num_tasks, int(bounds[-1]))
        self.ptr = self.size = 0

    def extend(self, data: dict[str, np.ndarray]) -> None:
        for k in range(len(data["rew"])):
            for key, sl in self.cols.items():
                self.data[self.ptr, :, sl] = torch.from_numpy(np.asarray(data[key][k], np.float32).reshape(
                    self.num_tasks, -1))
            self.ptr = (self.ptr + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    def gather(self, tasks: torch.Tensor, idx: torch.Tensor) -> Batch:
        rows = self.data[idx, tasks]
        return Batch(*(rows[..., sl.start] if key in ("rew", "terminated") else rows[..., sl]
                       for key, sl in self.cols.items()))

    def sample(self, batch_size: int) -> Batch:
        idx = torch.randint(0, self.size, (self.num_tasks, batch_size))
        return self.gather(torch.arange(self.num_tasks).unsqueeze(1), idx)

    def sample_from(self, sources: torch.Tensor) -> Batch:
        return self.gather(sources, torch.randint(0, self.size, sources.shape))


def assert_same(a: Batch, b: Batch) -> None:
    """Equal bit for bit (torch.equal would take -0.0 for 0.0), with the same shapes."""
    for key in KEYS:
        x, y = getattr(a, key), getattr(b, key)
        assert x.shape == y.shape, key
        assert torch.equal(x.contiguous().view(torch.int32), y.contiguous().view(torch.int32)), key


def assert_equivalent(buf: MultiTaskReplayBuffer, ref: ReferenceBuffer, seed: int) -> None:
    """Every row of every task, then sample and sample_from under one seed, then the FIFO book-keeping."""
    assert (buf.size, buf.ptr) == (ref.size, ref.ptr)
    if buf.size == 0:
        return
    every = torch.arange(buf.size).expand(buf.num_tasks, -1)
    tasks = torch.arange(buf.num_tasks).unsqueeze(1)
    assert_same(buf._gather(tasks, every), ref.gather(tasks, every))
    sources = torch.randint(0, buf.num_tasks, (buf.num_tasks, 5), generator=torch.Generator().manual_seed(seed))
    for draw in (lambda b: b.sample(7), lambda b: b.sample_from(sources)):
        torch.manual_seed(seed)
        mine = draw(buf)
        after_mine = torch.rand(1)
        torch.manual_seed(seed)
        theirs = draw(ref)
        assert_same(mine, theirs)
        assert torch.equal(after_mine, torch.rand(1))  # the same random numbers were drawn
    codes = buf.storage["final"][:, : buf.size]
    live = (codes >= 0).sum(1).numpy()
    assert np.array_equal(buf.final_next - buf.final_head, live)  # the FIFO holds exactly the rows' finals
    assert len(buf.finals) >= live.max()


class Collector:
    """A lockstep stream like rollout.collect's: obs values from a tiny set (so a reset obs often equals
    the s' bit for bit, -0.0 included), per-task episode ends, and sometimes a jump between two calls
    (as if the env had been replaced) without an episode end."""

    VALUES = np.array([0.0, -0.0, 1.0, 2.5], np.float32)

    def __init__(self, num_tasks: int, obs_dim: int, act_dim: int, rng: np.random.Generator) -> None:
        self.t, self.o, self.a, self.rng = num_tasks, obs_dim, act_dim, rng
        self.obs = self.draw()

    def draw(self) -> np.ndarray:
        return self.rng.choice(self.VALUES, (self.t, self.o))

    def steps(self, n: int, end_rate: float, jump: bool) -> dict[str, np.ndarray]:
        if jump:
            self.obs = self.draw()
        data = {"obs": np.empty((n, self.t, self.o), np.float32), "act": self.rng.random((n, self.t, self.a)),
                "rew": self.rng.standard_normal((n, self.t)).astype(np.float32),
                "next_obs": np.empty((n, self.t, self.o), np.float32), "terminated": np.zeros((n, self.t), np.float32)}
        for k in range(n):
            data["obs"][k] = self.obs
            data["next_obs"][k] = self.draw()
            done = self.rng.random(self.t) < end_rate
            data["terminated"][k] = done & (self.rng.random(self.t) < 0.5)  # else a time limit
            self.obs = np.where(done[:, None], self.draw(), data["next_obs"][k])
        return data


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), num_tasks=st.integers(1, 4), obs_dim=st.integers(1, 3),
       capacity=st.integers(1, 12), end_rate=st.sampled_from([0.0, 0.1, 0.5, 1.0]),
       calls=st.lists(st.tuples(st.integers(1, 30), st.booleans()), min_size=1, max_size=8),
       write_rows=st.sampled_from([3, buffer_module.MAX_WRITE_ROWS]))
def test_every_extend_sequence_gives_the_previous_layouts_batches(
        seed: int, num_tasks: int, obs_dim: int, capacity: int, end_rate: float,
        calls: list[tuple[int, bool]], write_rows: int) -> None:
    rng = np.random.default_rng(seed)
    source = Collector(num_tasks, obs_dim, 2, rng)
    buf = MultiTaskReplayBuffer(num_tasks, capacity, obs_dim, 2, CPU)
    ref = ReferenceBuffer(num_tasks, capacity, obs_dim, 2)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(buffer_module, "MAX_WRITE_ROWS", write_rows)  # host chunks smaller than the capacity
        for n, jump in calls:  # n up to 30 > capacity: calls larger than the ring, wrapping several times
            data = source.steps(n, end_rate, jump and rng.random() < 0.5)
            buf.extend(data)
            ref.extend(data)
            assert_equivalent(buf, ref, seed)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**31 - 1), capacity=st.integers(1, 10),
       before=st.lists(st.integers(1, 15), min_size=1, max_size=4),
       after=st.lists(st.integers(1, 15), min_size=1, max_size=4))
def test_a_checkpoint_round_trip_continues_identically(seed: int, capacity: int, before: list[int],
                                                       after: list[int]) -> None:
    rng = np.random.default_rng(seed)
    source = Collector(3, 2, 1, rng)
    buf, ref = MultiTaskReplayBuffer(3, capacity, 2, 1, CPU), ReferenceBuffer(3, capacity, 2, 1)
    for n in before:
        data = source.steps(n, 0.2, False)
        buf.extend(data)
        ref.extend(data)
    stream = io.BytesIO()
    torch.save(buf.state_dict(), stream)
    stream.seek(0)
    clone = MultiTaskReplayBuffer(3, capacity, 2, 1, CPU)
    clone.load_state_dict(torch.load(stream, weights_only=False))
    assert_equivalent(clone, ref, seed)
    for n in after:
        data = source.steps(n, 0.2, False)
        for b in (buf, clone, ref):
            b.extend(data)
        assert_equivalent(clone, ref, seed)
        assert torch.equal(clone.data, buf.data)


def test_tasks_that_end_episodes_at_different_steps_keep_their_own_final_states() -> None:
    """Task 0 terminates at step 1 and continues across the next call; task 1 hits a time limit at the last
    step of the call: each keeps its true s', and every continuing step takes s' from the next row."""
    def steps(obs: list[list[float]], next_obs: list[list[float]]) -> dict[str, np.ndarray]:
        n = len(obs)
        return {"obs": np.array(obs, np.float32)[..., None], "next_obs": np.array(next_obs, np.float32)[..., None],
                "act": np.zeros((n, 2, 1), np.float32), "rew": np.zeros((n, 2), np.float32),
                "terminated": np.zeros((n, 2), np.float32)}

    buf = MultiTaskReplayBuffer(2, 8, 1, 1, CPU)
    buf.extend(steps([[0, 10], [1, 11], [50, 12]], [[1, 11], [2, 12], [51, 13]]))  # task 0 reset to 50
    assert buf.storage["final"][:, :3].tolist() == [[-1, 0, 1], [-1, -1, 0]]  # task 0: its end; both: the newest
    buf.extend(steps([[51, 20]], [[52, 22]]))  # task 0 continues, task 1 was reset to 20
    assert buf.storage["final"][:, :4].tolist() == [[-1, 0, -1, 1], [-1, -1, 0, 1]]
    assert buf.final_next.tolist() == [2, 2] and buf.final_head.tolist() == [0, 0]
    batch = buf._gather(torch.arange(2).unsqueeze(1), torch.arange(4).expand(2, -1))
    assert batch.next_obs[..., 0].tolist() == [[1, 2, 51, 52], [11, 12, 13, 22]]


def test_the_side_store_holds_about_one_slot_per_episode() -> None:
    """Meta-World-like: 500-step episodes ending together, written 100 steps per call into 5000 rows."""
    rng = np.random.default_rng(0)
    buf = MultiTaskReplayBuffer(3, 5000, 4, 2, CPU)
    obs = rng.standard_normal((501, 3, 4)).astype(np.float32)  # one episode: obs[k + 1] is s' of step k
    for _ in range(30):
        for start in range(0, 500, 100):
            buf.extend({"obs": obs[start : start + 100], "next_obs": obs[start + 1 : start + 101],
                        "act": np.zeros((100, 3, 2), np.float32), "rew": np.zeros((100, 3), np.float32),
                        "terminated": np.zeros((100, 3), np.float32)})
    assert np.array_equal(buf.final_next - buf.final_head, [10, 10, 10])  # 10 episodes in the ring
    assert len(buf.finals) == 16
    assert buf.data.shape[-1] == 4 + 2 + 3  # obs, act, rew, terminated, final: no next_obs


def test_old_layouts_are_refused() -> None:
    buf = MultiTaskReplayBuffer(2, 4, 1, 1, CPU)
    state = buf.state_dict() | {"layout": "step-major"}
    with pytest.raises(ValueError, match="layout 'step-major' is not this code's 'step-major, obs once'"):
        MultiTaskReplayBuffer(2, 4, 1, 1, CPU).load_state_dict(state)
