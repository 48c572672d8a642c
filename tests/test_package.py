"""qmp as a library: the public names of `qmp.__all__` import lazily and work, and `pip install .` builds a
package with its assets, its pinned dependencies and the `qmp` console command."""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.helpers import read_progress, tiny_flags

ROOT = Path(__file__).resolve().parents[1]


def test_import_qmp_is_light_and_every_public_name_resolves() -> None:
    code = ("import sys, qmp; light = 'torch' not in sys.modules; names = [getattr(qmp, n) for n in qmp.__all__]; "
            "print(light, len(names), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True,
                         timeout=120).stdout.split()
    assert out[0] == "True" and int(out[1]) >= 15 and out[2] == "True"
    import qmp

    with pytest.raises(AttributeError, match="no attribute 'nonexistent'"):
        qmp.nonexistent  # noqa: B018


def test_the_public_names_train_and_act(tmp_path: Path) -> None:
    import torch

    import qmp

    cfg = qmp.parse_args(["qmp_dnc", "--env=ToyReach-v0", *tiny_flags(4, 20), "--run_dir", str(tmp_path)])
    assert qmp.train(cfg) == tmp_path and len(read_progress(tmp_path)) == 2
    spec = qmp.make_spec("ToyReach-v0")
    env = qmp.MultiTaskEnv(spec, seed=0)
    t, o, a = spec.num_tasks, env.obs_dim, env.act_dim
    policy = qmp.TanhGaussianPolicy("separate", t, o, a, [16], include_task_id=False)
    critic = qmp.DoubleQ("separate", t, o, a, [16], include_task_id=False, layer_norm=False)
    actions, chosen = qmp.QSwitchMixture(policy, critic, t).act(torch.from_numpy(env.reset()))
    assert actions.shape == (t, a) and chosen.shape == (t,) and bool(((0 <= chosen) & (chosen < t)).all())


def test_pip_builds_a_package_with_assets_pins_and_the_console_command(tmp_path: Path) -> None:
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "requirements-run.txt", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "qmp", source / "qmp", ignore=shutil.ignore_patterns("__pycache__"))
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                           "-w", str(tmp_path / "dist"), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    wheel = next((tmp_path / "dist").glob("qmp-*.whl"))
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        meta = archive.read(next(n for n in names if n.endswith("METADATA"))).decode()
        entry_points = archive.read(next(n for n in names if n.endswith("entry_points.txt"))).decode()
    assert {"qmp/environments/assets/jaco_reach.xml", "qmp/command.py", "qmp/launch.py"} <= names
    assert not any(n.startswith(("tests/", "benchmarks/")) for n in names)
    assert "Requires-Dist: torch==2.13.0" in meta and "Requires-Dist: metaworld==3.1.1" in meta
    assert "qmp = qmp.command:entry" in entry_points
