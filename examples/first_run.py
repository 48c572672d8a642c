"""The first run (`make run`): Separated (dnc_sac) and Separated + QMP (qmp_dnc) side by side, one core each, on
three pendulum swing-up tasks (gymnasium's pendulum under gravities 5, 9.81 and 15; examples/pendulum_tasks.py).

Why pendulums: the paper's benchmarks need hundreds of thousands of env steps before their success moves (on
JacoReachMT5-v1 both methods are flat for the first ~110k steps), i.e. hours here. A pendulum's return rises from
about -1400 to about -150 within ~25k env steps, a few minutes on 2 cores, so a first run shows learning.

    python -m examples.first_run [--epochs 25] [--out data/quickstart] [--seed 0]

Progress: a bar per run on a terminal, else a line per run at every evaluation. At the end: the per-task table
of the first and last evaluation, curves.png in each run directory, and comparison.png in --out.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

from qmp.results import load_run
from qmp.run_dir import read_progress
from qmp.summary import CURVES, rises, summary_table, write_comparison, write_curves

ROOT = Path(__file__).resolve().parents[1]
METHODS = ("dnc_sac", "qmp_dnc")
METRIC = "return"  # the pendulum tasks' main metric
FLAGS = ["--env=examples.pendulum_tasks:pendulums", "--n_policies", "3", "--min_buffer_size", "1000",
         "--evaluation_frequency", "2", "--num_evaluation_episodes", "6", "--torch_threads", "1", "--overwrite", "true"]


def start(method: str, run_dir: Path, epochs: int, seed: int) -> subprocess.Popen:
    run_dir.parent.mkdir(parents=True, exist_ok=True)
    log = (run_dir.parent / f"{method}.log").open("w")
    argv = [sys.executable, "run.py", method, *FLAGS, "--n_epochs", str(epochs), "--seed", str(seed),
            "--run_dir", str(run_dir)]
    return subprocess.Popen(argv, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)


def latest(run_dir: Path, since: float) -> tuple[int, float, list[float]]:
    """(epochs logged, env steps, every evaluation's task-mean return) of a run in progress; a progress.csv
    older than `since` is the previous first run's, which the new one is about to replace."""
    path = run_dir / "progress.csv"
    if not path.exists() or path.stat().st_mtime < since:
        return 0, 0.0, []
    rows = read_progress(run_dir).rows
    evals = [float(row[f"eval/{METRIC}"]) for row in rows if row.get(f"eval/{METRIC}")]
    return len(rows), float(rows[-1]["env_steps"]) if rows else 0.0, evals


def watch(runs: dict[str, tuple[subprocess.Popen, Path]], epochs: int) -> None:
    """Report progress until every run has exited."""
    bars = {}
    if sys.stdout.isatty():
        from tqdm import tqdm

        bars = {m: tqdm(total=epochs, desc=m, unit="epoch", position=i, dynamic_ncols=True) for i, m in enumerate(runs)}
    started, wall_start, shown = time.monotonic(), time.time(), {m: 0 for m in runs}
    while True:
        for method, (_, run_dir) in runs.items():
            done, steps, evals = latest(run_dir, wall_start)
            metric = f"eval/{METRIC} {evals[-1]:.0f}" if evals else "no evaluation yet"
            if bars:
                bars[method].update(done - bars[method].n)
                bars[method].set_postfix_str(f"{steps:,.0f} env steps, {metric}")
            elif len(evals) > shown[method]:  # a line per run at each new evaluation
                eta = (time.monotonic() - started) / max(done, 1) * (epochs - done)
                print(f"[{method}] epoch {done}/{epochs} | {steps:,.0f} env steps | {metric} | ETA {eta:.0f} s",
                      flush=True)
                shown[method] = len(evals)
        if all(process.poll() is not None for process, _ in runs.values()):
            break
        time.sleep(1.0)
    for bar in bars.values():
        bar.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m examples.first_run", description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=25, help="epochs per run (1,000 env steps each)")
    parser.add_argument("--out", type=Path, default=Path("data/quickstart"), help="where the run directories go")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    out = args.out if args.out.is_absolute() else ROOT / args.out
    print(f"Training {' and '.join(METHODS)} on 3 pendulum tasks, {args.epochs} epochs each, side by side ...",
          flush=True)
    runs = {m: (start(m, out / m, args.epochs, args.seed), out / m) for m in METHODS}
    watch(runs, args.epochs)
    failed = [m for m, (process, _) in runs.items() if process.returncode != 0]
    if failed:
        for method in failed:
            print(f"{method} failed; the end of {out / f'{method}.log'}:", file=sys.stderr)
            print("".join((out / f"{method}.log").read_text().splitlines(True)[-15:]), file=sys.stderr)
        return 1
    loaded = [(m, load_run(run_dir)) for m, (_, run_dir) in runs.items()]
    print("\n" + summary_table(loaded, METRIC) + "\n")
    for method, run in loaded:
        verdict = "rose" if rises(run, METRIC) else "did NOT rise"
        print(f"{method}: the mean eval/{METRIC} {verdict}; curves in {write_curves(run, METRIC, run.path / CURVES)}")
    print(f"side by side: {write_comparison(loaded, METRIC, out / 'comparison.png')}")
    print("One seed each: the gap between the methods here is noise. The paper's comparisons: docs/results.md.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
