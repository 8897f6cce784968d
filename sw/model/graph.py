"""sparsa's own model format for CNN-style graphs (``"format": "sparsa-model"``) and its float
reference executor.

A model is an ``.npz`` holding the arrays and one JSON string under key ``graph``::

    {"format": "sparsa-model", "version": 1,
     "input": {"shape": [C, H, W], "dtype": "float32" | "int8"},
     "layers": [{"name": "conv1", "op": "conv2d", "weight": "conv1.weight", "bias": "conv1.bias",
                 "stride": 1, "padding": 1, "relu": true}, ...]}

Each layer has a unique ``name`` and takes the previous layer's output unless it names
``inputs`` (a list of layer names, or ``"input"`` for the model input). Ops:

* ``conv2d``: ``weight`` (Cout, Cin, k, k), ``bias`` (Cout), ``stride``, ``padding`` (zeros),
  ``relu`` or ``leaky`` (a leaky ReLU's slope alpha, 0 < alpha < 2); integer models also
  carry ``shift``.
* ``maxpool2d`` / ``avgpool2d``: ``size``, ``stride``, ``padding`` below ``size`` (one number for
  every side, or ``[top, left, bottom, right]``): zeros, as the engine reads outside the image
  (an ``avgpool2d`` divides by size^2, padding included; ONNX's -inf max-pool padding gives
  the same result on non-negative inputs, which is where the importer allows it).
* ``add``: ``inputs`` [a, b], optional ``relu``.
* ``linear``: ``weight`` (out, in) on the flattened (C, H, W) input, ``bias``, ``relu`` or ``leaky``.
* ``upsample``: nearest neighbour by the integer ``scale`` (default 2) in height and width.
* ``concat``: ``inputs`` [a, b, ...] of the same height and width, joined along the channels;
  with ``flatten`` true, any shapes, flattened and joined into one (n, 1, 1) vector (how a
  network with several outputs, such as YOLO's two heads, gives one output).

``weight`` and ``bias`` name arrays in the same ``.npz``. This module checks the structure and
runs float models (``dtype`` float32) in float64 numpy; the integer semantics (int8
activations, shifts, saturation) belong to the CNN engine's golden model.
"""

import json
import math
from dataclasses import dataclass, field

import numpy as np

from sparsa.sw.errors import user_error
from sparsa.sw.fileio import atomic_file, load_npz, loads_json

__all__ = ["Graph", "OPS", "POOLS", "MAX_TENSOR_ELEMENTS", "load_graph", "save_graph", "graph_forward", "validate",
           "flat_output", "activation"]

OPS = ("conv2d", "maxpool2d", "avgpool2d", "add", "linear", "upsample", "concat")
POOLS = ("maxpool2d", "avgpool2d")

# Largest tensor (values per sample) sparsa accepts, input or layer output: 2**24 (16.7 M, e.g.
# 64x512x512). Calibration keeps every tensor of a 64-input batch in float64 (8 GB at this
# size), so anything larger is refused where it is read rather than dying of memory later.
MAX_TENSOR_ELEMENTS = 1 << 24


@dataclass
class Graph:
    """A sparsa-model graph: ``spec`` is the JSON dict, ``arrays`` the named weight arrays."""
    spec: dict
    arrays: dict = field(default_factory=dict)

    @property
    def layers(self):
        return self.spec["layers"]

    @property
    def input_shape(self):
        return tuple(self.spec["input"]["shape"])

    def shapes(self):
        """Output shape of every layer, by name (also checks that the shapes chain)."""
        return _infer_shapes(self, "graph")

    def forward(self, x):
        return graph_forward(self, x)


def save_graph(path, graph):
    """Write ``graph`` as ``.npz`` (atomically)."""
    validate(graph, str(path))
    arrays = dict(graph.arrays)
    arrays["graph"] = np.array(json.dumps(graph.spec))
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **arrays)


def load_graph(path):
    arrays = load_npz(path, what="sparsa-model graph")
    if "graph" not in arrays:
        raise user_error(path, "graph", "a JSON string under key 'graph'", "no such key")
    spec = loads_json(str(arrays.pop("graph")), path, "graph")
    g = Graph(spec, arrays)
    validate(g, str(path))
    return g


