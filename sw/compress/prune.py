"""Magnitude pruning (Deep Compression) and load-balance-aware pruning (ESE).

Masks are boolean numpy arrays of the weight's shape (``True`` = kept), so any training loop
can re-apply them after each optimiser step (see docs/compression.md for PyTorch).

Ties between equal magnitudes are broken by position: of two weights with the same ``|w|``
the one earlier in row-major order is kept. Weights that are exactly zero are never kept (a
kept weight must get a nonzero shared value), so a matrix with few nonzeros may keep fewer
than the budget.

:func:`fill_padding` moves a balanced mask's budget into the slots that EIE's padding zeros
would take, so that the encoded matrix needs (almost) no padding entries at all.
"""

import heapq

import numpy as np

from sparsa.sw.eie.format import PAD_SPAN

__all__ = ["keep_count", "magnitude_mask", "balanced_mask", "fill_padding", "apply_mask", "pe_counts"]


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


def fill_padding(w, mask, pes, span=PAD_SPAN):
    """Spend the padding entries' memory on real weights: the same count per PE, no padding.

    EIE stores a column slice's entries with a 4-bit count of the zero rows before each one, so
    two consecutive entries of a PE's column may be at most ``span`` (16) local rows apart; a
    longer gap costs a padding entry (``v = 0``) per 16 rows, memory that holds no weight. At
    ESE's 11.2 % density that is about 17 % of the entries. This pass changes ``mask`` so that
    the gaps close, per PE (rows interleaved as in :func:`balanced_mask`):

    1. **Bridge.** Down every column, where the next kept row is more than ``span`` rows
       after the last one, keep instead of each padding entry the largest-magnitude weight
       of the rows it may move to (within ``span`` rows of the last one, and no earlier than
       the rest of the gap can still be bridged with as many entries as it had padding), and
       go on from there. (A window of exact zeros keeps its padding entry: there is no weight
       to put in it.)
    2. **Rebalance.** Drop as many weights as step 1 added, smallest magnitude first, but only
       ones whose removal opens no gap wider than ``span`` (the last entry of a column always
       qualifies). Ties drop the later weight in row-major order, as :func:`_top_k` keeps the
       earlier.

    Every PE keeps exactly as many weights as in ``mask``, so the load balance holds. The kept
    set trades the smallest kept weights for the largest pruned ones in the gaps, which costs
    little accuracy (``sparsa compress`` reports the weights' relative RMS error either way).

    Returns a new bool mask of ``w.shape``.
    """
    w = np.asarray(w, dtype=np.float64)
    out = np.array(mask, dtype=bool, copy=True)
    for k in range(min(pes, w.shape[0])):
        out[k::pes] = _fill_pe(np.abs(w[k::pes]), out[k::pes], span)
    return out


def _fill_pe(a, m, span):
    """:func:`fill_padding` on one PE's local rows: ``a`` = |w|, ``m`` = kept (local rows x cols)."""
    m = m.copy()
    share = int(np.count_nonzero(m))
    # 1. Bridges, only in columns that need padding (a vectorised test first).
    cols_c, rows_c = np.nonzero(m.T)                     # kept entries in column-major order
    prev_row = np.where(np.r_[True, cols_c[1:] != cols_c[:-1]], -1, np.r_[-1, rows_c[:-1]])
    for j in np.unique(cols_c[rows_c - prev_row > span]):
        pos = -1
        for r in np.flatnonzero(m[:, j]):
            while r - pos > span:
                # As many bridges as padding entries: the first may go no earlier than where
                # the remaining ones can still reach r.
                lo = max(pos + 1, r - span * ((r - pos - 1) // span))
                win = a[lo:pos + 1 + span, j]
                b = int(np.argmax(win))
                if win[b] == 0:                          # nothing to keep: a padding entry stays
                    pos += span
                    continue
                pos = lo + b
                m[pos, j] = True
            pos = r
    excess = int(np.count_nonzero(m)) - share
    if excess <= 0:
        return m
    # 2. Drop the `excess` smallest weights whose removal keeps every gap within `span`.
    # Kept entries as doubly linked lists, one per column.
    cols_c, rows_c = np.nonzero(m.T)
    n = cols_c.size
    first = np.r_[True, cols_c[1:] != cols_c[:-1]]
    last = np.r_[cols_c[1:] != cols_c[:-1], True]
    prv = np.where(first, -1, np.arange(n) - 1).tolist()
    nxt = np.where(last, -1, np.arange(n) + 1).tolist()
    row = rows_c.tolist()
    ncols = m.shape[1]
    mag = a[rows_c, cols_c]
    order = rows_c.astype(np.int64) * ncols + cols_c     # row-major position: later goes first
    heap = list(zip(mag.tolist(), (-order).tolist(), range(n)))
    heapq.heapify(heap)
    removed = np.zeros(n, dtype=bool)
    waiting = np.zeros(n, dtype=bool)                    # skipped; may qualify once it is last

    def removable(i):
        if nxt[i] < 0:
            return True
        p = prv[i]
        return row[nxt[i]] - (row[p] if p >= 0 else -1) <= span

    while excess and heap:
        key = heapq.heappop(heap)
        i = key[2]
        if removed[i]:
            continue
        if not removable(i):
            waiting[i] = True
            continue
        removed[i] = True
        excess -= 1
        p, q = prv[i], nxt[i]
        if p >= 0:
            nxt[p] = q
        if q >= 0:
            prv[q] = p
        elif p >= 0 and waiting[p]:                      # p is now its column's last entry
            waiting[p] = False
            heapq.heappush(heap, (float(mag[p]), int(-order[p]), p))
    m[rows_c[removed], cols_c[removed]] = False
    return m


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
