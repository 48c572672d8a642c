"""Throughput benchmark: is training limited by the simulator and the arithmetic, and nothing else?

One run measures, per env (JacoReachMT5-v1, MetaWorldMT10-v2 with their presets):
  (a) env only: the same lockstep multi-task env stepped with random actions;
  (b) update only: the same number of gradient steps on a filled buffer;
  (c) the full training loop (collection + buffer + updates + checks) for dnc_sac and qmp_dnc;
  (d) the peer: SB3 SAC, one model per task, one task after another (benchmarks/peer_sb3.py);
then evaluation's share of the wall time with the presets, env steps/s against the number of tasks
(Meta-World MT50 subsets of 1, 5, 10, 50 tasks), the replay buffer's cost of one `sample` at the MT50
and Jaco batch shapes, and the peak RSS of a short MT50 run with its preset.
Measurements are interleaved and repeated; medians are reported, and every ratio comes from this run.

    .venv/bin/python benchmarks/throughput.py                 # everything, ~8 minutes on 2 idle cores
    .venv/bin/python benchmarks/throughput.py --skip scaling memory --repeats 5
    .venv/bin/python benchmarks/throughput.py --envs --skip peer levers scaling memory --repeats 7   # buffer only
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

import numpy as np  # noqa: E402
import torch  # noqa: E402
from peer_sb3 import INSTALL_HINT, sb3_available, time_peer  # noqa: E402

from qmp.build import Parts  # noqa: E402
from qmp.build import build as build_parts  # noqa: E402
from qmp.cli import parse_args  # noqa: E402
from qmp.config import Config  # noqa: E402
from qmp.environments import ENVS, make_spec  # noqa: E402
from qmp.environments.multitask import MultiTaskEnv  # noqa: E402
from qmp.launch import seed_everything  # noqa: E402
from qmp.learning.buffer import MultiTaskReplayBuffer  # noqa: E402
from qmp.learning.nets import EnsembleLinear  # noqa: E402
from qmp.loop import Cursor, evaluate_policies, run_epoch  # noqa: E402
from qmp.methods import METHODS  # noqa: E402
from qmp.settings import ScheduleSettings, Settings  # noqa: E402

# Work per env: `scale` x one preset collection cycle (env steps and gradient steps scaled together, so
# updates per env step, batch sizes and networks stay the preset's), `cycles` cycles per measurement.
WORK = {"JacoReachMT5-v1": (1.0, 2), "MetaWorldMT10-v2": (0.2, 1)}
BENCH_CAPACITY = 100_000  # replay capacity per task here: sampling cost does not depend on it
LEVER_UPDATES = {"JacoReachMT5-v1": 100, "MetaWorldMT10-v2": 5}
SCALING_TASKS = (1, 5, 10, 50)
SCALING_FLAGS = ["--hidden_sizes", "256", "256", "--buffer_batch_size=256", "--min_buffer_size=256"]
SCALING_STEPS, SCALING_UPDATES = 50, 5  # per task and measurement: 0.1 updates per env step, as MT10
# Replay sampling: (tasks, obs, act) as the envs report them, so the benchmark builds no simulator
BUFFER_SHAPES = {"MetaWorldMT50-v2": (50, 39, 4), "JacoReachMT5-v1": (5, 15, 6)}
BUFFER_SAMPLES = 100  # sample() calls per measurement
TARGETS = {"overhead": 1.15, "qmp_vs_dnc": 1.10, "peer": {"MetaWorldMT10-v2": 5.0, "JacoReachMT5-v1": 3.0},
           "eval_share": 0.10, "rss_gb": 16.0}


def flags_of(cfg: Config) -> list[str]:
    return [cfg.method, f"--env={cfg.env}"]


def bench_config(method: str, env: str, scale: float, cycles: int, extra: Sequence[str] = ()) -> Config:
    """The env preset with one cycle scaled by `scale`, `cycles` cycles per epoch and no evaluation."""
    names = (list(METHODS), list(ENVS))
    base = parse_args([method, f"--env={env}", *extra], *names)
    batch = max(base.n_policies, round(base.batch_size * scale))
    grads = max(base.n_policies, round(base.gradient_steps_per_itr * scale))
    return parse_args([method, f"--env={env}", f"--batch_size={batch}", f"--gradient_steps_per_itr={grads}",
                       f"--steps_per_epoch={cycles}", f"--replay_buffer_size={BENCH_CAPACITY}",
                       "--num_evaluation_episodes=0", "--vis_freq=-1", *extra], *names)


@dataclass
class Bench:
    """A run's parts and cursor as qmp.launch builds them, without a run directory."""

    cfg: Config
    parts: Parts
    cursor: Cursor

    def learn(self) -> None:
        self.parts.learn()
        self.cursor.grad_steps += 1


