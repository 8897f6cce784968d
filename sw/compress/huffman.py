"""Huffman code lengths for Deep Compression's last stage (section 4).

Only the lengths matter for size accounting: ``sum(freq * length)`` is the exact size of the
coded stream, and a canonical Huffman code is fully described by its lengths. We count the
code table as ``TABLE_BITS_PER_SYMBOL`` bits per symbol of the alphabet (the length of each
symbol's code, 0 for unused symbols), as a canonical-code decoder would load it.
"""

import heapq

import numpy as np

__all__ = ["code_lengths", "coded_bits", "coded_bits_of_freqs", "TABLE_BITS_PER_SYMBOL"]

TABLE_BITS_PER_SYMBOL = 5     # a code length 0..31 per alphabet symbol


def code_lengths(freqs):
    """Optimal (Huffman) code length of each symbol.

    Parameters
    ----------
    freqs : sequence of int >= 0
        Frequency of each symbol of the alphabet.

    Returns
    -------
    int64 array of ``len(freqs)``: 0 for symbols that never occur; 1 when only one symbol
    occurs (a stream still needs one bit per symbol to count them).

    Ties are broken by insertion order, so the result is deterministic.
    """
    freqs = np.asarray(freqs, dtype=np.int64)
    lengths = np.zeros(freqs.size, dtype=np.int64)
    present = np.flatnonzero(freqs > 0)
    if present.size == 1:
        lengths[present] = 1
    if present.size <= 1:
        return lengths
    # Heap items: (weight, tie-break counter, symbols under this node). Each merge pushes
    # every symbol under the two merged nodes one level deeper.
    heap = [(int(freqs[s]), n, [int(s)]) for n, s in enumerate(present)]
    heapq.heapify(heap)
    counter = len(heap)
    while len(heap) > 1:
        fa, _, a = heapq.heappop(heap)
        fb, _, b = heapq.heappop(heap)
        lengths[a] += 1
        lengths[b] += 1
        heapq.heappush(heap, (fa + fb, counter, a + b))
        counter += 1
    return lengths


def coded_bits(symbols, alphabet):
    """Size in bits of ``symbols`` (ints in ``range(alphabet)``) Huffman-coded, table included."""
    return coded_bits_of_freqs(np.bincount(np.asarray(symbols, dtype=np.int64).ravel(), minlength=alphabet))


def coded_bits_of_freqs(freqs):
    """:func:`coded_bits` from the symbol frequencies (one per symbol of the alphabet)."""
    freqs = np.asarray(freqs, dtype=np.int64)
    return int(np.sum(freqs * code_lengths(freqs))) + TABLE_BITS_PER_SYMBOL * freqs.size
