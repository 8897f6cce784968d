"""The EIE compressed sparse column format: the one definition of every word layout.

This module is the single source of truth for how a weight-shared sparse matrix is laid out
in the memories of an EIE PE array (Han et al., ISCA'16, section III-B). The packer, the
unpacker, the golden model and the Amaranth generator all import these constants and
functions; nothing else re-derives them.

Interleaving
    With ``N`` PEs, PE ``k`` owns the matrix rows ``i`` with ``i % N == k``; row ``i`` is local
    row ``i // N`` of that PE.

Entries
    For each PE and column ``j`` the nonzeros of the PE's column slice are stored in local-row
    order as ``(v, z)`` pairs: ``v`` is a 4-bit codebook index (never 0 for a real weight) and
    ``z`` a 4-bit count of zero rows since the previous stored entry of that slice (counting
    from local row 0). While the gap exceeds 15 a padding entry ``(v=0, z=15)`` is inserted and
    the gap drops by 16. Example: column ``[0,0,a,b, 0 x18, c]`` gives ``v = [a,b,0,c]`` and
    ``z = [2,0,15,2]``. Every ``v == 0`` entry, whatever its ``z``, carries no weight and moves
    the row by ``z + 1``: a layout may also end a column with fill entries ``(v=0, z=0)``
    (:mod:`sparsa.sw.eie.align`), which may sit past the PE's last row.

Entry byte
    ``entry = (z << 4) | v``: ``v`` in bits [3:0], ``z`` in bits [7:4].

Sparse-matrix word
    64 bits holding 8 consecutive entries; entry ``e`` of a PE's stream lives in word
    ``e // 8`` at bits ``[8*(e%8)+7 : 8*(e%8)]``. Unused tail lanes of the last word are 0.

Pointers
    Per PE and layer, ``cols + 1`` pointers: ``p[j]`` is the index of the first entry of column
    ``j`` and ``p[cols]`` the end of the stream. They are split into an even bank
    (``p[0], p[2], ...``) and an odd bank (``p[1], p[3], ...``) so that ``p[j]`` and ``p[j+1]``
    come out of two memories in one cycle. Pointer words are ``pointer_bits`` wide (EIE: 16;
    more when a PE holds more than 65,535 entries).

Codebook
    16 signed 16-bit shared values per layer; index 0 is always 0.

Bias
    One signed 32-bit word per output row, stored per PE by local row.
"""

from dataclasses import dataclass

import numpy as np

__all__ = [
    "V_BITS", "Z_BITS", "ENTRY_BITS", "ENTRIES_PER_WORD", "WORD_BITS", "PAD_Z", "PAD_SPAN",
    "CODEBOOK_SIZE", "CODEBOOK_BITS", "BIAS_BITS", "ACT_BITS", "MIN_POINTER_BITS",
    "ACT_MIN", "ACT_MAX", "BIAS_MIN", "BIAS_MAX",
    "PESlice", "encode_layer", "encode_layer_coo", "decode_layer_coo", "decode_layer", "slice_positions",
    "entries_to_words", "words_to_entries", "pointer_banks", "pointer_bits_for",
    "rows_of_pe", "local_rows",
]

V_BITS = 4
Z_BITS = 4
ENTRY_BITS = V_BITS + Z_BITS
ENTRIES_PER_WORD = 8
WORD_BITS = ENTRY_BITS * ENTRIES_PER_WORD     # 64
PAD_Z = (1 << Z_BITS) - 1                     # 15: the z of a padding entry
PAD_SPAN = PAD_Z + 1                          # a padding entry moves the row address by 16
CODEBOOK_SIZE = 1 << V_BITS                   # 16 shared values, index 0 = zero
CODEBOOK_BITS = 16
BIAS_BITS = 32
ACT_BITS = 16
MIN_POINTER_BITS = 16                         # EIE's pointer width
ACT_MIN, ACT_MAX = -(1 << (ACT_BITS - 1)), (1 << (ACT_BITS - 1)) - 1
BIAS_MIN, BIAS_MAX = -(1 << (BIAS_BITS - 1)), (1 << (BIAS_BITS - 1)) - 1


@dataclass
class PESlice:
    """One PE's share of one layer.

    Attributes
    ----------
    ptr : int64 array, shape (cols + 1,)
        Column pointers into this PE's entry stream; ``ptr[-1]`` = number of entries.
    v, z : uint8 arrays, shape (entries,)
        Codebook indices and zero counts (padding entries have ``v == 0``).
    """
    ptr: np.ndarray
    v: np.ndarray
    z: np.ndarray

    @property
    def entries(self):
        return int(self.v.size)

    @property
    def padding(self):
        return int(np.count_nonzero(self.v == 0))


