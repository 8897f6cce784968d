"""Import float models: ONNX files and PyTorch ``state_dict()`` arrays saved as ``.npz``.

Supported ONNX ops (opset 11+, and the older Pad, Resize and Upsample): Gemm, MatMul, Relu and
LeakyRelu (folded into the layer before), Flatten, Reshape (a flatten), Conv, MaxPool,
AveragePool, GlobalAveragePool, Pad (zeros, folded into the next Conv or pool), Resize and
Upsample (nearest, integer scale), Concat (channels), Add, BatchNormalization (folded), Identity
and Dropout (removed), LSTM; the limits of each are in docs/import.md and
:mod:`sparsa.sw.model.onnx_ops`, which does the walk. Anything else is an error naming the node
and op, never a silent fallback, and each graph output's shape is checked against the shape the
file declares. Several graph outputs (YOLO's heads) become one flattened vector, joined in the
graph's output order (``ImportedModel.output_note`` says which values are which).

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

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sparsa.sw.errors import user_error
from sparsa.sw.fileio import load_npy, load_npz, save_npz
from sparsa.sw.model.graph import Graph, graph_forward, save_graph, validate
from sparsa.sw.model.onnx_ops import SUPPORTED_OPS, OnnxConverter, safe_name
from sparsa.sw.model.lstm import LSTM_KEYS, LSTMWeights, lstm_forward, lstm_from_arrays
from sparsa.sw.model.mlp import float_forward, layers_from_arrays

__all__ = ["ImportedModel", "import_model", "load_onnx", "load_mlp", "SUPPORTED_OPS"]

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
                rows.append((l["name"], _op_text(l), str(shapes[l["name"]]), n))
            return rows
        w = self.lstm
        n = sum(a.size for a in w.arrays().values())
        return [("lstm", f"lstm I={w.inputs} H={w.hidden} P={w.outputs}"
                 + (" peepholes" if w.w_ic is not None else ""), f"(T, {w.outputs})", n)]


    def output_note(self):
        """One line saying which values of the output are which graph output, for a graph whose
        several ONNX outputs were joined (``spec["outputs"]``); None otherwise."""
        outs = self.graph.spec.get("outputs") if self.kind == "cnn" else None
        if not outs:
            return None
        parts, start = [], 0
        for o in outs:
            n = int(np.prod(o["shape"]))
            parts.append(f"'{o['name']}' {tuple(o['shape'])} = [{start}:{start + n}]")
            start += n
        return (f"output: the {len(outs)} graph outputs, flattened and joined in order into one vector of "
                f"{start} values: " + ", ".join(parts))


def _op_text(layer):
    """A graph layer's op for the summary table, with its activation or flatten."""
    text = layer["op"]
    if layer.get("relu"):
        text += " + relu"
    if layer.get("leaky") is not None:
        text += f" + leaky {layer['leaky']:.4g}"
    if layer.get("flatten"):
        text += " (flatten)"
    if layer["op"] == "upsample":
        text += f" x{layer.get('scale', 2)}"
    return text


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
        lname = safe_name(name)
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




# ---- ONNX -----------------------------------------------------------------------------------

def load_onnx(path, *, input_shape=None):
    """Import an ONNX file (see the module docstring for the ops; the walk is
    :class:`sparsa.sw.model.onnx_ops.OnnxConverter`)."""
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
    if len(inputs) != 1 or not g.output:
        raise user_error(path, "graph inputs/outputs", "one input and at least one output",
                         f"{len(inputs)} inputs, {len(g.output)} outputs")
    dims = _dims(inputs[0])
    elem = inputs[0].type.tensor_type.elem_type
    if elem not in (onnx.TensorProto.FLOAT, onnx.TensorProto.DOUBLE, onnx.TensorProto.FLOAT16):
        raise user_error(path, f"graph input '{inputs[0].name}'", "a float tensor (sparsa imports float models)",
                         f"element type {onnx.TensorProto.DataType.Name(elem) if elem else 'none'}")
    if dims is None:
        raise user_error(path, f"graph input '{inputs[0].name}'", "a tensor with a declared rank", "no shape")
    if input_shape is not None:
        input_shape = [int(d) for d in input_shape]
        if len(dims) != 4 or any(d and d != e for d, e in zip(dims[1:], input_shape)):
            raise user_error(path, "--input-shape", f"C,H,W for an (N, C, H, W) input consistent with its "
                             f"declared shape {dims}", input_shape)
        dims = [dims[0]] + input_shape
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), None)
    outputs = [(o.name, _dims(o)) for o in g.output]
    kind, body = OnnxConverter(path, consts, inputs[0].name, dims, outputs, opset=opset).convert(g.node)
    return ImportedModel(kind, str(path), **{kind: body} if kind != "cnn" else {"graph": body})


def _dims(value_info):
    """Declared dims of a graph input/output (None where symbolic), or None without a shape."""
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return [d.dim_value if d.HasField("dim_value") else None for d in t.shape.dim]


def load_mlp(path, *, relu=True):
    """Load a float model from a ``.npy`` matrix or an ``.npz`` MLP.

    Parameters
    ----------
    path : str or Path
    relu : bool
        Put a ReLU after every layer but the last (``False``: no ReLU anywhere).

    Returns
    -------
    list of :class:`~sparsa.sw.model.mlp.FloatLayer`

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
