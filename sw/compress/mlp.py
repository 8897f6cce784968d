"""Deep Compression of an MLP for EIE: prune, share weights, go to fixed point, save.

The pipeline (:func:`compress_model`) is

1. prune each layer by magnitude (:mod:`.prune`; ESE-balanced over PEs on request),
2. share the kept weights by linear-initialised k-means (:mod:`.share`),
3. choose the fixed-point formats (:func:`to_fixed_point`) and quantize codebooks and biases.

Fixed point (per layer ``k``; see docs/compression.md)
    * activations are int16 with ``f`` fractional bits: input ``fx``, output ``fy``;
    * the codebook is int16 with ``fw`` fractional bits (a power-of-two scale per layer);
    * the bias is int32 at scale ``2**-(fx + fw)``, the accumulator's scale;
    * ``shift = fx + fw - fy >= 0``, and the golden model computes
      ``y = relu?(sat16((bias + sum codebook[idx] * x + 2**(S-1)) >> S))``.

The compressed file is an ``.npz`` (format "sparsa-compressed", version 1) read back by
:func:`load_compressed`; the packer consumes it.
"""

import json
from dataclasses import dataclass, field

import numpy as np

from sparsa.sw.eie.format import BIAS_MAX, BIAS_MIN, CODEBOOK_SIZE
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import load_npz, loads_json, save_npz
from sparsa.sw.fixedpoint import INT16_MAX, INT16_MIN, dequantize, quantize
from sparsa.sw.eie.golden import GoldenLayer, run_layers
from sparsa.sw.compress.blocks import row_ranges
from sparsa.sw.compress.prune import balanced_mask, fill_padding, magnitude_mask
from sparsa.sw.compress.report import compression_report, layer_storage, storage_bits
from sparsa.sw.compress.share import MAX_BITS, kmeans_share, shared_weights

__all__ = [
    "FORMAT", "VERSION", "DEFAULT_INPUT_BOUND", "CompressedLayer", "CompressedModel",
    "prune_and_share", "activation_bounds", "act_frac_bits", "weight_frac_bits",
    "quantize_codebook", "to_fixed_point", "compress_model", "golden_layers",
    "run_compressed", "save_compressed", "load_compressed", "check_options",
    "compression_report", "storage_bits", "layer_storage",
]

FORMAT, VERSION = "sparsa-compressed", 1
DEFAULT_INPUT_BOUND = 4.0     # without --calib: inputs assumed in [-4, 4)
ACT_HEADROOM_LOG2 = 14        # calibrated |activation| * 2**f <= 2**14: one bit of headroom
ACT_FRAC_MAX = 15
WEIGHT_FRAC_MAX = 30


@dataclass
class CompressedLayer:
    """One compressed layer, exactly what the ``.npz`` stores (plus two report-only counts).

    Attributes
    ----------
    name : str
    index : uint8 (rows, cols)        0 = pruned, else 1..2**bits - 1
    codebook : int16 (16,)            real weight = codebook[index] * 2**-weight_frac_bits
    bias : int32 (rows,)              at scale 2**-(in_frac_bits + weight_frac_bits)
    centroids : float32 (16,)         the float shared values, centroids[0] = 0
    bits, in_frac_bits, weight_frac_bits, out_frac_bits, shift : int
    relu : bool
    bias_saturated, codebook_nudged : int
        Biases clipped to int32 and codebook entries moved off zero (not saved).
    """
    name: str
    index: np.ndarray
    codebook: np.ndarray
    bias: np.ndarray
    centroids: np.ndarray
    bits: int
    in_frac_bits: int
    weight_frac_bits: int
    out_frac_bits: int
    shift: int
    relu: bool
    bias_saturated: int = 0
    codebook_nudged: int = 0

    @property
    def rows(self):
        return self.index.shape[0]

    @property
    def cols(self):
        return self.index.shape[1]

    @property
    def density(self):
        return float(np.count_nonzero(self.index) / self.index.size)

    def int_weight(self):
        """The int16 weight matrix (dense int64): ``codebook[index]``."""
        return self.codebook.astype(np.int64)[self.index]

    def weight(self):
        """The dequantized float weight matrix."""
        return dequantize(self.int_weight(), self.weight_frac_bits)


@dataclass
class CompressedModel:
    source: str
    input_frac_bits: int
    layers: list = field(default_factory=list)


#
# Pruning and sharing
#

def check_options(density, bits, pes=None, pad_free=False):
    """Validate the compression options (clear one-line UserErrors)."""
    if not 0.0 < density <= 1.0:
        raise user_error(None, "--density", "a fraction in (0, 1]", f"{density}")
    if not 1 <= bits <= MAX_BITS:
        raise user_error(None, "--bits", f"an integer in 1..{MAX_BITS} (EIE index is 4 bits)", f"{bits}")
    if pes is not None and pes < 1:
        raise user_error(None, "--balance-pes", "an integer >= 1", f"{pes}")
    if pad_free and pes is None:
        raise user_error(None, "--pad-free", "--balance-pes N as well (padding depends on the PE count)",
                         "--pad-free alone")


