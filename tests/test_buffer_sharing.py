"""Per-task replay buffers (isolation, wrap-around, round trip) and UDS data sharing."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from qmp.learning.buffer import Batch, MultiTaskReplayBuffer
from qmp.learning.nets import DoubleQ
from qmp.learning.sharing import UDSSharing, quantile_threshold

T, O, A = 3, 2, 1
CPU = torch.device("cpu")


def steps(n: int, start: int = 0) -> dict[str, np.ndarray]:
    """n lockstep steps whose values encode (step, task): obs = 100 * task + step."""
    k = np.arange(start, start + n, dtype=np.float32)[:, None] + 100 * np.arange(T, dtype=np.float32)[None, :]
    return {"obs": np.repeat(k[..., None], O, -1), "act": k[..., None], "rew": k,
            "next_obs": np.repeat(k[..., None] + 0.5, O, -1), "terminated": np.zeros_like(k)}


def test_each_task_samples_only_its_own_transitions() -> None:
    buf = MultiTaskReplayBuffer(T, 50, O, A, CPU)
    buf.extend(steps(30))
    batch = buf.sample(64)
    assert batch.obs.shape == (T, 64, O) and batch.rew.shape == (T, 64)
    task_of = torch.div(batch.rew, 100, rounding_mode="floor")
    assert torch.all(task_of == torch.arange(T).unsqueeze(1))
    torch.testing.assert_close(batch.next_obs[..., 0], batch.obs[..., 0] + 0.5)  # rows stay aligned


def test_ring_wraps_around_and_keeps_the_newest() -> None:
    buf = MultiTaskReplayBuffer(T, 10, O, A, CPU)
    buf.extend(steps(7))
    buf.extend(steps(8, start=7))  # 15 steps into a ring of 10
    assert buf.size == 10 and buf.ptr == 5
    kept = set(buf.storage["rew"][0].tolist())
    assert kept == set(float(s) for s in range(5, 15))
    big = MultiTaskReplayBuffer(T, 4, O, A, CPU)
    big.extend(steps(11))  # one call larger than the capacity
    assert set(big.storage["rew"][1].tolist()) == {107.0, 108.0, 109.0, 110.0}


def test_state_dict_round_trip() -> None:
    buf = MultiTaskReplayBuffer(T, 10, O, A, CPU)
    buf.extend(steps(13))
    clone = MultiTaskReplayBuffer(T, 10, O, A, CPU)
    clone.load_state_dict(buf.state_dict())
    assert (clone.size, clone.ptr) == (buf.size, buf.ptr)
    for key in buf.storage:
        assert torch.equal(clone.storage[key], buf.storage[key])
    with pytest.raises(ValueError, match="capacity"):
        MultiTaskReplayBuffer(T, 20, O, A, CPU).load_state_dict(buf.state_dict())


def test_quantile_threshold_semantics() -> None:
    own = torch.tensor([[3.0, 1.0, 2.0, 4.0]])
    assert quantile_threshold(own, 0.0).item() == -math.inf  # keep everything
    assert quantile_threshold(own, 0.5).item() == 2.0  # index floor(4 * 0.5) of [-inf, 1, 2, 3, 4]
    assert quantile_threshold(own, 1.0).item() == 4.0  # only above the best own value


def test_uds_relabels_shared_data_and_never_shares_a_task_with_itself() -> None:
    buf = MultiTaskReplayBuffer(T, 50, O, A, CPU)
    buf.extend(steps(40))
    sharing = UDSSharing(T, 8, min_reward=-5.0, quantile=0.0, device=CPU)
    assert sharing.sources.shape == (T, 8)  # 8 // (T - 1) = 4 from each of the 2 other tasks
    for i in range(T):
        assert i not in sharing.sources[i].tolist()
        assert sorted(sharing.sources[i].tolist()) == sorted([j for j in range(T) if j != i] * 4)
    critic = DoubleQ("separate", T, O, A, [8], False, False)
    own = buf.sample(8)
    batch, weights, kept = sharing.build(buf, critic, own)
    assert batch.obs.shape == (T, 16, O) and weights.shape == (T, 16)
    assert torch.all(batch.rew[:, 8:] == -5.0) and torch.equal(batch.rew[:, :8], own.rew)
    source_task = torch.div(batch.obs[:, 8:, 0], 100, rounding_mode="floor")
    assert torch.all(source_task == sharing.sources)  # next_obs and flags come from the source task
    torch.testing.assert_close(batch.next_obs[:, 8:, 0], batch.obs[:, 8:, 0] + 0.5)
    assert torch.all(weights == 1) and torch.all(kept == 1)


def test_uds_quantile_filter_uses_task_i_q1() -> None:
    buf = MultiTaskReplayBuffer(T, 50, O, A, CPU)
    buf.extend(steps(40))
    critic = DoubleQ("separate", T, O, A, [8], False, False)
    sharing = UDSSharing(T, 8, min_reward=0.0, quantile=0.5, device=CPU)
    own = buf.sample(8)
    torch.manual_seed(0)
    batch, weights, kept = sharing.build(buf, critic, own)
    with torch.no_grad():
        threshold = quantile_threshold(critic(own.obs, own.act)[0], 0.5)
        shared_q1 = critic(batch.obs[:, 8:], batch.act[:, 8:])[0]
    expected = (shared_q1 > threshold.unsqueeze(1)).float()
    assert torch.equal(weights[:, 8:], expected)
    torch.testing.assert_close(kept, expected.mean(1))


def test_batch_cat() -> None:
    a = Batch(torch.zeros(T, 2, O), torch.zeros(T, 2, A), torch.zeros(T, 2), torch.zeros(T, 2, O), torch.zeros(T, 2))
    b = Batch(torch.ones(T, 3, O), torch.ones(T, 3, A), torch.ones(T, 3), torch.ones(T, 3, O), torch.ones(T, 3))
    c = Batch.cat(a, b)
    assert c.obs.shape == (T, 5, O) and c.rew[:, 2:].eq(1).all()
