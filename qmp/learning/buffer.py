"""Per-task float32 replay buffers in one task-major ring: every tensor is (T, capacity, ...).

Collection is lockstep over tasks, so every task's buffer has the same size and one write pointer;
sampling all tasks is one advanced-indexing gather.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor


@dataclass
class Batch:
    obs: Tensor  # (T, B, obs_dim)
    act: Tensor  # (T, B, act_dim)
    rew: Tensor  # (T, B)
    next_obs: Tensor  # (T, B, obs_dim): the true s', never a post-reset observation
    terminated: Tensor  # (T, B): 1 only for a real termination; time-limit truncation is 0

    @staticmethod
    def cat(a: Batch, b: Batch) -> Batch:
        """Concatenate along the batch axis (UDS: own transitions then shared ones)."""
        return Batch(*(torch.cat([getattr(a, f.name), getattr(b, f.name)], dim=1) for f in fields(Batch)))


class MultiTaskReplayBuffer:
    """FIFO ring of `capacity` transitions per task.

    All fields live in ONE step-major float32 tensor (capacity, T, obs + act + 1 + obs + 1), so that
    sampling every task is one gather and a checkpoint can write the filled rows without copying them
    (a copy of MT50's 8 GB of buffers at checkpoint time would double the peak memory).
    `storage[key]` are task-major (T, capacity, ...) views of it.
    """

    def __init__(self, num_tasks: int, capacity: int, obs_dim: int, act_dim: int, device: torch.device) -> None:
        self.num_tasks, self.capacity, self.device = num_tasks, capacity, device
        widths = {"obs": obs_dim, "act": act_dim, "rew": 0, "next_obs": obs_dim, "terminated": 0}  # 0: a scalar
        self.fields: dict[str, slice | int] = {}
        col = 0
        for key, width in widths.items():
            self.fields[key] = slice(col, col + width) if width else col
            col += max(width, 1)
        self.data = torch.zeros(capacity, num_tasks, col, device=device)
        self.storage = {key: self.data[:, :, sl].transpose(0, 1) for key, sl in self.fields.items()}
        self.ptr = 0
        self.size = 0
        self._task_index = torch.arange(num_tasks, device=device).unsqueeze(1)

    def extend(self, data: dict[str, np.ndarray]) -> None:
        """Append n lockstep steps; each array is step-major (n, T, ...) as the collector builds it."""
        n = len(data["rew"])
        for start in range(0, n, self.capacity):  # only loops when n exceeds the capacity
            chunk = {k: v[start : start + self.capacity] for k, v in data.items()}
            self._write(chunk, len(chunk["rew"]))

    def _write(self, data: dict[str, np.ndarray], n: int) -> None:
        rows = np.empty((n, self.num_tasks, self.data.shape[-1]), np.float32)  # packed on the host: one transfer
        for key, sl in self.fields.items():
            rows[:, :, sl] = data[key]
        positions = (self.ptr + torch.arange(n)) % self.capacity
        self.data[positions.to(self.device)] = torch.from_numpy(rows).to(self.device)
        self.ptr = (self.ptr + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def sample(self, batch_size: int) -> Batch:
        """B transitions from every task's own buffer: (T, B, ...)."""
        idx = torch.randint(0, self.size, (self.num_tasks, batch_size), device=self.device)
        return self._gather(self._task_index, idx)

    def sample_from(self, sources: Tensor) -> Batch:
        """One transition per entry of `sources` (T, S): row i holds the task buffers to draw from."""
        idx = torch.randint(0, self.size, sources.shape, device=self.device)
        return self._gather(sources, idx)

    def _gather(self, tasks: Tensor, idx: Tensor) -> Batch:
        rows = self.data[idx, tasks]  # (T, S, width): every field of every task in one gather
        return Batch(*(rows[..., self.fields[f.name]] for f in fields(Batch)))

    def state_dict(self) -> dict:
        """The filled rows in their ring positions. On the CPU these are views of the live buffer (no
        copy): serialise the result before the buffer changes again."""
        n = self.size
        if self.device.type == "cpu":
            prefix = torch.from_numpy(self.data.numpy()[:n])  # a tensor whose storage is exactly these rows
        else:
            prefix = self.data[:n].cpu()
        return {"size": n, "ptr": self.ptr, "capacity": self.capacity, "layout": "step-major",
                "data": {key: prefix[:, :, sl] for key, sl in self.fields.items()}}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"replay buffer capacity {state['capacity']} in the checkpoint "
                             f"!= {self.capacity} requested")
        if state.get("layout") != "step-major":
            raise ValueError(f"replay buffer layout {state.get('layout', 'task-major')!r} "
                             "is not this code's 'step-major'")
        n = state["size"]
        for key, sl in self.fields.items():
            self.data[:n, :, sl] = state["data"][key].to(self.device)
        self.size, self.ptr = n, state["ptr"]
