"""Import float models: ONNX files and PyTorch ``state_dict()`` arrays saved as ``.npz``.

Supported ONNX ops (opset 11+; anything else is an error naming the node and op, never a
silent fallback):

=============  ==========================================================================
Gemm, MatMul   fully connected layer (MatMul + Add of a constant vector: layer with bias)
Relu           fused into the layer before it (Conv, Gemm/MatMul, Add)
Flatten        axis 1, before a fully connected layer
Conv           2-D, square kernel, equal strides and symmetric padding, group 1, dilation 1
MaxPool,       square window, no padding, ceil_mode 0
AveragePool
Add            of two tensors (residual); of a constant: the bias of the layer before
LSTM           one layer, forward, default activations, no clip (gate order becomes i,f,g,o)
=============  ==========================================================================

``Constant`` nodes are read as weights. The result is one of three kinds:

* ``mlp``: Gemm/MatMul layers with a ReLU after every layer but the last, on a flat input:
  saved as sparsa's float MLP ``.npz`` (``<name>.weight``/``<name>.bias``), ready for
  ``sparsa compress`` and the EIE engine.
* ``cnn``: anything with Conv, pooling, a residual Add or an image input: saved in sparsa's
  graph format (:mod:`sparsa.sw.model.graph`).
* ``lstm``: one LSTM: saved as PyTorch ``nn.LSTM`` state-dict arrays (:mod:`sparsa.sw.model.lstm`).

State dicts (``.npz``): ``nn.Sequential`` of ``nn.Linear``/``nn.ReLU`` (see
:mod:`sparsa.sw.model.mlp`); ``nn.LSTM(..., proj_size=P)`` (its keys); a stack of ``nn.Conv2d``
then ``nn.Linear`` layers (4-D weights are convolutions with stride 1 and padding k // 2, a ReLU
after every layer but the last; the input shape must be given, as a state dict does not hold
it).
"""

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsa.sw.errors import user_error
from sparsa.sw.fileio import load_npy, load_npz, save_npz
from sparsa.sw.model.graph import Graph, graph_forward, save_graph, validate
from sparsa.sw.model.lstm import LSTM_KEYS, LSTMWeights, lstm_forward, lstm_from_arrays
from sparsa.sw.model.mlp import FloatLayer, float_forward, layers_from_arrays

__all__ = ["ImportedModel", "import_model", "load_onnx", "load_mlp", "SUPPORTED_OPS"]

SUPPORTED_OPS = ("Gemm", "MatMul", "Relu", "Flatten", "Conv", "MaxPool", "AveragePool", "Add", "LSTM")


@dataclass
class ImportedModel:
    """A float model from an ONNX file or a state dict. Exactly one of ``mlp``, ``graph``,
    ``lstm`` is set, according to ``kind``."""
    kind: str
    source: str
    mlp: list = None
    graph: Graph = None
    lstm: LSTMWeights = None

    def forward(self, x):
        """Float64 reference: mlp x (N, F); cnn x (C, H, W) or (B, C, H, W); lstm x (T, I)."""
        if self.kind == "mlp":
            return float_forward(self.mlp, x)
        if self.kind == "cnn":
            return graph_forward(self.graph, x)
        return lstm_forward(self.lstm, x)

    def save(self, path):
        """Write the model in sparsa's format for its kind (atomically)."""
        if self.kind == "mlp":
            save_npz(path, {f"{l.name}.{k}": getattr(l, k).astype(np.float32)
                            for l in self.mlp for k in ("weight", "bias")})
        elif self.kind == "cnn":
            save_graph(path, self.graph)
        else:
            save_npz(path, self.lstm.arrays())

    def summary(self):
        """Rows (name, op, output shape, parameters) for a table."""
        if self.kind == "mlp":
            return [(l.name, "linear" + (" + relu" if l.relu else ""), f"({l.rows},)", l.weight.size + l.rows)
                    for l in self.mlp]
        if self.kind == "cnn":
            shapes = self.graph.shapes()
            rows = []
            for l in self.graph.layers:
                n = sum(self.graph.arrays[l[k]].size for k in ("weight", "bias") if k in l)
                rows.append((l["name"], l["op"] + (" + relu" if l.get("relu") else ""), str(shapes[l["name"]]), n))
            return rows
        w = self.lstm
        n = sum(a.size for a in w.arrays().values())
        return [("lstm", f"lstm I={w.inputs} H={w.hidden} P={w.outputs}"
                 + (" peepholes" if w.w_ic is not None else ""), f"(T, {w.outputs})", n)]


