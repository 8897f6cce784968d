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

from array import array

import numpy as np

from sparsa.sw.compress.blocks import as_float, row_blocks
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


def _magnitude_bits(block):
    """``|block|`` as unsigned integers of the same width: for non-negative IEEE floats the bit
    patterns sort exactly as the values do (float32 or float64 only)."""
    return np.abs(block).view(np.uint32 if block.dtype == np.float32 else np.uint64)


def _kth_largest_magnitude(w, k):
    """The ``k``-th largest ``|w|`` (1 <= k <= w.size) of a 2-D float32/float64 array.

    A radix select on the magnitudes' bit patterns, 16 bits per pass (2 passes for float32, 4
    for float64), each pass a histogram over row blocks: the memory is O(block), not a copy of
    the model as ``np.partition`` would need. Exact: the result is the value ``np.partition``
    would put at rank ``size - k``.
    """
    width = 32 if w.dtype == np.float32 else 64
    rank = w.size - k                      # ascending rank of the wanted value
    prefix, known = 0, 0                   # the top `known` bits of the answer
    while known < width:
        shift = width - known - 16
        hist = np.zeros(1 << 16, dtype=np.int64)
        for _, block in row_blocks(w):
            bits = _magnitude_bits(block).ravel()
            if known:
                bits = bits[(bits >> (width - known)) == prefix]
            hist += np.bincount(((bits >> shift) & 0xFFFF).astype(np.intp), minlength=1 << 16)
        below = np.cumsum(hist)
        digit = int(np.searchsorted(below, rank, side="right"))
        rank -= int(below[digit - 1]) if digit else 0
        prefix, known = (prefix << 16) | digit, known + 16
    return np.array(prefix, dtype=np.uint32 if width == 32 else np.uint64).view(w.dtype)[()]


def _top_k(w, k):
    """Mask of the ``k`` largest ``|w|`` of the 2-D array ``w`` that are nonzero; ties at the
    threshold go to lower row-major positions.

    The threshold ``t`` is the k-th largest magnitude; everything above it is kept and the
    remaining places go to the first weights equal to it. Memory: the bool mask plus O(block)
    (see :func:`_kth_largest_magnitude`), so pruning a model costs a quarter of its float32 size.
    """
    w = as_float(w)
    keep = np.zeros(w.shape, dtype=bool)
    if k <= 0:
        return keep
    if k >= w.size:
        keep[:] = w != 0
        return keep
    t = _kth_largest_magnitude(w, k)
    need = k - sum(int(np.count_nonzero(np.abs(b) > t)) for _, b in row_blocks(w))
    for r, block in row_blocks(w):
        a = np.abs(block)
        kb = a > t
        if need > 0:
            ties = np.flatnonzero(a == t)[:need]
            kb.flat[ties] = True
            need -= ties.size
        keep[r:r + block.shape[0]] = kb & (block != 0)
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
    w = np.asarray(w)
    return _top_k(w, keep_count(w.size, density))


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
    w = as_float(w)
    if pes < 1:
        raise ValueError(f"pes must be >= 1, got {pes}")
    rows = w.shape[0]
    budget = keep_count(w.size, density)
    share = _water_fill(budget, [np.count_nonzero(w[k::pes]) for k in range(pes)])
    mask = np.zeros(w.shape, dtype=bool)
    # One selection per PE (PEs, not weights, are looped over). Row-major order inside
    # w[k::pes] is the full matrix's order, so ties break the same way.
    for k in range(min(pes, rows)):
        mask[k::pes] = _top_k(w[k::pes], int(share[k]))
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
    w = as_float(w)
    out = np.array(mask, dtype=bool, copy=True)
    for k in range(min(pes, w.shape[0])):
        _fill_pe(w[k::pes], out[k::pes], span)
    return out


def _fill_pe(w, m, span):
    """:func:`fill_padding` on one PE's local rows, in place: ``w`` its weights (a strided view:
    the magnitudes are taken where they are looked at, not copied), ``m`` kept (local rows x
    cols, a view of the output mask that this changes).

    Memory stays at a few dozen bytes per kept entry: compact arrays rather than Python
    lists or a heap of tuples (issue 26: compressing stays under 3x the model)."""
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
                win = np.abs(w[lo:pos + 1 + span, j])
                b = int(np.argmax(win))
                if win[b] == 0:                          # nothing to keep: a padding entry stays
                    pos += span
                    continue
                pos = lo + b
                m[pos, j] = True
            pos = r
    del cols_c, rows_c, prev_row
    excess = int(np.count_nonzero(m)) - share
    if excess <= 0:
        return
    # 2. Drop the `excess` smallest weights whose removal keeps every gap within `span`, in
    # the order (magnitude, later row-major position first). Kept entries as doubly linked
    # lists, one per column.
    cols_c, rows_c = np.nonzero(m.T)
    n = cols_c.size
    first = np.r_[True, cols_c[1:] != cols_c[:-1]]
    last = np.r_[cols_c[1:] != cols_c[:-1], True]
    prv = _compact(np.where(first, -1, np.arange(n) - 1))
    nxt = _compact(np.where(last, -1, np.arange(n) + 1))
    del first, last
    later_first = -(rows_c.astype(np.int64) * m.shape[1] + cols_c)     # minus row-major position
    order = _compact(np.lexsort((later_first, np.abs(w[rows_c, cols_c]))))
    del later_first
    row = _compact(rows_c)
    removed = bytearray(n)
    waiting = bytearray(n)                               # skipped; may qualify once it is last

    def removable(i):
        if nxt[i] < 0:
            return True
        p = prv[i]
        return row[nxt[i]] - (row[p] if p >= 0 else -1) <= span

    for i in order:
        if not excess:
            break
        if not removable(i):
            waiting[i] = 1
            continue
        # Remove i. If that makes a waiting entry its column's last, it is removable now and
        # comes before every entry still to be visited (it was visited earlier): remove it at
        # once, and so on up the column.
        while True:
            removed[i] = 1
            excess -= 1
            p, q = prv[i], nxt[i]
            if p >= 0:
                nxt[p] = q
            if q >= 0:
                prv[q] = p
            if excess and q < 0 and p >= 0 and waiting[p]:
                waiting[p] = 0
                i = p
                continue
            break
    gone = np.frombuffer(removed, dtype=np.uint8).astype(bool)
    m[rows_c[gone], cols_c[gone]] = False


def _compact(a):
    """An int64 array as a Python ``array``: 8 bytes an item and fast item access from Python
    (a list costs about 36 bytes an item, numpy scalars are slow one at a time)."""
    out = array("q")
    out.frombytes(np.ascontiguousarray(a, dtype=np.int64).data.cast("B"))
    return out


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
