"""Bit-exact golden model of an integer sparsa-model graph (the CNN engine's arithmetic).

Activations are int8 (C, H, W). Per op (see ``docs/cnn.md``):

* ``conv2d`` / ``linear``: ``acc = bias + sum(w * x)`` exactly (int64 here; the hardware's
  accumulators are wide enough for every layer the compiler accepts); if ``shift`` > 0,
  ``acc = (acc + 2^(shift-1)) >> shift`` (arithmetic shift, so ties round up); with ``leaky``
  (slope alpha), a negative ``acc`` becomes ``(acc * a + 64) >> 7`` with ``a =``
  :func:`leaky_mult` ``(alpha)`` (alpha to 7 fractional bits); saturate to int8; ReLU if set.
* ``maxpool2d``; ``avgpool2d``: ``(sum + n/2) >> log2(n)`` over n = size^2 elements
  (``padding`` reads zeros, as the engine does outside the image, and counts in n).
* ``add``: saturating int8 sum, optional ReLU.
* ``upsample``: nearest neighbour, each value repeated ``scale`` x ``scale`` times.
* ``concat``: the inputs' bytes one after the other (channels; with ``flatten``, the
  flattened inputs), as they lie side by side in the engine's DRAM.
"""

import numpy as np

from sparsa.sw.errors import user_error
from sparsa.sw.model.graph import _sources, flat_output, validate

__all__ = ["cnn_forward", "conv2d_int", "round_shift", "sat8", "int_layer_outputs", "validate_int_graph",
           "leaky_mult", "pool_pads"]


def sat8(a):
    return np.clip(a, -128, 127).astype(np.int8)


def round_shift(acc, shift):
    """Round-half-up arithmetic right shift of int64 ``acc`` by ``shift`` >= 0."""
    acc = np.asarray(acc, dtype=np.int64)
    if shift <= 0:
        return acc
    return (acc + (1 << (shift - 1))) >> shift


def conv2d_int(x, w, b, stride, pad):
    """Exact int64 correlation: x (C, H, W) int, w (Cout, C, k, k) int, b (Cout,) -> int64."""
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    c, h, wd = x.shape
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    out = np.zeros((w.shape[0], ho, wo), dtype=np.int64)
    for dy in range(k):
        for dx in range(k):
            patch = xp[:, dy:dy + stride * (ho - 1) + 1:stride, dx:dx + stride * (wo - 1) + 1:stride]
            out += np.einsum("oc,chw->ohw", w[:, :, dy, dx], patch)
    return out + np.asarray(b, dtype=np.int64)[:, None, None]


def leaky_mult(alpha):
    """A leaky ReLU's slope as the engine multiplies by it: ``round(alpha * 128)`` (half up)."""
    return int(np.floor(float(alpha) * 128 + 0.5))


def pool_pads(layer):
    """A pool's ``padding`` as ``(top, left, bottom, right)`` (an int pads every side)."""
    p = layer.get("padding", 0)
    return tuple(p) if isinstance(p, list) else (p, p, p, p)


def _finish(acc, layer):
    acc = round_shift(acc, int(layer.get("shift", 0)))
    if layer.get("leaky") is not None:
        acc = np.where(acc < 0, round_shift(acc * leaky_mult(layer["leaky"]), 7), acc)
    y = sat8(acc)
    return np.maximum(y, 0).astype(np.int8) if layer.get("relu") else y


