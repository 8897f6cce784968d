"""Row balancing (sparsa.sw.eie.balance): hidden units renumbered so that every PE holds the
same work, outputs unchanged bit for bit, fewer cycles on the generated array."""

import numpy as np
import pytest

from sparsa.hw.eie.top import EIEArray
from sparsa.sw.eie.balance import balance_rows, balanced_row_order, busiest_pe_nonzeros
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.eie.pack import Pack

from amaranth_streams import run_array
from eie_cases import hw_config, independent_golden, pack_from_indices, random_codebook, random_input


def _per_pe(row_nnz, order, pes):
    """Nonzeros and rows per PE, counted row by row (no bincount): row r goes to PE
    order[r] % pes."""
    nnz, rows = [0] * pes, [0] * pes
    for r, n in enumerate(row_nnz):
        nnz[order[r] % pes] += int(n)
        rows[order[r] % pes] += 1
    return nnz, rows


def test_two_heavy_rows_on_one_pe_are_split_between_the_pes():
    # Rows 0 and 2 (both PE 0 when interleaved over 2 PEs) hold 10 nonzeros, rows 1 and 3 one.
    row_nnz = [10, 1, 10, 1]
    order = balanced_row_order(row_nnz, 2)
    assert sorted(order) == [0, 1, 2, 3]
    assert _per_pe(row_nnz, order, 2) == ([11, 11], [2, 2])
    assert busiest_pe_nonzeros(row_nnz, 2) == 20 and busiest_pe_nonzeros(row_nnz, 2, order) == 11


def test_a_balanced_layout_is_kept_as_it_is():
    assert list(balanced_row_order([3, 3, 3, 3, 3], 2)) == [0, 1, 2, 3, 4]


@pytest.mark.parametrize("rows, pes", [(1000, 64), (37, 4), (3, 8), (64, 64)])
def test_order_is_a_permutation_keeping_each_pes_row_count_and_never_worse(rows, pes):
    seed = rows + pes
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    for trial in range(5):
        row_nnz = rng.poisson(rng.uniform(1, 400), rows) * (rng.random(rows) < 0.9)
        order = balanced_row_order(row_nnz, pes)
        assert sorted(order.tolist()) == list(range(rows))
        before_nnz, before_rows = _per_pe(row_nnz, np.arange(rows), pes)
        after_nnz, after_rows = _per_pe(row_nnz, order, pes)
        assert after_rows == before_rows
        assert max(after_nnz) <= max(before_nnz)


def _skewed_mlp(rng, pes=4):
    """A 16-32-8 MLP whose first layer puts all its heavy rows on PE 0 (rows 0, 4, 8, ...)."""
    h, n_in, n_out = 32, 16, 8
    dens = np.where(np.arange(h) % pes == 0, 0.9, 0.1)[:, None]
    idx0 = ((rng.random((h, n_in)) < dens) * rng.integers(1, 16, (h, n_in))).astype(np.uint8)
    idx1 = ((rng.random((n_out, h)) < 0.4) * rng.integers(1, 16, (n_out, h))).astype(np.uint8)
    biases = [rng.integers(-3000, 3000, h), rng.integers(-3000, 3000, n_out)]
    return pack_from_indices([idx0, idx1], [random_codebook(rng), random_codebook(rng)], pes,
                             biases=biases, shifts=[8, 8], relus=[True, False])


def test_balanced_pack_gives_the_same_outputs_bit_for_bit():
    seed = 61
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = _skewed_mlp(rng)
    balanced, report = balance_rows(pack)
    x = random_input(16, rng, batch=50)
    np.testing.assert_array_equal(balanced.run_golden(x), pack.run_golden(x))
    np.testing.assert_array_equal(balanced.run_golden(x), independent_golden(pack, x))
    # Hidden layer balanced, output layer's rows untouched (its columns follow the hidden units).
    assert [r["hidden"] for r in report] == [True, False]
    assert report[0]["busiest_after"] < report[0]["busiest_before"]
    assert report[0]["busiest_after"] == max(balanced.layers[0].real_per_pe)
    assert report[0]["busiest_before"] == max(pack.layers[0].real_per_pe)
    np.testing.assert_array_equal(balanced.layers[1].weight().sum(axis=1), pack.layers[1].weight().sum(axis=1))


def test_an_lstm_pack_is_refused():
    with pytest.raises(ValueError, match="LSTM"):
        balance_rows(Pack(pes=1, layers=[], lstm={"inputs": 1, "outputs": 1}))


def _array_cycles(pack, x):
    """(outputs, cycles from start to the last output) of the pure-Python simulated array."""
    dut = EIEArray(hw_config(pack.pes).replace(macs=1), build_memory_map(pack))
    got, cycles = run_array(dut, x, len(pack.layers), pack.output_rows)
    return np.array(got), cycles


def test_balanced_pack_runs_bit_exact_and_faster_on_the_array():
    seed = 62
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = _skewed_mlp(rng)
    balanced, report = balance_rows(pack)
    x = random_input(16, rng, batch=1)[0]
    x[x == 0] = 7                          # every column active: the work is the nonzeros
    y0, c0 = _array_cycles(pack, x)
    y1, c1 = _array_cycles(balanced, x)
    want = independent_golden(pack, x)
    np.testing.assert_array_equal(y0, want)
    np.testing.assert_array_equal(y1, want)
    print(f"cycles: interleaved {c0}, balanced {c1}; busiest PE {report[0]['busiest_before']} -> "
          f"{report[0]['busiest_after']} nonzeros")
    # The first layer's busiest PE is the bound, one entry a cycle: the saving is at least most
    # of the drop in its nonzeros (pipeline and the second layer are the same in both).
    assert c0 - c1 >= 0.8 * (report[0]["busiest_before"] - report[0]["busiest_after"])
