"""Weight sharing by 1-D k-means with linear initialisation (Deep Compression, section 3).

A layer's kept weights are clustered into at most ``2**bits - 1`` shared values
(``bits`` <= 4: EIE stores a 4-bit index). Index 0 always means "pruned" (weight 0); the
kept weights get indices ``1..n`` in increasing order of their shared value.

Linear initialisation spreads the initial centroids evenly between the smallest and largest
kept weight, which Han et al. found best: it keeps centroids for the rare large weights that
matter most, where density-based initialisations crowd them around zero.

In 1-D, k-means is cheap to vectorise: with sorted centroids each cluster is an interval
bounded by the midpoints between neighbouring centroids. With the values sorted once, a
Lloyd step is a ``searchsorted`` of the midpoints plus prefix sums.
"""

import numpy as np

from sparsa.sw.compress.blocks import as_float, row_blocks, row_ranges
from sparsa.sw.eie.format import CODEBOOK_SIZE

__all__ = ["MAX_BITS", "kmeans_1d", "kmeans_share", "shared_weights", "recentre"]

MAX_BITS = 4          # EIE's index width
_ITERS = 100          # Lloyd iterations cap (1-D converges in a few dozen)
_BLOCK = 1 << 14      # values per block of the prefix sums and of the passes over a layer
_BLOCK_WEIGHTS = 1 << 18  # weights per row block of a layer


