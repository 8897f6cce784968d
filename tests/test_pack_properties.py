"""Property tests: unpack(pack(W)) == W for random shapes, densities and PE counts."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sparsa.sw.eie import format as ef
from sparsa.sw.eie.pack import pack_matrix, unpack
from sparsa.sw.eie.pack_dir import load_pack, write_pack


@st.composite
def matrices(draw, max_rows=80, max_cols=12):
    """An int16 matrix with <= 15 distinct nonzeros, a PE count and a seed.

    Densities down to 0 give empty columns and long gaps (> 15 and > 31 local rows);
    PE counts include 1, counts that do not divide the rows and counts above the rows.
    """
    rows = draw(st.integers(1, max_rows))
    cols = draw(st.integers(1, max_cols))
    pes = draw(st.sampled_from([1, 2, 3, 5, 7, 16, 100]))
    density = draw(st.sampled_from([0.0, 0.01, 0.05, 0.2, 0.6, 1.0]))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    values = rng.choice(np.arange(-32768, 32768), size=rng.integers(1, 16), replace=False)
    w = (rng.random((rows, cols)) < density) * rng.choice(values, (rows, cols))
    return w.astype(np.int16), pes, seed


@settings(max_examples=40, deadline=None)
@given(matrices())
def test_unpack_inverts_pack(case):
    w, pes, seed = case
    print("seed", seed)
    p = pack_matrix(w, pes)
    assert np.array_equal(unpack(p)["layer0.weight"], w)
    layer = p.layers[0]
    assert layer.nnz == np.count_nonzero(w)
    # padding appears exactly when a PE's column slice has a gap of 16+ local rows
    assert sum(layer.entries_per_pe) - sum(layer.padding_per_pe) == layer.nnz


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 300), st.sampled_from([1, 2, 3, 4, 7]), st.integers(0, 2**32 - 1))
def test_long_gaps_round_trip(rows, pes, seed):
    print("seed", seed)
    rng = np.random.default_rng(seed)
    w = np.zeros((rows, 3), np.int16)
    hits = rng.integers(0, rows, 3)
    w[hits, [0, 1, 2]] = [5, -5, 9]                    # about one nonzero per column: long gaps
    p = pack_matrix(w, pes)
    assert np.array_equal(unpack(p)["layer0.weight"], w)
    for s in p.layers[0].slices:
        assert np.all(s.z <= ef.PAD_Z) and np.all(s.z[s.v == 0] == ef.PAD_Z)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(matrices(max_rows=40, max_cols=6))
def test_round_trip_through_the_pack_directory(tmp_path, case):
    w, pes, seed = case
    print("seed", seed)
    rng = np.random.default_rng(seed)
    bias = rng.integers(-2**31, 2**31, w.shape[0])
    out = tmp_path / f"pk{seed}"
    write_pack(pack_matrix(w, pes, bias=bias, shift=int(rng.integers(0, 63))), out)
    back = unpack(load_pack(out))
    assert np.array_equal(back["layer0.weight"], w)
    assert np.array_equal(back["layer0.bias"], bias)