def _pool(x, k, s, avg, pads=(0, 0, 0, 0)):
    t, l, b, r = pads
    x = np.pad(x, ((0, 0), (t, b), (l, r)))    # zeros, as the engine reads
    c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    win = np.stack([x[:, dy:dy + s * (ho - 1) + 1:s, dx:dx + s * (wo - 1) + 1:s].astype(np.int64)
                    for dy in range(k) for dx in range(k)])
    if not avg:
        return win.max(axis=0).astype(np.int8)
    n = k * k
    return ((win.sum(axis=0) + n // 2) >> (n.bit_length() - 1)).astype(np.int8)


def int_layer_outputs(graph, x):
    """Every layer's int8 output for one input x (C, H, W) int8, by layer name."""
    x = np.asarray(x)
    vals = {"input": x.astype(np.int8)}
    prev = "input"
    for layer in graph.layers:
        op = layer["op"]
        srcs = [vals[s] for s in _sources(layer, prev)]
        a = srcs[0]
        if op == "conv2d":
            acc = conv2d_int(a, graph.arrays[layer["weight"]], graph.arrays[layer["bias"]],
                             layer.get("stride", 1), layer.get("padding", 0))
            y = _finish(acc, layer)
        elif op == "linear":
            acc = (graph.arrays[layer["weight"]].astype(np.int64) @ a.reshape(-1).astype(np.int64)
                   + graph.arrays[layer["bias"]].astype(np.int64))
            y = _finish(acc, layer).reshape(-1, 1, 1)
        elif op in ("maxpool2d", "avgpool2d"):
            k = layer.get("size", 2)
            y = _pool(a, k, layer.get("stride", k), op == "avgpool2d", pool_pads(layer))
        elif op == "upsample":
            u = layer.get("scale", 2)
            y = np.repeat(np.repeat(a, u, axis=1), u, axis=2)
        elif op == "concat":
            y = (np.concatenate([s_.reshape(-1) for s_ in srcs]).reshape(-1, 1, 1) if layer.get("flatten")
                 else np.concatenate(srcs, axis=0))
        else:  # add
            y = sat8(srcs[0].astype(np.int64) + srcs[1].astype(np.int64))
            if layer.get("relu"):
                y = np.maximum(y, 0).astype(np.int8)
        vals[layer["name"]] = y
        prev = layer["name"]
    return vals


def cnn_forward(graph, x):
    """Golden int8 forward: x (C, H, W) or (B, C, H, W) int8 -> the last layer's output, with a
    leading batch axis when x has one (a final ``linear`` gives (out,) per input)."""
    x = np.asarray(x)
    if x.ndim == 4:
        return np.stack([cnn_forward(graph, xb) for xb in x])
    y = int_layer_outputs(graph, x)[graph.layers[-1]["name"]]
    return y.reshape(-1) if flat_output(graph.layers[-1]) else y


INT32_MIN, INT32_MAX = -(1 << 31), (1 << 31) - 1


def _check_int_array(arr, lo, hi, kind, where, field):
    if arr.dtype.kind not in "iu":
        raise user_error(where, field, f"an integer ({kind}) array", f"dtype {arr.dtype}")
    if arr.size and (arr.min() < lo or arr.max() > hi):
        bad = arr.min() if arr.min() < lo else arr.max()
        raise user_error(where, field, f"{kind} values in [{lo}, {hi}]", f"{int(bad)}")


def _check_int_field(name, layer, key, lo, hi, where, default=None):
    v = layer.get(key, default)
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or not lo <= v <= hi:
        raise user_error(where, f"{name}.{key}", f"an integer in {lo}..{hi}", repr(v))
    return int(v)


def validate_int_graph(graph, where):
    """Check that ``graph`` is an integer model the golden model (and the CNN engine) runs.

    On top of the structure (:func:`sparsa.sw.model.graph.validate`): input dtype ``int8``; conv2d and
    linear weights int8, biases int32, ``shift`` an integer 0..31 (absent means 0); conv2d
    kernel 1..7, ``stride`` 1..2, ``padding`` 0..k-1; pool ``size`` and ``stride`` >= 1, pool
    ``padding`` 0..min(size-1, 15) (the same on every side for ``avgpool2d``), and an
    ``avgpool2d`` window of ``size**2`` a power of two; ``upsample`` ``scale`` 2. Raises a one-line ``UserError`` naming
    the layer and field.
    """
    # Fields first (shape inference divides by the strides), then the structure, then the dtype.
    layers = graph.spec.get("layers")
    for k, layer in enumerate(layers if isinstance(layers, list) else []):
        if not isinstance(layer, dict):
            continue
        name, op = layer.get("name", f"layers[{k}]"), layer.get("op")
        wt = graph.arrays.get(layer.get("weight")) if op in ("conv2d", "linear") else None
        bias = graph.arrays.get(layer.get("bias")) if op in ("conv2d", "linear") else None
        if wt is not None:
            _check_int_array(wt, -128, 127, "int8", where, f"{name}.weight")
        if bias is not None:
            _check_int_array(bias, INT32_MIN, INT32_MAX, "int32", where, f"{name}.bias")
        if op in ("conv2d", "linear"):
            _check_int_field(name, layer, "shift", 0, 31, where, default=0)
        if op == "conv2d":
            kk = wt.shape[-1] if wt is not None and wt.ndim == 4 else 1
            if not 1 <= kk <= 7:
                raise user_error(where, f"{name}.weight", "a kernel size k in 1..7", f"k = {kk}")
            _check_int_field(name, layer, "stride", 1, 2, where, default=1)
            _check_int_field(name, layer, "padding", 0, kk - 1, where, default=0)
        elif op in ("maxpool2d", "avgpool2d"):
            size = _check_int_field(name, layer, "size", 1, 1 << 12, where, default=2)
            _check_int_field(name, layer, "stride", 1, 1 << 12, where, default=size)
            pads = layer.get("padding", 0)
            for pad in (pads if isinstance(pads, list) else [pads]):
                _check_int_field(name, {"padding": pad}, "padding", 0, min(size - 1, 15), where)
            n = size * size
            if op == "avgpool2d" and isinstance(pads, list) and len(set(pads)) > 1:
                raise user_error(where, f"{name}.padding", "the same padding on every side for an average pool",
                                 repr(pads))
            if op == "avgpool2d" and n & (n - 1):
                raise user_error(where, f"{name}.size", "a window of size**2 = a power of two elements "
                                 "(size 1, 2, 4, ...)", f"size {size} ({n} elements)")
        elif op == "upsample":
            _check_int_field(name, layer, "scale", 2, 2, where, default=2)
    validate(graph, where)
    dtype = graph.spec["input"].get("dtype")
    if dtype != "int8":
        raise user_error(where, "input.dtype", "'int8' (an integer model)", repr(dtype))
