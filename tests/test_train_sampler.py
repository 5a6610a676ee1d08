"""The streaming key sampler: the same (index, B, m, seed) keys in the same order as building the whole stage's
list up front (replay, DDP slicing, resume mid-stage), and O(1) start-up / small memory on a 10^8-sample stage."""

from __future__ import annotations

import time
import tracemalloc

import pytest
import torch

from repro.train.engine import KeySampler, Stream, _sample_seed


def upfront_keys(n: int, seed: int, position: int, step: int, end: int, batch_size: int, resolution: int,
                 n_rep: int, magnitude, rank: int, world: int) -> list[list[tuple[int, int, float, int]]]:
    """The previous algorithm, verbatim: every key of the stage built before the first step."""
    cache: dict[int, torch.Tensor] = {}

    def index(p: int) -> int:
        epoch, offset = divmod(p, n)
        if epoch not in cache:
            cache.clear()
            cache[epoch] = torch.randperm(n, generator=torch.Generator().manual_seed(seed + epoch))
        return int(cache[epoch][offset])

    batches = []
    while step < end:
        m = magnitude(step)
        keys = [(index(p), resolution, m, _sample_seed(seed, p)) for p in range(position, position + batch_size)]
        batches.append(keys[rank::world])
        position += batch_size
        step += n_rep + 1
    return batches


@pytest.mark.parametrize(
    ("n", "position", "step", "end", "batch_size", "n_rep", "rank", "world"),
    [
        (50, 0, 0, 7, 16, 0, 0, 1),  # several epochs, batches straddling epoch boundaries
        (50, 0, 0, 9, 16, 2, 0, 1),  # replay: a fresh batch every third step
        (50, 0, 1, 9, 16, 2, 0, 1),  # resumed with one replay still owed
        (37, 0, 0, 11, 12, 0, 1, 4),  # DDP rank 1 of 4, odd data set size
        (37, 0, 0, 11, 12, 0, 3, 4),
        (37, 0, 0, 10, 10, 1, 1, 2),  # DDP with replay
        (50, 83, 5, 12, 16, 0, 0, 1),  # resumed mid-stage at a stream position inside epoch 1
        (50, 83, 6, 13, 16, 1, 1, 2),
        (50, 0, 4, 4, 16, 0, 0, 1),  # nothing left
    ],
)
def test_streaming_keys_equal_the_upfront_keys(n, position, step, end, batch_size, n_rep, rank, world):
    def magnitude(s: int) -> float:
        return 0.25 * s

    expected = upfront_keys(n, 7, position, step, end, batch_size, 40, n_rep, magnitude, rank, world)
    sampler = KeySampler(Stream(n, 7), position=position, first_step=step, end_step=end, batch_size=batch_size,
                         resolution=40, n_replay=n_rep, seed=7, magnitude=magnitude, rank=rank, world=world)
    assert len(sampler) == len(expected)
    assert list(sampler) == expected
    assert list(sampler) == expected  # iterable again (a DataLoader may restart it)


def test_a_stage_of_1e8_samples_starts_at_once_in_little_memory():
    """The up-front list took ~8.5 us and ~144 bytes per key: ~15 min and ~14 GB for this stage."""
    batch_size = 1024
    steps = 10**8 // batch_size
    tracemalloc.start()
    t0 = time.perf_counter()
    sampler = KeySampler(Stream(1_281_167, 0), position=0, first_step=0, end_step=steps, batch_size=batch_size,
                         resolution=96, n_replay=0, seed=0, magnitude=lambda s: 9.0 * s / steps)
    first = next(iter(sampler))
    elapsed = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert len(sampler) == steps and len(first) == batch_size
    assert elapsed < 1.0
    assert peak < 2 * 2**20  # Python-side; the cached epoch permutation is one 10 MB tensor