def kmeans_1d(x, n, *, iters=_ITERS):
    """Lloyd's k-means on values ``x`` with ``n`` linearly initialised centroids.

    Returns ``(centroids, label)``: centroids sorted ascending (empty clusters removed, so
    possibly fewer than ``n``) and each value's cluster number into them. Deterministic.
    Values with at most ``n`` distinct entries are their own centroids.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    xs = np.sort(x)
    distinct = _few_distinct(xs, n)
    if distinct is not None:
        return distinct, np.searchsorted(distinct, x)
    c = _lloyd(xs, n, iters)
    del xs
    label = _assign(x, c)
    counts = np.bincount(label, minlength=c.size)
    sums = np.bincount(label, weights=x, minlength=c.size)
    c, remap = _final_means(counts, sums)
    return c, remap[label]


def _final_means(counts, sums):
    """Drop empty clusters: ``(means of the used clusters, old cluster -> new cluster)``.

    The means are the final assignment's (the Lloyd loop may have stopped on the cap)."""
    used = np.flatnonzero(counts)
    remap = np.full(counts.size, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    return sums[used] / counts[used], remap


def _few_distinct(xs, n):
    """The distinct values of the sorted ``xs`` (float64) if there are at most ``n``, else None.

    Such values (e.g. a model retrained with shared weights) are kept exactly rather than let
    linear initialisation merge two of them. Works block by block: no full-size temporary."""
    starts = [0]
    for lo in range(0, xs.size - 1, _BLOCK):
        a = xs[lo:lo + _BLOCK + 1]
        starts.extend((lo + 1 + np.flatnonzero(a[1:] != a[:-1])).tolist())
        if len(starts) > n:
            return None
    return xs[starts].astype(np.float64)


class _Sorted:
    """Sorted values (float32 or float64) with exact float64 searches and prefix sums, and no
    full-size float64 copy.

    ``prefix(i)`` equals ``np.cumsum(xs.astype(float64))[i - 1]`` (0 for ``i == 0``) bit for
    bit: a cumulative sum adds in sequence, so restarting it from the stored running total at
    a block boundary repeats the same roundings. ``right(v)`` is
    ``np.searchsorted(xs.astype(float64), v, side="right")`` (numpy would otherwise convert all
    of ``xs`` to float64 for a float64 ``v``). One float64 per ``_BLOCK`` values is kept.
    """

    def __init__(self, xs):
        self.xs = xs
        self.head = xs[::_BLOCK].astype(np.float64)        # first value of each block
        starts = [0.0]
        for lo in range(0, xs.size, _BLOCK):
            starts.append(self._run(starts[-1], lo, min(lo + _BLOCK, xs.size)))
        self.block_start = starts

    def _run(self, total, lo, hi):
        if hi == lo:
            return total
        return float(np.cumsum(np.concatenate([[total], self.xs[lo:hi].astype(np.float64)]))[-1])

    def prefix(self, idx):
        out = np.empty(len(idx))
        for j, i in enumerate(idx):
            b = int(i) // _BLOCK
            out[j] = self._run(self.block_start[b], b * _BLOCK, int(i))
        return out

    def right(self, values):
        out = np.empty(len(values), dtype=np.int64)
        for j, v in enumerate(values):
            b = int(np.searchsorted(self.head, v, side="right"))   # blocks starting at or below v
            if b == 0:
                out[j] = 0
                continue
            lo = (b - 1) * _BLOCK
            block = self.xs[lo:lo + _BLOCK].astype(np.float64)
            out[j] = lo + int(np.searchsorted(block, v, side="right"))
        return out


def _lloyd(xs, n, iters):
    """Lloyd's iterations on sorted values ``xs`` from ``n`` linearly initialised centroids.

    With the values sorted, cluster k is the interval ``(mid[k-1], mid[k]]`` between midpoints
    of neighbouring centroids (ties go to the lower cluster): a Lloyd step is one searchsorted
    of the midpoints plus prefix sums, O(n_clusters log n) per step after the O(n log n) sort.
    Returns the centroids (sorted, possibly some of them empty)."""
    srt = _Sorted(xs)
    c = np.linspace(float(xs[0]), float(xs[-1]), n)
    bounds = None
    for _ in range(iters):
        new = np.concatenate([[0], srt.right((c[1:] + c[:-1]) / 2), [xs.size]])
        if bounds is not None and np.array_equal(new, bounds):
            break
        bounds = new
        counts = np.diff(bounds)
        at = srt.prefix(bounds)
        sums = at[1:] - at[:-1]
        # An empty cluster keeps its centroid. 1-D Lloyd keeps the centroids sorted: each new
        # mean stays inside its own interval between the old midpoints.
        c = np.where(counts > 0, sums / np.maximum(counts, 1), c)
    return c


def _assign(x, c):
    """Nearest centroid of each value (centroids sorted ascending; ties go to the lower)."""
    order = np.argsort(c, kind="stable")
    cs = c[order]
    mid = (cs[1:] + cs[:-1]) / 2
    return order[np.searchsorted(mid, x, side="left")]


def _nonzero_centroids(c, w, mask, index):
    """Replace an exactly-zero centroid by a tiny value of its members' majority sign.

    A kept weight must stay nonzero (index 0 is reserved for pruned weights); a cluster
    straddling zero can average to exactly 0.0. Its members' mean magnitude times 1e-6 keeps
    the value harmless (the fixed-point step then rounds it to one LSB at most).
    """
    for k in np.flatnonzero(c == 0):      # at most a handful of clusters, and rarely any
        members = np.concatenate([blk[mask[r:r + len(blk)] & (index[r:r + len(blk)] == k + 1)]
                                  for r, blk in row_blocks(w)]).astype(np.float64)
        sign = 1.0 if np.sum(members >= 0) >= np.sum(members < 0) else -1.0
        mag = np.mean(np.abs(members)) if members.size else 1.0
        c[k] = sign * max(mag * 1e-6, np.finfo(np.float64).tiny)
    return c


def _add_in_sequence(sums, label, values):
    """``sums[k] += values[label == k]``, one value at a time in order, for every k: the very
    additions ``np.bincount(label, weights=values)`` makes, so that summing a layer block by
    block gives its result bit for bit."""
    order = np.argsort(label, kind="stable")
    ends = np.cumsum(np.bincount(label, minlength=sums.size))
    v = values[order]
    start = 0
    for k, end in enumerate(ends):
        if end > start:
            sums[k] = np.cumsum(np.concatenate([[sums[k]], v[start:end]]))[-1]
        start = end


def kmeans_share(w, mask, bits, *, iters=_ITERS):
    """Cluster a layer's kept weights into at most ``2**bits - 1`` shared values.

    Parameters
    ----------
    w : float array (rows, cols)
    mask : bool array (rows, cols)
        Kept weights (``True``). Pruned positions get index 0 whatever their value.
    bits : int in 1..4

    Returns
    -------
    centroids : float64 array (16,)
        ``centroids[0] == 0``; ``centroids[1..n]`` the shared values ascending, all nonzero;
        the rest 0.
    index : uint8 array (rows, cols)
        0 where pruned, else 1..n.

    The result is :func:`kmeans_1d`'s on ``w[mask]`` in float64, bit for bit, but memory
    stays at the kept values in ``w``'s own width (float32 or float64) plus the index: the
    values are sorted once for the Lloyd steps, then the layer is labelled block by block.
    """
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in 1..{MAX_BITS}, got {bits}")
    w = as_float(w)
    mask = np.asarray(mask, dtype=bool)
    n = (1 << bits) - 1
    centroids = np.zeros(CODEBOOK_SIZE)
    index = np.zeros(w.shape, dtype=np.uint8)
    xs = w[mask]                      # only the kept weights, in their own width
    if xs.size == 0:
        return centroids, index
    xs.sort()
    distinct = _few_distinct(xs, n)
    c = distinct if distinct is not None else _lloyd(xs, n, iters)
    del xs
    # Label the layer a block of rows at a time, counting and summing each cluster's members
    # in the order kmeans_1d's bincount would.
    counts = np.zeros(c.size, dtype=np.int64)
    sums = np.zeros(c.size)
    for r, blk in row_blocks(w):
        m = mask[r:r + len(blk)]
        vals = blk[m].astype(np.float64)
        label = np.searchsorted(distinct, vals) if distinct is not None else _assign(vals, c)
        index[r:r + len(blk)][m] = label + 1
        counts += np.bincount(label, minlength=c.size)
        if distinct is None:
            _add_in_sequence(sums, label, vals)
    if distinct is None:
        c, remap = _final_means(counts, sums)
        relabel = np.zeros(CODEBOOK_SIZE, dtype=np.uint8)
        relabel[1:1 + remap.size] = np.where(remap >= 0, remap + 1, 0)
        for r0, r1 in row_ranges(*index.shape):
            index[r0:r1] = relabel[index[r0:r1]]
    c = _nonzero_centroids(c, w, mask, index)
    centroids[1:1 + c.size] = c
    return centroids, index


def shared_weights(centroids, index):
    """The dense weight matrix the index and codebook stand for: ``centroids[index]``."""
    return np.asarray(centroids)[np.asarray(index)]


def recentre(w, index, centroids):
    """Re-centre each cluster on the mean of its (trained) weights: Deep Compression's
    centroid fine-tuning, done the way any optimiser-driven loop can.

    After an optimiser step moves the shared weights, each cluster's new value is the mean
    of its members: for plain SGD that is the old centroid minus the learning rate times
    the mean of the member gradients, i.e. the paper's grouped-gradient update scaled by
    1/count. Snap the weights back with :func:`shared_weights` afterwards.

    Empty clusters and clusters whose mean is exactly zero keep their previous value.
    Returns a new (16,) centroid array.
    """
    w = np.asarray(w, dtype=np.float64)
    index = np.asarray(index)
    counts = np.bincount(index.ravel(), minlength=CODEBOOK_SIZE)
    sums = np.bincount(index.ravel(), weights=w.ravel(), minlength=CODEBOOK_SIZE)
    new = np.where(counts > 0, sums / np.maximum(counts, 1), centroids)
    new = np.where(new == 0, centroids, new)
    new[0] = 0.0
    return new
