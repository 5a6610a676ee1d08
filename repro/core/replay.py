"""Replay buffer (Sec. 5.3, Table 14): reuse recently pre-processed mini-batches to cut data-loading load.

"Once a newly pre-processed mini-batch of data is produced, we put it into the buffer, while if a pre-defined
maximum size is reached, we remove the oldest data. [...] we alternately execute the following two steps:
1) sampling mini-batches from the replay buffer for n_buffer times, and 2) producing a new mini-batch of
training data, feeding it into the model for training, and updating the replay buffer with it." The
pre-processing load drops by ``n_buffer + 1``; the number of training steps and the compute do not change.

:meth:`ReplayBuffer.next` is step-wise: each call returns the batch for one training step (a fresh one, then
``n_replay`` replays sampled uniformly from the FIFO), so the whole position -- contents, sampling RNG and
how many replays are still owed -- is in :meth:`state_dict` and a resumed run continues exactly (the official
release keeps the buffer in process memory and loses it at every stage restart).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any

import torch

from repro.errors import UserError

Batch = tuple[torch.Tensor, ...]


def _nbytes(batch: Batch) -> int:
    return sum(t.element_size() * t.nelement() for t in batch)


class ReplayBuffer:
    """FIFO of recent mini-batches, bounded by ``capacity`` batches and optionally ``max_bytes``.

    Batches are stored detached on the CPU (tensors are cloned so later in-place changes cannot alter them).
    ``n_replay = 0`` turns replay off: every call returns a fresh batch and nothing is stored.
    """

    def __init__(self, capacity: int, n_replay: int, seed: int = 0, max_bytes: int | None = None) -> None:
        if n_replay < 0:
            raise UserError(f"n_replay must be >= 0, got {n_replay}")
        if n_replay > 0 and capacity < 1:
            raise UserError(f"a replay buffer needs capacity >= 1 batch, got {capacity}")
        if max_bytes is not None and max_bytes <= 0:
            raise UserError(f"max_bytes must be positive, got {max_bytes}")
        self.capacity = capacity
        self.n_replay = n_replay
        self.max_bytes = max_bytes
        self._items: deque[Batch] = deque()
        self._bytes = 0
        self._pending = 0  # replays still owed before the next fresh batch
        self._generator = torch.Generator().manual_seed(seed)
        self.fresh_batches = 0
        self.replayed_batches = 0

    def __len__(self) -> int:
        return len(self._items)

    @property
    def nbytes(self) -> int:
        return self._bytes

    def push(self, batch: Batch) -> None:
        """Store a copy of ``batch``, evicting the oldest batches past the size bounds."""
        if self.n_replay == 0:
            return
        item = tuple(t.detach().to("cpu", copy=True) for t in batch)
        self._items.append(item)
        self._bytes += _nbytes(item)
        while len(self._items) > self.capacity or (
            self.max_bytes is not None and self._bytes > self.max_bytes and len(self._items) > 1
        ):
            self._bytes -= _nbytes(self._items.popleft())

    def sample(self) -> Batch:
        if not self._items:
            raise RuntimeError("replay buffer is empty")
        index = int(torch.randint(len(self._items), (1,), generator=self._generator))
        return self._items[index]

    def next(self, fetch_fresh: Callable[[], Batch]) -> tuple[Batch, bool]:
        """The batch for the next training step and whether it is fresh (True) or replayed (False)."""
        if self._pending > 0 and self._items:
            self._pending -= 1
            self.replayed_batches += 1
            return self.sample(), False
        batch = fetch_fresh()
        self.push(batch)
        self._pending = self.n_replay
        self.fresh_batches += 1
        return batch, True

    def state_dict(self) -> dict[str, Any]:
        return {
            "capacity": self.capacity,
            "n_replay": self.n_replay,
            "max_bytes": self.max_bytes,
            "items": [list(item) for item in self._items],
            "pending": self._pending,
            "generator": self._generator.get_state(),
            "fresh_batches": self.fresh_batches,
            "replayed_batches": self.replayed_batches,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.capacity = int(state["capacity"])
        self.n_replay = int(state["n_replay"])
        self.max_bytes = state["max_bytes"]
        self._items = deque(tuple(item) for item in state["items"])
        self._bytes = sum(_nbytes(item) for item in self._items)
        self._pending = int(state["pending"])
        self._generator.set_state(state["generator"])
        self.fresh_batches = int(state["fresh_batches"])
        self.replayed_batches = int(state["replayed_batches"])
