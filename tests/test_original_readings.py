"""Flags whose value the original read in its own way, and the ones refused here with the reason."""

from __future__ import annotations

import pytest

from qmp.cli import ConfigError, parse_args, reading_notes
from qmp.settings import Settings


def test_target_entropy_zero_is_unset_as_the_original_read_it() -> None:
    cfg = parse_args(["dnc_sac", "--env=JacoReachMT5-v1", "--target_entropy", "0"])
    assert Settings.from_config(cfg, 5).sac.target_entropy is None  # -dim(A)
    assert reading_notes(cfg) and "-dim(A)" in reading_notes(cfg)[0]
    other = parse_args(["dnc_sac", "--env=JacoReachMT5-v1", "--target_entropy", "-2.5"])
    assert Settings.from_config(other, 5).sac.target_entropy == -2.5 and reading_notes(other) == []


@pytest.mark.parametrize(("argv", "message"), [
    (["--partition", "random"], "--partition random .* is not supported: here policy i is task i's"),
    (["--partition", "goal_quadrant"], "--partition 'goal_quadrant' is not valid; valid: task_id"),
    (["--grad_clip", "1"], "--grad_clip is refused: the original parsed it but passed it to no algorithm"),
])
def test_refused_with_the_reason(argv: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        parse_args(["dnc_sac", "--env=JacoReachMT5-v1", *argv])
