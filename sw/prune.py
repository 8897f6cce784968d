"""Magnitude pruning (Deep Compression) and load-balance-aware pruning (ESE).

Masks are boolean numpy arrays of the weight's shape (``True`` = kept), so any training loop
can re-apply them after each optimiser step (see docs/compression.md for PyTorch).

Ties between equal magnitudes are broken by position: of two weights with the same ``|w|``
the one earlier in row-major order is kept. Weights that are exactly zero are never kept (a
kept weight must get a nonzero shared value), so a matrix with few nonzeros may keep fewer
than the budget.
"""

import numpy as np

__all__ = ["keep_count", "magnitude_mask", "balanced_mask", "apply_mask", "pe_counts"]


def keep_count(size, density):
    """Number of weights a ``density`` budget allows out of ``size``: ``floor(density * size)``.

    The tiny epsilon absorbs binary rounding (``0.29 * 100`` is ``28.999999999999996`` in
    float64, but the user asked for 29).
    """
    if not 0.0 < density <= 1.0:
        raise ValueError(f"density must be in (0, 1], got {density}")
    return int(np.floor(density * size + 1e-9))


def _rank_desc(mag, group=None):
    """Rank of each element by decreasing magnitude within its group (0 = largest).

    Ties: earlier flat position first. Vectorised with one lexsort.
    """
    flat = mag.ravel()
    pos = np.arange(flat.size)
    if group is None:
        group = np.zeros(flat.size, dtype=np.int64)
    # lexsort sorts by the last key first: group, then -|w|, then position.
    order = np.lexsort((pos, -flat, group))
    g_sorted = group[order]
    start = np.searchsorted(g_sorted, g_sorted, side="left")
    rank = np.empty(flat.size, dtype=np.int64)
    rank[order] = np.arange(flat.size) - start
    return rank


def magnitude_mask(w, density):
    """Keep the ``floor(density * w.size)`` largest-magnitude weights.

    Parameters
    ----------
    w : array (rows, cols)
    density : float in (0, 1]

    Returns
    -------
    bool array of ``w.shape``
    """
    w = np.asarray(w, dtype=np.float64)
    k = keep_count(w.size, density)
    rank = _rank_desc(np.abs(w)).reshape(w.shape)
    return (rank < k) & (w != 0)


def balanced_mask(w, density, pes):
    """ESE load-balance-aware pruning: every PE keeps the same number of weights (within 1).

    Rows are interleaved over ``pes`` PEs (PE ``k`` owns rows ``i % pes == k``, the EIE
    layout). The total budget ``floor(density * w.size)`` is split as evenly as possible
    (the first ``budget % pes`` PEs keep one more) and each PE's submatrix is pruned by
    magnitude to its share. A PE whose submatrix has fewer nonzeros than its share keeps
    them all (only possible with very small matrices or many zeros).

    Parameters
    ----------
    w : array (rows, cols)
    density : float in (0, 1]
    pes : int >= 1

    Returns
    -------
    bool array of ``w.shape``
    """
    w = np.asarray(w, dtype=np.float64)
    if pes < 1:
        raise ValueError(f"pes must be >= 1, got {pes}")
    rows, cols = w.shape
    budget = keep_count(w.size, density)
    share = np.full(pes, budget // pes, dtype=np.int64)
    share[: budget % pes] += 1
    # A PE with fewer rows than others simply has fewer candidates; its share still holds.
    pe = np.repeat(np.arange(rows) % pes, cols)
    rank = _rank_desc(np.abs(w), pe)
    return ((rank < share[pe]) & (w.ravel() != 0)).reshape(w.shape)


def pe_counts(mask, pes):
    """Number of kept weights per PE (rows interleaved): checks the balance of a mask."""
    mask = np.asarray(mask)
    per_row = np.count_nonzero(mask, axis=1)
    return np.bincount(np.arange(mask.shape[0]) % pes, weights=per_row, minlength=pes).astype(np.int64)


def apply_mask(w, mask, *, out=None):
    """Zero the pruned weights: ``w * mask`` (in place when ``out is w``)."""
    return np.multiply(w, mask, out=out)