def build(cfg: Config, eval_episodes: int = 0) -> Bench:
    """A run whose buffers already hold the warm-up (random transitions: the update cost does not
    depend on the values), so every measured cycle collects and trains exactly as after warm-up."""
    seed_everything(cfg.seed)
    cfg.num_evaluation_episodes = eval_episodes
    spec = make_spec(cfg.env, sparse_tasks=cfg.sparse_tasks, task_name=cfg.task_name)
    parts = build_parts(Settings.from_config(cfg, spec.num_tasks), spec, torch.device("cpu"))
    n, t, o, a = (max(parts.schedule.warmup, parts.schedule.batch_per_task), spec.num_tasks, parts.env.obs_dim,
                  parts.env.act_dim)
    rng = np.random.default_rng(cfg.seed)
    parts.buffer.extend({"obs": rng.standard_normal((n, t, o), np.float32),
                         "act": rng.uniform(-1, 1, (n, t, a)).astype(np.float32),
                         "rew": rng.standard_normal((n, t), np.float32),
                         "next_obs": rng.standard_normal((n, t, o), np.float32),
                         "terminated": np.zeros((n, t), np.float32)})
    return Bench(cfg, parts, Cursor(spec.num_tasks))


def time_env_only(env: MultiTaskEnv, lockstep_steps: int, seed: int) -> float:
    """Seconds for `lockstep_steps` steps of every task with random actions (resets included)."""
    actions = (np.random.default_rng(seed).uniform(-1, 1, (lockstep_steps, env.num_tasks, env.act_dim))
               .astype(np.float32))
    if not env.started:
        env.reset()
    start = time.perf_counter()
    for k in range(lockstep_steps):
        result = env.step(actions[k])
        if result.done.any():
            env.reset_tasks(result.done)
    return time.perf_counter() - start


def time_updates(exp: Bench, updates: int) -> float:
    start = time.perf_counter()
    for _ in range(updates):
        exp.learn()
    return time.perf_counter() - start


def time_loop(exp: Bench) -> float:
    """Seconds for one epoch of the real loop (cfg.steps_per_epoch cycles of collect + train)."""
    start = time.perf_counter()
    if run_epoch(exp.parts, exp.cursor) is None:
        raise RuntimeError("the training loop stopped early")
    return time.perf_counter() - start


def update_gflop(exp: Bench) -> tuple[float, float]:
    """Matmul GFLOP of one gradient step of every task (ours, the SB3 peer's), from the network shapes.

    Per row, with P = sum(in x out) of a policy and Q of one critic: critic step = next-action policy
    forward P + target twins 2Q + twins forward 2Q + their weight and input gradients 4Q; actor step =
    policy forward P + twins forward 2Q + their input gradients 2Q + policy backward 2P. That is 4P + 12Q
    multiply-adds. SB3 also computes the critics' weight gradients in the actor step: 4P + 14Q."""
    def per_member(net: torch.nn.Module) -> int:
        layers = [*net.body.hidden, net.body.out]
        if net.arch != "separate":
            raise ValueError("the FLOP model covers the separate architecture of the presets")
        return sum(layer.weight.shape[1] * layer.weight.shape[2] for layer in layers)

    p, q = per_member(exp.parts.agent.policy.net), per_member(exp.parts.agent.critic.net)
    rows = exp.parts.schedule.batch_per_task * exp.parts.spec.num_tasks
    return 2 * rows * (4 * p + 12 * q) / 1e9, 2 * rows * (4 * p + 14 * q) / 1e9


