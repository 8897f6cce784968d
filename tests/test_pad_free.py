"""Padding-free pruning (sparsa.sw.compress.prune.fill_padding): no padding entries, same balance.

The padding a mask needs is counted by the format's own encoder (sparsa.sw.eie.format).
"""

import numpy as np
import pytest

from sparsa.sw.eie.format import PAD_SPAN, encode_layer
from sparsa.sw.compress.prune import balanced_mask, fill_padding, pe_counts


def _encoded_padding(mask, pes):
    """Padding entries of ``mask`` as stored on ``pes`` PEs (the encoder's count)."""
    return sum(s.padding for s in encode_layer(mask.astype(np.uint8), pes))


@pytest.mark.parametrize("pes", [1, 3, 8])
@pytest.mark.parametrize("density", [0.03, 0.112, 0.3])
def test_fill_padding_leaves_no_padding_and_the_same_count_per_pe(pes, density):
    seed = 500 + pes + int(density * 1000)
    print(f"seed={seed}")
    w = np.random.default_rng(seed).normal(size=(200, 60))
    mask = balanced_mask(w, density, pes)
    filled = fill_padding(w, mask, pes)
    assert _encoded_padding(mask, pes) > 0          # the case is not trivial
    assert _encoded_padding(filled, pes) == 0
    assert np.array_equal(pe_counts(filled, pes), pe_counts(mask, pes))
    assert not (filled & (w == 0)).any()


def test_bridge_takes_the_largest_weight_its_gap_allows_and_the_smallest_removable_goes():
    # One PE. Column 0 keeps rows 0 and 30: 29 zero rows between them cost one padding entry.
    # The bridge must be within 16 rows of row 0 and close enough to reach row 30 in one step
    # (rows 14..16); row 15 holds the largest weight there. Row 5's larger weight is out of
    # reach of a single bridge, so it stays pruned.
    assert PAD_SPAN == 16
    w = np.full((40, 2), 0.01)
    w[0, 0], w[30, 0], w[5, 0], w[14, 0], w[15, 0], w[16, 0] = 10, 9, 0.8, 0.2, 0.3, 0.1
    # Column 1 keeps rows 0..3; row 3 (the column's last entry) is the smallest kept weight.
    w[:4, 1] = [7, 6, 5, 0.5]
    mask = np.zeros(w.shape, dtype=bool)
    mask[[0, 30], 0] = True
    mask[:4, 1] = True
    filled = fill_padding(w, mask, 1)
    want = mask.copy()
    want[15, 0] = True
    want[3, 1] = False
    assert np.array_equal(filled, want)


def test_interior_weight_whose_removal_opens_a_gap_is_kept():
    # The smallest kept weight (row 10) sits between rows 0 and 20: without it the gap is 19
    # rows, so it may not go; the next smallest removable one does (row 22, its column's last).
    w = np.zeros((30, 1))
    w[[0, 10, 20, 22], 0] = [5, 0.1, 4, 0.2]
    mask = w != 0
    # Add a gap that needs a bridge: a second column kept at rows 0 and 25, a weight at row 12.
    w = np.hstack([w, np.zeros((30, 1))])
    w[[0, 12, 25], 1] = [3, 0.05, 2]
    mask = np.hstack([mask, np.zeros((30, 1), dtype=bool)])
    mask[[0, 25], 1] = True
    filled = fill_padding(w, mask, 1)
    assert filled[10, 0] and not filled[22, 0] and filled[12, 1]
    assert filled.sum() == mask.sum()


def test_a_window_of_exact_zeros_keeps_its_padding():
    # Rows 0..39 of the column are exactly zero: nothing can bridge them, the two padding
    # entries stay and no weight is dropped.
    w = np.zeros((50, 2))
    w[40, 0] = 1.0
    w[:, 1] = np.linspace(1, 2, 50)
    mask = np.zeros(w.shape, dtype=bool)
    mask[40, 0] = True
    mask[:10, 1] = True
    filled = fill_padding(w, mask, 1)
    assert np.array_equal(filled, mask)
    assert _encoded_padding(filled, 1) == 2


def test_weight_whose_removal_leaves_a_gap_of_exactly_16_rows_may_go():
    # A gap of 16 rows (15 zero rows: the largest 4-bit count) needs no padding, so the
    # smallest kept weight, row 8 of column 0 between rows 0 and 16, may be dropped.
    # Column 1 (kept at rows 0 and 25) gets a bridge at row 12, so one weight must go.
    assert PAD_SPAN == 16
    w = np.zeros((30, 2))
    w[[0, 8, 16], 0] = [5, 0.1, 4]
    w[[0, 12, 25], 1] = [3, 0.05, 2]
    mask = np.zeros(w.shape, dtype=bool)
    mask[[0, 8, 16], 0] = True
    mask[[0, 25], 1] = True
    filled = fill_padding(w, mask, 1)
    want = mask.copy()
    want[12, 1] = True
    want[8, 0] = False
    assert np.array_equal(filled, want)
    assert _encoded_padding(filled, 1) == 0
