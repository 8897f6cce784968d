"""Column alignment (sw/eie/align.py): a column moved to the next word only when that saves a
word fetch and its first lanes hold less than a full step, the real entries and their rows unchanged, and the aligned layout bit-exact on the
array with the padding counter counting the fill."""

import numpy as np
import pytest

from sparsa.sw.eie import format as ef
from sparsa.sw.eie.align import MAX_FILL, align_columns, aligned_slice
from sparsa.sw.errors import UserError

W = ef.ENTRIES_PER_WORD


def _slice(columns):
    """A slice from one string a column: ``R`` a real entry (v 1..15), ``P`` padding (v 0),
    each entry with a z of its own (its index mod 16) so that it can be recognised."""
    kinds = "".join(columns)
    n = len(kinds)
    ptr = np.concatenate([[0], np.cumsum([len(c) for c in columns])]).astype(np.int64)
    v = np.array([0 if k == "P" else 1 + e % 15 for e, k in enumerate(kinds)], dtype=np.uint8)
    return ef.PESlice(ptr=ptr, v=v, z=(np.arange(n) % 16).astype(np.uint8))


def test_hand_made_columns():
    # With 2 fill lanes at most:
    #   col 0 at 0 (6 entries, ends at 6);
    #   col 1 "PPR" at lane 6 would take two words, one from a word's start, and lanes 6-7
    #   would hold none of its real entries: 2 lanes filled, at 8, ends at 11;
    #   col 2 is empty and points where col 3 starts;
    #   col 3 (4) at lane 3 fits in its word (lanes 3-6): stays at 11, ends at 15;
    #   col 4 (10) at lane 7: 3 words from there, 2 from a start, one real entry in lane 7:
    #   1 lane filled, at 16.
    sl = _slice(["RRRRRR", "PPR", "", "RRPR", "RRRRRRRRRR"])
    al = aligned_slice(sl, 2)
    assert al.ptr.tolist() == [0, 8, 11, 11, 16, 26]
    fill = [6, 7, 15]
    assert al.v[fill].tolist() == [0, 0, 0] and al.z[fill].tolist() == [0, 0, 0]
    keep = [e for e in range(26) if e not in fill]
    assert al.v[keep].tolist() == sl.v.tolist() and al.z[keep].tolist() == sl.z.tolist()
    # One fill lane at most: col 1 has 2 left, col 3 7 and col 4 (at 13) 3: nothing moves.
    assert aligned_slice(sl, 1).ptr.tolist() == sl.ptr.tolist()
    # Columns of 3 and 6: the 6 at lane 3 would cross into a second word; 5 lanes are left,
    # holding one real entry of it.
    sl = _slice(["RRR", "PPPPRR"])
    assert aligned_slice(sl, 4).ptr.tolist() == [0, 3, 9]
    assert aligned_slice(sl, 5).ptr.tolist() == [0, 8, 14]


def test_a_column_whose_first_lanes_hold_a_full_step_stays():
    # "PRR..." at lane 5: its 3 lanes there would hold 2 real entries, a full step of the
    # two-multiplier reader: it stays. With a padding entry more in front, it moves.
    assert aligned_slice(_slice(["RRRRR", "PRRR"]), MAX_FILL).ptr.tolist() == [0, 5, 9]
    assert aligned_slice(_slice(["RRRRR", "PPRR"]), MAX_FILL).ptr.tolist() == [0, 8, 12]


def test_a_column_that_cannot_save_a_word_stays():
    # 9 entries at lane 6: 2 words from here, 2 from a word's start: no fill whatever the budget.
    sl = _slice(["R" * 6, "P" * 9])
    assert aligned_slice(sl, MAX_FILL).ptr.tolist() == [0, 6, 15]
    # A column at a word's start never moves; nor does the first column.
    sl = _slice(["P" * 8, "PPR"])
    assert aligned_slice(sl, MAX_FILL).ptr.tolist() == [0, 8, 11]


def test_no_fill_is_the_encoders_layout():
    sl = _slice(["RRRRRR", "PPR", "", "RRPR", "R" * 10, "P", "PPPPPPR"])
    al = aligned_slice(sl, 0)
    assert al.ptr.tolist() == sl.ptr.tolist() and al.v.tolist() == sl.v.tolist() and al.z.tolist() == sl.z.tolist()


def test_empty_and_all_empty_slices():
    empty = ef.PESlice(ptr=np.zeros(5, np.int64), v=np.zeros(0, np.uint8), z=np.zeros(0, np.uint8))
    al = aligned_slice(empty, 3)
    assert al.ptr.tolist() == [0] * 5 and al.entries == 0


