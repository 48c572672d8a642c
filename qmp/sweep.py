"""`python -m qmp.sweep`: methods x envs x seeds as submitit jobs (Slurm, local processes or in-process).

    python -m qmp.sweep --methods dnc_sac qmp_dnc --envs JacoReachMT5-v1 --seeds 0 1 2 --cluster slurm \\
        --slurm_partition P -- --n_epochs 100
    python -m qmp.sweep --file sweeps/paper/mt10.toml --cluster slurm     # a sweep file (qmp/sweep_file.py)
    python -m qmp.sweep status data                                       # where each run stands (sweep_status.py)

Every run is one `python run.py <method> --env=<env> --seed <s> --log_dir <dir> [extra]` command, validated
up front with the same parser as run.py (a typo fails before anything is submitted: one line, exit 2).
A run resumes from its own checkpoint when its command runs again, so preemption and timeouts need no
state of their own: the job's `checkpoint()` asks the run to write a checkpoint (SIGUSR1) and requeues
the same command. Running the sweep again skips finished runs and resubmits the others (how far a run got
comes from its status.json, qmp/run_dir.py).

Nothing here imports torch (run.py's children do): `--dry_run` and validation take a fraction of a second.
"""

from __future__ import annotations

import argparse
import shlex
import socket
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import submitit

from qmp.cli import ConfigError, parse_args
from qmp.environments import ENVS
from qmp.methods import METHODS
from qmp.run_dir import RunDirError, RunStatus, read_status, resolve_run_dir, write_job
from qmp.sweep_file import RESERVED, load_sweep
from qmp.sweep_job import RunJob

# A long run (MT50: weeks of CPU) times out again and again: each time it is requeued and resumes, not only
# the 3 times submitit allows by default.
MAX_TIMEOUTS = 1000
RESOURCES: dict[str, float] = {"timeout_min": 1440, "cpus_per_task": 2, "mem_gb": 16.0, "gpus_per_node": 0}  # defaults


@dataclass(frozen=True)
class GridCell:
    """One cell of the grid: its run.py arguments and where it writes."""

    argv: list[str]
    run_dir: Path
    n_epochs: int

    @property
    def command(self) -> str:
        return shlex.join(["python", "run.py", *self.argv])


class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (ConfigError), like run.py's."""

    def error(self, message: str) -> Any:  # type: ignore[override]
        raise ConfigError(message.replace("\n", " "))


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="python -m qmp.sweep", description="Submit methods x envs x seeds of run.py as submitit jobs; "
                "flags after `--` go to every run. Re-running skips finished runs and resubmits the others.")
    p.add_argument("--methods", nargs="+", help=f"run.py methods: {', '.join(METHODS)}")
    p.add_argument("--envs", nargs="+", help=f"environments: {', '.join(ENVS)}")
    p.add_argument("--seeds", nargs="+", type=int, help="seeds (default: 0, or the file's)")
    p.add_argument("--file", type=Path, help="a sweep file (sweeps/paper/*.toml) instead of --methods and --envs: "
                   "envs, seeds, methods with their own flags, and job resources (qmp/sweep_file.py)")
    p.add_argument("--log_dir", default="data",
                   help="root of the run directories; submitit logs go to LOG_DIR/_submitit")
    p.add_argument("--cluster", choices=("local", "slurm", "debug"), default=None,
                   help="local: subprocesses; slurm: sbatch; debug: in this process "
                        "(default: slurm if available, else local)")
    p.add_argument("--slurm_partition", default=None, help="Slurm partition")
    p.add_argument("--timeout_min", type=int, help="wall time of one job; longer runs are requeued and resume "
                   f"(default: the file's, else {RESOURCES['timeout_min']})")
    p.add_argument("--cpus_per_task", type=int, help=f"(default: the file's, else {RESOURCES['cpus_per_task']})")
    p.add_argument("--mem_gb", type=float, help=f"(default: the file's, else {RESOURCES['mem_gb']})")
    p.add_argument("--gpus_per_node", type=int, help="GPUs per job (also pass `-- --gpu 0` to use one; default: "
                   "the file's, else 0)")
    p.add_argument("--max_parallel", type=int, default=None,
                   help="Slurm: at most this many jobs of the array run at once")
    p.add_argument("--wait", action="store_true",
                   help="wait for every job and print the final states (implied by --cluster debug)")
    p.add_argument("--dry_run", action="store_true", help="print the run.py command lines and exit")
    return p


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """Sweep flags before the first `--`, run.py flags after it."""
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    return argv, []


