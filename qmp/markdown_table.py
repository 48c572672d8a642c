"""The lines of the markdown tables that qmp.plot --table prints, one env per table, and how they name env steps."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def env_table_head(env: str, header: Sequence[str], heading: bool = True) -> list[str]:
    """The first lines of one env's markdown table: its heading (unless `heading` is False, for a page section
    that already names the env), the header row and the rule."""
    return [*([f"### {env}", ""] if heading else []), markdown_row(header), "|" + "---|" * len(header)]


def short_steps(steps: float) -> str:
    """500000 -> 500k, 2000000 -> 2M, 1500000 -> 1.5M."""
    for unit, size in (("M", 1e6), ("k", 1e3)):
        if abs(steps) >= size:
            return f"{steps / size:.3g}{unit}"
    return f"{steps:g}"