def _fetches(sl):
    """Words fetched for each non-empty column: from its first entry's word to its last's."""
    n = np.diff(sl.ptr)
    return [((int(a) % W) + int(c) - 1) // W + 1 for a, c in zip(sl.ptr[:-1], n) if c]


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("fill", [1, 3, MAX_FILL])
def test_random_layers_keep_every_entry_and_only_save_fetches(seed, fill):
    print("seed", seed)
    rng = np.random.default_rng(seed)
    rows, cols, pes = 300, 120, 4
    dense = (rng.random((rows, cols)) < 0.05) * rng.integers(1, 16, (rows, cols))
    slices = ef.encode_layer(dense, pes)
    aligned = [aligned_slice(s, fill) for s in slices]
    total_fetches = []
    # The same matrix, decoded from the new layout.
    assert np.array_equal(ef.decode_layer(aligned, rows, cols), dense)
    for s, a in zip(slices, aligned):
        n_old, n_new = np.diff(s.ptr), np.diff(a.ptr)
        added = n_new - n_old
        # Fill goes to a non-empty column (at its end), never more than `fill` lanes, and is (0, 0).
        assert added.min() >= 0 and added.max() <= fill and not np.any(added[n_old == 0])
        for j in np.flatnonzero(added):
            tail = slice(int(a.ptr[j + 1]) - int(added[j]), int(a.ptr[j + 1]))
            assert not a.v[tail].any() and not a.z[tail].any()
        # A column moves exactly when the lanes left are within budget, hold fewer than two of
        # its real entries, and it then takes fewer words; it moves to the next word's start.
        # (Moving one shifts the columns after it, so a column that stays may take more words
        # or fewer than before.)
        nonempty = np.flatnonzero(n_old)
        for prev, j in zip(nonempty[:-1], nonempty[1:]):
            c = int(n_old[j])
            natural = int(a.ptr[j]) - int(added[prev])        # where it would have started
            off = natural % W
            head = s.v[int(s.ptr[j]):int(s.ptr[j]) + W - off]    # its entries in the lanes left
            should = (off != 0 and W - off <= fill and (off + c - 1) // W > (c - 1) // W
                      and np.count_nonzero(head) < 2)
            assert bool(added[prev]) == should, (prev, j)
            if should:
                assert added[prev] == W - off and a.ptr[j] % W == 0
        total_fetches.append((sum(_fetches(s)), sum(_fetches(a))))
    print("words fetched by every column once, encoder -> aligned:", total_fetches)


def test_align_columns_reports_entries_and_words_and_keeps_outputs():
    from sparsa.bench.eie import make_layer_pack
    pack, x, _ = make_layer_pack(200, 256, 0.04, 0.5, 4, seed=11)
    aligned, (rep,) = align_columns(pack, 3)
    assert rep["entries_before"] == sum(pack.layers[0].entries_per_pe)
    assert rep["entries_after"] == sum(aligned.layers[0].entries_per_pe) > rep["entries_before"]
    assert rep["words_after"] == max(aligned.layers[0].words_per_pe) >= rep["words_before"]
    assert aligned.layers[0].nnz == pack.layers[0].nnz
    xs = np.random.default_rng(12).integers(-2000, 2000, (5, 200)).astype(np.int16)
    np.testing.assert_array_equal(aligned.run_golden(xs), pack.run_golden(xs))


@pytest.mark.parametrize("bad", [-1, 8, 2.5, True, "3"])
def test_fill_outside_its_range_is_a_user_error(bad):
    from sparsa.bench.eie import make_layer_pack
    pack, _, _ = make_layer_pack(20, 16, 0.2, 0.5, 2, seed=1)
    with pytest.raises(UserError, match=r"--align-columns.*0\.\.7"):
        align_columns(pack, bad)


def test_aligned_pack_is_written_and_read_back(tmp_path):
    from sparsa.bench.eie import make_layer_pack
    from sparsa.sw.eie.pack_dir import load_pack, write_pack
    pack, _, _ = make_layer_pack(200, 256, 0.04, 0.5, 4, seed=13)
    aligned, _ = align_columns(pack, MAX_FILL)
    write_pack(aligned, tmp_path / "pk")
    back = load_pack(tmp_path / "pk")
    for a, b in zip(aligned.layers[0].slices, back.layers[0].slices):
        assert a.ptr.tolist() == b.ptr.tolist() and a.v.tolist() == b.v.tolist() and a.z.tolist() == b.z.tolist()


@pytest.mark.xdist_group("eie_verilator_ideal")
@pytest.mark.parametrize("macs", [1, 2])
def test_aligned_layer_is_bit_exact_and_counts_its_fill_as_padding_on_verilator(macs):
    """The aligned layout on the array: the same outputs, and the ``pad`` counters count every
    v = 0 entry of the active columns (the fill with them). Two multipliers take fewer cycles
    than on the encoder's layout."""
    from eie_cases import hw_config
    from sparsa.bench.eie import _run, make_layer_pack
    from sparsa.hw.eie.pe import COUNTERS
    from sparsa.sw.eie.golden import layer_forward
    from sparsa.sw.eie.memmap import build_memory_map
    # 100 rows over 4 PEs at 10%: two or three entries a column a PE, the case alignment is for.
    plain, x, _ = make_layer_pack(90, 100, 0.1, 0.9, 4, seed=31)
    pack, _ = align_columns(plain, MAX_FILL)
    assert sum(pack.layers[0].entries_per_pe) > sum(plain.layers[0].entries_per_pe)
    cfg = hw_config(4).replace(macs=macs)
    res = _run(cfg, build_memory_map(pack), x)
    assert np.array_equal(res["y"], layer_forward(plain.golden_layers()[0], x))
    active = np.flatnonzero(x)
    for k, s in enumerate(pack.layers[0].slices):
        pads = sum(int(np.count_nonzero(s.v[s.ptr[j]:s.ptr[j + 1]] == 0)) for j in active)
        assert res["layer_stats"][0, 0, k, COUNTERS.index("pad")] == pads, k
    if macs == 2:
        before = int(_run(cfg, build_memory_map(plain), x)["cycles"][0])
        print(f"macs=2: {before} cycles on the encoder's layout, {int(res['cycles'][0])} aligned")
        assert int(res["cycles"][0]) < before