def sgemm_peak(size: int = 1024, repeats: int = 20) -> float:
    """GFLOP/s of a large square float32 matmul on the configured threads: the arithmetic ceiling."""
    a, b = torch.randn(size, size), torch.randn(size, size)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best / 1e9


def median(values: Sequence[float]) -> float:
    return float(statistics.median(values))


def measure_env(env: str, repeats: int, peer: bool) -> dict[str, float]:
    """Median seconds of (a)-(d) for the same work, plus the evaluation cost of one preset evaluation."""
    scale, cycles = WORK.get(env, (1.0, 1))
    dnc, qmp = bench_config("dnc_sac", env, scale, cycles), bench_config("qmp_dnc", env, scale, cycles)
    t = dnc.n_policies
    exps = {"dnc_sac": build(dnc), "qmp_dnc": build(qmp, eval_episodes=t)}
    sched = exps["dnc_sac"].parts.schedule
    steps, updates = sched.steps_per_cycle * cycles, sched.updates_per_cycle * cycles
    times: dict[str, list[float]] = {k: [] for k in ("env", "update", "dnc_sac", "qmp_dnc", "peer")}
    spec = make_spec(env)
    for r in range(repeats):
        times["env"].append(time_env_only(exps["dnc_sac"].parts.env, steps, r))
        times["update"].append(time_updates(exps["dnc_sac"], updates))
        for method in ("dnc_sac", "qmp_dnc"):
            times[method].append(time_loop(exps[method]))
        if peer:
            times["peer"].append(time_peer(spec, dnc, steps, updates))
    out = {k: median(v) for k, v in times.items() if v}
    out["env_steps"] = float(steps * t)
    out["gflop"], out["peer_gflop"] = (updates * g for g in update_gflop(exps["dnc_sac"]))
    out["peak"] = sgemm_peak()
    out.update(eval_cost(env, exps["qmp_dnc"], out["qmp_dnc"] / (steps * t)))
    for e in exps.values():
        e.parts.close()
    return out