def prune_and_share(layers, density, bits, pes=None, *, on_layer=None, pad_free=False):
    """Prune every layer to ``density`` and share its weights in ``2**bits - 1`` values.

    ``pad_free`` (needs ``pes``): also :func:`~sparsa.sw.compress.prune.fill_padding`, so that the
    layer needs no padding entries on ``pes`` PEs.
    ``on_layer(layer)``, if given, is called after each layer (progress reporting).
    Returns a list of ``(centroids (16,) float64, index uint8 (rows, cols))``.
    """
    check_options(density, bits, pes, pad_free)
    out = []
    for layer in layers:
        if pes is None:
            mask = magnitude_mask(layer.weight, density)
        else:
            mask = balanced_mask(layer.weight, density, pes)
            if pad_free:
                mask = fill_padding(layer.weight, mask, pes)
        out.append(kmeans_share(layer.weight, mask, bits))
        if on_layer is not None:
            on_layer(layer)
    return out


#
# Fixed-point formats
#

def act_frac_bits(bound):
    """Largest ``f`` in 0..15 with ``bound * 2**f <= 2**14`` (one bit of int16 headroom)."""
    if not bound > 0:
        return ACT_FRAC_MAX
    f = int(np.floor(ACT_HEADROOM_LOG2 - np.log2(bound)))
    while f > 0 and bound * 2.0 ** f > 2.0 ** ACT_HEADROOM_LOG2:   # guard log2 rounding
        f -= 1
    return int(np.clip(f, 0, ACT_FRAC_MAX))


def _shared_matmul(x, centroids, index):
    """``x @ shared_weights(centroids, index).T`` without the dense matrix of a big layer."""
    rows, cols = index.shape
    blocks = row_ranges(rows, cols)
    if len(blocks) == 1:
        return x @ shared_weights(centroids, index).T
    out = np.empty((x.shape[0], rows))
    for r0, r1 in blocks:
        out[:, r0:r1] = x @ shared_weights(centroids, index[r0:r1]).T
    return out


def activation_bounds(layers, shared, calib=None):
    """Max |activation| of the input and of every layer's output (``len(layers) + 1`` values).

    ``shared`` is each layer's ``(centroids, index)``: the float model runs with the shared
    weights ``centroids[index]``. With ``calib`` (n, cols0) it runs on the calibration inputs.
    Without, the input is assumed in [-4, 4) and each output bounded by
    ``max_i sum_j |W_ij| * bound_in + |b_i|``: safe (no saturation) but pessimistic, so
    calibration gives more fractional bits.
    """
    if calib is not None:
        x = np.asarray(calib, dtype=np.float64)
        bounds = [float(np.max(np.abs(x)))]
        for layer, (c, index) in zip(layers, shared):
            x = _shared_matmul(x, c, index) + layer.bias
            if layer.relu:
                x = np.maximum(x, 0.0)
            bounds.append(float(np.max(np.abs(x))))
        return bounds
    bound = DEFAULT_INPUT_BOUND
    bounds = [bound]
    for layer, (c, index) in zip(layers, shared):
        mag = np.abs(np.asarray(c, dtype=np.float64))
        row_sums = np.concatenate([mag[index[r0:r1]].sum(axis=1) for r0, r1 in row_ranges(*index.shape)])
        bound = float(np.max(row_sums * bound + np.abs(layer.bias)))
        bounds.append(bound)
    return bounds


def _fits(x, f, lo, hi):
    q = np.floor(np.asarray(x, dtype=np.float64) * 2.0 ** f + 0.5)
    return bool(np.all((q >= lo) & (q <= hi)))


def weight_frac_bits(centroids, bias, in_frac_bits, where=""):
    """Largest ``fw`` (0..30) such that every shared value fits int16 at ``2**-fw`` and every
    bias fits int32 at ``2**-(in_frac_bits + fw)``.

    The bias condition keeps a large ``fw`` (tiny weights) from clipping the biases. If even
    ``fw = 0`` cannot hold the biases they are saturated (and reported).
    """
    maxabs = float(np.max(np.abs(centroids)))
    if maxabs >= 2.0 ** 15:
        raise user_error(where, "weights", "|shared weight| < 32768", f"{maxabs:g}")
    fw = WEIGHT_FRAC_MAX
    while fw > 0 and not (_fits(centroids, fw, INT16_MIN, INT16_MAX)
                          and _fits(bias, in_frac_bits + fw, BIAS_MIN, BIAS_MAX)):
        fw -= 1
    return fw


