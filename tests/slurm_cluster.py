"""A real one-node Slurm cluster on localhost for tests: munged, slurmctld and slurmd as child processes under a
temp dir (no systemd, non-default ports), Debian's packages installed first if missing.

    with LocalSlurm(Path(tmp)) as cluster:
        subprocess.run(["sbatch", ...], env=cluster.env(), check=True)

The settings are the ones measured to work in a container (docs/cluster.md): process tracking by parent pid, no
cgroups, no accounting; `cred_expire=10` so a requeued job may start again after 10 s, not 120 s. Every process
started here, and everything they start (jobs included), carries QMP_TEST_SLURM=<temp dir> in its environment:
stop() cancels the jobs, stops the daemons and then kills whatever still carries that mark, so nothing is left
behind, also when a test fails half-way.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import IO

MARK = "QMP_TEST_SLURM"
PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel", "sinfo")
PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
SBIN = "/usr/sbin:/sbin"  # where Debian puts the daemons (not on every user's PATH)
# No slurmdbd here, so no sacct: submitit asks sacct for job states; this stand-in answers from squeue.
SACCT = """#!/bin/sh
echo 'JobID|State|NodeList'
exec squeue --noheader --array --states=all --format='%i|%T|%N'
"""


class SlurmError(RuntimeError):
    """Slurm cannot be installed or started here; the message is one line saying why."""


def which(program: str) -> str | None:
    return shutil.which(program, path=os.environ.get("PATH", "") + ":" + SBIN)


def ensure_installed() -> str:
    """Install Debian's Slurm and munge packages if a program is missing; returns what was done."""
    missing = [p for p in PROGRAMS if which(p) is None]
    if not missing:
        return "Slurm is installed"
    command = f"apt-get install -y --no-install-recommends {' '.join(PACKAGES)}"
    if os.geteuid() != 0:
        raise SlurmError(f"Slurm is not installed ({', '.join(missing)} missing) and installing it needs root: "
                         f"run `{command}` as root")
    if shutil.which("apt-get") is None:
        raise SlurmError(f"Slurm is not installed ({', '.join(missing)} missing) and there is no apt-get here")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for step in (["apt-get", "update"], command.split()):
        done = subprocess.run(step, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            last = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
            raise SlurmError(f"cannot install Slurm: `{' '.join(step)}` exited with {done.returncode}: {last}")
    still = [p for p in PROGRAMS if which(p) is None]
    if still:
        raise SlurmError(f"installed {' '.join(PACKAGES)} but {', '.join(still)} is still missing")
    return f"installed Slurm: {command}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024 - 512
    return 1024


class LocalSlurm:
    """The cluster's daemons, config and client environment under `root` (a fresh directory)."""

    def __init__(self, root: Path, cpus: int | None = None) -> None:
        self.root = root.resolve()
        self.cpus = cpus or os.cpu_count() or 1
        self.conf = self.root / "slurm.conf"
        self.daemons: list[tuple[str, subprocess.Popen[bytes], IO[bytes]]] = []

    def env(self) -> dict[str, str]:
        """The environment of a Slurm client (sbatch, squeue, ... and qmp.sweep) talking to this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf), MARK: str(self.root),
                "PATH": f"{self.root / 'bin'}:{os.environ.get('PATH', '')}:{SBIN}"}

    def run(self, *command: str, check: bool = True) -> str:
        """A Slurm client command against this cluster; its stdout."""
        done = subprocess.run(command, env=self.env(), capture_output=True, text=True, timeout=60)
        if check and done.returncode != 0:
            raise SlurmError(f"`{' '.join(command)}` exited with {done.returncode}: {done.stderr.strip()}")
        return done.stdout

    # ------------------------------------------------------------------------------------------ start
    def start(self) -> None:
        for sub in ("munge", "state", "spool", "log", "bin"):
            (self.root / sub).mkdir(mode=0o700, parents=True, exist_ok=True)
        key = self.root / "munge" / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        sock = self.root / "munge" / "munge.sock"
        self._spawn("munged", [which("munged") or "munged", "--foreground", "--force", f"--key-file={key}",
                               f"--socket={sock}", f"--pid-file={self.root / 'munge/munged.pid'}",
                               f"--log-file={self.root / 'log/munged.log'}",
                               f"--seed-file={self.root / 'munge/munged.seed'}"])
        self._wait(lambda: sock.exists(), 20, "munged did not create its socket")
        self.conf.write_text(self._config(sock))
        sacct = self.root / "bin" / "sacct"
        sacct.write_text(SACCT)
        sacct.chmod(0o755)
        self._spawn("slurmctld", [which("slurmctld") or "slurmctld", "-D", "-i", "-f", str(self.conf)])
        self._spawn("slurmd", [which("slurmd") or "slurmd", "-D", "-N", "localhost", "-f", str(self.conf)])
        self._wait(lambda: self.run("sinfo", "--noheader", "--format=%T", check=False).strip() == "idle", 60,
                   "the node did not become idle")

    def _config(self, munge_socket: Path) -> str:
        r = self.root
        return "\n".join([
            "ClusterName=qmptest", "SlurmctldHost=localhost", f"SlurmctldPort={free_port()}",
            f"SlurmdPort={free_port()}", "SlurmUser=root", "SlurmdUser=root", "AuthType=auth/munge",
            "CredType=cred/munge", f"AuthInfo=socket={munge_socket},cred_expire=10",
            f"StateSaveLocation={r / 'state'}", f"SlurmdSpoolDir={r / 'spool'}",
            f"SlurmctldPidFile={r / 'slurmctld.pid'}", f"SlurmdPidFile={r / 'slurmd.pid'}",
            f"SlurmctldLogFile={r / 'log/slurmctld.log'}", f"SlurmdLogFile={r / 'log/slurmd.log'}",
            "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
            "AccountingStorageType=accounting_storage/none", "SelectType=select/cons_tres",
            "SelectTypeParameters=CR_CPU", "SchedulerParameters=sched_interval=1", "JobRequeue=1", "KillWait=2",
            "ReturnToService=2", "MpiDefault=none", "PropagateResourceLimits=NONE",
            f"NodeName=localhost NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={memory_mb()} State=UNKNOWN",
            "PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP", ""])

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "wb")  # noqa: SIM115 (closed in stop())
        env = {**self.env(), "PATH": f"{os.environ.get('PATH', '')}:{SBIN}"}
        proc = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        self.daemons.append((name, proc, log))

    def _wait(self, ready: object, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, proc, _ in self.daemons:
                if proc.poll() is not None:
                    raise SlurmError(f"{name} exited with {proc.returncode}: {self.log_tail(name)}")
            if ready():  # type: ignore[operator]
                return
            time.sleep(0.2)
        raise SlurmError(f"{what} within {timeout:.0f} s: {self.log_tail('slurmd')}")

    def log_tail(self, name: str) -> str:
        for path in (self.root / "log" / f"{name}.log", self.root / "log" / f"{name}.out"):
            if path.exists() and path.read_text().strip():
                return path.read_text().strip().splitlines()[-1]
        return "(no log)"

    # ------------------------------------------------------------------------------------------ stop
    def stop(self) -> list[int]:
        """Cancel every job, stop the daemons, kill whatever they left; the pids that had to be killed."""
        if self.daemons and all(proc.poll() is None for _, proc, _ in self.daemons):
            jobs = self.run("squeue", "--noheader", "--format=%A", check=False).split()
            if jobs:
                self.run("scancel", *jobs, check=False)
                deadline = time.monotonic() + 20
                while self.run("squeue", "--noheader", "--format=%A", check=False).split() and \
                        time.monotonic() < deadline:
                    time.sleep(0.5)
        for _, proc, log in reversed(self.daemons):
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            log.close()
        self.daemons = []
        return self.kill_leftovers()

    def marked(self) -> list[int]:
        """Processes carrying this cluster's mark: started by it, by its jobs, or by a client we ran."""
        found, needle = [], f"{MARK}={self.root}".encode() + b"\0"
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle in (entry / "environ").read_bytes() + b"\0":
                    found.append(int(entry.name))
            except OSError:
                continue
        return found

    def kill_leftovers(self) -> list[int]:
        killed: list[int] = []
        deadline = time.monotonic() + 15
        while (pids := self.marked()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed.append(pid)
                except ProcessLookupError:
                    pass
            time.sleep(0.3)
        if self.marked():
            raise SlurmError(f"processes of the test cluster survive SIGKILL: {self.marked()}")
        return sorted(set(killed))

    def __enter__(self) -> LocalSlurm:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.stop()
