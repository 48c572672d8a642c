"""Meta-World MT10 / MT50 and the registry entry of the CDS door/drawer scene (metaworld_cds.py).

Each task is a `MetaWorldTask` (metaworld_task.py: goal variant cycle, evaluation goals, instability)
over one env of metaworld's own benchmark. Building a benchmark is slow (MT50 about 35 s), so
benchmarks are cached per (name, seed) and shared by the task envs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import metaworld
from metaworld.env_dict import MT10_V3, MT50_V3

from qmp.environments.base import MultiTaskSpec, TaskEnv
from qmp.environments.metaworld_cds import cds_spec
from qmp.environments.metaworld_task import (
    EVAL_SEED_OFFSET,
    METAWORLD_HORIZON,
    UNSTABLE_REWARD,
    MetaWorldTask,
    benchmark_seed,
    check_no_sparse_tasks,
)
from qmp.environments.task_subset import TaskSubset, parse_task_subset

_BENCHMARKS: dict[tuple[str, int], Any] = {}


def cached_benchmark(name: str, seed: int, build: Callable[[int], Any]) -> Any:
    """One benchmark object per (name, seed) per process: the T task envs share it."""
    key = (name, seed)
    if key not in _BENCHMARKS:
        _BENCHMARKS[key] = build(seed)
    return _BENCHMARKS[key]


def _mt_spec(env_id: str, benchmark_cls: Callable[..., Any], task_name: TaskSubset, sparse_tasks: Any) -> MultiTaskSpec:
    check_no_sparse_tasks(sparse_tasks)
    all_names = list(MT10_V3 if benchmark_cls is metaworld.MT10 else MT50_V3)
    chosen = [all_names[i] for i in parse_task_subset(task_name, all_names, "Meta-World") or range(len(all_names))]

    def make(task: int, seed: int, evaluation: bool) -> TaskEnv:
        bench_seed = benchmark_seed(seed) + (EVAL_SEED_OFFSET if evaluation else 0)
        benchmark = cached_benchmark(env_id, bench_seed, lambda s: benchmark_cls(seed=s))
        name = chosen[task]
        variants = [t for t in benchmark.train_tasks if t.env_name == name]
        env = benchmark.train_classes[name](reward_function_version="v2")
        return MetaWorldTask(env, variants)

    return MultiTaskSpec(env_id, tuple(chosen), METAWORLD_HORIZON, min_reward=UNSTABLE_REWARD, make_task_env=make)


def metaworld_mt10(task_name: TaskSubset = None, sparse_tasks: Any = None, **_: Any) -> MultiTaskSpec:
    """MetaWorldMT10-v2: metaworld's MT10 (v3 envs, v2 rewards), 50 goal variants per task."""
    return _mt_spec("MetaWorldMT10-v2", metaworld.MT10, task_name, sparse_tasks)


def metaworld_mt50(task_name: TaskSubset = None, sparse_tasks: Any = None, **_: Any) -> MultiTaskSpec:
    """MetaWorldMT50-v2: metaworld's MT50 (v3 envs, v2 rewards), 50 goal variants per task."""
    return _mt_spec("MetaWorldMT50-v2", metaworld.MT50, task_name, sparse_tasks)


def metaworld_cds(task_name: TaskSubset = None, sparse_tasks: Any = None, **_: Any) -> MultiTaskSpec:
    """MetaWorldCDS-v1: door open/close and drawer open/close in one shared scene (metaworld_cds.py)."""
    return cds_spec(task_name, sparse_tasks)