def quantize_codebook(centroids, fw):
    """int16 codebook of ``centroids`` at ``2**-fw``; used entries that round to 0 become ±1.

    Returns ``(codebook, nudged)``. Entry 0 is 0; entries past the last used one stay 0.
    """
    centroids = np.asarray(centroids, dtype=np.float64)
    q = quantize(centroids, fw).astype(np.int16)
    used = np.arange(CODEBOOK_SIZE) <= np.max(np.flatnonzero(centroids), initial=0)
    used[0] = False
    zero = used & (q == 0)
    # A kept weight must stay nonzero: index 0 alone means "pruned".
    q[zero] = np.where(centroids[zero] < 0, -1, 1)
    q[0] = 0
    return q, int(np.count_nonzero(zero))


def to_fixed_point(layers, shared, bits, *, calib=None, source=""):
    """Choose formats and quantize: float layers + shared weights -> :class:`CompressedModel`.

    Parameters
    ----------
    layers : list of FloatLayer
    shared : list of (centroids (16,), index (rows, cols))
    bits : int
        Index width recorded for every layer.
    calib : float array (n, cols0) or None
        Calibration inputs for the activation formats.
    """
    fracs = [act_frac_bits(b) for b in activation_bounds(layers, shared, calib)]
    fx = fracs[0]
    model = CompressedModel(source=str(source), input_frac_bits=fx)
    for k, (layer, (centroids, index)) in enumerate(zip(layers, shared)):
        fw = weight_frac_bits(centroids, layer.bias, fx, where=f"{source} {layer.name}".strip())
        codebook, nudged = quantize_codebook(centroids, fw)
        fy = min(fracs[k + 1], fx + fw)          # the shift cannot be negative
        acc = np.floor(layer.bias * 2.0 ** (fx + fw) + 0.5)
        bias = np.clip(acc, BIAS_MIN, BIAS_MAX).astype(np.int32)
        model.layers.append(CompressedLayer(
            name=layer.name, index=np.asarray(index, dtype=np.uint8), codebook=codebook,
            bias=bias, centroids=np.asarray(centroids, dtype=np.float32), bits=int(bits),
            in_frac_bits=fx, weight_frac_bits=fw, out_frac_bits=fy, shift=fx + fw - fy,
            relu=bool(layer.relu), bias_saturated=int(np.count_nonzero(bias != acc)),
            codebook_nudged=nudged))
        fx = fy
    return model


def compress_model(layers, density, bits, *, pes=None, calib=None, source="", on_layer=None, pad_free=False):
    """The whole pipeline: prune (balanced over ``pes`` if given), share, fixed point."""
    if calib is not None and (calib.ndim != 2 or calib.shape[1] != layers[0].cols):
        raise user_error("--calib", "calibration data", f"shape (n, {layers[0].cols})", f"shape {calib.shape}")
    shared = prune_and_share(layers, density, bits, pes, on_layer=on_layer, pad_free=pad_free)
    return to_fixed_point(layers, shared, bits, calib=calib, source=source)


#
# Running (golden model semantics)
#

def golden_layers(model):
    """The golden EIE layers of a compressed model (``sparsa.sw.eie.golden``)."""
    return [GoldenLayer.from_dense(layer.int_weight(), layer.bias, layer.shift, layer.relu)
            for layer in model.layers]


def run_compressed(model, x, *, keep_all=False):
    """Quantize float inputs, run the golden model, return dequantized float outputs."""
    q = quantize(x, model.input_frac_bits)
    outs = run_layers(golden_layers(model), q, keep_all=True)
    deq = [dequantize(o, layer.out_frac_bits) for o, layer in zip(outs, model.layers)]
    return deq if keep_all else deq[-1]


#
# The .npz file
#

def save_compressed(path, model):
    """Write ``model`` as a sparsa-compressed ``.npz`` (atomically)."""
    meta = {"format": FORMAT, "version": VERSION, "source": model.source,
            "input_frac_bits": int(model.input_frac_bits), "layers": []}
    arrays = {}
    for k, layer in enumerate(model.layers):
        meta["layers"].append({
            "name": layer.name, "rows": int(layer.rows), "cols": int(layer.cols),
            "bits": int(layer.bits), "in_frac_bits": int(layer.in_frac_bits),
            "weight_frac_bits": int(layer.weight_frac_bits), "out_frac_bits": int(layer.out_frac_bits),
            "shift": int(layer.shift), "relu": bool(layer.relu), "density": layer.density})
        arrays[f"layer{k}.index"] = np.asarray(layer.index, dtype=np.uint8)
        arrays[f"layer{k}.codebook"] = np.asarray(layer.codebook, dtype=np.int16)
        arrays[f"layer{k}.bias"] = np.asarray(layer.bias, dtype=np.int32)
        arrays[f"layer{k}.centroids"] = np.asarray(layer.centroids, dtype=np.float32)
    save_npz(path, {"meta": np.array(json.dumps(meta)), **arrays})