def validate(graph, where):
    """Check a graph's structure, fields and shapes; a one-line ``UserError`` naming the field."""
    spec = graph.spec
    if not isinstance(spec, dict):
        raise user_error(where, "graph", 'a JSON object {"format": "sparsa-model", ...}',
                         f"a JSON {_json_kind(spec)}")
    if spec.get("format") != "sparsa-model":
        raise user_error(where, "format", "'sparsa-model'", repr(spec.get("format")))
    if spec.get("version") != 1:
        raise user_error(where, "version", "1", repr(spec.get("version")))
    if not isinstance(spec.get("input"), dict):
        raise user_error(where, "input", 'an object {"shape": [C, H, W], "dtype": ...}', repr(spec.get("input"))[:60])
    shape = spec["input"].get("shape")
    if not (isinstance(shape, list) and len(shape) == 3
            and all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise user_error(where, "input.shape", "[C, H, W] of positive integers", repr(shape)[:60])
    _check_size(where, "input.shape", shape)
    _check_quant(spec, where)
    _check_outputs(spec, where)
    if not isinstance(spec.get("layers"), list) or not all(isinstance(l, dict) for l in spec["layers"]):
        raise user_error(where, "layers", "a list of layer objects", repr(spec.get("layers"))[:60])
    names = set()
    for k, layer in enumerate(spec.get("layers", [])):
        name = layer.get("name")
        if not isinstance(name, str) or not name or name in names or name == "input":
            raise user_error(where, f"layers[{k}].name", "a unique non-empty name (not 'input')", repr(name))
        names.add(name)
        if layer.get("op") not in OPS:
            raise user_error(where, f"{name}.op", f"one of {', '.join(OPS)}", repr(layer.get("op")))
        # integer fields, checked before the shapes are worked out from them
        for key, lo in (("stride", 1), ("padding", 0), ("size", 1), ("shift", 0), ("scale", 1)):
            v = layer.get(key)
            if key == "padding" and layer["op"] in POOLS and isinstance(v, list):
                if len(v) != 4 or not all(_is_int(p) and p >= 0 for p in v):
                    raise user_error(where, f"{name}.padding", "an integer >= 0 or [top, left, bottom, right] "
                                     "of them", repr(v)[:60])
            elif v is not None and (not _is_int(v) or v < lo):
                raise user_error(where, f"{name}.{key}", f"an integer >= {lo}", repr(v))
        for key in ("relu", "flatten"):
            if key in layer and not isinstance(layer[key], bool):
                raise user_error(where, f"{name}.{key}", "true or false", repr(layer[key]))
        if layer.get("leaky") is not None:
            a = layer["leaky"]
            if layer["op"] not in ("conv2d", "linear") or layer.get("relu"):
                raise user_error(where, f"{name}.leaky", "only on a conv2d or linear layer without relu",
                                 f"{layer['op']}" + (" with relu" if layer.get("relu") else ""))
            if isinstance(a, bool) or not isinstance(a, (int, float)) or not 0.5 / 128 <= a < 255.5 / 128:
                raise user_error(where, f"{name}.leaky", "a slope alpha in [0.004, 1.99] (the engine keeps "
                                 "alpha * 128 as an 8-bit integer)", repr(a)[:60])
        for key in ("weight", "bias"):
            ref = layer.get(key)
            if layer["op"] in ("conv2d", "linear") and (not isinstance(ref, str) or ref not in graph.arrays):
                raise user_error(where, f"{name}.{key}", "the name of an array in the file", repr(ref)[:60])
        ins = layer.get("inputs")
        if ins is not None and not (isinstance(ins, str) or (
                isinstance(ins, list) and ins and all(isinstance(i, str) for i in ins))):
            raise user_error(where, f"{name}.inputs", "a layer name, 'input', or a non-empty list of them",
                             repr(ins)[:60])
        if layer["op"] == "concat":
            if not isinstance(ins, list) or len(ins) < 2:
                raise user_error(where, f"{name}.inputs", "a list of at least 2 inputs for concat", repr(ins)[:60])
        else:
            want = 2 if layer["op"] == "add" else 1
            if ins is not None and len(_sources(layer, None)) != want:
                raise user_error(where, f"{name}.inputs", f"{want} input{'s' if want > 1 else ''} for "
                                 f"{layer['op']}", repr(ins)[:60])
    if not names:
        raise user_error(where, "layers", "at least one layer", "none")
    _infer_shapes(graph, where)


QUANT_FRAC_LIMIT = 64       # a format's fractional bits (sparsa compress uses -16..30)


def _check_quant(spec, where):
    """``quant`` (written by ``sparsa compress``): the input and output formats that run
    --dequantize and float inputs use, integers in a sane range when present."""
    if "quant" not in spec:
        return
    quant = spec["quant"]
    if not isinstance(quant, dict):
        raise user_error(where, "quant", "an object of formats", f"a JSON {_json_kind(quant)}")
    for key in ("input_frac", "output_frac"):
        if key in quant:
            v = quant[key]
            if isinstance(v, bool) or not isinstance(v, int) or abs(v) > QUANT_FRAC_LIMIT:
                raise user_error(where, f"quant.{key}", f"an integer in -{QUANT_FRAC_LIMIT}..{QUANT_FRAC_LIMIT}",
                                 repr(v)[:60])


def _check_outputs(spec, where):
    """``outputs`` (written by the ONNX importer for several joined outputs): what the joined
    vector holds, a list of ``{"name": str, "shape": [positive ints]}``."""
    outs = spec.get("outputs")
    if outs is None:
        return
    ok = isinstance(outs, list) and all(
        isinstance(o, dict) and isinstance(o.get("name"), str) and isinstance(o.get("shape"), list)
        and o["shape"] and all(_is_int(d) and 0 < d <= MAX_TENSOR_ELEMENTS for d in o["shape"]) for o in outs)
    if not ok:
        raise user_error(where, "outputs", 'a list of {"name": ..., "shape": [positive integers]}', repr(outs)[:60])


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _pads(layer):
    p = layer.get("padding", 0)
    return tuple(p) if isinstance(p, list) else (p, p, p, p)


def _json_kind(v):
    return {dict: "object", list: "list", str: "string", type(None): "null", bool: "boolean"}.get(
        type(v), "number")


def _check_size(where, field, shape):
    n = math.prod(int(d) for d in shape)        # Python ints: no overflow on absurd sizes
    if n > MAX_TENSOR_ELEMENTS:
        raise user_error(where, field, f"at most {MAX_TENSOR_ELEMENTS:,} values per tensor (sparsa's size limit)",
                         f"shape {tuple(shape)} = {n:,} values")


def _sources(layer, prev):
    ins = layer.get("inputs")
    if ins is None:
        return [prev]
    return list(ins) if isinstance(ins, list) else [ins]


def _infer_shapes(graph, where):
    shapes = {"input": graph.input_shape}
    prev = "input"
    for layer in graph.layers:
        name, op = layer["name"], layer["op"]
        srcs = _sources(layer, prev)
        for s in srcs:
            if s not in shapes:
                raise user_error(where, f"{name}.inputs", "names of earlier layers or 'input'", repr(s))
        c, h, w = shapes[srcs[0]]
        if op == "conv2d":
            wt = graph.arrays[layer["weight"]]
            if wt.ndim != 4 or wt.shape[0] < 1 or wt.shape[1] != c or wt.shape[2] != wt.shape[3] or wt.shape[2] < 1:
                raise user_error(where, f"{layer['weight']}", f"shape (Cout >= 1, {c}, k >= 1, k)", f"shape {wt.shape}")
            if graph.arrays[layer["bias"]].shape != (wt.shape[0],):
                raise user_error(where, f"{layer['bias']}", f"shape ({wt.shape[0]},)",
                                 f"shape {graph.arrays[layer['bias']].shape}")
            k, s, p = wt.shape[2], layer.get("stride", 1), layer.get("padding", 0)
            ho, wo = (h + 2 * p - k) // s + 1, (w + 2 * p - k) // s + 1
            if ho < 1 or wo < 1:
                raise user_error(where, name, f"a kernel ({k}) that fits the padded input {h}x{w}", f"output {ho}x{wo}")
            shapes[name] = (wt.shape[0], ho, wo)
        elif op in POOLS:
            k, s = layer.get("size", 2), layer.get("stride", layer.get("size", 2))
            t, l, b, r = _pads(layer)
            if max(t, l, b, r) >= k:
                raise user_error(where, f"{name}.padding", f"below the window size {k}", repr(layer.get("padding")))
            ho, wo = (h + t + b - k) // s + 1, (w + l + r - k) // s + 1
            if ho < 1 or wo < 1:
                raise user_error(where, name, f"a window ({k}) that fits the input {h}x{w}", f"output {ho}x{wo}")
            shapes[name] = (c, ho, wo)
        elif op == "upsample":
            u = layer.get("scale", 2)
            shapes[name] = (c, h * u, w * u)
        elif op == "concat":
            if layer.get("flatten"):
                shapes[name] = (sum(int(np.prod(shapes[s_])) for s_ in srcs), 1, 1)
            else:
                if any(shapes[s_][1:] != (h, w) for s_ in srcs):
                    raise user_error(where, f"{name}.inputs", "inputs of the same height and width (or flatten)",
                                     ", ".join(f"{s_} {shapes[s_]}" for s_ in srcs))
                shapes[name] = (sum(shapes[s_][0] for s_ in srcs), h, w)
        elif op == "add":
            if len(srcs) != 2 or shapes[srcs[0]] != shapes[srcs[1]]:
                raise user_error(where, f"{name}.inputs", "two inputs of the same shape",
                                 ", ".join(f"{s} {shapes.get(s)}" for s in srcs))
            shapes[name] = shapes[srcs[0]]
        else:  # linear
            wt = graph.arrays[layer["weight"]]
            if wt.ndim != 2 or wt.shape[0] < 1 or wt.shape[1] != c * h * w:
                raise user_error(where, f"{layer['weight']}", f"shape (out >= 1, {c * h * w})", f"shape {wt.shape}")
            if graph.arrays[layer["bias"]].shape != (wt.shape[0],):
                raise user_error(where, f"{layer['bias']}", f"shape ({wt.shape[0]},)",
                                 f"shape {graph.arrays[layer['bias']].shape}")
            shapes[name] = (wt.shape[0], 1, 1)
        _check_size(where, f"{name} output", shapes[name])
        prev = name
    return shapes


def _conv(x, w, b, stride, pad):
    """x (C, H, W), w (Cout, C, k, k): direct convolution by im2col in float64."""
    c, h, wd = x.shape
    k = w.shape[2]
    xp = np.pad(x, ((0, 0), (pad, pad), (pad, pad)))
    ho, wo = (h + 2 * pad - k) // stride + 1, (wd + 2 * pad - k) // stride + 1
    cols = np.empty((c, k, k, ho, wo))
    for dy in range(k):
        for dx in range(k):
            cols[:, dy, dx] = xp[:, dy:dy + stride * ho:stride, dx:dx + stride * wo:stride]
    return np.tensordot(w, cols, axes=([1, 2, 3], [0, 1, 2])) + b[:, None, None]


def _pool(x, k, s, reduce, pads=(0, 0, 0, 0)):
    """Pool x (C, H, W) with k x k windows, stride s, zeros padded (top, left, bottom, right)."""
    x = np.pad(x, ((0, 0), (pads[0], pads[2]), (pads[1], pads[3])))
    c, h, w = x.shape
    ho, wo = (h - k) // s + 1, (w - k) // s + 1
    win = np.stack([x[:, dy:dy + s * ho:s, dx:dx + s * wo:s] for dy in range(k) for dx in range(k)])
    return reduce(win, axis=0)


def flat_output(layer):
    """A ``linear`` layer, or a ``concat`` with ``flatten``, gives a vector (n,) as a model output."""
    return layer["op"] == "linear" or (layer["op"] == "concat" and bool(layer.get("flatten")))


def activation(layer, y):
    """A layer's ``relu`` or ``leaky`` on its float output ``y``."""
    if layer.get("relu"):
        return np.maximum(y, 0.0)
    if layer.get("leaky") is not None:
        return np.where(y < 0, y * float(layer["leaky"]), y)
    return y


def _reshape_op(layer, srcs, axis=0):
    """``upsample`` / ``concat`` on float tensors (C, H, W), or batches of them with ``axis`` 1."""
    if layer["op"] == "upsample":
        u = layer.get("scale", 2)
        return np.repeat(np.repeat(srcs[0], u, axis=axis + 1), u, axis=axis + 2)
    if layer.get("flatten"):
        flat = [s.reshape(s.shape[:axis] + (-1,)) for s in srcs]
        return np.concatenate(flat, axis=axis).reshape(flat[0].shape[:axis] + (-1, 1, 1))
    return np.concatenate(srcs, axis=axis)


def graph_forward(graph, x):
    """Float64 forward of a float graph on x (C, H, W) or (B, C, H, W); returns the last layer's output
    ((B,) + shape; a ``linear`` output is (out,))."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 3:
        return graph_forward(graph, x[None])[0]
    outs = []
    for xb in x:
        vals = {"input": xb}
        prev = "input"
        for layer in graph.layers:
            op = layer["op"]
            srcs = [vals[s] for s in _sources(layer, prev)]
            a = srcs[0]
            if op == "conv2d":
                y = _conv(a, graph.arrays[layer["weight"]].astype(np.float64),
                          graph.arrays[layer["bias"]].astype(np.float64),
                          layer.get("stride", 1), layer.get("padding", 0))
            elif op in ("maxpool2d", "avgpool2d"):
                k = layer.get("size", 2)
                y = _pool(a, k, layer.get("stride", k), np.max if op == "maxpool2d" else np.mean, _pads(layer))
            elif op == "add":
                y = srcs[0] + srcs[1]
            elif op in ("upsample", "concat"):
                y = _reshape_op(layer, srcs)
            else:
                y = (graph.arrays[layer["weight"]].astype(np.float64) @ a.reshape(-1)
                     + graph.arrays[layer["bias"]].astype(np.float64)).reshape(-1, 1, 1)
            y = activation(layer, y)
            vals[layer["name"]] = y
            prev = layer["name"]
        y = vals[prev]
        outs.append(y.reshape(-1) if flat_output(graph.layers[-1]) else y)
    return np.stack(outs)
