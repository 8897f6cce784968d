"""Size and error accounting of a compressed MLP: what EIE stores for its weights and how far
the stored weights are from the float ones (``sparsa compress``'s table, :mod:`sparsa.report`).

Sizes count the EIE format exactly: 8-bit (v, z) entries including padding for the chosen PE
count, ``PEs x (cols + 1)`` pointers of the exact width and a 16-entry codebook; the Huffman
variant codes the v and z streams separately. A big layer is encoded a block of columns at a
time and its errors summed a block of rows at a time (:mod:`.blocks`).
"""

import numpy as np

from sparsa.sw.compress import blocks
from sparsa.sw.compress.blocks import row_ranges
from sparsa.sw.compress.huffman import coded_bits_of_freqs
from sparsa.sw.eie.format import CODEBOOK_SIZE, encode_layer, pointer_bits_for
from sparsa.sw.fixedpoint import dequantize

__all__ = ["compression_report", "storage_bits", "layer_storage"]


def _storage(entries_per_pe, v_freqs, z_freqs, cols):
    """The size dict of :func:`storage_bits` from per-PE entry counts and stream frequencies."""
    entries = int(np.sum(entries_per_pe))
    width = pointer_bits_for(int(np.max(entries_per_pe)))
    pointer = len(entries_per_pe) * (cols + 1) * width
    codebook = CODEBOOK_SIZE * 16
    return {"entries": entries, "pointer_width": width, "pointer": pointer, "codebook": codebook,
            "eie": entries * 8 + pointer + codebook,
            "huffman": coded_bits_of_freqs(v_freqs) + coded_bits_of_freqs(z_freqs) + pointer + codebook}


def _freqs(streams):
    return sum((np.bincount(s, minlength=16) for s in streams), np.zeros(16, np.int64))


def storage_bits(slices, cols):
    """What EIE stores for one layer's weights, in bits, from its per-PE slices.

    ``entries`` (padding included) of 8 bits each, ``pointer`` = PEs x (cols + 1) pointers of
    ``pointer_width`` bits, a 16 x 16-bit ``codebook``; ``eie`` is their sum and ``huffman``
    the same with the v and z streams Huffman-coded (code tables included).
    """
    return _storage([s.entries for s in slices], _freqs(s.v for s in slices), _freqs(s.z for s in slices), cols)


