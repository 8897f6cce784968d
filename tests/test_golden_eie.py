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


def in_range_case(rng, shift, rows=16, cols=11, batch=8):
    """Weights, activations and bias scaled so ``acc >> shift`` mostly lands inside int16.

    The accumulator is aimed at about 2**(shift + 12): each term's magnitude bits are split
    between ``w`` and ``x`` (at most 15 each) and the bias is of the same order (at most 31
    bits). Rows 0..5 of the first input get *planted ties*: their bias moves the exact
    accumulator to ``q * 2**shift + 2**(shift - 1)`` (half an output LSB), with ``q``
    negative in rows 0..2 and positive in rows 3..5. Returns the ties as ``(row, q)``.
    """
    total = shift + 12
    bx = min(15, (total + 1) // 2)
    bw = min(15, total - bx)
    w = ((rng.random((rows, cols)) < 0.4) * rng.integers(-(1 << bw), 1 << bw, (rows, cols)))
    xs = rng.integers(-(1 << bx), 1 << bx, (batch, cols))
    bias = rng.integers(-(1 << min(31, total)), 1 << min(31, total), rows)
    ties = []
    if shift > 0:
        for i, (sign, j) in enumerate([(-1, -1), (-1, 0), (-1, 1), (1, -1), (1, 0), (1, 1)]):
            w[i, 0] = (1 << bw) - 1 if w[i, 0] == 0 else w[i, 0]     # a nonzero dot product
            xs[0, 0] = xs[0, 0] or 1
            dot = sum(int(a) * int(b) for a, b in zip(w[i].tolist(), xs[0].tolist()))
            if (dot > 0) != (sign > 0):
                w[i] = -w[i]
                dot = -dot
            q = (dot >> shift) + j                                  # Python's >> floors
            bias[i] = q * (1 << shift) + (1 << (shift - 1)) - dot     # |bias| < 2**(shift + 1)
            ties.append((i, q))
    return w.astype(np.int64), bias, xs, ties


@pytest.mark.parametrize("shift", [0, 1, 5, 9, 12, 17, 21])
@pytest.mark.parametrize("relu", [False, True])
def test_matches_bigint_reference(shift, relu):
    seed = 300 + shift
    print("seed", seed)
    rng = np.random.default_rng(seed)
    w, bias, xs, ties = in_range_case(rng, shift)
    assert all(-2**31 <= int(b) < 2**31 for b in bias)
    for i, q in ties:   # the planted ties really are exact halves, in Python integers
        acc = int(bias[i]) + sum(int(a) * int(b) for a, b in zip(w[i].tolist(), xs[0].tolist()))
        assert acc == q * (1 << shift) + (1 << (shift - 1))
    got = check(w, bias, shift, relu, xs)
    # The case exercises rounding: most outputs are neither saturated nor zero (with ReLU
    # about half are negative and clamp to 0).
    live = np.mean((got != 0) & (got != 32767) & (got != -32768))
    print(f"live fraction {live:.2f}")
    assert live >= (0.3 if relu else 0.8), live
    if ties:
        # Half-up rounding of q + 1/2 is q + 1, whatever the sign of q.
        assert min(q for _, q in ties) < -1 and max(q for _, q in ties) > 1
        want = [max(-32768, min(32767, q + 1)) for _, q in ties]
        if relu:
            want = [max(0, v) for v in want]
        assert got[0, [i for i, _ in ties]].tolist() == want


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


@pytest.mark.parametrize("shift", [40, 62])
def test_shift_beyond_any_accumulator_gives_zero(shift):
    # |acc| < 2**36 for any layer; at these shifts every output rounds to 0 (the random sweep
    # stops at 21, where outputs still span the int16 range).
    w = np.array([[32767], [-32768]])
    got = check(w, [0, 0], shift, False, [[32767]])
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
