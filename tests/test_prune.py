"""Magnitude pruning and ESE load-balance-aware pruning."""

import numpy as np
import pytest

from sparsa.sw.compress.prune import apply_mask, balanced_mask, keep_count, magnitude_mask, pe_counts

SEED = 1234


def test_density_is_exact_floor():
    print("seed", SEED)
    w = np.random.default_rng(SEED).normal(size=(37, 53))
    for d in (0.01, 0.1, 0.29, 0.5, 1.0):
        mask = magnitude_mask(w, d)
        assert mask.sum() == int(np.floor(d * w.size + 1e-9))
        # The kept weights are the largest: min kept >= max dropped.
        assert np.abs(w[mask]).min() >= np.abs(w[~mask]).max(initial=0)


def test_keep_count_absorbs_float_rounding():
    assert keep_count(100, 0.29) == 29          # 0.29 * 100 == 28.999999999999996
    assert keep_count(10, 0.05) == 0


def test_ties_broken_by_position():
    w = np.ones((2, 3))
    assert np.array_equal(magnitude_mask(w, 0.5), [[True, True, True], [False, False, False]])


def test_exact_zeros_are_never_kept():
    w = np.zeros((4, 4))
    w[0, 0] = 3.0
    assert magnitude_mask(w, 0.5).sum() == 1


def test_balanced_mask_equal_counts_per_pe():
    print("seed", SEED)
    rng = np.random.default_rng(SEED)
    # Rows grow with the PE index so plain magnitude pruning would be unbalanced.
    w = rng.normal(size=(30, 40)) * (1 + np.arange(30) % 4)[:, None]
    for pes in (1, 3, 4, 7):
        mask = balanced_mask(w, 0.1, pes)
        counts = pe_counts(mask, pes)
        assert mask.sum() == int(0.1 * w.size)
        assert counts.max() - counts.min() <= 1
    counts = pe_counts(magnitude_mask(w, 0.1), 4)
    assert counts.max() - counts.min() > 1       # the unbalanced baseline really is


def test_balanced_mask_prunes_each_pe_by_magnitude():
    w = np.random.default_rng(SEED).normal(size=(8, 10))
    mask = balanced_mask(w, 0.25, 2)
    for k in range(2):
        sub, m = np.abs(w[k::2]), mask[k::2]
        assert sub[m].min() >= sub[~m].max()


def test_apply_mask_in_place():
    w = np.arange(1.0, 5.0).reshape(2, 2)
    apply_mask(w, np.array([[True, False], [False, True]]), out=w)
    assert np.array_equal(w, [[1, 0], [0, 4]])


@pytest.mark.parametrize("density", [0.0, -0.1, 1.01])
def test_density_outside_range_rejected(density):
    with pytest.raises(ValueError):
        magnitude_mask(np.ones((2, 2)), density)


def test_balanced_pruning_with_more_pes_than_rows_keeps_the_density():
    # 10 rows on 16 PEs: PEs 10..15 own nothing; the 10 that own rows share the whole budget.
    seed = 77
    print(f"seed={seed}")
    w = np.random.default_rng(seed).normal(size=(10, 256))
    mask = balanced_mask(w, 0.1, 16)
    assert mask.sum() == int(0.1 * w.size)
    counts = pe_counts(mask, 16)
    assert counts[10:].sum() == 0 and counts[:10].max() - counts[:10].min() <= 1


def test_balanced_pruning_never_drops_weights_a_full_pe_cannot_hold():
    # 5 rows on 4 PEs: PE 0 owns 2 rows, the others 1. At density 1 nothing may be pruned;
    # at 0.9 the PEs that run out of weights hand their share to PE 0.
    w = np.random.default_rng(78).normal(size=(5, 100))
    assert balanced_mask(w, 1.0, 4).all()
    mask = balanced_mask(w, 0.9, 4)
    assert mask.sum() == int(0.9 * w.size)


def test_balanced_pruning_fills_the_small_pes_exactly_to_capacity():
    # 5 rows x 100 columns on 4 PEs: PE 0 owns rows 0 and 4 (200 weights), PEs 1..3 one row
    # each (100 weights). Budget floor(0.806 * 500) = 403. An even split would be
    # 101, 101, 101, 100, but PEs 1..3 can hold only 100: a share *equal* to a PE's capacity
    # fills it, so PEs 1..3 keep all 100 and PE 0 takes the other 403 - 300 = 103.
    seed = 79
    print(f"seed={seed}")
    w = np.random.default_rng(seed).normal(size=(5, 100))
    assert np.all(w != 0)
    mask = balanced_mask(w, 0.806, 4)
    assert mask.sum() == 403
    assert list(pe_counts(mask, 4)) == [103, 100, 100, 100]
    assert mask[1:4].all()
    # PE 0 keeps its 103 largest of rows 0 and 4.
    pe0 = np.abs(w[[0, 4]])
    assert pe0[mask[[0, 4]]].min() >= pe0[~mask[[0, 4]]].max()