def layer_storage(index, pes):
    """:func:`storage_bits` of the layer ``index`` encoded on ``pes`` PEs: ``(size dict,
    padding entries, v-stream frequencies)`` (``v_freqs[i]`` = entries with codebook index i).

    A (PE, column) slice depends on its column alone, so a big layer is encoded a block of
    columns at a time and the counts added: the encoder's per-nonzero arrays (about 80 bytes
    per kept weight) then never exist for the whole layer at once.
    """
    rows, cols = index.shape
    step = cols if index.size <= blocks.BLOCK_WEIGHTS else max(1, blocks.BLOCK_WEIGHTS // max(1, rows))
    entries, padding = np.zeros(pes, np.int64), 0
    v_freqs, z_freqs = np.zeros(16, np.int64), np.zeros(16, np.int64)
    for c0 in range(0, cols, step):
        slices = encode_layer(index[:, c0:c0 + step], pes)
        entries += [s.entries for s in slices]
        padding += sum(s.padding for s in slices)
        v_freqs += _freqs(s.v for s in slices)
        z_freqs += _freqs(s.z for s in slices)
    return _storage(entries, v_freqs, z_freqs, cols), padding, v_freqs


def _error_sums(layer, float_layer):
    """Sums of squares for the weight errors of ``layer`` against the float weights, a block of
    rows at a time (never a dense float64 copy of a big layer): (err all, ref all, err kept,
    ref kept)."""
    sums = np.zeros(4)
    cb = layer.codebook.astype(np.int64)
    for r0, r1 in row_ranges(layer.rows, layer.cols):
        index = layer.index[r0:r1]
        w0 = np.asarray(float_layer.weight[r0:r1], dtype=np.float64)
        err = dequantize(cb[index], layer.weight_frac_bits) - w0
        keep = index > 0
        sums += (np.sum(err ** 2), np.sum(w0 ** 2), np.sum(err[keep] ** 2), np.sum(w0[keep] ** 2))
    return sums


def _layer_report(layer, float_layer, pes):
    """Sizes in the EIE format (padding and pointers counted exactly) and weight errors."""
    nnz = int(np.count_nonzero(layer.index))
    size, padding, v_freqs = layer_storage(layer.index, pes)
    entries, pbits, eie_bits, huff_bits = size["entries"], size["pointer_width"], size["eie"], size["huffman"]
    err_all, ref_all, err_kept, ref_kept = _error_sums(layer, float_layer)
    return {
        "name": layer.name, "rows": layer.rows, "cols": layer.cols, "weights": layer.index.size,
        "nonzeros": nnz, "density": layer.density,
        "shared_values": int(np.count_nonzero(v_freqs[1:])),
        "entries": entries, "padding_entries": padding,
        "pointer_bits": pbits, "eie_bits": eie_bits, "huffman_bits": huff_bits,
        "bits_per_nonzero": eie_bits / nnz if nnz else None,
        "bits_per_nonzero_huffman": huff_bits / nnz if nnz else None,
        "compression_ratio": 32 * layer.index.size / eie_bits,
        "compression_ratio_huffman": 32 * layer.index.size / huff_bits,
        "weight_rel_rms_all": _rel_rms(err_all, ref_all),
        "weight_rel_rms_kept": _rel_rms(err_kept, ref_kept),
        "in_frac_bits": layer.in_frac_bits, "weight_frac_bits": layer.weight_frac_bits,
        "out_frac_bits": layer.out_frac_bits, "shift": layer.shift,
        "bias_saturated": layer.bias_saturated, "codebook_nudged": layer.codebook_nudged,
        "_sq": (float(err_all), float(ref_all)),
    }


def _rel_rms(err_sq, ref_sq):
    """sqrt(sum err^2 / sum ref^2) from the two sums of squares (0 for an all-zero reference)."""
    return float(np.sqrt(err_sq) / np.sqrt(ref_sq)) if ref_sq > 0 else 0.0


def compression_report(model, float_layers, pes=1):
    """Per-layer and total sizes, ratios and errors of ``model`` against the float layers.

    Sizes count what EIE stores for the weights (bias excluded, as in Deep Compression):
    8-bit (v, z) entries including padding for ``pes`` PEs, ``pes * (cols + 1)`` pointers of
    the exact pointer width, and a 16 x 16-bit codebook. The Huffman variant codes the v and
    z streams separately (code tables included). Ratios are against fp32 dense weights.
    """
    layers = [_layer_report(c, f, pes) for c, f in zip(model.layers, float_layers)]
    tot = {k: sum(r[k] for r in layers) for k in ("weights", "nonzeros", "eie_bits", "huffman_bits")}
    sq = [r.pop("_sq") for r in layers]
    den = sum(s[1] for s in sq)
    tot.update({
        "density": tot["nonzeros"] / tot["weights"],
        "bits_per_nonzero": tot["eie_bits"] / tot["nonzeros"] if tot["nonzeros"] else None,
        "bits_per_nonzero_huffman": tot["huffman_bits"] / tot["nonzeros"] if tot["nonzeros"] else None,
        "compression_ratio": 32 * tot["weights"] / tot["eie_bits"],
        "compression_ratio_huffman": 32 * tot["weights"] / tot["huffman_bits"],
        "weight_rel_rms_all": float(np.sqrt(sum(s[0] for s in sq) / den)) if den > 0 else 0.0,
    })
    return {"pes": pes, "input_frac_bits": model.input_frac_bits, "layers": layers, "total": tot}
