"""Winograd F(2x2,3x3) transforms as adder networks (no multipliers).

``input_transform(d)``: V = B^T d B for a 4x4 tile of int8 (16 expressions of 11 bits).
``output_transform(M)``: Y = A^T M A for the 16 accumulated products (4 expressions).
The matrices are :data:`sparsa.sw.cnn.isa.WINO_BT` and :data:`~sparsa.sw.cnn.isa.WINO_AT`,
so the hardware and the golden model cannot drift apart. Both are combinational; the engine
registers their results.
"""

from amaranth import *

from sparsa.sw.cnn.isa import WINO_AT, WINO_BT

__all__ = ["input_transform", "output_transform"]


def _sum(terms, width):
    """Sum of (coefficient, value) pairs with coefficients +-1, as a signed expression."""
    acc = None
    for coef, val in terms:
        if coef == 0:
            continue
        v = val.as_signed() if hasattr(val, "as_signed") else val
        if acc is None:
            acc = v if coef > 0 else -v
        else:
            acc = acc + v if coef > 0 else acc - v
    return (acc if acc is not None else C(0, signed(width)))


def _sandwich(left, x, right_t, n_in):
    """left @ x @ right_t.T for a list-of-lists of Amaranth values ``x``."""
    rows, cols = left.shape[0], right_t.shape[0]
    tmp = [[_sum([(int(left[i][a]), x[a][b]) for a in range(n_in)], 16) for b in range(n_in)]
           for i in range(rows)]
    return [[_sum([(int(right_t[j][b]), tmp[i][b]) for b in range(n_in)], 16) for j in range(cols)]
            for i in range(rows)]


def input_transform(d):
    """``d``: 16 signed(8) values, row-major 4x4. Returns 16 values (row-major V)."""
    x = [[d[4 * a + b] for b in range(4)] for a in range(4)]
    v = _sandwich(WINO_BT, x, WINO_BT, 4)
    return [v[i][j] for i in range(4) for j in range(4)]


def output_transform(mvals):
    """``mvals``: 16 accumulators (row-major M). Returns Y row-major as 4 values."""
    x = [[mvals[4 * a + b] for b in range(4)] for a in range(4)]
    y = _sandwich(WINO_AT, x, WINO_AT, 4)
    return [y[i][j] for i in range(2) for j in range(2)]
