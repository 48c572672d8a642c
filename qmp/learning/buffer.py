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
    def cat(a: "Batch", b: "Batch") -> "Batch":
        """Concatenate along the batch axis (UDS: own transitions then shared ones)."""
        return Batch(*(torch.cat([getattr(a, f.name), getattr(b, f.name)], dim=1) for f in fields(Batch)))


class MultiTaskReplayBuffer:
    """FIFO ring of `capacity` transitions per task."""

    def __init__(self, num_tasks: int, capacity: int, obs_dim: int, act_dim: int, device: torch.device) -> None:
        self.num_tasks, self.capacity, self.device = num_tasks, capacity, device
        t = num_tasks
        self.storage = {
            "obs": torch.zeros(t, capacity, obs_dim, device=device),
            "act": torch.zeros(t, capacity, act_dim, device=device),
            "rew": torch.zeros(t, capacity, device=device),
            "next_obs": torch.zeros(t, capacity, obs_dim, device=device),
            "terminated": torch.zeros(t, capacity, device=device),
        }
        self.ptr = 0
        self.size = 0
        self._task_index = torch.arange(t, device=device).unsqueeze(1)

    def extend(self, data: dict[str, np.ndarray]) -> None:
        """Append n lockstep steps; each array is step-major (n, T, ...) as the collector builds it."""
        n = len(data["rew"])
        for start in range(0, n, self.capacity):  # only loops when n exceeds the capacity
            chunk = {k: v[start : start + self.capacity] for k, v in data.items()}
            self._write(chunk, len(chunk["rew"]))

    def _write(self, data: dict[str, np.ndarray], n: int) -> None:
        positions = (self.ptr + torch.arange(n)) % self.capacity
        positions = positions.to(self.device)
        for key, store in self.storage.items():
            value = torch.as_tensor(np.asarray(data[key], np.float32), device=self.device)
            store[:, positions] = value.transpose(0, 1)
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
        s = self.storage
        return Batch(s["obs"][tasks, idx], s["act"][tasks, idx], s["rew"][tasks, idx], s["next_obs"][tasks, idx], s["terminated"][tasks, idx])

    def state_dict(self) -> dict:
        n = self.size
        order = (torch.arange(n) + (self.ptr - n)) % self.capacity  # oldest first
        order = order.to(self.device)
        return {"size": n, "ptr": self.ptr, "capacity": self.capacity, "data": {k: v[:, order].cpu() for k, v in self.storage.items()}, "order": order.cpu()}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"replay buffer capacity {state['capacity']} in the checkpoint != {self.capacity} requested")
        order = state["order"].to(self.device)
        for key, store in self.storage.items():
            store[:, order] = state["data"][key].to(self.device)
        self.size, self.ptr = state["size"], state["ptr"]
