"""Packing: weight-shared sparse layers into per-PE EIE memory images, and back.

A :class:`Pack` is a whole network ready for an EIE PE array: for every layer the codebook,
the bias, the output shift/ReLU and one :class:`~sparsa.sw.eie.format.PESlice` per PE. It is
built from an exact integer matrix (:func:`pack_matrix`) or from a compressed model written
by ``sparsa compress`` (:func:`pack_compressed`) and inverted (:func:`unpack`); the pack
directory on disk (write, read back, verify) is :mod:`sparsa.sw.eie.pack_dir`. Word layouts all come from :mod:`sparsa.sw.eie.format`.
"""

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sparsa.sw.eie import format as ef
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import check_int_range, load_npz, loads_json
from sparsa.sw.eie.golden import GoldenLayer, run_layers

__all__ = [
    "PackLayer", "Pack", "make_layer", "pack_matrix", "pack_compressed", "unpack",
    "check_pes", "check_shift", "check_bias", "MAX_SHIFT",
]

MAX_SHIFT = 62          # (acc + 2**(S-1)) >> S must stay inside int64


@dataclass
class PackLayer:
    """One layer of a :class:`Pack`.

    Attributes
    ----------
    name : str
    rows, cols : int
        Outputs and inputs.
    codebook : int16 array (16,)
        Shared weight values; ``codebook[0] == 0``.
    bias : int32 array (rows,)
    shift : int
        Rounding right shift of the accumulator (0..62).
    relu : bool
    slices : list of PESlice
        One per PE (row ``i`` belongs to PE ``i % pes``).
    nnz : int
        Stored (non-padding) entries.
    out_frac_bits, in_frac_bits, weight_frac_bits : int or None
        Fixed-point scales when the layer came from a compressed model.
    """
    name: str
    rows: int
    cols: int
    codebook: np.ndarray
    bias: np.ndarray
    shift: int
    relu: bool
    slices: list
    nnz: int
    out_frac_bits: int = None
    in_frac_bits: int = None
    weight_frac_bits: int = None

    @property
    def pes(self):
        return len(self.slices)

    @property
    def entries_per_pe(self):
        """Entries per PE, padding included."""
        return [s.entries for s in self.slices]

    @property
    def padding_per_pe(self):
        return [s.padding for s in self.slices]

    @property
    def real_per_pe(self):
        """Stored nonzeros (entries that are not padding) per PE."""
        return [s.entries - s.padding for s in self.slices]

    @property
    def rows_per_pe(self):
        return [ef.rows_of_pe(self.rows, self.pes, k) for k in range(self.pes)]

    @property
    def words_per_pe(self):
        """64-bit sparse-matrix words per PE."""
        return [-(-s.entries // ef.ENTRIES_PER_WORD) for s in self.slices]

    def coo(self):
        """``(i, j, index)`` of every stored entry (decoded from the slices)."""
        return ef.decode_layer_coo(self.slices, self.rows, self.cols)

    def golden(self):
        """This layer as a :class:`~sparsa.sw.eie.golden.GoldenLayer` (from the decoded slices)."""
        i, j, v = self.coo()
        values = self.codebook.astype(np.int64)[v]
        return GoldenLayer.from_coo(self.rows, self.cols, i, j, values, self.bias, self.shift, self.relu)

    def weight(self):
        """Dense int16 (rows, cols) weights."""
        i, j, v = self.coo()
        w = np.zeros((self.rows, self.cols), dtype=np.int16)
        w[i, j] = self.codebook[v]
        return w


@dataclass
class Pack:
    """A network packed for ``pes`` PEs.

    Attributes
    ----------
    pes : int
    layers : list of PackLayer
    pointer_bits : int
        Pointer word width; computed from the largest per-PE entry count when omitted.
    input_frac_bits : int or None
        Fractional bits of the input activations (None for a matrix packed exactly).
    lstm : dict or None
        For an LSTM (see :mod:`sparsa.sw.lstm.pack`): its sizes and the peephole words.
    """
    pes: int
    layers: list
    pointer_bits: int = None
    input_frac_bits: int = None
    lstm: dict = None
    _golden: list = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        need = ef.pointer_bits_for(max([0] + [e for l in self.layers for e in l.entries_per_pe]))
        if self.pointer_bits is None:
            self.pointer_bits = need
        elif self.pointer_bits < need:
            raise ValueError(f"pointer_bits {self.pointer_bits} cannot address {need}-bit pointers")

    @property
    def input_cols(self):
        return self.lstm["inputs"] if self.lstm else self.layers[0].cols

    @property
    def output_rows(self):
        return self.lstm["outputs"] if self.lstm else self.layers[-1].rows

    def golden_layers(self):
        """The layers as :class:`GoldenLayer` objects, built from the decoded slices (cached)."""
        if self._golden is None:
            self._golden = [l.golden() for l in self.layers]
        return self._golden

    def run_golden(self, x):
        """Bit-exact forward pass of int16 ``x`` ((cols,) or (batch, cols)) -> int16.

        For an LSTM pack ``x`` is a sequence (T, inputs) and the result (T, outputs)."""
        if self.lstm:
            from sparsa.sw.eie.lstm_step import lstm_golden
            return lstm_golden(self, x)
        return run_layers(self.golden_layers(), x)


#
# Validation shared by the API and the CLIs
#

def check_pes(pes, where="--pes"):
    if isinstance(pes, bool) or not isinstance(pes, (int, np.integer)) or pes < 1:
        raise user_error(None, where, "a PE count >= 1", repr(pes))
    return int(pes)


def check_shift(shift, where="--shift"):
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)) or not 0 <= shift <= MAX_SHIFT:
        raise user_error(None, where, f"a shift in 0..{MAX_SHIFT}", repr(shift))
    return int(shift)


