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


def test_norm_obs_is_garages_running_normalisation_per_task() -> None:
    """The same seeded episodes with and without --norm_obs: every normalised observation equals the raw one
    passed through garage's update-then-normalise, done here one task and one coordinate at a time."""
    import numpy as np

    from qmp.environments import make_spec
    from qmp.environments.multitask import MultiTaskEnv

    spec = make_spec("ToyReach-v0")
    normed, raw = MultiTaskEnv(spec, 3, normalize_obs=True), MultiTaskEnv(spec, 3)
    t, o = spec.num_tasks, 2
    mean, var = [[0.0] * o for _ in range(t)], [[1.0] * o for _ in range(t)]

    def expected(obs: np.ndarray, tasks: np.ndarray | None = None) -> np.ndarray:
        out = np.zeros((t, o))
        for i in range(t) if tasks is None else np.flatnonzero(tasks):
            for d in range(o):
                mean[i][d] = 0.999 * mean[i][d] + 0.001 * float(obs[i, d])
                var[i][d] = 0.999 * var[i][d] + 0.001 * (float(obs[i, d]) - mean[i][d]) ** 2
                out[i, d] = (float(obs[i, d]) - mean[i][d]) / (var[i][d] ** 0.5 + 1e-8)
        return out

    np.testing.assert_allclose(normed.reset(), expected(raw.reset()), rtol=1e-5, atol=1e-6)
    rng = np.random.default_rng(0)
    for _ in range(45):  # two episodes and a bit: resets are normalised too
        actions = rng.uniform(-1, 1, (t, 2))
        step_n, step_r = normed.step(actions), raw.step(actions)
        np.testing.assert_allclose(step_n.next_obs, expected(step_r.next_obs), rtol=1e-5, atol=1e-6)
        if step_r.done.any():
            done = step_r.done
            np.testing.assert_allclose(normed.reset_tasks(done)[done], expected(raw.reset_tasks(done), done)[done],
                                       rtol=1e-5, atol=1e-6)
    evaluation = MultiTaskEnv(spec, 3, evaluation=True, normalizer=normed.normalizer)
    before = normed.normalizer.state_dict()
    evaluation.reset(seed=11)
    evaluation.step(rng.uniform(-1, 1, (t, 2)))
    assert all(np.array_equal(before[k], normed.normalizer.state_dict()[k]) for k in before)  # read, not moved
    clone = MultiTaskEnv(spec, 3, normalize_obs=True)
    clone.set_state(normed.get_state())
    np.testing.assert_array_equal(clone.normalizer.mean, normed.normalizer.mean)


@pytest.mark.parametrize("argv", [["--kl_coeff", "0.1", "--stagewise", "true"]])
def test_norm_obs_refuses_what_reads_the_raw_observation(argv: list[str]) -> None:
    with pytest.raises(ConfigError, match="--norm_obs true cannot go with --stagewise true"):
        parse_args(["dnc_sac", "--env=JacoReachMT5-v1", "--norm_obs", "true", *argv])
    with pytest.raises(ConfigError, match="--norm_obs true cannot go with --unsupervised false"):
        parse_args(["uds_dnc", "--env=ToyReach-v0", "--norm_obs", "true", "--unsupervised", "false"])