_META_INT = ("rows", "cols", "bits", "in_frac_bits", "weight_frac_bits", "out_frac_bits", "shift")


def load_compressed(path):
    """Read and validate a sparsa-compressed ``.npz``; every problem is a one-line UserError."""
    arrays = load_npz(path, what="compressed model")
    if "meta" not in arrays:
        raise user_error(path, "meta", "a sparsa-compressed model with a 'meta' entry", "none")
    meta = arrays["meta"]
    if meta.shape != () or meta.dtype.kind != "U":
        raise user_error(path, "meta", "a 0-d string array (JSON)", f"dtype {meta.dtype}, shape {meta.shape}")
    meta = loads_json(str(meta), path, "meta")
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise user_error(path, "meta.format", f"'{FORMAT}'", repr(found))
    if meta.get("version") != VERSION:
        raise user_error(path, "meta.version", f"{VERSION}", repr(meta.get("version")))
    layers = meta.get("layers")
    if not isinstance(layers, list) or not layers:
        raise user_error(path, "meta.layers", "a non-empty list", repr(layers)[:60])
    fx = meta.get("input_frac_bits")
    if not isinstance(fx, int):
        raise user_error(path, "meta.input_frac_bits", "an integer", repr(fx))
    model = CompressedModel(source=str(meta.get("source", "")), input_frac_bits=fx)
    for k, m in enumerate(layers):
        model.layers.append(_load_layer(path, arrays, k, m, model))
    return model


def _load_layer(path, arrays, k, m, model):
    where = f"meta.layers[{k}]"
    if not isinstance(m, dict):
        raise user_error(path, where, "an object", type(m).__name__)
    for key in _META_INT:
        if not isinstance(m.get(key), int) or isinstance(m.get(key), bool):
            raise user_error(path, f"{where}.{key}", "an integer", repr(m.get(key)))
    rows, cols, bits = m["rows"], m["cols"], m["bits"]
    if not 1 <= bits <= MAX_BITS:
        raise user_error(path, f"{where}.bits", f"1..{MAX_BITS}", bits)
    prev_fy = model.layers[-1].out_frac_bits if model.layers else model.input_frac_bits
    if m["in_frac_bits"] != prev_fy:
        raise user_error(path, f"{where}.in_frac_bits", f"{prev_fy} (previous output format)", m["in_frac_bits"])
    if m["shift"] != m["in_frac_bits"] + m["weight_frac_bits"] - m["out_frac_bits"] or m["shift"] < 0:
        raise user_error(path, f"{where}.shift", "in_frac_bits + weight_frac_bits - out_frac_bits >= 0", m["shift"])
    if model.layers and cols != model.layers[-1].rows:
        raise user_error(path, f"{where}.cols", f"{model.layers[-1].rows} (rows of the previous layer)", cols)
    want = {"index": (np.uint8, (rows, cols)), "codebook": (np.int16, (CODEBOOK_SIZE,)),
            "bias": (np.int32, (rows,)), "centroids": (np.float32, (CODEBOOK_SIZE,))}
    got = {}
    for name, (dtype, shape) in want.items():
        key = f"layer{k}.{name}"
        if key not in arrays:
            raise user_error(path, key, f"a {np.dtype(dtype)} array of shape {shape}", "none")
        a = arrays[key]
        if a.dtype != dtype or a.shape != shape:
            raise user_error(path, key, f"{np.dtype(dtype)} of shape {shape}", f"{a.dtype} of shape {a.shape}")
        got[name] = a
    limit = (1 << bits) - 1
    if got["index"].size and int(got["index"].max()) > limit:
        raise user_error(path, f"layer{k}.index", f"values in 0..{limit} (bits={bits})", int(got["index"].max()))
    used = np.unique(got["index"])
    if got["codebook"][0] != 0 or np.any(got["codebook"][used[used > 0]] == 0):
        raise user_error(path, f"layer{k}.codebook", "entry 0 = 0 and every used entry nonzero",
                         got["codebook"].tolist())
    return CompressedLayer(
        name=str(m.get("name", f"layer{k}")), index=got["index"], codebook=got["codebook"],
        bias=got["bias"], centroids=got["centroids"], bits=bits, in_frac_bits=m["in_frac_bits"],
        weight_frac_bits=m["weight_frac_bits"], out_frac_bits=m["out_frac_bits"],
        shift=m["shift"], relu=bool(m.get("relu", False)))