def check_bias(bias, rows, where="bias", field_="bias"):
    """Validate a per-row bias (None = zeros) and return it as int32."""
    if bias is None:
        return np.zeros(rows, dtype=np.int32)
    b = np.asarray(bias)
    if b.dtype.kind not in "biuf":
        raise user_error(where, field_, "a numeric array", f"dtype {b.dtype}")
    if b.shape != (rows,):
        raise user_error(where, f"{field_} shape", f"({rows},) (one value per output row)", str(b.shape))
    check_int_range(b, ef.BIAS_MIN, ef.BIAS_MAX, where, field_, "int32")
    return b.astype(np.int32)


def make_layer(name, rows, cols, i, j, index, codebook, pes, bias=None, shift=0, relu=False, **frac):
    """Encode one layer from coordinates and codebook indices (1..15) of its nonzeros."""
    codebook = np.asarray(codebook, dtype=np.int16)
    slices = ef.encode_layer_coo(rows, cols, i, j, index, pes)
    return PackLayer(name=name, rows=int(rows), cols=int(cols), codebook=codebook,
                     bias=check_bias(bias, rows), shift=int(shift), relu=bool(relu),
                     slices=slices, nnz=int(np.size(i)), **frac)


def pack_matrix(int_matrix, pes, bias=None, shift=0, relu=False, *, where="matrix", bias_where="bias"):
    """Pack an integer weight matrix exactly.

    ``int_matrix`` (rows, cols) must hold int16 values with at most 15 distinct nonzeros; its
    sorted distinct nonzero values become codebook entries 1..n (the rest stay 0). ``where``
    and ``bias_where`` name the sources in error messages.
    """
    pes = check_pes(pes)
    shift = check_shift(shift)
    w = np.asarray(int_matrix)
    if w.dtype.kind not in "biuf":
        raise user_error(where, "weights", "a numeric array", f"dtype {w.dtype}")
    if w.ndim != 2:
        raise user_error(where, "weight matrix rank", "2 dimensions (rows, cols)", f"shape {w.shape}")
    if 0 in w.shape:
        raise user_error(where, "weight matrix shape", "at least 1 row and 1 column", str(w.shape))
    check_int_range(w, ef.ACT_MIN, ef.ACT_MAX, where, "weights", "int16")
    i, j = np.nonzero(w)
    vals = w[i, j].astype(np.int64)
    distinct = np.unique(vals)
    if distinct.size > ef.CODEBOOK_SIZE - 1:
        raise user_error(where, "distinct nonzero weight values",
                         f"at most {ef.CODEBOOK_SIZE - 1} (4-bit codebook, index 0 = zero)", distinct.size)
    codebook = np.zeros(ef.CODEBOOK_SIZE, dtype=np.int16)
    codebook[1:distinct.size + 1] = distinct
    index = np.searchsorted(distinct, vals) + 1
    bias = check_bias(bias, w.shape[0], bias_where)
    layer = make_layer("layer0", *w.shape, i, j, index, codebook, pes, bias, shift, relu)
    return Pack(pes=pes, layers=[layer])


