"""The speed levers keep the results: chunked gradient steps, the packed replay buffer and its
copy-free checkpoint, the Q1-only Q-switch, the presets' memory budget, and the benchmark's plumbing."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qmp.cli import ConfigError, parse_args
from qmp.config import replay_capacity
from qmp.environments import ENVS
from qmp.learning.buffer import MultiTaskReplayBuffer
from qmp.learning.nets import DoubleQ, TanhGaussianPolicy
from qmp.learning.policies import QSwitchMixture
from qmp.learning.sac import MultiTaskSAC, SACConfig
from qmp.methods import METHODS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
CPU = torch.device("cpu")
T, O, A, B = 5, 6, 2, 16


def agent(rows: int, arch: str = "separate", kl: float = 0.0) -> MultiTaskSAC:
    torch.manual_seed(3)
    policy = TanhGaussianPolicy(arch, T, O, A, [32, 32], False)
    critic = DoubleQ(arch, T, O, A, [32, 32], False, False)
    return MultiTaskSAC(policy, critic, T, A, SACConfig(max_update_rows=rows, kl_coeff=[kl]), CPU)


def filled_buffer(n: int = 40, capacity: int = 64) -> MultiTaskReplayBuffer:
    rng = np.random.default_rng(0)
    buf = MultiTaskReplayBuffer(T, capacity, O, A, CPU)
    buf.extend({"obs": rng.standard_normal((n, T, O), np.float32),
                "act": rng.uniform(-1, 1, (n, T, A)).astype(np.float32),
                "rew": rng.standard_normal((n, T), np.float32),
                "next_obs": rng.standard_normal((n, T, O), np.float32),
                "terminated": (rng.random((n, T)) < 0.1).astype(np.float32)})
    return buf


@pytest.mark.parametrize("rows", [B, 2 * B, 3 * B])  # chunks of 1, 2 and 3 (+2) tasks
def test_chunked_gradient_steps_equal_one_step_over_all_tasks(rows: int) -> None:
    whole, chunked = agent(0), agent(rows)
    assert len(chunked._chunks(B, False)) == -(-T // (rows // B)) and whole._chunks(B, False) == [None]
    buf = filled_buffer()
    for step in range(3):
        torch.manual_seed(10 + step)
        batch = buf.sample(B)
        torch.manual_seed(100 + step)
        m_whole = whole.update(batch)
        torch.manual_seed(100 + step)
        m_chunked = chunked.update(batch)
        for key in m_whole:
            torch.testing.assert_close(m_chunked[key], m_whole[key], rtol=1e-5, atol=1e-6)
    for module in ("policy", "critic", "critic_target"):
        for name, value in getattr(whole, module).state_dict().items():
            torch.testing.assert_close(getattr(chunked, module).state_dict()[name], value, rtol=1e-5, atol=1e-6)


def test_coupled_networks_are_never_chunked() -> None:
    assert agent(B, arch="multihead")._chunks(B, False) == [None]
    assert agent(B, kl=0.1)._chunks(B, True) == [None]


def test_buffer_checkpoint_writes_only_the_filled_rows_and_round_trips() -> None:
    for n, capacity in ((40, 64), (100, 64)):  # partly filled; wrapped around
        buf = filled_buffer(n, capacity)
        state = buf.state_dict()
        rows = min(n, capacity)
        data = state["data"]["obs"]
        assert data.untyped_storage().nbytes() == rows * T * buf.data.shape[-1] * 4  # no spare capacity written
        if buf.device.type == "cpu":
            assert data.data_ptr() == buf.data.data_ptr()  # a view: the checkpoint copies nothing
        stream = io.BytesIO()
        torch.save(state, stream)
        stream.seek(0)
        clone = MultiTaskReplayBuffer(T, capacity, O, A, CPU)
        clone.load_state_dict(torch.load(stream, weights_only=False))
        assert (clone.size, clone.ptr) == (buf.size, buf.ptr) and torch.equal(clone.data, buf.data)
        torch.manual_seed(0)
        a = buf.sample(8)
        torch.manual_seed(0)
        b = clone.sample(8)
        assert torch.equal(a.obs, b.obs) and torch.equal(a.rew, b.rew)


def test_buffer_refuses_the_task_major_layout_of_old_checkpoints() -> None:
    buf = filled_buffer(100, 64)
    order = (torch.arange(buf.size) + (buf.ptr - buf.size)) % buf.capacity  # the old format: oldest first
    old = {"size": buf.size, "ptr": buf.ptr, "capacity": buf.capacity, "order": order,
           "data": {k: v[:, order].clone() for k, v in buf.storage.items()}}
    with pytest.raises(ValueError, match="layout 'task-major' is not this code's 'step-major, obs once'"):
        MultiTaskReplayBuffer(T, 64, O, A, CPU).load_state_dict(old)


def test_qswitch_q1_scores_equal_the_twin_critic_first_head() -> None:
    for arch in ("separate", "multihead", "shared"):
        torch.manual_seed(0)
        critic = DoubleQ(arch, T, O, A, [16], False, False)
        obs, act = torch.randn(T, 7, O), torch.rand(T, 7, A)
        torch.testing.assert_close(critic.q1(obs, act), critic(obs, act)[0], rtol=0, atol=1e-6)
    policy = TanhGaussianPolicy("separate", T, O, A, [16], False)
    mixture = QSwitchMixture(policy, critic, T)
    assert mixture.scores(torch.randn(T, O), torch.rand(T, T, A)).shape == (T, T)


def test_presets_fit_the_memory_budget() -> None:
    """Replay buffers of the largest preset (MT50's DnC family at the original's 1e6 per task) stay < 10 GB,
    leaving room for two MT50 env instances (~2.6 GB) under a 16 GB peak."""
    cfg = parse_args(["dnc_sac", "--env=MetaWorldMT50-v2"], list(METHODS), list(ENVS))
    assert replay_capacity(cfg, cfg.n_policies) == 1_000_000
    row_bytes = MultiTaskReplayBuffer(1, 1, 39, 4, CPU).data.nbytes  # obs once, act, rew, terminated, final
    assert cfg.n_policies * replay_capacity(cfg, cfg.n_policies) * row_bytes < 10e9
    mt10 = parse_args(["dnc_sac", "--env=MetaWorldMT10-v2"], list(METHODS), list(ENVS))
    assert replay_capacity(mt10, mt10.n_policies) == 1_000_000
    assert all(p.get("evaluation_frequency", 1) >= 1 for p in (e.preset for e in ENVS.values()))


def test_max_update_rows_flag() -> None:
    assert parse_args(["dnc_sac", "--env=ToyReach-v0", "--max_update_rows=0"], list(METHODS),
                      list(ENVS)).max_update_rows == 0
    with pytest.raises(ConfigError, match="max_update_rows"):
        parse_args(["dnc_sac", "--env=ToyReach-v0", "--max_update_rows=-1"], list(METHODS), list(ENVS))


def test_benchmark_measures_the_real_loop_on_the_toy_env() -> None:
    import throughput
    from peer_sb3 import train_frequency

    assert (train_frequency(200, 200) == (1, 1) and train_frequency(500, 50) == (10, 1)
            and train_frequency(10, 30) == (1, 3))
    cfg = throughput.bench_config("qmp_dnc", "ToyReach-v0", 1.0, 2)
    exp = throughput.build(cfg)
    parts, cursor = exp.parts, exp.cursor
    assert parts.buffer.size >= parts.schedule.warmup  # no warm-up inside the measurement
    steps_before, grads_before = cursor.env_steps, cursor.grad_steps
    assert throughput.time_loop(exp) > 0
    assert cursor.env_steps - steps_before == 2 * parts.schedule.steps_per_cycle * parts.spec.num_tasks
    assert cursor.grad_steps - grads_before == 2 * parts.schedule.updates_per_cycle
    assert throughput.time_env_only(parts.env, 5, 0) > 0 and throughput.time_updates(exp, 2) > 0
    assert cursor.grad_steps - grads_before == 2 * parts.schedule.updates_per_cycle + 2
    o, a, (h1, h2) = parts.env.obs_dim, parts.env.act_dim, exp.cfg.hidden_sizes
    p, q = o * h1 + h1 * h2 + h2 * 2 * a, (o + a) * h1 + h1 * h2 + h2
    rows = parts.schedule.batch_per_task * parts.spec.num_tasks
    assert throughput.update_gflop(exp) == pytest.approx((2 * rows * (4 * p + 12 * q) / 1e9,
                                                          2 * rows * (4 * p + 14 * q) / 1e9))
    shipped = throughput.EnsembleLinear.forward
    lines = throughput.measure_levers("ToyReach-v0", 1)
    assert any("max_update_rows 0" in line for line in lines) and any("sliced" in line for line in lines)
    assert throughput.EnsembleLinear.forward is shipped  # every lever is switched back
    assert parts.eval_env is None  # the loop measurement never evaluates


def test_benchmark_fills_the_replay_buffer_with_whole_episodes() -> None:
    import throughput

    buf = throughput.filled_replay("JacoReachMT5-v1", 1000)  # 200-step episodes, one preset cycle per extend
    assert buf.size == 1000 and buf.data.shape[1:] == (5, 15 + 6 + 3)
    assert np.array_equal(buf.final_next - buf.final_head, [5] * 5)  # one final s' per episode
    assert buf.sample(32).next_obs.shape == (5, 32, 15)


@pytest.mark.usefixtures("one_thread")  # the flush mode is the calling thread's: runs use one (--torch_threads 1)
def test_flushing_denormals_keeps_adams_parameters_bit_identical() -> None:
    """Units whose gradients stop (dead ReLUs) leave Adam's first moment decaying into denormals (what slowed the
    Parameters runs); flushing them to zero changes the moments but not one bit of the parameters, whose steps
    from such moments are far below their ulp."""
    finals = {}
    try:
        for flush in (False, True):
            torch.set_flush_denormal(flush)
            torch.manual_seed(0)
            param = torch.nn.Parameter(torch.randn(64, 64) * 0.05)
            opt = torch.optim.Adam([param], lr=1e-3, fused=True)
            for step in range(1000):
                grad = torch.randn(64, 64) * 1e-3
                param.grad = grad if step < 5 else grad * (torch.arange(64) < 32).unsqueeze(1)  # rows 32+ stop
                opt.step()
            finals[flush] = (param.detach().clone(), opt.state[param]["exp_avg"].clone())
    finally:
        torch.set_flush_denormal(False)
    (kept, kept_v), (flushed, flushed_v) = finals[False], finals[True]
    assert ((kept_v != 0) & (kept_v.abs() < torch.finfo(torch.float32).tiny)).any()  # denormal moments arose
    assert not torch.equal(kept_v, flushed_v)
    assert torch.equal(kept, flushed)


@pytest.mark.parametrize("flush", [True, False])
@pytest.mark.usefixtures("one_thread")
def test_a_run_trains_in_the_denormal_mode_it_is_given_and_gives_the_callers_back(
        flush: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--flush_denormal holds while the run trains, whatever the caller had; afterwards the caller's mode is back
    (hypothesis, for one, refuses to run with denormals flushed)."""
    import qmp.launch as launch
    from tests.helpers import tiny_flags, train

    seen = []
    seed_everything = launch.seed_everything
    monkeypatch.setattr(launch, "seed_everything", lambda seed: (seen.append(launch.denormals_flushed()),
                                                                   seed_everything(seed)))
    torch.set_flush_denormal(not flush)
    try:
        train("dnc_sac", "ToyReach-v0", tmp_path, *tiny_flags(4, 20), "--n_epochs", "1",
              "--flush_denormal", str(flush).lower())
        assert seen == [flush]
        assert launch.denormals_flushed() is (not flush)
    finally:
        torch.set_flush_denormal(False)
