"""Peak RSS of the MT50 preset's replay buffer, allocated and filled as collection fills it.

The buffer alone decides whether an MT50 run fits a 16 GB machine, so it is measured alone: allocate
50 tasks x the preset's capacity (obs 39, act 4), fill it with whole 500-step episodes, one preset cycle
(500 steps of every task) per `extend`, then draw one preset batch.

    .venv/bin/python benchmarks/replay_memory.py                       # the preset's capacity (1e6 per task)
    .venv/bin/python benchmarks/replay_memory.py --capacity 500000
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from collections.abc import Sequence
from pathlib import Path

sys.path[:0] = [str(Path(__file__).resolve().parents[1]), str(Path(__file__).resolve().parent)]

from throughput import filled_replay  # noqa: E402

from qmp.cli import parse_args  # noqa: E402
from qmp.config import replay_capacity  # noqa: E402
from qmp.environments import ENVS  # noqa: E402
from qmp.methods import METHODS  # noqa: E402

ENV = "MetaWorldMT50-v2"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--capacity", type=int, default=None, help="per task (default: the qmp_dnc preset's)")
    args = parser.parse_args(argv)
    cfg = parse_args(["qmp_dnc", f"--env={ENV}"], list(METHODS), list(ENVS))
    capacity = args.capacity or replay_capacity(cfg, cfg.n_policies)
    start = time.perf_counter()
    buf = filled_replay(ENV, capacity)
    filled = time.perf_counter() - start
    buf.sample(cfg.buffer_batch_size)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # KiB on Linux
    print(f"{ENV}: {cfg.n_policies} tasks x {capacity} transitions: buffer tensors "
          f"{buf.data.untyped_storage().nbytes() / 1e9:.2f} GB, peak RSS {rss:.2f} GB (filled in {filled:.0f} s)")


if __name__ == "__main__":
    main()
