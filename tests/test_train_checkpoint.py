"""Checkpoint files: atomic writes, newest-loadable resume, per-rank replay state under DDP."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from repro.core.replay import ReplayBuffer
from repro.train import checkpoint as ckpt


def test_save_keeps_the_newest_and_leaves_no_temp_files(tmp_path: Path) -> None:
    for step in (3, 7, 11):
        ckpt.save(tmp_path, step, {"step": step, "w": torch.full((2,), float(step))}, keep=2)
    assert [p.name for p in ckpt.checkpoints(tmp_path)] == ["checkpoint-000000011.pt", "checkpoint-000000007.pt"]
    assert not list(tmp_path.glob(".checkpoint-*"))
    assert ckpt.load_latest(tmp_path)["step"] == 11  # type: ignore[index]


def test_corrupt_newest_is_reported_and_the_previous_loaded(tmp_path: Path) -> None:
    ckpt.save(tmp_path, 1, {"step": 1}, keep=2)
    newest = ckpt.save(tmp_path, 2, {"step": 2}, keep=2)
    newest.write_bytes(b"not a zip file")
    warnings: list[str] = []
    assert ckpt.load_latest(tmp_path, warn=warnings.append) == {"step": 1}
    assert len(warnings) == 1 and str(newest) in warnings[0] and "falling back" in warnings[0]


def test_per_rank_replay_state_round_trips_and_is_pruned(tmp_path: Path) -> None:
    buffers = {}
    for rank in (1, 2):
        buf = ReplayBuffer(capacity=2, n_replay=1, seed=0)
        for i in range(3):
            buf.next(lambda i=i, rank=rank: (torch.full((2, 3), float(10 * rank + i)), torch.tensor([rank, i])))
        buffers[rank] = buf
        for step in (4, 8, 12):
            ckpt.save_rank(tmp_path, step, rank, {"replay": buf.state_dict()}, keep=2)
    assert sorted(p.name for p in tmp_path.glob("rank*.pt")) == [
        "rank1-000000008.pt", "rank1-000000012.pt", "rank2-000000008.pt", "rank2-000000012.pt"]
    restored = ReplayBuffer(capacity=2, n_replay=1, seed=5)
    restored.load_state_dict(ckpt.load_rank(tmp_path, 12, 2)["replay"])
    assert len(restored) == 2
    for _ in range(4):  # same contents, same sampling RNG, same pending count -> same batches
        a, fresh_a = restored.next(lambda: (torch.zeros(2, 3), torch.tensor([0, 0])))
        b, fresh_b = buffers[2].next(lambda: (torch.zeros(2, 3), torch.tensor([0, 0])))
        assert fresh_a == fresh_b and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    with pytest.raises(RuntimeError, match="rank 1's state for checkpoint step 4"):
        ckpt.load_rank(tmp_path, 4, 1)
