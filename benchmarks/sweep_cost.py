"""What a run of each paper panel costs: CPU time per 100k env steps, measured with a short run, and projected
to the preset's (paper's) length, plus the memory of one run. The numbers in sweeps/paper/*.toml come from here.

    nice -n 5 .venv/bin/python benchmarks/sweep_cost.py --out cost.jsonl      # every env: ~25 CPU minutes
    .venv/bin/python benchmarks/sweep_cost.py --report cost.jsonl             # the projection table

One `run.py` per (env, method): 3 epochs of one collection cycle each, the preset's cycle scaled down by one
factor for env steps and gradient steps (so updates per env step, batch sizes, networks and the replay size stay
the preset's), a warm-up of 100 steps per task, one evaluation episode per task at epochs 0 and 2, and no
checkpoint before the last epoch. The parent reads the child's CPU time (user + system, /proc/PID/stat) when
each progress.csv row appears: epoch 1 is training alone, epoch 2 minus epoch 1 is one evaluation round. CPU time,
not wall time, so a busy machine slows the measurement but barely changes it (caches are shared: expect 15-30 %).
Peak memory is the child's max RSS (the replay buffer is allocated and zeroed in full at start); where
`--replay_buffer_size` is lowered to fit this machine (MT50), the missing buffer bytes are added.

Measured: dnc_sac, qmp_dnc, mtsac (the README's Parameters flags), uds_dnc. Derived: qmp_sac and qmp_uds_dnc as
their base times the env's qmp_dnc / dnc_sac training cost (QMP changes only the collection). MT50 runs 2 epochs
without evaluation (building its second 50-env instance costs ~35 s) and takes MT10's evaluation cost per step.

Projection to the preset: training CPU per env step x the preset's env steps; evaluation CPU per episode step x
the preset's evaluation episode steps (episodes run to the horizon; QMP also evaluates its mixture, included in
the measured round); checkpoints: the filled replay buffer is written at every epoch (snapshot_gap 1), at the
write speed measured here (CPU seconds per GB of torch.save). Warm-up steps are counted as training steps, which
overstates them slightly (they train nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qmp.cli import parse_args  # noqa: E402
from qmp.config import replay_capacity  # noqa: E402
from qmp.environments import ENVS  # noqa: E402
from qmp.methods import METHODS  # noqa: E402

PARAMS = ["--policy_architecture", "multihead", "--Q_architecture", "multihead", "--lr", "0.001", "--hidden_sizes",
          "512", "512"]  # the README's Parameters flags
UDS = ["--sharing_quantile", "0"]
METHOD_FLAGS = {"dnc_sac": [], "qmp_dnc": [], "mtsac": PARAMS, "qmp_sac": PARAMS, "uds_dnc": UDS, "qmp_uds_dnc": UDS}
# (batch_size, gradient_steps_per_itr): the preset's cycle times one factor (gradient steps per env step kept;
# the DnC family's max(1, G // T) batched steps stay exact)
SCALED = {"JacoReachMT5-v1": (1000, 1000), "MazeLarge-10-v0": (3000, 500), "Walker2dMT4-v0": (1000, 1500),
          "MetaWorldCDS-v1": (1000, 100), "MetaWorldMT10-v2": (500, 50), "MetaWorldMT50-v2": (1000, 100),
          "KitchenMTEasy-v0": (400, 100)}
SCALED_SAC = {"Walker2dMT4-v0": (200, 300)}  # sac/mtsac do G updates per cycle (not G // T): a smaller cycle
REDUCED_REPLAY = {"MetaWorldMT50-v2": 10_000}  # per task; the preset's 5e5 x 50 tasks (8.4 GB) is added by count
# MT50 builds its 50 envs in ~35 s per instance: no evaluation instance here (n_epochs 2, epoch 1 trains), and
# evaluation costs per episode step as MT10's (the same Meta-World envs and networks)
EVAL_FROM = {"MetaWorldMT50-v2": "MetaWorldMT10-v2"}
MEASURED = ("dnc_sac", "qmp_dnc", "mtsac", "uds_dnc")
DERIVED = {"qmp_sac": "mtsac", "qmp_uds_dnc": "uds_dnc"}  # base x (qmp_dnc / dnc_sac) of the same env
RATIO_FROM = {"MetaWorldMT50-v2": "MetaWorldMT10-v2"}  # uds_dnc on MT50 (not measured): dnc_sac x MT10's ratio
TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def rows_written(path: Path) -> int:
    try:
        return max(0, path.read_text().count("\n") - 1)
    except FileNotFoundError:
        return 0


def measure(env: str, method: str, run_dir: Path) -> dict[str, Any]:
    """One short run; CPU seconds at each progress row, and totals from wait4."""
    batch, grad = SCALED_SAC.get(env, SCALED[env]) if METHODS[method].sac_family else SCALED[env]
    tasks = ENVS[env].preset["n_policies"]
    epochs, episodes = (2, 0) if env in EVAL_FROM else (3, tasks)
    argv = [method, f"--env={env}", "--seed", "0", "--run_dir", str(run_dir), "--overwrite", "true",
            "--n_epochs", str(epochs), "--steps_per_epoch", "1", "--batch_size", str(batch),
            "--gradient_steps_per_itr", str(grad), "--min_buffer_size", "100", "--num_evaluation_episodes",
            str(episodes), "--evaluation_frequency", "1000", "--snapshot_gap", "1000", "--vis_freq", "-1",
            *METHOD_FLAGS[method]]
    if env in REDUCED_REPLAY:
        argv += ["--replay_buffer_size", str(REDUCED_REPLAY[env])]
    parse_args(argv)  # a bad line fails here, before anything runs
    start = time.monotonic()
    proc = subprocess.Popen([sys.executable, str(ROOT / "run.py"), *argv], cwd=ROOT, stdout=subprocess.DEVNULL)
    marks: list[float] = []
    while True:
        pid, wait_status, usage = os.wait4(proc.pid, os.WNOHANG)  # not proc.poll(): wait4 also gives the rusage
        if pid:
            proc.returncode = os.waitstatus_to_exitcode(wait_status)
            break
        if rows_written(run_dir / "progress.csv") > len(marks):
            marks.append(cpu_seconds(proc.pid))
        time.sleep(0.02)
    if proc.returncode != 0 or len(marks) != epochs:
        raise SystemExit(f"sweep_cost: {env} {method} failed (exit {proc.returncode}, rows seen {len(marks)})")
    config = json.loads((run_dir / "config.json").read_text())
    resolved = config["resolved"]
    rows = (run_dir / "progress.csv").read_text().splitlines()
    steps = [float(line.split(",")[1]) for line in rows[1:]]
    return {"env": env, "method": method, "argv": argv, "wall_s": time.monotonic() - start,
            "cpu_s_at_rows": marks, "cpu_s_total": usage.ru_utime + usage.ru_stime, "max_rss_gb": usage.ru_maxrss / 1e6,
            "train_env_steps": steps[1] - steps[0], "train_cpu_s": marks[1] - marks[0],
            "eval_cpu_s": (marks[2] - marks[1]) - (marks[1] - marks[0]) if episodes else None,
            "eval_episode_steps": tasks * ENVS[env].horizon if episodes else None,
            "replay_per_task": resolved["replay_per_task"], "obs_dim": resolved["obs_dim"],
            "act_dim": resolved["act_dim"], "num_tasks": resolved["num_tasks"]}


def save_speed(tmp: Path) -> float:
    """CPU seconds per GB of torch.save of one large float32 tensor (a checkpoint is mostly the buffer)."""
    code = ("import time, torch, sys; x = torch.ones(2**28); t = time.process_time(); "
            "torch.save({'buffer': x}, sys.argv[1]); print(time.process_time() - t)")
    out = subprocess.run([sys.executable, "-c", code, str(tmp / "x.pt")], capture_output=True, text=True, check=True)
    (tmp / "x.pt").unlink()
    return float(out.stdout) / (2**28 * 4 / 1e9)


def project(m: dict[str, Any], eval_per_step: float, save_s_per_gb: float, ratio: float = 1.0) -> dict[str, Any]:
    """Measurement `m` at the preset's length (env steps, evaluations, checkpoints), its training cost times
    `ratio` (a derived method), with `eval_per_step` CPU seconds per evaluation episode step."""
    env, method = m["env"], m["method"]
    cfg = parse_args([method, f"--env={env}", *METHOD_FLAGS[method]])
    tasks = m["num_tasks"]
    paper_steps = cfg.n_epochs * cfg.steps_per_epoch * cfg.batch_size
    evals = sum(1 for e in range(cfg.n_epochs) if e % cfg.evaluation_frequency == 0 or e == cfg.n_epochs - 1)
    episode_steps = evals * (cfg.num_evaluation_episodes // tasks) * tasks * ENVS[env].horizon
    train_per_step = ratio * m["train_cpu_s"] / m["train_env_steps"]
    width = 2 * m["obs_dim"] + m["act_dim"] + 2
    capacity = replay_capacity(cfg, tasks)
    per_epoch = cfg.steps_per_epoch * cfg.batch_size / tasks  # transitions per task and epoch
    written_gb = sum(min(capacity, per_epoch * (e + 1)) for e in range(cfg.n_epochs)) * tasks * width * 4 / 1e9
    missing_gb = (capacity - m["replay_per_task"]) * tasks * width * 4 / 1e9
    cpu_h = {"train": train_per_step * paper_steps / 3600, "eval": eval_per_step * episode_steps / 3600,
             "checkpoints": written_gb * save_s_per_gb / 3600}
    return {"env": env, "method": method, "cpu_h_per_100k_steps": train_per_step * 1e5 / 3600,
            "paper_env_steps": paper_steps, "cpu_h_per_run": sum(cpu_h.values()), "cpu_h_parts": cpu_h,
            "memory_gb_per_run": m["max_rss_gb"] + missing_gb, "replay_gb": capacity * tasks * width * 4 / 1e9}


def mean_measurement(ms: list[dict[str, Any]]) -> dict[str, Any]:
    """One measurement from several of the same (env, method): CPU per step averaged, memory the largest."""
    steps = ms[0]["train_env_steps"]
    train = statistics.mean(m["train_cpu_s"] / m["train_env_steps"] for m in ms) * steps
    evals = [m["eval_cpu_s"] / m["eval_episode_steps"] for m in ms if m["eval_cpu_s"] is not None]
    return {**ms[-1], "train_cpu_s": train, "train_env_steps": steps, "max_rss_gb": max(m["max_rss_gb"] for m in ms),
            "eval_cpu_s": statistics.mean(evals) * ms[-1]["eval_episode_steps"] if evals else None,
            "repeats": len(ms)}


def report(path: Path) -> list[dict[str, Any]]:
    """Every (env, method) of the measurements in `path` at the preset's length, the derived methods included;
    prints them as a table. An (env, method) measured more than once counts with its mean CPU times (per step)
    and its largest memory."""
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault((r["measured"]["env"], r["measured"]["method"]), []).append(r["measured"])
    measured = {key: mean_measurement(ms) for key, ms in groups.items()}
    speed = statistics.mean(r["save_s_per_gb"] for r in records)

    def eval_cost(env: str, method: str) -> float:
        """CPU s per evaluation episode step; where the round drowned in the noise (epoch 2 measured cheaper than
        epoch 1), dnc_sac's of the same env."""
        m = measured[(EVAL_FROM.get(env, env), method)]
        if m["eval_cpu_s"] <= 0:
            m = measured[(EVAL_FROM.get(env, env), "dnc_sac")]
        return max(m["eval_cpu_s"], 0.0) / m["eval_episode_steps"]

    def per_step(env: str, method: str) -> float:
        return float(measured[(env, method)]["train_cpu_s"] / measured[(env, method)]["train_env_steps"])

    for env, other in RATIO_FROM.items():  # a base method not measured on env: dnc_sac x its ratio on `other`
        for method in MEASURED:
            if (env, "dnc_sac") in measured and (env, method) not in measured and (other, method) in measured:
                ratio = per_step(other, method) / per_step(other, "dnc_sac")
                dnc = measured[(env, "dnc_sac")]
                measured[(env, method)] = {**dnc, "method": method, "train_cpu_s": dnc["train_cpu_s"] * ratio,
                                           "how": f"dnc_sac x {method} / dnc_sac on {other}"}
    rows = []
    for env in dict.fromkeys(env for env, _ in measured):
        qmp_ratio = max(per_step(env, "qmp_dnc") / per_step(env, "dnc_sac"), 1.0)  # QMP does more: below 1 is noise
        for method in METHOD_FLAGS:
            base = DERIVED.get(method, method)
            if (env, base) not in measured:
                continue
            m = {**measured[(env, base)], "method": method}
            how = m.get("how", "measured")
            if method in DERIVED:
                how = f"{base} x qmp_dnc / dnc_sac" + ("" if how == "measured" else f" ({base} = {how})")
            rows.append({**project(m, eval_cost(env, base), speed, qmp_ratio if method in DERIVED else 1.0),
                         "derived": how != "measured", "how": how, "eval_from": EVAL_FROM.get(env)})
    print("| env | method | CPU h / 100k env steps | env steps / run | CPU h / run (train + eval + checkpoints) "
          "| GB / run | how |\n|---|---|---|---|---|---|---|")
    for r in rows:
        parts = r["cpu_h_parts"]
        print(f"| {r['env']} | {r['method']} | {r['cpu_h_per_100k_steps']:.3f} | {r['paper_env_steps'] / 1e6:g}M "
              f"| {r['cpu_h_per_run']:.1f} ({parts['train']:.1f} + {parts['eval']:.1f} + {parts['checkpoints']:.1f}) "
              f"| {r['memory_gb_per_run']:.1f} | {r['how']} |")
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--envs", nargs="+", default=list(SCALED), choices=list(SCALED))
    parser.add_argument("--methods", nargs="+", default=list(MEASURED), choices=list(METHODS))
    parser.add_argument("--out", type=Path, help="append every measurement to this JSON-lines file")
    parser.add_argument("--report", type=Path, help="measure nothing: project the measurements of this file")
    args = parser.parse_args()
    if args.report:
        report(args.report)
        return 0
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout
    print(f"# sweep_cost at {commit.strip()}; load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        speed = save_speed(Path(tmp))
        print(f"torch.save: {speed:.2f} CPU s per GB")
        for env in args.envs:
            for method in args.methods:
                m = measure(env, method, Path(tmp) / f"{env}_{method}")
                evaluation = f"{m['eval_cpu_s']:.2f} s / {m['eval_episode_steps']}" if m["eval_cpu_s"] else "-"
                print(f"{env:18} {method:12} train {m['train_cpu_s']:7.2f} CPU s / {m['train_env_steps']:.0f} steps; "
                      f"eval {evaluation} ep. steps; RSS {m['max_rss_gb']:.2f} GB; "
                      f"run {m['cpu_s_total']:.0f} CPU s, {m['wall_s']:.0f} s wall", flush=True)
                if args.out:
                    with args.out.open("a") as f:
                        f.write(json.dumps({"commit": commit.strip(), "save_s_per_gb": speed, "measured": m}) + "\n")
    print(f"# end: load average {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
