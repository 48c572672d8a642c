"""Evaluation videos (the original's --vis_* flags): the first episodes of each task's own policy.

Rendering needs an offscreen OpenGL backend (MUJOCO_GL=egl or osmesa). If rendering fails the
recorder warns once and turns itself off, so a missing GPU driver never stops training.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from qmp.environments.base import MultiTaskSpec
from qmp.environments.multitask import MultiTaskEnv
from qmp.environments.normalize import ObservationNormalizer
from qmp.rollout import Behaviour, evaluate, evaluation_seed


def resize_nearest(frame: np.ndarray, width: int, height: int) -> np.ndarray:
    """Nearest-neighbour resize (H, W, 3) -> (height, width, 3); no image library needed."""
    rows = np.linspace(0, frame.shape[0] - 1, height).round().astype(int)
    cols = np.linspace(0, frame.shape[1] - 1, width).round().astype(int)
    return frame[rows][:, cols]


class VideoRecorder:
    """Builds a rendering copy of the evaluation env on first use and writes one file per task."""

    def __init__(self, make_spec: Callable[[], MultiTaskSpec], seed: int, episodes: int, width: int, height: int,
                 fps: int, fmt: str, normalizer: ObservationNormalizer | None = None) -> None:
        """`normalizer`: the training env's observation normalisation (--norm_obs), read only."""
        self.make_spec, self.seed, self.normalizer = make_spec, seed, normalizer
        self.episodes, self.width, self.height, self.fps, self.fmt = episodes, width, height, fps, fmt
        self.env: MultiTaskEnv | None = None
        self.enabled = True

    def record(self, behaviour: Behaviour, epoch: int, out_dir: Path, device: torch.device) -> list[Path]:
        """Deterministic episodes (same seeding as evaluation) rendered to out_dir/epoch{E}_{task}.{fmt}."""
        if not self.enabled:
            return []
        try:
            if self.env is None:
                self.env = MultiTaskEnv(self.make_spec(), self.seed, evaluation=True, normalizer=self.normalizer)
            frames: list[list[np.ndarray]] = [[] for _ in range(self.env.num_tasks)]
            env = self.env

            def grab(active: np.ndarray) -> None:
                for i in np.flatnonzero(active):
                    frames[i].append(resize_nearest(np.asarray(env.envs[i].render()), self.width, self.height))

            evaluate(env, behaviour, self.episodes, evaluation_seed(self.seed, epoch), device, on_step=grab)
            return self._write(frames, epoch, out_dir)
        except Exception as exc:  # rendering backends fail in many ways; videos are optional
            warnings.warn(f"videos disabled: rendering failed ({type(exc).__name__}: {exc}); "
                          "set MUJOCO_GL=egl or osmesa", stacklevel=2)
            self.enabled = False
            return []

    def _write(self, frames: list[list[np.ndarray]], epoch: int, out_dir: Path) -> list[Path]:
        import imageio.v2 as imageio

        assert self.env is not None
        out_dir.mkdir(parents=True, exist_ok=True)
        paths = []
        for name, task_frames in zip(self.env.task_names, frames, strict=True):
            path = out_dir / f"epoch{epoch}_{name}.{self.fmt}"
            if self.fmt == "gif":
                imageio.mimwrite(path, task_frames, duration=1000 / self.fps, loop=0)
            else:
                imageio.mimwrite(path, task_frames, fps=self.fps, macro_block_size=1)
            paths.append(path)
        return paths

    def close(self) -> None:
        if self.env is not None:
            self.env.close()
