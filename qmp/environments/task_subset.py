"""The one parser for task subsets (`task_name`, `sparse_tasks`): CLI strings and python lists alike.

Pure python, so the CLI can validate a subset without importing any simulator.
"""

from __future__ import annotations

import operator
from collections.abc import Sequence

TaskSubset = str | int | Sequence[int | str] | None


def parse_task_subset(value: TaskSubset, names: Sequence[str], family: str, param: str = "task_name") -> list[int]:
    """Task indices, in the given order, from None/"" (no task: the caller picks its default), a task index,
    a comma-separated string of task names or indices ("reach-v3, 1") or a sequence of them.

    Empty items of a string are skipped; an unknown name, an index outside 0..len(names)-1 or a task given
    twice raises a ValueError naming the bad value and the valid choices.
    """
    if value is None:
        return []
    if isinstance(value, str):
        items: list[int | str] = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, Sequence):
        items = list(value)
    else:
        items = [value]
    chosen = [_task_index(item, names, family, param) for item in items]
    if len(set(chosen)) != len(chosen):
        raise ValueError(f"{family} {param} {value!r} names a task twice")
    return chosen


def _task_index(item: int | str, names: Sequence[str], family: str, param: str) -> int:
    """One task as its index: a name, a decimal index string or an integer."""
    if isinstance(item, str):
        if item in names:
            return list(names).index(item)
        if item.isdigit() and int(item) < len(names):
            return int(item)
    elif not isinstance(item, bool):  # True is no task index, though operator.index takes it for 1
        try:
            index = operator.index(item)
        except TypeError:
            index = -1
        if 0 <= index < len(names):
            return index
    raise ValueError(f"unknown {family} task {item!r} in {param}; valid: {', '.join(names)} or 0..{len(names) - 1}")
