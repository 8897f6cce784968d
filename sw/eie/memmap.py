"""How a multi-layer EIE pack is laid out in the PE array's memories (the hardware memory map).

A pack (:mod:`sparsa.sw.eie.pack`) holds one set of images per layer and PE. The PE array keeps
every layer on chip at once, so per PE the layers are concatenated:

``spm`` (64-bit sparse-matrix words)
    Layer ``L`` of PE ``k`` starts at word ``EB[k][L]`` = total words of that PE's earlier
    layers (each layer starts on a word boundary). Pointers stored in hardware are absolute
    entry indices: ``8 * EB[k][L] + p``.
``ptr_even`` / ``ptr_odd`` (``pointer_bits`` wide)
    Layer ``L`` occupies bank words ``PB[L] .. PB[L] + ceil((cols_L + 1) / 2) - 1`` in both banks:
    bank word ``PB[L] + t`` holds ``p[2t]`` (even) and ``p[2t + 1]`` (odd). The base is the same
    for every PE, so the column ``j`` maps to pointer index ``q = 2 * PB[L] + j``; ``p_j`` and
    ``p_j+1`` are read from ``even[(q + 1) >> 1]`` and ``odd[q >> 1]`` (swapped when q is odd).
``bias`` (32-bit)
    Layer ``L`` at word ``BB[L]`` = sum of earlier layers' local rows (``ceil(rows / N)``), by
    local row, the same base for every PE (rows a PE does not own hold 0).
Layer table (central control)
    Per layer: ``cols``, ``rows``, ``rows_pe`` (= ``ceil(rows / N)``), ``ptr_base`` (PB),
    ``bias_base`` (BB), ``shift``, ``relu``, ``ew`` (1: an LSTM gates layer, drained through
    the element-wise unit), and the 16-entry codebook.
``peep`` (LSTM packs only)
    Per PE, one int16 peephole weight per gates-layer local row (w_ic, w_fc, 0, w_oc per cell).

The generator uses these arrays as memory initial contents; the runner writes the same arrays
through the load port. Bitstream patching later rewrites exactly these words.
"""

from dataclasses import dataclass, field

import numpy as np

from sparsa.sw.eie.format import ENTRIES_PER_WORD, entries_to_words, local_rows, pointer_bits_for

__all__ = ["LAYER_FIELDS", "LayerEntry", "MemoryMap", "build_memory_map"]

# Order of the layer-table fields as addressed by the load port (addr = layer * 8 + index).
LAYER_FIELDS = ("cols", "rows", "rows_pe", "ptr_base", "bias_base", "shift", "relu", "ew")


@dataclass
class LayerEntry:
    cols: int
    rows: int
    rows_pe: int
    ptr_base: int
    bias_base: int
    shift: int
    relu: int
    codebook: np.ndarray          # int16 (16,)
    ew: int = 0                   # LSTM gates layer: drain through the element-wise unit

    def field_values(self):
        return [int(getattr(self, f)) for f in LAYER_FIELDS]


@dataclass
class MemoryMap:
    """Per-PE memory contents for the whole pack (see module docstring)."""
    pes: int
    layers: list                  # of LayerEntry
    spm: list                     # per PE: uint64 words
    ptr_even: list                # per PE: int64
    ptr_odd: list
    bias: list                    # per PE: int64 (int32 values)
    entries: list = field(default_factory=list)   # per PE: total entries
    peep: list = None             # LSTM: per PE, int16 peephole word per gates-layer local row

    @property
    def spm_words(self):
        return max((w.size for w in self.spm), default=0)

    @property
    def ptr_words(self):
        return max((p.size for p in self.ptr_even), default=0)

    @property
    def bias_words(self):
        return max((b.size for b in self.bias), default=0)

    @property
    def pointer_bits(self):
        return pointer_bits_for(max((self.spm_words * ENTRIES_PER_WORD), 1))

    @property
    def max_cols(self):
        return max(max(l.cols, l.rows) for l in self.layers)

    @property
    def max_rows_pe(self):
        return max(l.rows_pe for l in self.layers)

    @property
    def act_words(self):
        """Activation-file words per PE: every layer's input slots and the outputs it writes
        back (an LSTM gates layer writes one m per cell, a quarter of its rows)."""
        return max(max(-(-l.cols // self.pes), l.rows_pe // 4 if l.ew else l.rows_pe) for l in self.layers)


def build_memory_map(pack):
    """Lay out every layer of ``pack`` (a :class:`sparsa.sw.eie.pack.Pack`) in PE memories."""
    pes = pack.pes
    layers, ptr_base, bias_base = [], 0, 0
    spm = [[] for _ in range(pes)]
    ptr_e = [[] for _ in range(pes)]
    ptr_o = [[] for _ in range(pes)]
    bias = [[] for _ in range(pes)]
    word_base = [0] * pes
    for layer in pack.layers:
        rows_pe = local_rows(layer.rows, pes)
        bank_words = (layer.cols + 2) // 2          # ceil((cols + 1) / 2)
        full_bias = np.zeros(rows_pe * pes, dtype=np.int64)
        full_bias[:layer.rows] = np.asarray(layer.bias, dtype=np.int64)
        per_pe_bias = full_bias.reshape(rows_pe, pes).T   # [k, r] = bias of row r * N + k
        for k, s in enumerate(layer.slices):
            words = entries_to_words(s.v, s.z)
            ptr = np.zeros(2 * bank_words, dtype=np.int64)
            ptr[:layer.cols + 1] = s.ptr + ENTRIES_PER_WORD * word_base[k]
            # Unused odd slot after the end pointer repeats it (harmless, keeps banks equal).
            ptr[layer.cols + 1:] = ptr[layer.cols]
            spm[k].append(words)
            ptr_e[k].append(ptr[0::2])
            ptr_o[k].append(ptr[1::2])
            bias[k].append(per_pe_bias[k])
            word_base[k] += words.size
        cb = np.zeros(16, dtype=np.int16)
        cb[:len(layer.codebook)] = layer.codebook
        layers.append(LayerEntry(cols=layer.cols, rows=layer.rows, rows_pe=rows_pe,
                                 ptr_base=ptr_base, bias_base=bias_base,
                                 shift=int(layer.shift), relu=int(bool(layer.relu)), codebook=cb))
        ptr_base += bank_words
        bias_base += rows_pe
    cat = lambda parts, dt: np.concatenate(parts).astype(dt) if parts else np.zeros(0, dt)
    peep = None
    if getattr(pack, "lstm", None):
        layers[0].ew = 1
        peep = [np.asarray(pack.lstm["peep"], dtype=np.int64)[k::pes] for k in range(pes)]
    return MemoryMap(
        pes=pes, layers=layers,
        spm=[cat(p, np.uint64) for p in spm],
        ptr_even=[cat(p, np.int64) for p in ptr_e],
        ptr_odd=[cat(p, np.int64) for p in ptr_o],
        bias=[cat(p, np.int64) for p in bias],
        entries=[sum(s.entries for s in (l.slices[k] for l in pack.layers)) for k in range(pes)],
        peep=peep,
    )