def rows_of_pe(rows, pes, k):
    """Number of local rows PE ``k`` owns of a matrix with ``rows`` rows."""
    return max(0, (rows - k + pes - 1) // pes)


def local_rows(rows, pes):
    """Largest number of local rows any PE owns (PE 0's share)."""
    return rows_of_pe(rows, pes, 0)


def pointer_bits_for(max_entries):
    """Pointer word width able to address ``max_entries`` (the end pointer included)."""
    return max(MIN_POINTER_BITS, int(max_entries).bit_length())


def encode_layer_coo(rows, cols, i, j, v, pes):
    """Encode a sparse matrix given as coordinates into per-PE slices.

    Parameters
    ----------
    rows, cols : int
        Matrix shape (rows = outputs, cols = inputs).
    i, j : int arrays
        Row and column of each nonzero (each coordinate at most once, any order).
    v : int array
        Codebook index (1..15) of each nonzero.
    pes : int
        Number of PEs.

    Returns
    -------
    list of :class:`PESlice`, one per PE.

    Vectorised: about 0.3 s for 4 million nonzeros on one core (one int64 value sort, no
    argsort and no gathers by permutation).
    """
    i = np.asarray(i, dtype=np.int64)
    j = np.asarray(j, dtype=np.int64)
    v = np.asarray(v).astype(np.int64)
    n = i.size
    if n and (v.min() < 1 or v.max() >= CODEBOOK_SIZE):
        raise ValueError(f"codebook indices must be 1..{CODEBOOK_SIZE - 1}")
    rows_pe = max(1, local_rows(rows, pes))
    ngroups = pes * cols
    # One int64 key per nonzero: (PE, column, local row, v). Coordinates are unique, so the
    # keys are too and an unstable value sort (SIMD) replaces a far slower argsort.
    key = (i % pes) * cols + j
    key *= rows_pe
    key += i // pes
    key <<= V_BITS
    key |= v
    key.sort()
    vs = (key & ((1 << V_BITS) - 1)).astype(np.uint8)
    key >>= V_BITS
    group, loc = np.divmod(key, rows_pe)
    del key
    # gap = zero rows before this nonzero in its (PE, column) slice
    gap = np.empty(n, dtype=np.int64)
    if n:
        gap[0] = loc[0]
        np.subtract(loc[1:], loc[:-1], out=gap[1:])
        gap[1:] -= 1
        first = np.flatnonzero(group[1:] != group[:-1]) + 1
        gap[first] = loc[first]
    count = gap // PAD_SPAN                   # padding entries before this nonzero ...
    count += 1                                # ... plus the nonzero itself
    end = np.cumsum(count)
    total = int(end[-1]) if n else 0
    all_v = np.zeros(total, dtype=np.uint8)
    all_z = np.full(total, PAD_Z, dtype=np.uint8)
    end -= 1
    all_v[end] = vs
    all_z[end] = (gap & (PAD_SPAN - 1)).astype(np.uint8)
    # Entry offset of every (PE, column) group: entries of all nonzeros in earlier groups.
    cum = np.zeros(n + 1, dtype=np.int64)
    cum[1:] = end + 1
    gstart = cum[np.searchsorted(group, np.arange(ngroups + 1))]
    out = []
    for k in range(pes):
        p = gstart[k * cols:(k + 1) * cols + 1]
        a, b = int(p[0]), int(p[-1])
        out.append(PESlice(ptr=p - a, v=all_v[a:b].copy(), z=all_z[a:b].copy()))
    return out


def encode_layer(index, pes):
    """Encode a dense matrix of codebook indices (0 = zero weight) into per-PE slices."""
    index = np.asarray(index)
    rows, cols = index.shape
    i, j = np.nonzero(index)
    return encode_layer_coo(rows, cols, i, j, index[i, j], pes)


def slice_positions(s):
    """``(col, local_row)`` of every entry of one PE's slice, padding included."""
    col = np.repeat(np.arange(len(s.ptr) - 1, dtype=np.int64), np.diff(s.ptr))
    # Running row position: each entry advances it by z + 1; it restarts at every column,
    # so subtract the running sum reached before the column's first entry.
    run = np.cumsum(s.z.astype(np.int64) + 1)
    start = s.ptr[:-1]
    col_base = np.where(start > 0, run[np.maximum(start - 1, 0)], 0)
    return col, run - 1 - col_base[col]


def decode_layer_coo(slices, rows, cols):
    """Inverse of :func:`encode_layer_coo`: returns ``(i, j, v)`` of every real entry.

    Coordinates come out sorted by PE, then column, then row.
    """
    pes = len(slices)
    out_i, out_j, out_v = [], [], []
    for k, s in enumerate(slices):
        if s.entries == 0:
            continue
        col, loc = slice_positions(s)
        real = s.v != 0
        out_i.append(loc[real] * pes + k)
        out_j.append(col[real])
        out_v.append(s.v[real])
    if not out_i:
        e = np.zeros(0, dtype=np.int64)
        return e, e, np.zeros(0, dtype=np.uint8)
    i = np.concatenate(out_i)
    if i.size and i.max() >= rows:
        raise ValueError(f"decoded row {int(i.max())} outside {rows} rows")
    return i, np.concatenate(out_j), np.concatenate(out_v)


def decode_layer(slices, rows, cols):
    """Inverse of :func:`encode_layer`: the dense (rows, cols) uint8 index matrix."""
    i, j, v = decode_layer_coo(slices, rows, cols)
    out = np.zeros((rows, cols), dtype=np.uint8)
    out[i, j] = v
    return out


def entries_to_words(v, z):
    """Pack entries 8 to a 64-bit word (uint64 array, last word zero-filled)."""
    n = v.size
    nwords = (n + ENTRIES_PER_WORD - 1) // ENTRIES_PER_WORD
    byte = np.zeros(nwords * ENTRIES_PER_WORD, dtype=np.uint8)
    byte[:n] = (z.astype(np.uint8) << V_BITS) | v.astype(np.uint8)
    # Little-endian byte order puts entry 0 in bits [7:0].
    return byte.view("<u8").astype(np.uint64)


def words_to_entries(words, n):
    """Inverse of :func:`entries_to_words`: the first ``n`` (v, z) entries."""
    byte = np.ascontiguousarray(np.asarray(words, dtype=np.uint64).astype("<u8")).view(np.uint8)[:n]
    return byte & ((1 << V_BITS) - 1), byte >> V_BITS


def pointer_banks(ptr):
    """Split a pointer list into its even and odd banks (EIE's dual-bank pointer memory)."""
    ptr = np.asarray(ptr)
    return ptr[0::2].copy(), ptr[1::2].copy()
