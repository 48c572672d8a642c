"""Per-task float32 replay buffers in one step-major ring that stores every observation once.

Collection is lockstep over tasks, so every task's buffer has the same size and one write pointer;
sampling all tasks is a fixed handful of advanced-indexing gathers.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

import numpy as np
import torch
from torch import Tensor

LAYOUT = "step-major, obs once"  # checkpoints of another layout are refused
ID_MODULUS = 1 << 24  # final ids are stored modulo this: exact in float32, and every side-store size divides it
MIN_FINALS = 16  # initial side-store slots per task; doubled when full
MAX_WRITE_ROWS = 16_384  # rows packed on the host per transfer: bounds the temporary copy, not the result


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


def differs(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(..., D) float32 pairs -> (...): whether any element differs bit for bit (-0.0 is not 0.0), so that
    an s' taken from the next row is always the very value the collector produced."""
    return (a.view(np.int32) != b.view(np.int32)).any(-1)


class MultiTaskReplayBuffer:
    """FIFO ring of `capacity` transitions per task, each observation stored once.

    `data` is ONE step-major float32 tensor (capacity, T, obs + act + 1 + 1 + 1): obs, act, rew,
    terminated and `final`. The s' of row k (of task t) is the obs of row k + 1 (mod capacity), written by
    the task's next lockstep step, unless `final` >= 0: then it is kept in the side store `finals`
    (slots, T, obs_dim) under that id (modulo the store's size). A row gets a final when its s' differs
    from the next row's obs: the episode of that task ended there (termination or time limit; tasks end
    independently), and always for the newest row, whose successor is not written yet; the next `extend`
    drops that provisional final again if its first obs is the same s'. Finals are allocated in row
    order per task and rows are overwritten oldest first, so each task's finals are a FIFO of ids
    [final_head, final_next): the store holds about one slot per episode in the buffer. Every one of the `size`
    rows is a complete transition, so sampling draws from exactly the same rows and values as a layout
    that stored s' in every row, at 55% of its memory for Meta-World (obs 39, act 4).

    Sampling every task is one gather of the drawn rows and their successor rows, then the finals.
    A checkpoint writes the filled rows without copying them (a copy of MT50's 9 GB of buffers at
    checkpoint time would double the peak memory). `storage[key]` are task-major (T, capacity, ...) views.
    """

    def __init__(self, num_tasks: int, capacity: int, obs_dim: int, act_dim: int, device: torch.device) -> None:
        if capacity > ID_MODULUS:
            raise ValueError(f"replay capacity {capacity} per task is above the supported {ID_MODULUS}")
        self.num_tasks, self.capacity, self.device = num_tasks, capacity, device
        widths = {"obs": obs_dim, "act": act_dim, "rew": 0, "terminated": 0, "final": 0}  # 0: a scalar
        self.fields: dict[str, slice | int] = {}
        col = 0
        for key, width in widths.items():
            self.fields[key] = slice(col, col + width) if width else col
            col += max(width, 1)
        self.data = torch.zeros(capacity, num_tasks, col, device=device)
        self.storage = {key: self.data[:, :, sl].transpose(0, 1) for key, sl in self.fields.items()}
        self.finals = torch.zeros(MIN_FINALS, num_tasks, obs_dim, device=device)
        self.final_head = np.zeros(num_tasks, np.int64)  # per task: the oldest live final id
        self.final_next = np.zeros(num_tasks, np.int64)  # per task: the id the next final gets
        self.ptr = 0
        self.size = 0
        self._task_index = torch.arange(num_tasks, device=device).unsqueeze(1)

    def extend(self, data: dict[str, np.ndarray]) -> None:
        """Append n lockstep steps; each array is step-major (n, T, ...) as the collector builds it."""
        n = len(data["rew"])
        step = min(self.capacity, MAX_WRITE_ROWS)
        for start in range(0, n, step):
            chunk = {k: np.asarray(v[start : start + step], np.float32) for k, v in data.items()}
            self._write(chunk, len(chunk["rew"]))

    def _write(self, data: dict[str, np.ndarray], n: int) -> None:
        if self.size:
            self._settle_newest(data["obs"][0])
        self._evict(max(0, self.size + n - self.capacity))
        ended = np.ones((n, self.num_tasks), bool)  # the last row's s' is provisional
        ended[:-1] = differs(data["next_obs"][:-1], data["obs"][1:])
        ids = self._allocate(ended, data["next_obs"])
        rows = np.empty((n, self.num_tasks, self.data.shape[-1]), np.float32)  # packed on the host: one transfer
        for key in ("obs", "act", "rew", "terminated"):
            rows[:, :, self.fields[key]] = data[key]
        rows[:, :, self.fields["final"]] = np.where(ended, ids % ID_MODULUS, -1)
        positions = (self.ptr + torch.arange(n)) % self.capacity
        self.data[positions.to(self.device)] = torch.from_numpy(rows).to(self.device)
        self.ptr = (self.ptr + n) % self.capacity
        self.size = min(self.size + n, self.capacity)

    def _settle_newest(self, first_obs: np.ndarray) -> None:
        """The newest row's s' becomes the next row's obs where they are the same: free its final."""
        last = self.final_next - 1  # the newest row holds the last id of every task
        slots = torch.from_numpy(last % len(self.finals)).to(self.device)
        pending = self.finals[slots, self._task_index[:, 0]].cpu().numpy()
        same = ~differs(pending, first_obs)
        if same.any():
            tasks = torch.from_numpy(np.flatnonzero(same)).to(self.device)
            self.data[(self.ptr - 1) % self.capacity, tasks, self.fields["final"]] = -1.0
            self.final_next[same] -= 1

    def _evict(self, k: int) -> None:
        """The k oldest rows are about to be overwritten: their finals leave the FIFO."""
        if k:
            rows = (self.ptr - self.size + torch.arange(k)) % self.capacity
            codes = self.data[rows.to(self.device), :, self.fields["final"]]
            self.final_head += (codes >= 0).sum(0).cpu().numpy()

    def _allocate(self, ended: np.ndarray, next_obs: np.ndarray) -> np.ndarray:
        """Ids (n, T) for the rows that `ended`, in row order per task, their s' written to the store."""
        counts = ended.sum(0)
        need = int((self.final_next - self.final_head + counts).max())
        if need > len(self.finals):
            self._grow(need)
        ids = self.final_next + np.cumsum(ended, 0) - 1
        self.final_next += counts
        k, t = np.nonzero(ended)
        self.finals[torch.from_numpy(ids[k, t] % len(self.finals)).to(self.device),
                    torch.from_numpy(t).to(self.device)] = torch.from_numpy(next_obs[k, t]).to(self.device)
        return ids

    def _grow(self, need: int) -> None:
        """Double the side store until `need` finals fit; a live id moves to its slot in the larger store."""
        old, size = self.finals, len(self.finals)
        while size < need:
            size *= 2
        assert ID_MODULUS % size == 0, "a stored id modulo ID_MODULUS must give its slot"
        self.finals = torch.zeros(size, self.num_tasks, old.shape[-1], device=self.device)
        for t in range(self.num_tasks):
            live = torch.arange(int(self.final_head[t]), int(self.final_next[t]), device=self.device)
            self.finals[live % size, t] = old[live % len(old), t]

    def sample(self, batch_size: int) -> Batch:
        """B transitions from every task's own buffer: (T, B, ...)."""
        idx = torch.randint(0, self.size, (self.num_tasks, batch_size), device=self.device)
        return self._gather(self._task_index, idx)

    def sample_from(self, sources: Tensor) -> Batch:
        """One transition per entry of `sources` (T, S): row i holds the task buffers to draw from."""
        idx = torch.randint(0, self.size, sources.shape, device=self.device)
        return self._gather(sources, idx)

    def _gather(self, tasks: Tensor, idx: Tensor) -> Batch:
        """Each drawn row and its successor row in one index_select of the flat (capacity * T, width) view
        (5x faster than indexing the 3-d tensor), then the few rows with a final take s' from the store."""
        f, t = self.fields, self.num_tasks
        flat = (idx * t + tasks).reshape(-1)
        width = self.data.shape[-1]
        both = self.data.view(-1, width).index_select(0, torch.cat([flat, flat + t]) % (self.capacity * t))
        rows, successor = both.view(2, *idx.shape, width)
        code = rows[..., f["final"]]
        next_obs = successor[..., f["obs"]]
        ended = (code >= 0).nonzero(as_tuple=True)  # on a GPU this waits for the device (one sync per sample)
        if len(ended[0]):
            next_obs[ended] = self.finals[code[ended].long() % len(self.finals), tasks.expand_as(idx)[ended]]
        return Batch(rows[..., f["obs"]], rows[..., f["act"]], rows[..., f["rew"]], next_obs,
                     rows[..., f["terminated"]])

    def state_dict(self) -> dict:
        """The filled rows in their ring positions and the side store. On the CPU these are views of the
        live buffer (no copy): serialise the result before the buffer changes again."""
        n = self.size
        if self.device.type == "cpu":
            prefix = torch.from_numpy(self.data.numpy()[:n])  # a tensor whose storage is exactly these rows
        else:
            prefix = self.data[:n].cpu()
        return {"size": n, "ptr": self.ptr, "capacity": self.capacity, "layout": LAYOUT,
                "data": {key: prefix[:, :, sl] for key, sl in self.fields.items()},
                "finals": self.finals.cpu(),
                "final_ids": {"head": self.final_head.tolist(), "next": self.final_next.tolist()}}

    def load_state_dict(self, state: dict) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"replay buffer capacity {state['capacity']} in the checkpoint "
                             f"!= {self.capacity} requested")
        if state.get("layout") != LAYOUT:
            raise ValueError(f"replay buffer layout {state.get('layout', 'task-major')!r} "
                             f"is not this code's {LAYOUT!r}")
        n = state["size"]
        for key, sl in self.fields.items():
            self.data[:n, :, sl] = state["data"][key].to(self.device)
        self.finals = state["finals"].to(self.device, copy=True)
        self.final_head = np.array(state["final_ids"]["head"], np.int64)
        self.final_next = np.array(state["final_ids"]["next"], np.int64)
        self.size, self.ptr = n, state["ptr"]