def expand(methods: Sequence[str] | Mapping[str, Sequence[str]], envs: list[str], seeds: list[int], log_dir: str,
           extra: list[str]) -> list[GridCell]:
    """The grid as validated runs; raises ConfigError (naming the command) on the first bad one. `methods` may
    map each method to its own flags (a sweep file's), which come before `extra`."""
    own = methods if isinstance(methods, Mapping) else {method: () for method in methods}
    for word in [*extra, *(word for flags in own.values() for word in flags)]:
        flag = word.split("=")[0]
        if flag in RESERVED:
            raise ConfigError(f"{flag} is set by the sweep for every run; give --envs, --seeds or --log_dir "
                              "instead")
    runs: list[GridCell] = []
    for env in envs:
        for method, flags in own.items():
            for seed in seeds:
                argv = [method, f"--env={env}", "--seed", str(seed), "--log_dir", log_dir, *flags, *extra]
                try:
                    cfg = parse_args(argv, list(METHODS), list(ENVS))
                except ConfigError as exc:
                    raise ConfigError(f"{shlex.join(['run.py', *argv])}: {exc}") from exc
                run_dir = resolve_run_dir(cfg.run_dir, cfg.log_dir, cfg.env, cfg.method, cfg.name, cfg.seed)
                runs.append(GridCell(argv, run_dir, cfg.n_epochs))
    seen: dict[Path, GridCell] = {}
    for run in runs:
        if run.run_dir in seen:
            raise ConfigError(f"two runs share the run directory {run.run_dir}: "
                              f"{seen[run.run_dir].command!r} and {run.command!r}")
        seen[run.run_dir] = run
    return runs


# ------------------------------------------------------------------------------ finished or not
def run_status(run_dir: Path) -> tuple[RunStatus | None, str]:
    """(status.json of the run, "" or why there is none). Without one the run is not started, or was written
    before status.json existed: it is submitted, and resumes from its own checkpoint if it has one."""
    try:
        status = read_status(run_dir)
    except RunDirError as exc:
        return None, f"unreadable status ({exc})"
    if status is None:
        return None, "no status.json (not started, or from before status.json)" if run_dir.exists() else ""
    return status, ""


# ------------------------------------------------------------------------------ submission
def make_executor(args: argparse.Namespace) -> submitit.AutoExecutor:
    """One executor for the whole grid; Slurm-only settings are passed only to Slurm."""
    executor = submitit.AutoExecutor(folder=Path(args.log_dir) / "_submitit", cluster=args.cluster,
                                     slurm_max_num_timeout=MAX_TIMEOUTS)
    params: dict[str, Any] = {"name": "qmp_sweep", "timeout_min": args.timeout_min, "cpus_per_task": args.cpus_per_task,
                              "mem_gb": args.mem_gb, "gpus_per_node": args.gpus_per_node}
    if executor.cluster == "slurm":
        if args.slurm_partition:
            params["slurm_partition"] = args.slurm_partition
        if args.max_parallel:
            params["slurm_array_parallelism"] = args.max_parallel
    executor.update_parameters(**params)
    return executor


def record_job(run_dir: Path, cluster: str, job: submitit.Job[Any]) -> None:
    """job.json in the run directory: what `qmp.sweep status` asks the cluster about, and where the logs are."""
    paths = getattr(job, "paths", None)
    write_job(run_dir, {"cluster": cluster, "job_id": str(job.job_id), "submitted": time.time(),
                        "host": socket.gethostname(),
                        "stdout": str(paths.stdout) if paths else None, "stderr": str(paths.stderr) if paths else None})


