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

from sparsa.sw.eie.format import CODEBOOK_SIZE

__all__ = ["MAX_BITS", "kmeans_1d", "kmeans_share", "shared_weights", "recentre"]

MAX_BITS = 4          # EIE's index width
_ITERS = 100          # Lloyd iterations cap (1-D converges in a few dozen)


def kmeans_1d(x, n, *, iters=_ITERS):
    """Lloyd's k-means on values ``x`` with ``n`` linearly initialised centroids.

    Returns ``(centroids, label)``: centroids sorted ascending (empty clusters removed, so
    possibly fewer than ``n``) and each value's cluster number into them. Deterministic.
    Values with at most ``n`` distinct entries are their own centroids.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    if x.size == 0:
        return np.zeros(0), np.zeros(0, dtype=np.int64)
    # Sort once; then every Lloyd step only needs the cluster boundaries (one searchsorted
    # of the midpoints) and prefix sums: O(n log n) once, O(n_clusters log n) per step.
    xs = np.sort(x)
    if np.count_nonzero(np.diff(xs)) < n:
        # At most n distinct values (e.g. a model retrained with shared weights): keep them
        # exactly rather than let linear initialisation merge two of them.
        distinct = np.unique(xs)
        return distinct, np.searchsorted(distinct, x)
    prefix = np.concatenate([[0.0], np.cumsum(xs)])
    c = np.linspace(xs[0], xs[-1], n)
    bounds = None
    for _ in range(iters):
        # Cluster k holds the values in (mid[k-1], mid[k]] (ties go to the lower cluster).
        new = np.concatenate([[0], np.searchsorted(xs, (c[1:] + c[:-1]) / 2, side="right"), [xs.size]])
        if bounds is not None and np.array_equal(new, bounds):
            break
        bounds = new
        counts = np.diff(bounds)
        sums = prefix[bounds[1:]] - prefix[bounds[:-1]]
        # An empty cluster keeps its centroid. 1-D Lloyd keeps the centroids sorted: each new
        # mean stays inside its own interval between the old midpoints.
        c = np.where(counts > 0, sums / np.maximum(counts, 1), c)
    label = _assign(x, c)
    used = np.unique(label)
    remap = np.full(c.size, -1, dtype=np.int64)
    remap[used] = np.arange(used.size)
    c = c[used]
    label = remap[label]
    # Final means of the final assignment (the loop may have stopped on the cap).
    counts = np.bincount(label, minlength=c.size)
    c = np.bincount(label, weights=x, minlength=c.size) / counts
    return c, label


def _assign(x, c):
    """Nearest centroid of each value (centroids sorted ascending; ties go to the lower)."""
    order = np.argsort(c, kind="stable")
    cs = c[order]
    mid = (cs[1:] + cs[:-1]) / 2
    return order[np.searchsorted(mid, x, side="left")]


def _nonzero_centroids(c, x, label):
    """Replace an exactly-zero centroid by a tiny value of its members' majority sign.

    A kept weight must stay nonzero (index 0 is reserved for pruned weights); a cluster
    straddling zero can average to exactly 0.0. Its members' mean magnitude times 1e-6 keeps
    the value harmless (the fixed-point step then rounds it to one LSB at most).
    """
    zero = np.flatnonzero(c == 0)
    for k in zero:      # at most a handful of clusters
        members = x[label == k]
        sign = 1.0 if np.sum(members >= 0) >= np.sum(members < 0) else -1.0
        mag = np.mean(np.abs(members)) if members.size else 1.0
        c[k] = sign * max(mag * 1e-6, np.finfo(np.float64).tiny)
    return c


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
    """
    if not 1 <= bits <= MAX_BITS:
        raise ValueError(f"bits must be in 1..{MAX_BITS}, got {bits}")
    w = np.asarray(w)
    mask = np.asarray(mask, dtype=bool)
    values = w[mask].astype(np.float64)          # only the kept weights, never a dense float64 copy
    c, label = kmeans_1d(values, (1 << bits) - 1, iters=iters)
    c = _nonzero_centroids(c, values, label)
    centroids = np.zeros(CODEBOOK_SIZE)
    centroids[1:1 + c.size] = c
    index = np.zeros(w.shape, dtype=np.uint8)
    index[mask] = (label + 1).astype(np.uint8)
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
