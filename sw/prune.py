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


def _top_k(mag, k):
    """Flat mask of the ``k`` largest values of ``mag`` (1-D); ties go to lower positions.

    O(n): one ``np.partition`` finds the k-th largest value ``t``; everything above ``t`` is
    kept and the remaining places go to the first elements equal to ``t``.
    """
    keep = np.zeros(mag.size, dtype=bool)
    if k <= 0:
        return keep
    if k >= mag.size:
        keep[:] = True
        return keep
    t = np.partition(mag, mag.size - k)[mag.size - k]
    keep = mag > t
    need = k - int(np.count_nonzero(keep))
    keep[np.flatnonzero(mag == t)[:need]] = True
    return keep


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
    keep = _top_k(np.abs(w).ravel(), keep_count(w.size, density)).reshape(w.shape)
    return keep & (w != 0)


def balanced_mask(w, density, pes):
    """ESE load-balance-aware pruning: every PE keeps the same number of weights (within 1).

    Rows are interleaved over ``pes`` PEs (PE ``k`` owns rows ``i % pes == k``, the EIE
    layout). The total budget ``floor(density * w.size)`` is split as evenly as possible
    over the PEs that own rows (the first ``budget % active`` PEs keep one more) and each PE's submatrix is pruned by
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
    rows = w.shape[0]
    budget = keep_count(w.size, density)
    share = _water_fill(budget, [np.count_nonzero(w[k::pes]) for k in range(pes)])
    mask = np.zeros(w.shape, dtype=bool)
    # One O(size / pes) selection per PE (PEs, not weights, are looped over). Row-major
    # order inside w[k::pes] is the full matrix's order, so ties break the same way.
    for k in range(min(pes, rows)):
        sub = w[k::pes]
        mask[k::pes] = _top_k(np.abs(sub).ravel(), int(share[k])).reshape(sub.shape) & (sub != 0)
    return mask


def _water_fill(budget, capacity):
    """Split ``budget`` over PEs as evenly as possible (within 1), no PE above its capacity.

    A PE that owns no rows, or fewer nonzero weights than an even share, keeps what it has
    and the rest is spread over the others, so the layer still keeps ~density of its weights.
    """
    capacity = np.asarray(capacity, dtype=np.int64)
    share = np.zeros(capacity.size, dtype=np.int64)
    remaining = min(int(budget), int(capacity.sum()))
    open_ = [k for k in range(capacity.size) if capacity[k] > 0]
    while open_ and remaining > 0:
        q, r = divmod(remaining, len(open_))
        full = [k for k in open_ if capacity[k] - share[k] <= q]
        if full:
            for k in full:
                remaining -= int(capacity[k] - share[k])
                share[k] = capacity[k]
                open_.remove(k)
            continue
        for i, k in enumerate(open_):
            share[k] += q + (1 if i < r else 0)
        remaining = 0
    return share


def pe_counts(mask, pes):
    """Number of kept weights per PE (rows interleaved): checks the balance of a mask."""
    mask = np.asarray(mask)
    per_row = np.count_nonzero(mask, axis=1)
    return np.bincount(np.arange(mask.shape[0]) % pes, weights=per_row, minlength=pes).astype(np.int64)


def apply_mask(w, mask, *, out=None):
    """Zero the pruned weights: ``w * mask`` (in place when ``out is w``)."""
    return np.multiply(w, mask, out=out)
