"""`make test-slurm`: qmp.sweep on a real Slurm cluster (one node on localhost, tests/slurm_cluster.py).

    .venv/bin/python tests/slurm_e2e.py        # as root; installs Debian's Slurm packages if missing

1. submits 2 methods x 2 seeds on ToyReach-v0 with `python -m qmp.sweep --cluster slurm`, and the same sweep as
   local processes (`--cluster local`, the reference) beside it;
2. requeues one job mid-run with `scontrol requeue`, checks that `qmp.sweep status` shows it queued, lets it
   start again (`scontrol update StartTime=now`: a requeued job otherwise waits `cred_expire`);
3. waits until every run is done and every Slurm job COMPLETED; checks that the requeued run resumed from its
   checkpoint (run.py's "Resuming ... at epoch E" in the job's log, status.json's start_epoch = E, 0 < E < end)
   and that every progress.csv equals the local run's, apart from the time/* columns;
4. stops the cluster and checks that no process of it is left (also on failure).

Not collected by pytest (no test_ prefix) and not part of `make test`. Prints its steps; a failure ends with
one line `test-slurm: FAIL: <reason>` and exit status 1 (Slurm that cannot be installed is a failure, never a skip).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from qmp.run_dir import read_job, read_progress, read_status  # noqa: E402
from tests.slurm_cluster import LocalSlurm, SlurmError, ensure_installed  # noqa: E402

ENV, METHODS, SEEDS = "ToyReach-v0", ["dnc_sac", "qmp_dnc"], ["0", "1"]
FLAGS = ["--n_epochs", "24"]  # ~6 s of training each on a free core: the requeue at epoch 3 lands mid-run
N_EPOCHS = int(FLAGS[1])
REQUEUED = ("qmp_dnc", "0")
REQUEUE_AT_EPOCH = 3
TIMEOUT_S = 900
START = time.monotonic()


class Failure(Exception):
    """A check of the scenario failed; the message says which."""


def step(message: str) -> None:
    print(f"test-slurm [{time.monotonic() - START:5.0f} s] {message}", flush=True)


def wait_for(ready: Callable[[], bool], what: str, timeout: float = TIMEOUT_S, every: float = 1.0) -> None:
    deadline = time.monotonic() + timeout
    while not ready():
        if time.monotonic() > deadline:
            raise Failure(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


def sweep_argv(log_dir: Path, cluster: str, *options: str) -> list[str]:
    return [sys.executable, "-m", "qmp.sweep", "--methods", *METHODS, "--envs", ENV, "--seeds", *SEEDS,
            "--log_dir", str(log_dir), "--cluster", cluster, *options, "--", *FLAGS]


def run_dirs(log_dir: Path) -> dict[tuple[str, str], Path]:
    return {(m, s): log_dir / ENV / m / "None" / f"seed{s}" for m in METHODS for s in SEEDS}


def status_table(cluster: LocalSlurm, log_dir: Path) -> dict[str, list[str]]:
    """`python -m qmp.sweep status LOG_DIR` run as a user would: {run: its cells}."""
    out = subprocess.run([sys.executable, "-m", "qmp.sweep", "status", str(log_dir)], cwd=ROOT, env=cluster.env(),
                         capture_output=True, text=True, check=True).stdout
    return {line.split()[0]: line.split() for line in out.splitlines()[1:-1]}


def slurm_state(cluster: LocalSlurm, job_id: str) -> str:
    out = cluster.run("squeue", "--noheader", "--array", "--states=all", "--format=%i|%T", f"--jobs={job_id}",
                      check=False)
    return dict(line.split("|") for line in out.split()).get(job_id, "GONE")


def without_time(path: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in row.items() if not k.startswith("time/")} for row in read_progress(path).rows]


def scenario(tmp: Path, cluster: LocalSlurm) -> None:
    local_dir, slurm_dir = tmp / "local", tmp / "slurm"
    with open(tmp / "local_sweep.log", "w") as log:
        local = subprocess.Popen(sweep_argv(local_dir, "local", "--wait"), cwd=ROOT, env=cluster.env(), stdout=log,
                                 stderr=subprocess.STDOUT)
    step("the reference sweep runs as local processes")
    submitted = subprocess.run(sweep_argv(slurm_dir, "slurm", "--cpus_per_task", "1", "--mem_gb", "1",
                                          "--timeout_min", "60"), cwd=ROOT, env=cluster.env(), capture_output=True,
                               text=True)
    print(submitted.stdout + submitted.stderr, end="", flush=True)
    if submitted.returncode != 0:
        raise Failure(f"python -m qmp.sweep --cluster slurm exited with {submitted.returncode}")
    slurm_runs, local_runs = run_dirs(slurm_dir), run_dirs(local_dir)
    target = slurm_runs[REQUEUED]
    job = read_job(target)
    if job is None or job.get("cluster") != "slurm":
        raise Failure(f"no Slurm job recorded in {target}/job.json: {job}")
    job_id = str(job["job_id"])

    wait_for(lambda: read_progress(target).epochs >= REQUEUE_AT_EPOCH, f"{target} to log {REQUEUE_AT_EPOCH} epochs",
             every=0.2)
    cluster.run("scontrol", "requeue", job_id)
    step(f"requeued Slurm job {job_id} ({REQUEUED[0]} seed {REQUEUED[1]}) at epoch {read_progress(target).epochs}")
    wait_for(lambda: slurm_state(cluster, job_id) == "PENDING", f"job {job_id} to be PENDING again", 120, 0.5)
    name = str(target.relative_to(slurm_dir))
    shown = status_table(cluster, slurm_dir)[name]
    if shown[1] != "queued":
        raise Failure(f"qmp.sweep status shows the requeued run as {shown[1]!r}, not 'queued': {' '.join(shown)}")
    step(f"qmp.sweep status: {' '.join(shown)}")
    cluster.run("scontrol", "update", f"JobId={job_id}", "StartTime=now")

    def finished(path: Path) -> bool:
        status = read_status(path)
        return status is not None and status.state == "done"

    wait_for(lambda: all(finished(path) for path in slurm_runs.values()), "every Slurm run to be done")
    ids = [str(read_job(path)["job_id"]) for path in slurm_runs.values()]  # type: ignore[index]
    wait_for(lambda: all(slurm_state(cluster, j) == "COMPLETED" for j in ids), "every job to be COMPLETED", 60)
    table = status_table(cluster, slurm_dir)
    if sorted(table) != sorted(str(p.relative_to(slurm_dir)) for p in slurm_runs.values()) or \
            any(cells[1] != "done" for cells in table.values()):
        raise Failure(f"qmp.sweep status does not show every run done: {table}")
    step(f"every Slurm run is done, jobs {', '.join(ids)} COMPLETED, and qmp.sweep status says so:")
    for cells in table.values():
        print("    " + "  ".join(cells), flush=True)

    check_resumed(target, job)
    if local.wait(TIMEOUT_S) != 0:
        raise Failure(f"the local reference sweep exited with {local.returncode}: see its log")
    for key, path in slurm_runs.items():
        ours, reference = without_time(path), without_time(local_runs[key])
        if len(ours) != N_EPOCHS or ours != reference:
            bad = next((i for i, (a, b) in enumerate(zip(ours, reference, strict=False)) if a != b), None)
            raise Failure(f"{path}/progress.csv differs from the local run's ({len(ours)} vs {len(reference)} rows, "
                          f"first different row: {bad})")
    step(f"all {len(slurm_runs)} progress.csv files equal the local runs' (without time/*)")


def check_resumed(target: Path, job: dict[str, object]) -> None:
    """The requeued run started twice, the second time from its checkpoint, and says so in its log and status."""
    status = read_status(target)
    log = Path(str(job["stdout"])).read_text() if job.get("stdout") else ""
    marker = f"Resuming {target} at epoch "
    if status is None or marker not in log:
        raise Failure(f"the requeued run's log {job.get('stdout')} has no {marker!r}")
    resumed_at = int(log.split(marker)[1].split()[0])
    started = status.extra.get("start_epoch")
    if not 0 < resumed_at < status.n_epochs or started != resumed_at:
        raise Failure(f"the requeued run resumed at epoch {resumed_at}, status.json says start_epoch {started}")
    epochs = [int(row["epoch"]) for row in read_progress(target).rows]
    if epochs != list(range(status.n_epochs)):
        raise Failure(f"the requeued run's progress.csv epochs are {epochs}, not 0..{status.n_epochs - 1}")
    step(f"the requeued run resumed from its checkpoint at epoch {resumed_at} (log and status.json agree)")


def main() -> int:
    try:
        step(ensure_installed())
        with tempfile.TemporaryDirectory(prefix="qmp_slurm_") as tmp:
            cluster = LocalSlurm(Path(tmp) / "cluster")
            try:
                with cluster:
                    step(f"a one-node Slurm cluster runs on localhost ({cluster.cpus} CPUs), config {cluster.conf}")
                    scenario(Path(tmp), cluster)
            finally:
                left = cluster.marked()
            if left:
                raise Failure(f"processes of the test cluster are left: {left}")
            step("the cluster is stopped and no process of it is left")
    except (SlurmError, Failure) as exc:
        print(f"test-slurm: FAIL: {exc}", flush=True)
        return 1
    except Exception as exc:  # a bug in the test itself: the traceback, then the one line
        traceback.print_exc()
        print(f"test-slurm: FAIL: {type(exc).__name__}: {exc}", flush=True)
        return 1
    step("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