def eval_cost(env: str, exp: Bench, loop_s_per_step: float) -> dict[str, float]:
    """One preset evaluation (QMP: own policies and the mixture), timed on one episode per task and
    scaled to the preset's episodes per task (lockstep episodes run in rounds, so cost is linear)."""
    preset = parse_args(["qmp_dnc", f"--env={env}"], list(METHODS), list(ENVS))
    t = preset.n_policies
    start = time.perf_counter()
    evaluate_policies(exp.parts, exp.cfg.num_evaluation_episodes, exp.cfg.seed, 0)
    per_round = time.perf_counter() - start
    evaluation = per_round * max(1, preset.num_evaluation_episodes // t)
    epoch = loop_s_per_step * preset.batch_size * preset.steps_per_epoch
    return {"eval_s": evaluation, "epoch_s": epoch, "eval_freq": float(preset.evaluation_frequency)}


def eval_share(result: dict[str, float], freq: float) -> float:
    return result["eval_s"] / (freq * result["epoch_s"] + result["eval_s"])


def measure_scaling(tasks: Sequence[int]) -> list[tuple[int, float, float, float]]:
    """(T, env-only, update-only, full loop) env steps/s on the first T tasks of Meta-World MT50, with
    the same work per task (networks 256x256, batch 256 per task, 0.1 updates per env step)."""
    rows = []
    for k in tasks:
        extra = [f"--task_name={','.join(str(i) for i in range(k))}", f"--n_policies={k}", *SCALING_FLAGS]
        cfg = parse_args(["dnc_sac", "--env=MetaWorldMT50-v2", *extra, f"--batch_size={k * SCALING_STEPS}",
                          f"--gradient_steps_per_itr={k * SCALING_UPDATES}", "--steps_per_epoch=1",
                          "--replay_buffer_size=5000", "--num_evaluation_episodes=0", "--vis_freq=-1"],
                         list(METHODS), list(ENVS))
        exp = build(cfg)
        time_loop(exp)  # first cycle: resets and one-off allocations
        env_s = time_env_only(exp.parts.env, SCALING_STEPS, 0)
        upd_s = time_updates(exp, SCALING_UPDATES)
        loop_s = time_loop(exp)
        steps = k * SCALING_STEPS
        rows.append((k, steps / env_s, steps / upd_s, steps / loop_s))
        exp.parts.close()
        print(f"  scaling T={k}: done", flush=True)
    return rows


def measure_memory(threads: int) -> tuple[float, str]:
    """Peak RSS (GB) of a short MT50 run with its preset (replay buffers allocated in full, evaluation
    env built, one gradient step at the preset batch, one evaluation round, a checkpoint)."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, str(ROOT / "run.py"), "dnc_sac", "--env=MetaWorldMT50-v2", "--n_epochs=1",
               "--steps_per_epoch=1", "--min_buffer_size=500", "--batch_size=25000", "--gradient_steps_per_itr=50",
               "--num_evaluation_episodes=50", f"--run_dir={tmp}", f"--torch_threads={threads}", "--vis_freq=-1"]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"MT50 memory run failed ({done.returncode}): {done.stderr[-2000:]}")
    return resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9, " ".join(cmd[1:])  # KiB on Linux


def filled_replay(env: str, capacity: int) -> MultiTaskReplayBuffer:
    """A full buffer of the env's shapes holding whole episodes of its horizon, as collection writes them
    (one preset cycle per call; s' is the next step's obs except at an episode's end)."""
    t, o, a = BUFFER_SHAPES[env]
    horizon, cycle = ENVS[env].horizon, ScheduleSettings.of(parse_args(["qmp_dnc", f"--env={env}"], list(METHODS),
                                                                       list(ENVS)), t).steps_per_cycle
    rng = np.random.default_rng(0)
    buf = MultiTaskReplayBuffer(t, capacity, o, a, torch.device("cpu"))
    episode = rng.standard_normal((horizon + 1, t, o), np.float32)
    act, rew = rng.uniform(-1, 1, (cycle, t, a)).astype(np.float32), rng.standard_normal((cycle, t), np.float32)
    written = 0
    while written < capacity:
        k = np.arange(written, written + cycle) % horizon  # step within the episode of each row
        buf.extend({"obs": episode[k], "next_obs": episode[k + 1], "act": act, "rew": rew,
                    "terminated": np.zeros((cycle, t), np.float32)})
        written += cycle
    return buf


def measure_buffer(repeats: int) -> list[str]:
    """Median CPU seconds of one `sample` of the preset's batch per task from a full buffer (BENCH_CAPACITY per
    task): CPU time, not wall time, so that the other processes of a shared machine do not count."""
    lines = [f"\n## replay sampling: one sample() of the DnC batch from {BENCH_CAPACITY} transitions per task "
             f"(medians of {repeats} x {BUFFER_SAMPLES} calls)",
             f"{'env':18s} {'tasks x batch':>14s} {'CPU us per sample':>18s} {'buffer GB':>10s}"]
    for env in BUFFER_SHAPES:
        t = BUFFER_SHAPES[env][0]
        batch = ScheduleSettings.of(parse_args(["qmp_dnc", f"--env={env}"], list(METHODS), list(ENVS)),
                                    t).batch_per_task
        buf = filled_replay(env, BENCH_CAPACITY)
        buf.sample(batch)
        times = []
        for _ in range(repeats):
            start = time.process_time()
            for _ in range(BUFFER_SAMPLES):
                buf.sample(batch)
            times.append((time.process_time() - start) / BUFFER_SAMPLES)
        gb = sum(v.untyped_storage().nbytes() for v in vars(buf).values() if isinstance(v, torch.Tensor)) / 1e9
        lines.append(f"{env:18s} {f'{t} x {batch}':>14s} {median(times) * 1e6:18.0f} {gb:10.2f}")
        del buf
    return lines


def lever_variants(exp: Bench) -> dict[str, tuple[Callable[[], None], Callable[[], None]]]:
    """name -> (switch the lever away from the default, switch it back)."""
    agent, threads = exp.parts.agent, torch.get_num_threads()
    rows = agent.cfg.max_update_rows
    fused = (agent.policy_opt, agent.critic_opt, agent.alpha_opt)

    def plain_adam() -> None:
        lr = exp.cfg.lr
        agent.policy_opt = torch.optim.Adam(agent.policy.parameters(), lr=lr)
        agent.critic_opt = torch.optim.Adam(agent.critic.parameters(), lr=lr)
        agent.alpha_opt = torch.optim.Adam([agent.log_alpha], lr=lr)

    def restore_adam() -> None:
        agent.policy_opt, agent.critic_opt, agent.alpha_opt = fused

    def set_rows(value: int) -> Callable[[], None]:
        return lambda: setattr(agent, "cfg", dataclasses.replace(agent.cfg, max_update_rows=value))

    shipped_forward = EnsembleLinear.forward

    def sliced(layer: EnsembleLinear, x: torch.Tensor, members: slice | None = None) -> torch.Tensor:
        """Every layer as one baddbmm on weights sliced per call (slice(None) when all are used)."""
        members = slice(None) if members is None else members
        return torch.baddbmm(layer.bias[members], x, layer.weight[members])

    def unsliced_matmul(layer: EnsembleLinear, x: torch.Tensor, members: slice | None = None) -> torch.Tensor:
        """As shipped (weights sliced only for a task chunk), but a one-unit output layer as a plain baddbmm."""
        return torch.baddbmm(layer.bias, x, layer.weight) if members is None else sliced(layer, x, members)

    def set_forward(forward: Callable[..., torch.Tensor]) -> Callable[[], None]:
        return lambda: setattr(EnsembleLinear, "forward", forward)

    return {"default (as shipped)": (lambda: None, lambda: None),
            "all tasks in one chunk (max_update_rows 0)": (set_rows(0), set_rows(rows)),
            "Adam without fused kernel": (plain_adam, restore_adam),
            "one-unit output layer as a batched matmul": (set_forward(unsliced_matmul), set_forward(shipped_forward)),
            "weights sliced even when all are used, too": (set_forward(sliced), set_forward(shipped_forward)),
            f"{2 * threads} torch threads": (lambda: torch.set_num_threads(2 * threads),
                                             lambda: torch.set_num_threads(threads))}


def measure_levers(env: str, repeats: int) -> list[str]:
    """Update-only time of the same work with each lever switched off (or changed), interleaved."""
    scale, cycles = WORK.get(env, (1.0, 1))
    exp = build(bench_config("dnc_sac", env, scale, cycles))
    updates = LEVER_UPDATES.get(env, 20)
    variants = lever_variants(exp)
    times: dict[str, list[float]] = {name: [] for name in variants}
    time_updates(exp, 2)
    for _ in range(repeats):
        for name, (switch, restore) in variants.items():
            switch()
            try:
                times[name].append(time_updates(exp, updates))
            finally:
                restore()
    exp.parts.close()
    base = median(times["default (as shipped)"])
    lines = [f"\n## levers on {env}: {updates} gradient steps (update only, medians)",
             f"{'variant':45s} {'seconds':>9s} {'vs default':>11s}"]
    lines += [f"{name:45s} {median(v):9.2f} {median(v) / base:10.2f}x" for name, v in times.items()]
    return lines


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.2f} (1 min) {five:.2f} (5 min) on {os.cpu_count()} cores"


def report_env(env: str, r: dict[str, float], peer: bool) -> list[str]:
    n = r["env_steps"]
    lines = [f"\n## {env}: {int(n)} env steps per measurement (medians)",
             f"{'measurement':34s} {'seconds':>9s} {'env steps/s':>12s}"]
    for key, label in (("env", "(a) env only"), ("update", "(b) update only"), ("dnc_sac", "(c) full loop dnc_sac"),
                       ("qmp_dnc", "(c) full loop qmp_dnc"), ("peer", "(d) peer: SB3 SAC, task after task")):
        if key in r:
            lines.append(f"{label:34s} {r[key]:9.2f} {n / r[key]:12.0f}")
    overhead = r["dnc_sac"] / (r["env"] + r["update"])
    lines.append(f"loop / (env + update), dnc_sac:     {overhead:.3f}  (target <= {TARGETS['overhead']})  "
                 f"qmp_dnc: {r['qmp_dnc'] / (r['env'] + r['update']):.3f}")
    lines.append(f"qmp_dnc / dnc_sac time:             {r['qmp_dnc'] / r['dnc_sac']:.3f}  "
                 f"(target <= {TARGETS['qmp_vs_dnc']})")
    if peer and "peer" in r:
        lines.append(f"dnc_sac / peer env steps per s:     {r['peer'] / r['dnc_sac']:.2f}x  "
                     f"(target >= {TARGETS['peer'].get(env, '-')}x)")
    lines.append(f"arithmetic: the gradient steps are {r['gflop']:.1f} GFLOP of matmuls "
                 f"(the peer's: {r['peer_gflop']:.1f}); "
                 f"update only runs them at {r['gflop'] / r['update']:.0f} GFLOP/s; "
                 f"this core's sgemm peak is {r['peak']:.0f} GFLOP/s")
    if peer and "peer" in r:
        floor = r["env"] + r["gflop"] / r["peak"]
        lines.append(f"ceiling: with every matmul at the sgemm peak and nothing else but the env, dnc_sac / peer <= "
                     f"{r['peer'] / floor:.2f}x")
    freq = r["eval_freq"]
    lines.append(f"evaluation (qmp_dnc, preset episodes): {r['eval_s']:.1f} s vs a {r['epoch_s']:.1f} s epoch: share "
                 f"{eval_share(r, 1):.1%} every epoch, {eval_share(r, freq):.1%} every {int(freq)} "
                 "(preset; target <= 10%)")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="*", default=list(WORK))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--torch_threads", type=int, default=1)
    parser.add_argument("--skip", nargs="*", default=[], choices=["peer", "levers", "scaling", "buffer", "memory"])
    args = parser.parse_args(argv)
    torch.set_num_threads(args.torch_threads)
    peer = "peer" not in args.skip
    if peer and not sb3_available():
        print(f"stable-baselines3 is not installed, so the peer (d) is skipped: {INSTALL_HINT}", flush=True)
        peer = False
    lines = [f"# throughput: torch {torch.__version__}, {args.torch_threads} torch thread(s), {args.repeats} repeats",
             f"start: {load_note()}"]
    for env in args.envs:
        print(f"measuring {env} ...", flush=True)
        lines += report_env(env, measure_env(env, args.repeats, peer), peer)
        if "levers" not in args.skip:
            lines += measure_levers(env, args.repeats)
    if "scaling" not in args.skip:
        print("measuring scaling over tasks (Meta-World MT50 subsets) ...", flush=True)
        lines += ["\n## env steps/s against the number of tasks "
                  "(MT50 subsets; 256x256, batch 256/task, 0.1 updates/step)",
                  f"{'tasks':>5s} {'env only':>10s} {'update only':>12s} {'full loop':>10s} "
                  f"{'loop s per 1k task-steps':>25s}"]
        for k, env_sps, upd_sps, loop_sps in measure_scaling(SCALING_TASKS):
            lines.append(f"{k:5d} {env_sps:10.0f} {upd_sps:12.0f} {loop_sps:10.0f} {1000 / loop_sps:25.3f}")
    if "buffer" not in args.skip:
        print("measuring replay sampling ...", flush=True)
        lines += measure_buffer(args.repeats)
    if "memory" not in args.skip:
        print("measuring MT50 peak memory ...", flush=True)
        rss, cmd = measure_memory(args.torch_threads)
        lines += [f"\n## peak RSS, MetaWorldMT50-v2 preset: {rss:.2f} GB (target < {TARGETS['rss_gb']} GB)",
                  f"   {cmd}"]
    lines.append(f"\nend: {load_note()}")
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
