"""The EIE golden model (sw/eie/golden.py) against an independent Python-integer computation."""

import numpy as np
import pytest

from sparsa.sw.eie.golden import GoldenLayer, layer_forward, run_layers
from sparsa.sw.eie.pack import pack_matrix


def bigint_layer(w, bias, shift, relu, x):
    """One layer with unbounded Python ints: exact sums, Python's >> (floors), saturation, ReLU."""
    out = []
    for i in range(len(w)):
        acc = int(bias[i]) + sum(int(w[i][j]) * int(x[j]) for j in range(len(x)))
        if shift > 0:
            acc = (acc + (1 << (shift - 1))) >> shift
        acc = max(-32768, min(32767, acc))
        if relu:
            acc = max(acc, 0)
        out.append(acc)
    return out


def check(w, bias, shift, relu, xs):
    layer = GoldenLayer.from_dense(w, bias, shift, relu)
    got = layer_forward(layer, np.asarray(xs, dtype=np.int16))
    assert got.dtype == np.int16
    want = [bigint_layer(w.tolist(), list(bias), shift, relu, x) for x in np.asarray(xs).tolist()]
    assert got.tolist() == want
    return got


@pytest.mark.parametrize("shift", [0, 1, 5, 17, 40, 62])
@pytest.mark.parametrize("relu", [False, True])
def test_matches_bigint_reference(shift, relu):
    seed = 300 + shift
    print("seed", seed)
    rng = np.random.default_rng(seed)
    w = ((rng.random((13, 11)) < 0.4) * rng.integers(-32768, 32768, (13, 11))).astype(np.int64)
    bias = rng.integers(-2**31, 2**31, 13)
    xs = rng.integers(-32768, 32768, (4, 11))
    check(w, bias, shift, relu, xs)


def test_saturates_high_and_low():
    w = np.array([[32767, 32767], [-32768, -32768]])
    got = check(w, [0, 0], 0, False, [[32767, 32767], [-32768, -32768]])
    assert got.tolist() == [[32767, -32768], [-32768, 32767]]


def test_saturation_after_shift_both_ways():
    w = np.array([[1], [1]])
    got = check(w, [2**31 - 1, -2**31], 8, False, [[0]])
    assert got.tolist() == [[32767, -32768]]


def test_shift_rounds_half_up_with_a_flooring_shift():
    # acc = -3, 3, -2, 2 with shift 1: (acc + 1) >> 1 = -1, 2, -1, 1
    w = np.array([[1], [1], [1], [1]])
    got = check(w, [-3, 3, -2, 2], 1, False, [[0]])
    assert got.tolist() == [[-1, 2, -1, 1]]


def test_large_shift_leaves_sign():
    w = np.array([[32767], [-32768]])
    got = check(w, [0, 0], 62, False, [[32767]])
    assert got.tolist() == [[0, 0]]


def test_relu_clamps_negatives_only():
    got = check(np.array([[1], [-1], [0]]), [0, 0, 5], 0, True, [[7]])
    assert got.tolist() == [[7, 0, 5]]


def test_exact_sum_needs_more_than_32_bits():
    cols = 64
    w = np.full((1, cols), -32768)
    got = check(w, [0], 20, False, [[-32768] * cols])      # 2**36 before the shift
    assert got.tolist() == [[32767]]


def test_two_layers_chain_through_packed_slices():
    seed = 99
    print("seed", seed)
    rng = np.random.default_rng(seed)
    w1 = (rng.random((9, 6)) < 0.5) * rng.choice([-300, 7, 90], (9, 6))
    w2 = (rng.random((4, 9)) < 0.5) * rng.choice([-2, 3, 500], (4, 9))
    b1, b2 = rng.integers(-1000, 1000, 9), rng.integers(-1000, 1000, 4)
    x = rng.integers(-2000, 2000, 6)
    h = bigint_layer(w1.tolist(), b1, 4, True, x.tolist())
    y = bigint_layer(w2.tolist(), b2, 3, False, h)
    p1, p2 = pack_matrix(w1, 4, b1, 4, True), pack_matrix(w2, 3, b2, 3, False)
    got = run_layers(p1.golden_layers() + p2.golden_layers(), x)
    assert got.tolist() == y