def _meta_int(where, field_, value, lo, hi, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise user_error(where, field_, f"an integer in {lo}..{hi}", repr(value))
    return value


def pack_compressed(path_or_arrays, pes):
    """Pack a compressed model (the ``.npz`` of ``sparsa compress``, or its arrays as a dict)."""
    pes = check_pes(pes)
    if isinstance(path_or_arrays, (str, Path)):
        where = str(path_or_arrays)
        arrays = load_npz(path_or_arrays, what="compressed model")
    else:
        where, arrays = "compressed model", dict(path_or_arrays)
    if "meta" not in arrays:
        raise user_error(where, "meta", "a 'meta' entry (a .npz written by 'sparsa compress'; "
                         "compress a float model first)", "none")
    meta = loads_json(str(np.asarray(arrays["meta"])[()]), where, "meta")
    if not isinstance(meta, dict) or meta.get("format") != "sparsa-compressed":
        raise user_error(where, "meta.format", "'sparsa-compressed'",
                         repr(meta.get("format") if isinstance(meta, dict) else meta))
    if meta.get("version") != 1:
        raise user_error(where, "meta.version", "1", repr(meta.get("version")))
    specs = meta.get("layers")
    if not isinstance(specs, list) or not specs:
        raise user_error(where, "meta.layers", "a non-empty list", repr(specs))
    layers, prev_rows = [], None
    for k, spec in enumerate(specs):
        f = f"layer{k}"
        try:
            rows, cols = int(spec["rows"]), int(spec["cols"])
        except (KeyError, TypeError, ValueError):
            raise user_error(where, f"meta.layers[{k}]", "rows and cols", repr(spec))
        if prev_rows is not None and cols != prev_rows:
            raise user_error(where, f"meta.layers[{k}].cols", f"{prev_rows} (the previous layer's rows)", cols)
        prev_rows = rows
        for key in (f"{f}.index", f"{f}.codebook", f"{f}.bias"):
            if key not in arrays:
                raise user_error(where, key, "an array", "none")
        index = arrays[f"{f}.index"]
        if index.shape != (rows, cols) or index.dtype.kind not in "iu":
            raise user_error(where, f"{f}.index", f"integer array of shape ({rows}, {cols})",
                             f"{index.dtype} {index.shape}")
        check_int_range(index, 0, ef.CODEBOOK_SIZE - 1, where, f"{f}.index", "4-bit codebook index")
        codebook = arrays[f"{f}.codebook"]
        if codebook.shape != (ef.CODEBOOK_SIZE,) or codebook.dtype.kind not in "iuf":
            raise user_error(where, f"{f}.codebook", f"shape ({ef.CODEBOOK_SIZE},)", f"{codebook.dtype} {codebook.shape}")
        check_int_range(codebook, ef.ACT_MIN, ef.ACT_MAX, where, f"{f}.codebook", "int16")
        if codebook[0] != 0:
            raise user_error(where, f"{f}.codebook[0]", "0 (index 0 is the pruned weight)", int(codebook[0]))
        shift = _meta_int(where, f"meta.layers[{k}].shift", spec.get("shift", 0), 0, MAX_SHIFT)
        frac = {n: _meta_int(where, f"meta.layers[{k}].{n}", spec.get(n), -64, 64, allow_none=True)
                for n in ("in_frac_bits", "weight_frac_bits", "out_frac_bits")}
        i, j = np.nonzero(index)
        layers.append(make_layer(str(spec.get("name", f)), rows, cols, i, j, index[i, j], codebook, pes,
                                 check_bias(arrays[f"{f}.bias"], rows, where, f"{f}.bias"),
                                 shift, bool(spec.get("relu", False)), **frac))
    fx0 = _meta_int(where, "meta.input_frac_bits", meta.get("input_frac_bits"), -64, 64, allow_none=True)
    return Pack(pes=pes, layers=layers, input_frac_bits=fx0)


def unpack(pack):
    """The exact weights and biases: ``{"layer{k}.weight": int16 (rows, cols), "layer{k}.bias": int32}``."""
    out = {}
    for k, layer in enumerate(pack.layers):
        out[f"layer{k}.weight"] = layer.weight()
        out[f"layer{k}.bias"] = np.asarray(layer.bias, dtype=np.int32).copy()
    return out
