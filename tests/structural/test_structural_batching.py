"""`StructuralTrainConfig.batching`: "by_length" batches hold every snippet once per epoch, in
batches of similar lengths (sorted within each pool), seeded; "random" is the reference's cut of
one permutation; an unknown value is refused."""

from __future__ import annotations

import numpy as np
import pytest

from codeprobe.errors import InputError
from codeprobe.probes.structural import StructuralTrainConfig
from codeprobe.probes.structural.config import LENGTH_POOL_BATCHES
from codeprobe.probes.structural.training import epoch_batches


def test_by_length_batches_cover_every_snippet_once_with_little_padding():
    lengths = np.random.default_rng(0).integers(5, 300, size=1000)
    config = StructuralTrainConfig(batch_size=20, batching="by_length")
    batches = epoch_batches(lengths, config, np.random.default_rng(1))
    np.testing.assert_array_equal(np.sort(np.concatenate(batches)), np.arange(1000))
    assert all(b.size == 20 for b in batches)
    padded = sum(lengths[b].max() * b.size for b in batches) / lengths.sum()
    shuffled = epoch_batches(lengths, StructuralTrainConfig(batch_size=20), np.random.default_rng(1))
    padded_random = sum(lengths[b].max() * b.size for b in shuffled) / lengths.sum()
    assert padded < 1.2 < 1.5 < padded_random
    # within a pool the batches are cut from a sorted run: each one's lengths are sorted
    assert all((np.diff(lengths[b]) >= 0).all() for b in batches)
    again = epoch_batches(lengths, config, np.random.default_rng(1))
    assert all(np.array_equal(a, b) for a, b in zip(batches, again))
    assert LENGTH_POOL_BATCHES > 1


def test_random_batches_cut_one_permutation_in_order():
    lengths = np.arange(45)
    batches = epoch_batches(lengths, StructuralTrainConfig(batch_size=20), np.random.default_rng(3))
    np.testing.assert_array_equal(np.concatenate(batches), np.random.default_rng(3).permutation(45))
    assert [b.size for b in batches] == [20, 20, 5]


def test_an_unknown_batching_is_refused():
    with pytest.raises(InputError, match="batching"):
        StructuralTrainConfig(batching="sorted")
