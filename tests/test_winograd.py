"""Integer Winograd F(2x2, 3x3): exact against direct correlation, transform ranges, whole layers."""

import itertools

import numpy as np
import pytest

from sparsa.sw.cnn.golden import conv2d_int
from sparsa.sw.cnn.isa import WINO_BT, WINO_G2
from sparsa.sw.cnn.winograd import (input_transform, multiplies, output_transform, weight_transform,
                                winograd_conv2d)

SEED = 2024


def direct_tile(d, g):
    """3x3 correlation of a 4x4 tile with a 3x3 kernel, in Python ints: the 2x2 outputs."""
    return [[sum(int(g[i][j]) * int(d[a + i][b + j]) for i in range(3) for j in range(3))
             for b in range(2)] for a in range(2)]


def test_500_random_int8_tiles_give_4x_the_direct_correlation():
    print("seed", SEED)
    rng = np.random.default_rng(SEED)
    d = rng.integers(-128, 128, size=(500, 4, 4))
    g = rng.integers(-128, 128, size=(500, 3, 3))
    y4 = output_transform(weight_transform(g) * input_transform(d))
    assert y4.dtype == np.int64 and y4.shape == (500, 2, 2)
    assert not np.any(y4 % 4)
    for n in range(500):
        assert (y4[n] // 4).tolist() == direct_tile(d[n], g[n])


def test_extreme_tiles_are_exact():
    for dv, gv in itertools.product((-128, 127), repeat=2):
        d, g = np.full((4, 4), dv), np.full((3, 3), gv)
        assert (output_transform(weight_transform(g) * input_transform(d)) // 4).tolist() == direct_tile(d, g)


def _linear_extremes(mat_left, n_in):
    """Exact min and max of every entry of L x L^T over int8 x (n_in x n_in): each entry is
    linear in x, so its extremes take x = 127 where the coefficient is positive, -128 where negative."""
    coef = np.einsum("ai,bj->abij", mat_left, mat_left)        # entry (a, b) = sum_ij coef * x_ij
    hi = np.where(coef > 0, 127 * coef, -128 * coef).sum(axis=(2, 3))
    lo = np.where(coef > 0, -128 * coef, 127 * coef).sum(axis=(2, 3))
    return lo, hi


def test_weight_transform_fits_signed_12_bits_for_every_int8_kernel():
    lo, hi = _linear_extremes(WINO_G2, 3)
    assert lo.min() == -1152 and hi.max() == 1147
    assert lo.min() >= -2048 and hi.max() <= 2047
    # Both extremes are reached: U[1][1] = sum of g at all -128; U[2][2] = sum of +-g with the
    # checkerboard signs, 5 * 127 + 4 * 128 at g = 127 on the + squares and -128 on the others.
    assert weight_transform(np.full((3, 3), -128)).min() == -1152
    checker = np.where((np.add.outer(np.arange(3), np.arange(3)) % 2) == 0, 127, -128)
    assert weight_transform(checker)[2, 2] == 1147
    rng = np.random.default_rng(SEED)
    u = weight_transform(rng.integers(-128, 128, size=(10000, 3, 3)))
    assert u.min() >= lo.min() and u.max() <= hi.max()


def test_input_transform_fits_signed_11_bits_for_every_int8_tile():
    lo, hi = _linear_extremes(WINO_BT, 4)
    assert lo.min() == -512 and hi.max() == 510
    assert lo.min() >= -1024 and hi.max() <= 1023
    # Reached: V[1][1] = d11 + d12 + d21 + d22 at -128; V[0][0] = d00 - d02 - d20 + d22.
    assert input_transform(np.full((4, 4), -128)).min() == -512
    d = np.zeros((4, 4), int)
    d[0, 0] = d[2, 2] = 127
    d[0, 2] = d[2, 0] = -128
    assert input_transform(d)[0, 0] == 510


@pytest.mark.parametrize("pad", [0, 1, 2])
@pytest.mark.parametrize("h,w", [(5, 7), (9, 3), (4, 6), (3, 3), (7, 8)])
def test_winograd_conv2d_equals_direct_conv(pad, h, w):
    seed = SEED + 100 * pad + 10 * h + w
    print("seed", seed)
    rng = np.random.default_rng(seed)
    c, cout = 3, 4
    x = rng.integers(-128, 128, size=(c, h, w))
    wt = rng.integers(-128, 128, size=(cout, c, 3, 3))
    b = rng.integers(-2 ** 31, 2 ** 31, size=cout)
    y = winograd_conv2d(x, wt, b, pad)
    ref = conv2d_int(x, wt, b, 1, pad)
    assert y.shape == ref.shape == (cout, h + 2 * pad - 2, w + 2 * pad - 2)
    np.testing.assert_array_equal(y, ref)


def test_winograd_conv2d_saturating_extremes():
    x = np.full((16, 5, 5), -128)
    wt = np.full((2, 16, 3, 3), -128)
    np.testing.assert_array_equal(winograd_conv2d(x, wt, [0, 1], 1), conv2d_int(x, wt, [0, 1], 1, 1))


def test_multiply_counts():
    # 10x10 output: 100 pixels * 9 vs 25 tiles * 16 -> 2.25x fewer multiplies.
    assert multiplies(3, 4, 10, 10, "direct") == 9 * 3 * 4 * 100
    assert multiplies(3, 4, 10, 10, "winograd") == 16 * 3 * 4 * 25
    # Odd sizes round the tiles up: 5x7 output -> 3x4 tiles.
    assert multiplies(1, 1, 5, 7, "winograd") == 16 * 12
    with pytest.raises(ValueError, match="datapath"):
        multiplies(1, 1, 2, 2, "fft")
