"""Row blocks of a layer: a pass over a big layer holds one block's temporaries at a time.

Compressing a 20000 x 20000 layer must stay within a few times the layer's own memory, so
no stage makes a full-size float64, index or boolean temporary; each walks the layer in
blocks of about :data:`BLOCK_WEIGHTS` weights instead.
"""

import numpy as np

__all__ = ["BLOCK_WEIGHTS", "row_ranges", "row_blocks", "as_float"]

BLOCK_WEIGHTS = 1 << 18


def row_ranges(rows, cols):
    """``[(r0, r1), ...]`` covering ``rows`` rows of ``cols`` weights, about
    :data:`BLOCK_WEIGHTS` weights (at least one row) each."""
    step = max(1, BLOCK_WEIGHTS // max(1, cols))
    return [(r, min(rows, r + step)) for r in range(0, rows, step)]


def as_float(w):
    """``w`` as float32 or float64, without a copy when it already is one (no upcast)."""
    w = np.asarray(w)
    return w if w.dtype in (np.float32, np.float64) else w.astype(np.float64)


def row_blocks(w):
    """``(r0, w[r0:r1])`` pairs of :func:`row_ranges` over the 2-D (possibly strided) ``w``."""
    for r0, r1 in row_ranges(*w.shape):
        yield r0, w[r0:r1]
