"""The lines of the markdown tables that qmp.plot --table prints, one env per table."""

from __future__ import annotations

from collections.abc import Sequence


def markdown_row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def env_table_head(env: str, header: Sequence[str], heading: bool = True) -> list[str]:
    """The first lines of one env's markdown table: its heading (unless `heading` is False, for a page section
    that already names the env), the header row and the rule."""
    return [*([f"### {env}", ""] if heading else []), markdown_row(header), "|" + "---|" * len(header)]