def import_model(path, *, input_shape=None):
    """Import ``path`` (``.onnx`` or a state-dict ``.npz``); see the module docstring."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".onnx":
        return load_onnx(path, input_shape=input_shape)
    if suffix != ".npz":
        raise user_error(path, "model file", "an .onnx file or a state-dict .npz", f"suffix '{path.suffix}'")
    arrays = load_npz(path, what="state dict")
    if arrays and all(k in LSTM_KEYS for k in arrays):
        return ImportedModel("lstm", str(path), lstm=lstm_from_arrays(arrays, path))
    if any(a.ndim == 4 for a in arrays.values()):
        return ImportedModel("cnn", str(path), graph=_conv_stack(arrays, path, input_shape))
    return ImportedModel("mlp", str(path), mlp=layers_from_arrays(arrays, where=path))


def _conv_stack(arrays, where, input_shape):
    if input_shape is None:
        raise user_error(where, "input shape", "--input-shape C,H,W for a Conv2d state dict", "none given")
    names = []
    for key in arrays:
        name, _, kind = key.rpartition(".")
        if kind not in ("weight", "bias") or not name:
            raise user_error(where, f"array '{key}'", "'<name>.weight' and '<name>.bias' arrays", "another name")
        if kind == "weight":
            names.append(name)
    layers, out = [], {}
    for k, name in enumerate(names):
        w = arrays[f"{name}.weight"]
        if w.ndim not in (2, 4):
            raise user_error(where, f"{name}.weight", "a 4-D Conv2d or 2-D Linear weight", f"shape {w.shape}")
        b = arrays.get(f"{name}.bias", np.zeros(w.shape[0], np.float32))
        lname = _safe(name)
        out[f"{lname}.weight"], out[f"{lname}.bias"] = w.astype(np.float32), b.astype(np.float32)
        layer = {"name": lname, "op": "conv2d" if w.ndim == 4 else "linear",
                 "weight": f"{lname}.weight", "bias": f"{lname}.bias", "relu": k < len(names) - 1}
        if w.ndim == 4:
            layer.update(stride=1, padding=int(w.shape[2]) // 2)
        layers.append(layer)
    g = Graph({"format": "sparsa-model", "version": 1,
               "input": {"shape": [int(d) for d in input_shape], "dtype": "float32"}, "layers": layers}, out)
    validate(g, str(where))
    return g


def _safe(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "layer"


# ---- ONNX -----------------------------------------------------------------------------------

def load_onnx(path, *, input_shape=None):
    """Import an ONNX file (see the module docstring for the ops)."""
    import onnx
    from onnx import numpy_helper
    path = Path(path)
    if not path.is_file():
        raise user_error(path, "model file", "an existing .onnx file", "no such file")
    try:
        model = onnx.load(str(path))
    except Exception as e:   # protobuf's DecodeError and friends: the file is not ONNX
        raise user_error(path, "ONNX model", "a readable ONNX protobuf", f"{type(e).__name__}") from None
    g = model.graph
    consts = {t.name: numpy_helper.to_array(t) for t in g.initializer}
    inputs = [i for i in g.input if i.name not in consts]
    if len(inputs) != 1 or len(g.output) != 1:
        raise user_error(path, "graph inputs/outputs", "one input and one output",
                         f"{len(inputs)} inputs, {len(g.output)} outputs")
    dims = [d.dim_value if d.HasField("dim_value") else None
            for d in inputs[0].type.tensor_type.shape.dim]
    return _OnnxConverter(path, consts, inputs[0].name, dims, numpy_helper).convert(
        g.node, g.output[0].name, input_shape)


class _OnnxConverter:
    """Walks the nodes once, turning them into sparsa layers (see :func:`load_onnx`)."""

    def __init__(self, path, consts, input_name, input_dims, numpy_helper):
        self.path, self.consts, self.nh = path, consts, numpy_helper
        self.input_dims = input_dims
        self.src = {input_name: "input"}     # tensor -> producing layer name ("input")
        self.layers = {}                     # name -> layer dict (insertion = topological order)
        self.arrays = {}
        self.used = set()                    # layers whose output something already consumed
        self.lstm = None

    # -- helpers --
    def err(self, node, field, limit, found):
        return user_error(self.path, f"node '{node.name or node.op_type}' ({node.op_type}) {field}", limit, found)

    def attrs(self, node):
        import onnx
        return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}

    def const(self, node, name, what):
        if name not in self.consts:
            raise self.err(node, what, "a constant (initializer)", f"the computed tensor '{name}'")
        return self.consts[name].astype(np.float64)

    def tensor(self, node, name):
        if name not in self.src:
            raise self.err(node, "input", "the output of a supported node or the graph input", f"'{name}'")
        self.used.add(self.src[name])
        return self.src[name]

    def new_layer(self, node, op, inputs, **fields):
        base = _safe(node.name or f"{op}{len(self.layers)}")
        name, k = base, 1
        while name in self.layers or name == "input":
            name, k = f"{base}_{k}", k + 1
        layer = {"name": name, "op": op, "_inputs": inputs, **fields}
        self.layers[name] = layer
        self.src[node.output[0]] = name
        return layer

    def set_weight(self, layer, w, b):
        n = layer["name"]
        self.arrays[f"{n}.weight"], self.arrays[f"{n}.bias"] = w, b
        layer["weight"], layer["bias"] = f"{n}.weight", f"{n}.bias"

    # -- ops --
    def convert(self, nodes, output_name, input_shape):
        for node in nodes:
            op = node.op_type
            if op == "Constant":
                val = self.attrs(node).get("value")
                if val is None:
                    raise self.err(node, "value", "a tensor 'value' attribute", "another kind of constant")
                self.consts[node.output[0]] = self.nh.to_array(val)
                continue
            if op not in SUPPORTED_OPS:
                raise self.err(node, "op", f"one of {', '.join(SUPPORTED_OPS)}", f"'{op}' (unsupported)")
            getattr(self, f"op_{op}")(node, self.attrs(node))
        if self.lstm is not None:
            if self.layers:
                raise user_error(self.path, "graph", "an LSTM alone", f"an LSTM and {len(self.layers)} other layers")
            return ImportedModel("lstm", str(self.path), lstm=self.lstm)
        last = list(self.layers)[-1] if self.layers else None
        if last is None or self.src.get(output_name) != last:
            raise user_error(self.path, "graph output", "the output of the last layer", f"'{output_name}'")
        return self.finish(input_shape)

    def op_Flatten(self, node, a):
        if a.get("axis", 1) != 1:
            raise self.err(node, "axis", "1", a.get("axis"))
        if node.input[0] not in self.src:
            raise self.err(node, "input", "the output of a supported node or the graph input", f"'{node.input[0]}'")
        self.src[node.output[0]] = self.src[node.input[0]]

    def _linear(self, node, x, w, b):
        layer = self.new_layer(node, "linear", [x])
        self.set_weight(layer, w.astype(np.float32), b.astype(np.float32))

    def op_Gemm(self, node, a):
        x = self.tensor(node, node.input[0])
        if a.get("transA", 0):
            raise self.err(node, "transA", "0", a["transA"])
        bmat = self.const(node, node.input[1], "B")
        w = (bmat if a.get("transB", 0) else bmat.T) * a.get("alpha", 1.0)
        b = np.zeros(w.shape[0])
        if len(node.input) > 2 and node.input[2]:
            c = self.const(node, node.input[2], "C") * a.get("beta", 1.0)
            if c.size not in (1, w.shape[0]):
                raise self.err(node, "C", f"a bias of {w.shape[0]} values", f"shape {c.shape}")
            b = np.broadcast_to(c.reshape(-1), (w.shape[0],)).copy()
        self._linear(node, x, w, b)

    def op_MatMul(self, node, a):
        x = self.tensor(node, node.input[0])
        bmat = self.const(node, node.input[1], "B")
        if bmat.ndim != 2:
            raise self.err(node, "B", "a 2-D weight", f"shape {bmat.shape}")
        self._linear(node, x, bmat.T, np.zeros(bmat.shape[1]))

    def op_Add(self, node, a):
        names = list(node.input)
        const = [n for n in names if n in self.consts]
        if len(const) == 1:
            other = names[1 - names.index(const[0])]
            prev = self.src.get(other)
            layer = self.layers.get(prev)
            if layer is None or layer["op"] not in ("linear", "conv2d") or layer.get("relu") \
                    or prev in self.used:
                raise self.err(node, "inputs", "a constant added to a fresh Gemm/MatMul/Conv output (a bias)",
                               f"a constant added to '{other}'")
            c = self.consts[const[0]].astype(np.float32)
            b = self.arrays[layer["bias"]]
            if c.size not in (1, b.size):
                raise self.err(node, "bias", f"{b.size} values", f"shape {c.shape}")
            self.arrays[layer["bias"]] = b + c.reshape(-1)
            self.src[node.output[0]] = prev
            return
        if const:
            raise self.err(node, "inputs", "at least one computed tensor", "two constants")
        self.new_layer(node, "add", [self.tensor(node, n) for n in names])

    def op_Relu(self, node, a):
        prev = self.src.get(node.input[0])
        layer = self.layers.get(prev)
        if layer is None or layer["op"] not in ("linear", "conv2d", "add") or layer.get("relu") \
                or prev in self.used:
            what = "the graph input" if prev == "input" else f"'{layer['op'] if layer else node.input[0]}'"
            raise self.err(node, "input", "the output of a Conv, Gemm/MatMul or Add (to fuse into)",
                           f"{what}")
        layer["relu"] = True
        self.src[node.output[0]] = prev

    def op_Conv(self, node, a):
        x = self.tensor(node, node.input[0])
        w = self.const(node, node.input[1], "W")
        if w.ndim != 4 or w.shape[2] != w.shape[3]:
            raise self.err(node, "W", "a square 2-D kernel (Cout, Cin, k, k)", f"shape {w.shape}")
        if a.get("group", 1) != 1:
            raise self.err(node, "group", "1", a["group"])
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise self.err(node, "dilations", "[1, 1]", a["dilations"])
        if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
            raise self.err(node, "auto_pad", "NOTSET (explicit pads)", a["auto_pad"])
        strides = list(a.get("strides", [1, 1]))
        pads = list(a.get("pads", [0, 0, 0, 0]))
        if len(set(strides)) != 1:
            raise self.err(node, "strides", "equal strides", strides)
        if len(set(pads)) != 1:
            raise self.err(node, "pads", "the same padding on every side", pads)
        b = self.const(node, node.input[2], "B") if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0])
        layer = self.new_layer(node, "conv2d", [x], stride=int(strides[0]), padding=int(pads[0]))
        self.set_weight(layer, w.astype(np.float32), b.astype(np.float32))

    def _pool(self, node, a, op):
        x = self.tensor(node, node.input[0])
        if len(node.output) > 1 and node.output[1]:
            raise self.err(node, "outputs", "one output", "an Indices output too")
        k = list(a.get("kernel_shape", []))
        s = list(a.get("strides", [1] * len(k)))
        if len(k) != 2 or k[0] != k[1]:
            raise self.err(node, "kernel_shape", "a square 2-D window", k)
        if len(set(s)) != 1:
            raise self.err(node, "strides", "equal strides", s)
        if any(a.get("pads", [0])) or a.get("ceil_mode", 0) or any(d != 1 for d in a.get("dilations", [1])):
            raise self.err(node, "pads/ceil_mode/dilations", "no padding, ceil_mode 0, no dilation",
                           {k2: a[k2] for k2 in ("pads", "ceil_mode", "dilations") if k2 in a})
        self.new_layer(node, op, [x], size=int(k[0]), stride=int(s[0]))

    def op_MaxPool(self, node, a):
        self._pool(node, a, "maxpool2d")

    def op_AveragePool(self, node, a):
        self._pool(node, a, "avgpool2d")

    def op_LSTM(self, node, a):
        if self.lstm is not None or self.layers:
            raise self.err(node, "graph", "an LSTM alone", "other layers too")
        if self.src.get(node.input[0]) != "input":
            raise self.err(node, "X", "the graph input", f"'{node.input[0]}'")
        if a.get("direction", b"forward") not in (b"forward", "forward"):
            raise self.err(node, "direction", "forward", a["direction"])
        for key in ("clip", "activations"):
            if key in a and not (key == "activations"
                                 and [s.decode() if isinstance(s, bytes) else s for s in a[key]]
                                 == ["Sigmoid", "Tanh", "Tanh"]):
                raise self.err(node, key, "the default (no clip; Sigmoid, Tanh, Tanh)", a[key])
        if a.get("input_forget", 0) or a.get("layout", 0):
            raise self.err(node, "input_forget/layout", "0", [a.get("input_forget", 0), a.get("layout", 0)])
        opt = [n for n in list(node.input)[4:7] if n]
        if opt:
            raise self.err(node, "sequence_lens/initial_h/initial_c", "absent (zero initial state)", opt)
        w = self.const(node, node.input[1], "W")[0]
        r = self.const(node, node.input[2], "R")[0]
        h = w.shape[0] // 4
        # ONNX gate order i, o, f, c -> PyTorch's i, f, g(=c), o
        order = np.concatenate([np.arange(0, h), np.arange(2 * h, 3 * h), np.arange(3 * h, 4 * h), np.arange(h, 2 * h)])
        b = (self.const(node, node.input[3], "B")[0] if len(node.input) > 3 and node.input[3]
             else np.zeros(8 * h))
        peep = (self.const(node, node.input[7], "P")[0] if len(node.input) > 7 and node.input[7] else None)
        self.lstm = LSTMWeights(w_ih=w[order], w_hh=r[order], b_ih=b[:4 * h][order], b_hh=b[4 * h:][order],
                                w_ic=None if peep is None else peep[:h],
                                w_oc=None if peep is None else peep[h:2 * h],
                                w_fc=None if peep is None else peep[2 * h:])
        for out in node.output:
            if out:
                self.src[out] = "lstm"

    # -- result --
    def finish(self, input_shape):
        layers = list(self.layers.values())
        if not layers:
            raise user_error(self.path, "graph", "at least one supported layer", "none")
        flat = len(self.input_dims) == 2 and all(l["op"] == "linear" for l in layers)
        chain = all(l["_inputs"] == [prev] for l, prev in zip(layers, ["input"] + [l["name"] for l in layers]))
        standard = all(bool(l.get("relu")) == (k < len(layers) - 1) for k, l in enumerate(layers))
        if flat and chain and standard:
            mlp = [FloatLayer(l["name"], self.arrays[l["weight"]].astype(np.float64),
                              self.arrays[l["bias"]].astype(np.float64), bool(l.get("relu"))) for l in layers]
            layers_from_arrays({f"{l.name}.{k}": getattr(l, k) for l in mlp for k in ("weight", "bias")},
                               where=self.path)   # the same checks as an .npz MLP
            return ImportedModel("mlp", str(self.path), mlp=mlp)
        shape = list(input_shape) if input_shape else self.input_dims[1:]
        if len(self.input_dims) == 2 and not input_shape:
            shape = [self.input_dims[1], 1, 1]
        if len(shape) != 3 or any(not d for d in shape):
            raise user_error(self.path, "input shape", "(N, C, H, W) with known C, H, W (or --input-shape)",
                             f"{self.input_dims}")
        spec_layers, prev = [], "input"
        for l in layers:
            entry = {k: v for k, v in l.items() if k != "_inputs"}
            if l["_inputs"] != [prev]:
                entry["inputs"] = list(l["_inputs"])
            if "relu" not in entry and l["op"] in ("conv2d", "linear", "add"):
                entry["relu"] = False
            spec_layers.append(entry)
            prev = l["name"]
        g = Graph({"format": "sparsa-model", "version": 1,
                   "input": {"shape": [int(d) for d in shape], "dtype": "float32"},
                   "layers": spec_layers}, dict(self.arrays))
        validate(g, str(self.path))
        return ImportedModel("cnn", str(self.path), graph=g)


def load_mlp(path, *, relu=True):
    """Load a float model from a ``.npy`` matrix or an ``.npz`` MLP.

    Parameters
    ----------
    path : str or Path
    relu : bool
        Put a ReLU after every layer but the last (``False``: no ReLU anywhere).

    Returns
    -------
    list of :class:`FloatLayer`

    Raises
    ------
    UserError
        Missing or unreadable file, wrong rank, non-finite values, no layers, a bias of the
        wrong shape, an unknown array name, or layers whose shapes do not chain.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        arrays = {"layer0.weight": load_npy(path, what="weight matrix")}
    elif suffix == ".npz":
        arrays = load_npz(path, what="model")
    elif suffix == ".onnx":
        model = load_onnx(path)
        if model.kind != "mlp":
            raise user_error(path, "model", "an MLP (Gemm/MatMul layers, a Relu after each but the last) "
                             "for the EIE engine", f"a {model.kind} model; `sparsa import` converts it to "
                             "sparsa's graph format, and `sparsa compress` takes it for the CNN engine")
        if not relu:
            raise user_error(path, "--no-relu", "not given for an ONNX model (its Relu nodes say where)", "given")
        return model.mlp
    else:
        raise user_error(path, "model file", "a .npy matrix, an .npz MLP or an .onnx file",
                         f"suffix '{path.suffix}'")
    return layers_from_arrays(arrays, where=path, relu=relu)
