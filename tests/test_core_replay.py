"""Replay buffer (Sec. 5.3, Table 14): FIFO bound, alternation, determinism, exact resume."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from repro.core.replay import ReplayBuffer
from repro.errors import UserError


def fresh_source():
    counter = itertools.count()

    def fetch():
        i = next(counter)
        return torch.full((2, 3), float(i)), torch.tensor([i, i])

    return fetch


def run(buffer: ReplayBuffer, fetch, steps: int) -> list[tuple[float, bool]]:
    out = []
    for _ in range(steps):
        (x, _y), fresh = buffer.next(fetch)
        out.append((float(x[0, 0]), fresh))
    return out


@given(n_replay=st.integers(0, 5), capacity=st.integers(1, 6), steps=st.integers(1, 60))
def test_alternation_and_fifo(n_replay, capacity, steps):
    buffer = ReplayBuffer(capacity=capacity, n_replay=n_replay, seed=0)
    trace = run(buffer, fresh_source(), steps)
    # one fresh batch, then n_replay replays, repeatedly: the loader is asked n_replay + 1 times less often
    assert [fresh for _, fresh in trace] == [(i % (n_replay + 1)) == 0 for i in range(steps)]
    assert len(buffer) == (0 if n_replay == 0 else min(capacity, buffer.fresh_batches))
    # a replay is one of the `capacity` most recent fresh batches
    newest = -1.0
    for value, fresh in trace:
        if fresh:
            newest = value
        else:
            assert newest - capacity < value <= newest


def test_memory_bound_in_bytes():
    buffer = ReplayBuffer(capacity=100, n_replay=1, max_bytes=3 * (6 * 4 + 2 * 8))  # three batches
    run(buffer, fresh_source(), 20)
    assert len(buffer) == 3 and buffer.nbytes <= 3 * 40


def test_stored_batches_are_copies():
    buffer = ReplayBuffer(capacity=2, n_replay=1)
    x, y = torch.zeros(2, 3), torch.zeros(2)
    buffer.next(lambda: (x, y))
    x.fill_(7.0)  # e.g. an in-place augmentation of the same tensor later on
    (replayed, _), fresh = buffer.next(lambda: (x, y))
    assert not fresh and float(replayed.sum()) == 0.0


def test_deterministic_under_seed():
    a = run(ReplayBuffer(4, 3, seed=1), fresh_source(), 40)
    b = run(ReplayBuffer(4, 3, seed=1), fresh_source(), 40)
    c = run(ReplayBuffer(4, 3, seed=2), fresh_source(), 40)
    assert a == b and a != c


@pytest.mark.parametrize("split", [1, 5, 7, 13])
def test_resume_from_state_dict_is_exact(split, tmp_path):
    """Interrupt after `split` steps, save through torch.save(weights_only-loadable), resume: same sequence."""
    reference = run(ReplayBuffer(3, 2, seed=5), fresh_source(), 30)

    fetch = fresh_source()
    first = ReplayBuffer(3, 2, seed=5)
    head = run(first, fetch, split)
    torch.save(first.state_dict(), tmp_path / "replay.pt")
    second = ReplayBuffer(1, 0)  # constructor arguments are overwritten by the state
    second.load_state_dict(torch.load(tmp_path / "replay.pt", weights_only=True))
    tail = run(second, fetch, 30 - split)
    assert head + tail == reference


def test_bad_arguments():
    with pytest.raises(UserError):
        ReplayBuffer(capacity=0, n_replay=1)
    with pytest.raises(UserError):
        ReplayBuffer(capacity=1, n_replay=-1)
