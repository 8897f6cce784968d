"""The EIE format (sw/eie/format.py): entries, padding, pointers, words, against a loop reference."""

import numpy as np
import pytest

from sparsa.sw.eie import format as ef
from sparsa.sw.eie.format import (decode_layer, encode_layer, encode_layer_coo, entries_to_words,
                                  pointer_banks, pointer_bits_for, words_to_entries)


def reference_encode(index, pes):
    """Plain-Python EIE encoder, written from the paper's description (no numpy tricks)."""
    rows, cols = index.shape
    out = []
    for k in range(pes):
        ptr, v, z = [0], [], []
        local = [[int(index[r, j]) for j in range(cols)] for r in range(k, rows, pes)]
        for j in range(cols):
            zeros = 0
            for row in local:
                if row[j] == 0:
                    zeros += 1
                    continue
                while zeros > 15:
                    v.append(0)
                    z.append(15)
                    zeros -= 16
                v.append(row[j])
                z.append(zeros)
                zeros = 0
            ptr.append(len(v))
        out.append((ptr, v, z))
    return out


def column(values):
    return np.asarray(values, dtype=np.uint8).reshape(-1, 1)


def test_issue_example_column():
    a, b, c = 3, 7, 12
    col = column([0, 0, a, b] + [0] * 18 + [c])
    (s,) = encode_layer(col, 1)
    assert s.v.tolist() == [a, b, 0, c]
    assert s.z.tolist() == [2, 0, 15, 2]
    assert s.ptr.tolist() == [0, 4]
    assert s.padding == 1


def test_gap_of_15_needs_no_padding():
    (s,) = encode_layer(column([0] * 15 + [5]), 1)
    assert s.v.tolist() == [5] and s.z.tolist() == [15]


def test_padding_entry_inserted_after_16_zeros():
    (s,) = encode_layer(column([0] * 16 + [5]), 1)
    assert s.v.tolist() == [0, 5] and s.z.tolist() == [15, 0]


def test_two_padding_entries_for_gap_over_31():
    (s,) = encode_layer(column([4] + [0] * 33 + [9]), 1)
    assert s.v.tolist() == [4, 0, 0, 9]
    assert s.z.tolist() == [0, 15, 15, 1]


def test_trailing_zeros_produce_no_entries():
    (s,) = encode_layer(column([1] + [0] * 40), 1)
    assert s.v.tolist() == [1] and s.z.tolist() == [0]


def test_empty_columns_have_equal_pointers():
    index = np.zeros((6, 4), dtype=np.uint8)
    index[2, 1] = 3
    (s,) = encode_layer(index, 1)
    assert s.ptr.tolist() == [0, 0, 1, 1, 1]


def test_all_zero_matrix_encodes_to_nothing():
    slices = encode_layer(np.zeros((5, 3), dtype=np.uint8), 2)
    assert all(s.entries == 0 and s.ptr.tolist() == [0, 0, 0, 0] for s in slices)
    assert decode_layer(slices, 5, 3).sum() == 0


def test_rows_interleave_over_pes_when_n_does_not_divide_rows():
    index = np.arange(1, 8, dtype=np.uint8).reshape(7, 1)     # rows 0..6 hold 1..7
    slices = encode_layer(index, 3)
    assert [s.v.tolist() for s in slices] == [[1, 4, 7], [2, 5], [3, 6]]
    assert [ef.rows_of_pe(7, 3, k) for k in range(3)] == [3, 2, 2]


def test_more_pes_than_rows_leaves_idle_pes():
    slices = encode_layer(np.ones((2, 3), dtype=np.uint8), 5)
    assert [s.entries for s in slices] == [3, 3, 0, 0, 0]


def test_gaps_are_counted_in_local_rows():
    # PE 1 of 2 owns rows 1, 3, 5, ...: global row 41 is its local row 20, a gap of 20.
    index = np.zeros((42, 1), dtype=np.uint8)
    index[41, 0] = 2
    s = encode_layer(index, 2)[1]
    assert s.v.tolist() == [0, 2] and s.z.tolist() == [15, 4]


@pytest.mark.parametrize("pes", [1, 2, 3, 7, 16])
def test_matches_loop_reference_on_random_matrices(pes):
    seed = 1000 + pes
    print("seed", seed)
    rng = np.random.default_rng(seed)
    index = (rng.random((53, 9)) < 0.08) * rng.integers(1, 16, (53, 9))
    got = encode_layer(index, pes)
    for s, (ptr, v, z) in zip(got, reference_encode(index, pes)):
        assert s.ptr.tolist() == ptr and s.v.tolist() == v and s.z.tolist() == z
    assert np.array_equal(decode_layer(got, 53, 9), index)


def test_coordinate_order_does_not_matter():
    rng = np.random.default_rng(7)
    print("seed", 7)
    index = (rng.random((40, 12)) < 0.2) * rng.integers(1, 16, (40, 12))
    i, j = np.nonzero(index)
    perm = rng.permutation(i.size)
    a = encode_layer_coo(40, 12, i, j, index[i, j], 3)
    b = encode_layer_coo(40, 12, i[perm], j[perm], index[i, j][perm], 3)
    for x, y in zip(a, b):
        assert np.array_equal(x.ptr, y.ptr) and np.array_equal(x.v, y.v) and np.array_equal(x.z, y.z)


def test_encode_rejects_index_zero_or_above_15():
    with pytest.raises(ValueError):
        encode_layer_coo(2, 2, [0], [0], [0], 1)
    with pytest.raises(ValueError):
        encode_layer_coo(2, 2, [0], [0], [16], 1)


def test_entry_byte_and_word_layout():
    v = np.array([1, 2, 3, 4, 5, 6, 7, 8, 9], dtype=np.uint8)
    z = np.array([0, 1, 2, 3, 4, 5, 6, 7, 15], dtype=np.uint8)
    words = entries_to_words(v, z)
    assert words.dtype == np.uint64 and words.size == 2
    # entry 0 in bits [7:0] (z high nibble, v low nibble), entry 7 in bits [63:56]
    assert int(words[0]) == 0x7867564534231201
    assert [(int(words[0]) >> (8 * e)) & 0xFF for e in range(8)] == [(z[e] << 4) | v[e] for e in range(8)]
    assert int(words[1]) == 0xF9                                   # unused tail lanes are zero
    back_v, back_z = words_to_entries(words, 9)
    assert back_v.tolist() == v.tolist() and back_z.tolist() == z.tolist()


def test_pointer_banks_split_even_and_odd():
    even, odd = pointer_banks(np.array([0, 3, 3, 8, 10]))
    assert even.tolist() == [0, 3, 10] and odd.tolist() == [3, 8]


def test_pointer_bits_grow_beyond_16_only_when_needed():
    assert pointer_bits_for(0) == 16
    assert pointer_bits_for(65535) == 16
    assert pointer_bits_for(65536) == 17