def print_table(rows: list[tuple[str, str, str]], file: Any = None) -> None:
    rows = [("run_dir", "job_id", "state"), *rows]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    for run_dir, job_id, state in rows:
        print(f"{run_dir:<{widths[0]}}  {job_id:<{widths[1]}}  {state}", file=file or sys.stdout, flush=True)


def job_state(job: submitit.Job[Any]) -> str:
    try:
        return str(job.state)
    except Exception as exc:  # e.g. sacct missing on a Slurm without accounting
        return f"UNKNOWN ({type(exc).__name__})"


def grid(args: argparse.Namespace, extra: list[str]) -> tuple[Any, list[str], list[int], str, list[str]]:
    """expand()'s arguments from the command line or from --file (whose resources fill the resource flags not
    given on the command line; flags after `--` come after the file's, so they win)."""
    if args.file is None:
        if not args.methods or not args.envs:
            raise ConfigError("give --methods and --envs, or --file with a sweep file (sweeps/paper/*.toml)")
        resources: dict[str, float] = {}
        methods, envs, seeds = args.methods, args.envs, args.seeds or [0]
    else:
        if args.methods or args.envs:
            raise ConfigError(f"--file {args.file} lists the methods and envs: drop --methods and --envs")
        plan = load_sweep(args.file)
        methods, envs, seeds, extra, resources = plan.methods, plan.envs, args.seeds or plan.seeds, \
            [*plan.flags, *extra], plan.resources
    for key, default in RESOURCES.items():
        if getattr(args, key) is None:
            setattr(args, key, type(default)(resources.get(key, default)))
    return methods, envs, seeds, args.log_dir, extra


def sweep(argv: list[str]) -> tuple[int, list[submitit.Job[Any]]]:
    """The CLI without sys.exit: (exit code, submitted jobs). Tests call this to wait on the jobs."""
    own, extra = split_argv(argv)
    try:
        args = build_parser().parse_args(own)
        runs = expand(*grid(args, extra))
    except ConfigError as exc:
        print(f"qmp.sweep: error: {exc}", file=sys.stderr)
        return 2, []
    if args.dry_run:
        for run in runs:
            print(run.command)
        return 0, []
    rows: dict[Path, tuple[str, str, str]] = {}
    todo: list[tuple[GridCell, str]] = []
    for run in runs:
        status, unknown = run_status(run.run_dir)
        if status is not None and status.epoch >= run.n_epochs:
            rows[run.run_dir] = (str(run.run_dir), "-", f"FINISHED (skipped, epoch {status.epoch}/{run.n_epochs})")
        elif status is not None and status.epoch > 0:
            todo.append((run, f", resumes at epoch {status.epoch}/{run.n_epochs}"))
        else:
            todo.append((run, f", {unknown}" if unknown else ""))
    jobs: list[submitit.Job[Any]] = []
    if todo:
        executor = make_executor(args)
        cwd = str(Path.cwd())
        with executor.batch():
            jobs = [executor.submit(RunJob(run.argv, cwd)) for run, _ in todo]
        for (run, _), job in zip(todo, jobs, strict=True):
            record_job(run.run_dir, executor.cluster, job)
        print(f"Submitted {len(jobs)} job(s) to {executor.cluster}; logs in {executor.folder}; "
              f"progress: python -m qmp.sweep status {args.log_dir}", flush=True)
    failed = 0
    wait = args.wait or (todo and executor.cluster == "debug")
    for (run, note), job in zip(todo, jobs, strict=True):
        if wait:
            try:
                job.result()
            except Exception as exc:  # the job's own error is in its log; one line here
                failed += 1
                print(f"qmp.sweep: {run.run_dir} failed: {str(exc).strip().splitlines()[-1]}", file=sys.stderr)
        rows[run.run_dir] = (str(run.run_dir), str(job.job_id), job_state(job) + ("" if wait else note))
    print_table([rows[run.run_dir] for run in runs])
    return (1 if failed else 0), jobs


def main(argv: list[str]) -> int:
    if argv[:1] == ["status"]:
        from qmp.sweep_status import main as status_main

        return status_main(argv[1:])
    return sweep(argv)[0]


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
