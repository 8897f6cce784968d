"""Column alignment: a short column moved to the start of the next word when it would cross one.

The sparse-matrix reader (:mod:`sparsa.hw.eie.spm_reader`) fetches one 64-bit word (8 entries)
a cycle for each column job, and retires at most one fetched word a cycle. A column that
crosses a word boundary costs two fetched words, although its entries would fit in one. With
one multiplier this rarely matters (a PE issues about as many entries as it fetches words).
With two multipliers (``macs=2``), it often does, on a sparse layer whose PE slices hold two
or three entries a column (VGG-6, VGG-7: 64 rows a PE at 4% density). There, a PE fetches
about 1.3 words a column but retires about 1.3 entries a cycle, so the fetches, not the
multipliers, set the pace.

:func:`aligned_slice` lays a PE's entries out again. A column moves to the start of the next
word when three things hold: it would cross a word boundary that it need not cross (it takes
fewer words from a word's start); at most ``max_fill`` lanes are left in the current word; and
those lanes would hold fewer than two of its real entries (two make a full step of the
two-multiplier reader, so such a word costs no cycle beyond the work). The lanes left are
filled with ``(v=0, z=0)`` entries appended to the previous non-empty column (after its last
real entry), so that no column's rows move. The choice is made column by column: moving one
shifts the columns after it, so a column that stays may now cross a boundary it did not
(the total fetched falls all the same: by 16% on the bench's VGG-6 layout at ``max_fill`` 7).

Fill entries are no-weight entries like padding: the pipelined reader skips them in a lane,
not a cycle, and the ``pad`` counter counts them; the serial reader (``reader="serial"``)
spends a cycle on each, so a pack for it should not be aligned. The format is unchanged
(:mod:`sparsa.sw.eie.format`): the same pointers, entries and words, read by the same readers,
golden model and loader. A fill entry may sit past the PE's last row (its row is never
written). Only the layout uses more memory: :func:`align_columns` reports the entries before
and after.

``max_fill`` trades memory for cycles (measured by ``sparsa bench eie --macs 2
--align-columns N``; see the README). 0 leaves the layout as
:func:`~sparsa.sw.eie.format.encode_layer_coo` makes it.
"""

import numpy as np

from sparsa.sw.eie import format as ef

__all__ = ["MAX_FILL", "MIN_REAL", "aligned_slice", "aligned_layer", "align_columns", "check_max_fill"]

MAX_FILL = ef.ENTRIES_PER_WORD - 1    # 7: at most a word's lanes but one are ever filled
MIN_REAL = 2                          # a column keeps its place when its first lanes hold a full step


def check_max_fill(max_fill, where=None):
    """``max_fill`` as an int, or a user error naming ``--align-columns``, the limit and the value."""
    from sparsa.sw.errors import user_error
    if isinstance(max_fill, bool) or not isinstance(max_fill, (int, np.integer)) or not 0 <= max_fill <= MAX_FILL:
        raise user_error(where, "--align-columns", f"fill entries a column: an integer 0..{MAX_FILL}", repr(max_fill))
    return int(max_fill)


def aligned_slice(sl, max_fill):
    """One PE's slice (:class:`~sparsa.sw.eie.format.PESlice`) laid out again: a column that
    would cross a word boundary it need not cross, with at most ``max_fill`` lanes left in the
    word and fewer than :data:`MIN_REAL` of its real entries in them, starts the next word (the
    lanes filled with ``(v=0, z=0)`` entries that end the previous non-empty column). The real
    entries, their rows and every column's order are unchanged."""
    w = ef.ENTRIES_PER_WORD
    ptr = np.asarray(sl.ptr, dtype=np.int64)
    n = np.diff(ptr)
    nonempty = np.flatnonzero(n)
    starts = np.empty(nonempty.size, dtype=np.int64)
    pos = 0
    real = np.concatenate([[0], np.cumsum(np.asarray(sl.v) != 0)])
    for k, (j, cnt) in enumerate(zip(nonempty.tolist(), n[nonempty].tolist())):
        off = pos % w
        # Words the column takes from here, (off + cnt - 1) // w + 1, against from a word's
        # start, (cnt - 1) // w + 1: fill only when that saves a fetch, and only when the
        # lanes left would hold fewer than two of its real entries (two make a full step of
        # the two-multiplier reader, so that word costs no cycle more than the work).
        left = w - off
        if (off and left <= max_fill and (off + cnt - 1) // w > (cnt - 1) // w
                and real[ptr[j] + min(left, cnt)] - real[ptr[j]] < MIN_REAL):
            pos += left
        starts[k] = pos
        pos += cnt
    new_ptr = np.empty(ptr.size, dtype=np.int64)
    # An empty column points where the next non-empty one starts (after any fill), so that
    # the fill stays with the non-empty column before it and an empty column stays empty.
    ext = np.append(starts, pos)
    new_ptr[:-1] = ext[np.searchsorted(nonempty, np.arange(n.size))]
    new_ptr[-1] = pos
    v = np.zeros(pos, dtype=np.uint8)
    z = np.zeros(pos, dtype=np.uint8)
    shift = np.zeros(n.size, dtype=np.int64)
    shift[nonempty] = starts - ptr[:-1][nonempty]
    to = np.arange(ptr[-1], dtype=np.int64) + np.repeat(shift, n)
    v[to] = sl.v
    z[to] = sl.z
    return ef.PESlice(ptr=new_ptr, v=v, z=z)


def aligned_layer(layer, max_fill):
    """A :class:`~sparsa.sw.eie.pack.PackLayer` with every PE's slice aligned (:func:`aligned_slice`)."""
    from dataclasses import replace
    return replace(layer, slices=[aligned_slice(s, max_fill) for s in layer.slices])


def align_columns(pack, max_fill):
    """``(aligned pack, report)``: every layer of ``pack`` aligned (:func:`aligned_layer`); the
    outputs are bit for bit those of ``pack``. ``report`` has per layer ``entries_before``,
    ``entries_after`` (all PEs) and ``words_before``/``words_after`` (the largest PE's 64-bit
    words: what the sparse-matrix memory must hold)."""
    from dataclasses import replace
    max_fill = check_max_fill(max_fill)
    layers, report = [], []
    for layer in pack.layers:
        new = aligned_layer(layer, max_fill)
        layers.append(new)
        report.append({"layer": layer.name, "entries_before": sum(layer.entries_per_pe),
                       "entries_after": sum(new.entries_per_pe), "words_before": max(layer.words_per_pe, default=0),
                       "words_after": max(new.words_per_pe, default=0)})
    return replace(pack, layers=layers, pointer_bits=None), report
