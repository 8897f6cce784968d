"""The ONNX graph walker behind :func:`sparsa.sw.model.importer.load_onnx`: one method per op.

Every tensor's ONNX shape (batch axis first, ``None`` where the file leaves it open) is worked
out here from the op's own definition, independently of sparsa's graph, and checked three
times: against the size limit, against the graph output's declared shape, and against the
shape sparsa's graph gives (so a variant this walker turns into something else is refused,
never run). Variants that sparsa cannot express are refused with one line naming the node,
the op, the attribute and what is supported.
"""

import re

import numpy as np

from sparsa.sw.errors import user_error
from sparsa.sw.model.graph import MAX_TENSOR_ELEMENTS, Graph, validate
from sparsa.sw.model.lstm import LSTMWeights
from sparsa.sw.model.mlp import FloatLayer, layers_from_arrays

__all__ = ["SUPPORTED_OPS", "OnnxConverter", "safe_name"]

SUPPORTED_OPS = ("Gemm", "MatMul", "Relu", "Flatten", "Reshape", "Conv", "MaxPool", "AveragePool",
                 "GlobalAveragePool", "Add", "BatchNormalization", "Identity", "Dropout", "LSTM")


def safe_name(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "layer"


def _text(v):
    """An attribute value as text: bytes decoded, lists element-wise."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [_text(e) for e in v]
    return v


def _shape_str(shape):
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


def _window_out(n, k, s, pb, pe, ceil=False):
    span = n + pb + pe - k
    return (-(-span // s) if ceil else span // s) + 1


def _auto_pads(auto_pad, n, k, s):
    """(begin, end) padding of one axis for ``auto_pad`` SAME_UPPER / SAME_LOWER / VALID."""
    if auto_pad == "VALID":
        return 0, 0
    total = max((-(-n // s) - 1) * s + k - n, 0)
    small, big = total // 2, total - total // 2
    return (small, big) if auto_pad == "SAME_UPPER" else (big, small)


class OnnxConverter:
    """Walks the nodes once, turning them into sparsa layers.

    ``convert`` returns ``("mlp", [FloatLayer])``, ``("cnn", Graph)`` or ``("lstm", LSTMWeights)``.
    """

    def __init__(self, path, consts, input_name, input_dims, output_name, output_dims):
        self.path, self.consts = path, consts
        self.input_dims = input_dims
        self.output_name, self.output_dims = output_name, output_dims
        self.src = {input_name: "input"}     # tensor -> producing layer name ("input")
        self.shape = {input_name: tuple(input_dims)}   # tensor -> ONNX shape, batch first
        self.layers = {}                     # name -> layer dict (insertion = topological order)
        self.arrays = {}
        self.used = set()                    # layers whose output something already consumed
        self.lstm = None
        self.check_size(None, input_name, input_dims)

    # -- helpers --
    def err(self, node, field, limit, found):
        return user_error(self.path, f"node '{node.name or node.op_type}' ({node.op_type}) {field}", limit, found)

    def attrs(self, node):
        import onnx
        return {a.name: _text(onnx.helper.get_attribute_value(a)) for a in node.attribute}

    def const(self, node, name, what):
        if name not in self.consts:
            raise self.err(node, what, "a constant (initializer)", f"the computed tensor '{name}'")
        return self.consts[name].astype(np.float64)

    def tensor(self, node, name, rank=None, read=True):
        """The layer producing tensor ``name`` (a one-line refusal if none, or if its rank is not
        ``rank``); ``read`` marks that layer's output as consumed (nothing can be fused into it)."""
        if name not in self.src:
            raise self.err(node, "input", "the output of a supported node or the graph input", f"'{name}'")
        if rank is not None and len(self.shape[name]) != rank:
            what = {2: "(N, features)", 4: "(N, C, H, W)"}.get(rank, f"rank {rank}")
            raise self.err(node, "input", f"a {what} tensor", f"shape {_shape_str(self.shape[name])}")
        if read:
            self.used.add(self.src[name])
        return self.src[name]

    def check_size(self, node, tensor, shape):
        n = int(np.prod([d for d in shape[1:] if d], dtype=np.float64))
        if n > MAX_TENSOR_ELEMENTS:
            where = f"node '{node.name or node.op_type}' ({node.op_type}) output" if node else "graph input"
            raise user_error(self.path, f"{where} '{tensor}'", f"at most {MAX_TENSOR_ELEMENTS:,} values per "
                             "sample (sparsa's size limit)", f"shape {_shape_str(shape)} = {n:,.0f} values")

    def alias(self, node, src, shape=None):
        """``node``'s output is the tensor ``src`` (same layer), with ``shape`` (default: src's)."""
        self.src[node.output[0]] = self.src[src]
        self.shape[node.output[0]] = tuple(self.shape[src] if shape is None else shape)

    def new_layer(self, node, op, inputs, shape, **fields):
        base = safe_name(node.name or f"{op}{len(self.layers)}")
        name, k = base, 1
        while name in self.layers or name == "input":
            name, k = f"{base}_{k}", k + 1
        layer = {"name": name, "op": op, "_inputs": inputs, **fields}
        self.layers[name] = layer
        self.src[node.output[0]] = name
        self.shape[node.output[0]] = tuple(shape)
        self.check_size(node, node.output[0], shape)
        return layer

    def set_weight(self, layer, w, b):
        n = layer["name"]
        self.arrays[f"{n}.weight"], self.arrays[f"{n}.bias"] = w, b
        layer["weight"], layer["bias"] = f"{n}.weight", f"{n}.bias"

    def fresh(self, node, tensor, ops, what):
        """The layer producing ``tensor`` if its op is in ``ops``, has no ReLU yet and nothing else
        reads it, before or after (so a following op can be folded into it: folding changes
        the values of every tensor that names that layer); else a one-line refusal."""
        prev = self.src.get(tensor)
        layer = self.layers.get(prev)
        shared = prev in self.used or any(self.readers.get(t, 0) != 1 for t, s in self.src.items() if s == prev)
        if layer is None or layer["op"] not in ops or layer.get("relu") or shared:
            found = ("the graph input" if prev == "input" else f"'{tensor}'" if layer is None
                     else f"a {layer['op']}" + (" with ReLU" if layer.get("relu") else "")
                     + (" read by another node too" if shared else ""))
            raise self.err(node, "input", what, found)
        return layer

    # -- walk --
    def convert(self, nodes):
        # how many nodes read each tensor (the graph output counts as one): a layer is only
        # folded away when nothing else will read it
        self.readers = {}
        # every name a node may give its layer (new_layer avoids the ones already taken; the
        # pools made for a global average pool avoid these too)
        self.reserved = {safe_name(n.name) for n in nodes if n.name}
        for node in nodes:
            for t in node.input:
                self.readers[t] = self.readers.get(t, 0) + 1
        self.readers[self.output_name] = self.readers.get(self.output_name, 0) + 1
        for node in nodes:
            op = node.op_type
            if op == "Constant":
                val = self.attrs(node).get("value")
                if val is None:
                    raise self.err(node, "value", "a tensor 'value' attribute", "another kind of constant")
                from onnx import numpy_helper
                self.consts[node.output[0]] = numpy_helper.to_array(val)
                continue
            if op not in SUPPORTED_OPS:
                raise self.err(node, "op", f"one of {', '.join(SUPPORTED_OPS)}", f"'{op}' (unsupported)")
            getattr(self, f"op_{op}")(node, self.attrs(node))
        if self.lstm is not None:
            if self.layers:
                raise user_error(self.path, "graph", "an LSTM alone", f"an LSTM and {len(self.layers)} other layers")
            if self.src.get(self.output_name) != "lstm":
                raise user_error(self.path, "graph output", "the LSTM's output Y", f"'{self.output_name}'")
            self.check_output()
            return "lstm", self.lstm
        last = list(self.layers)[-1] if self.layers else None
        if last is None:
            raise user_error(self.path, "graph", "at least one supported layer", "none")
        if self.src.get(self.output_name) != last:
            raise user_error(self.path, "graph output", "the output of the last layer", f"'{self.output_name}'")
        self.check_output()
        return self.finish()

    def check_output(self):
        """The shape worked out for the graph output against the shape the file declares."""
        ours = self.shape.get(self.output_name)
        want = self.output_dims
        if ours is None or want is None:
            return
        if len(ours) != len(want) or any(a and b and a != b for a, b in zip(ours, want)):
            raise user_error(self.path, f"graph output '{self.output_name}'",
                             f"the declared shape {_shape_str(want)}",
                             f"shape {_shape_str(ours)} from the nodes (a variant sparsa gets wrong: refused)")

    # -- ops: fully connected --
    def op_Gemm(self, node, a):
        pooled = self.global_pool(node.input[0])
        x = self.tensor(node, node.input[0], rank=2)
        if a.get("transA", 0):
            raise self.err(node, "transA", "0", a["transA"])
        bmat = self.const(node, node.input[1], "B")
        w = (bmat if a.get("transB", 0) else bmat.T) * a.get("alpha", 1.0)
        if w.ndim != 2 or w.shape[1] != self.shape[node.input[0]][1]:
            raise self.err(node, "B", f"a weight with {self.shape[node.input[0]][1]} inputs", f"shape {bmat.shape}")
        b = np.zeros(w.shape[0])
        if len(node.input) > 2 and node.input[2]:
            c = self.const(node, node.input[2], "C") * a.get("beta", 1.0)
            if c.size not in (1, w.shape[0]) or c.ndim > 2 or (c.ndim == 2 and c.shape[0] != 1):
                raise self.err(node, "C", f"a bias of 1 or {w.shape[0]} values (shape (M,) or (1, M))",
                               f"shape {c.shape}")
            b = np.broadcast_to(c.reshape(-1), (w.shape[0],)).copy()
        self._linear(node, x, w, b, pooled)

    def op_MatMul(self, node, a):
        pooled = self.global_pool(node.input[0])
        x = self.tensor(node, node.input[0], rank=2)
        bmat = self.const(node, node.input[1], "B")
        if bmat.ndim != 2 or bmat.shape[0] != self.shape[node.input[0]][1]:
            raise self.err(node, "B", f"a 2-D weight ({self.shape[node.input[0]][1]}, M)", f"shape {bmat.shape}")
        self._linear(node, x, bmat.T, np.zeros(bmat.shape[1]), pooled)

    def global_pool(self, tensor):
        """The layer producing ``tensor`` if it is a GlobalAveragePool over a window that is not a
        power of two (ResNet's 7 x 7), which nothing else reads; else None. The engine's average
        pool divides by shifting, so :meth:`_linear` makes it a pool over the next power of two
        (up to 2 more rows and columns) and scales the classifier after it to match."""
        layer = self.layers.get(self.src.get(tensor))
        if layer is None or not layer.get("_global") or self.src[tensor] in self.used:
            return None
        if any(self.readers.get(t, 0) != 1 for t, s in self.src.items() if s == layer["name"]):
            return None
        h = layer["size"]
        k = 1 << (h - 1).bit_length()       # 8 for ResNet-18's 7
        # padded by p on every side, the first 2 x 2 stage must cover it all: p <= 1. A 2 x 2
        # pool runs as it is; 4 x 4 and up need the 2 x 2 stages too (pool strides are <= 3).
        return layer if h > 2 and k - h <= 2 else None

    def _linear(self, node, x, w, b, pooled=None):
        if pooled is not None:
            # An h x h global average pool becomes a k x k one, k the next power of two, over the
            # input padded with zeros (p on every side: the k x k window covers all h x h): it
            # gives mean * h^2 / k^2, so the classifier's weights are scaled by k^2 / h^2. The
            # engine's pool strides are at most 3, so k x k is log2(k) pools of 2 x 2, stride 2,
            # the first one padded. Exact in float; in int8 each stage rounds.
            h = pooled["size"]
            k = 1 << (h - 1).bit_length()
            stages = [2] * (k.bit_length() - 1)
            pooled.update(size=2, stride=2, padding=(k - h + 1) // 2)
            for s in stages[1:]:
                name, j = f"{pooled['name']}_{s}x{s}", 1
                while name in self.layers or name == "input" or name in self.reserved:
                    name, j = f"{pooled['name']}_{s}x{s}_{j}", j + 1
                self.layers[name] = {"name": name, "op": "avgpool2d", "_inputs": [x], "size": s, "stride": s}
                x = name
            w = w * (k * k / (h * h))
        layer = self.new_layer(node, "linear", [x], (self.shape[node.input[0]][0], w.shape[0]))
        self.set_weight(layer, w.astype(np.float32), b.astype(np.float32))

    def op_Flatten(self, node, a):
        self.tensor(node, node.input[0], read=False)
        shape = self.shape[node.input[0]]
        axis = a.get("axis", 1)
        axis = axis + len(shape) if axis < 0 else axis
        if axis != 1:
            raise self.err(node, "axis", "1 (keep the batch axis, flatten the rest)", a.get("axis"))
        self.alias(node, node.input[0], (shape[0], int(np.prod(shape[1:]))))

    def op_Reshape(self, node, a):
        self.tensor(node, node.input[0], read=False)
        shape = self.shape[node.input[0]]
        target = [int(d) for d in self.const(node, node.input[1], "shape").reshape(-1)]
        flat = int(np.prod(shape[1:]))
        batch_ok = target and (target[0] in (0, -1) or target[0] == shape[0])
        if not (len(target) == 2 and batch_ok and target[1] in (-1, flat) and target.count(-1) <= 1):
            raise self.err(node, "shape", f"a flatten to (N, {flat}) (e.g. [-1, {flat}] or [0, -1]) "
                           "before a classifier", target)
        self.alias(node, node.input[0], (shape[0], flat))

    # -- ops: elementwise and folded --
    def op_Add(self, node, a):
        names = list(node.input)
        const = [n for n in names if n in self.consts]
        if len(const) == 2:
            raise self.err(node, "inputs", "at least one computed tensor", "two constants")
        if const:
            other = names[1 - names.index(const[0])]
            layer = self.fresh(node, other, ("linear", "conv2d"),
                               "a constant added to a fresh Gemm/MatMul/Conv output (a bias)")
            out = self.shape[other]
            c = self.consts[const[0]].astype(np.float32)
            per_channel = [1] * (len(out) - c.ndim) + list(c.shape)
            if c.ndim > len(out) or any(d != 1 for k, d in enumerate(per_channel) if k != 1) \
                    or per_channel[1] not in (1, out[1]):
                want = "(C, 1, 1) or (1, C, 1, 1)" if len(out) == 4 else "(M,) or (1, M)"
                raise self.err(node, "bias", f"a per-channel constant of shape {want} or a scalar, "
                               "that broadcasts along the channel axis", f"shape {c.shape}")
            self.arrays[layer["bias"]] = self.arrays[layer["bias"]] + np.broadcast_to(
                c.reshape(-1), self.arrays[layer["bias"]].shape)
            self.alias(node, other)
            return
        srcs = [self.tensor(node, n) for n in names]
        if self.shape[names[0]] != self.shape[names[1]] or len(self.shape[names[0]]) != 4:
            raise self.err(node, "inputs", "two (N, C, H, W) tensors of the same shape (no broadcasting)",
                           " and ".join(_shape_str(self.shape[n]) for n in names))
        self.new_layer(node, "add", srcs, self.shape[names[0]])

    def op_Relu(self, node, a):
        layer = self.fresh(node, node.input[0], ("linear", "conv2d", "add"),
                           "the output of a Conv, Gemm/MatMul or Add (to fuse into)")
        layer["relu"] = True
        self.alias(node, node.input[0])

    def op_BatchNormalization(self, node, a):
        if a.get("training_mode", 0) or len([o for o in node.output if o]) > 1:
            raise self.err(node, "training_mode", "inference (0, one output)", a.get("training_mode", 0))
        layer = self.fresh(node, node.input[0], ("linear", "conv2d"),
                           "the output of a Conv or Gemm/MatMul (to fold into)")
        scale, bias, mean, var = (self.const(node, node.input[k], f) for k, f in
                                  ((1, "scale"), (2, "B"), (3, "input_mean"), (4, "input_var")))
        n = self.arrays[layer["bias"]].shape[0]
        if any(t.shape != (n,) for t in (scale, bias, mean, var)):
            raise self.err(node, "scale/B/mean/var", f"{n} values each",
                           [t.shape for t in (scale, bias, mean, var)])
        s = scale / np.sqrt(var + a.get("epsilon", 1e-5))
        w = self.arrays[layer["weight"]].astype(np.float64)
        w = w * s.reshape((n,) + (1,) * (w.ndim - 1))
        b = (self.arrays[layer["bias"]].astype(np.float64) - mean) * s + bias
        self.set_weight(layer, w.astype(np.float32), b.astype(np.float32))
        self.alias(node, node.input[0])

    def op_Identity(self, node, a):
        self.tensor(node, node.input[0], read=False)
        self.alias(node, node.input[0])

    def op_Dropout(self, node, a):
        if len(node.output) > 1 and node.output[1]:
            raise self.err(node, "outputs", "one output (inference)", "a mask output too")
        if len(node.input) > 2 and node.input[2]:
            if node.input[2] not in self.consts or bool(self.consts[node.input[2]]):
                raise self.err(node, "training_mode", "absent or a constant false (inference)", node.input[2])
        self.op_Identity(node, a)

    # -- ops: convolution and pooling --
    def _window(self, node, a, k):
        """(stride, pad, (Ho, Wo)) of a square k x k window on the node's input, or a refusal."""
        n, c, h, w = self.shape[node.input[0]]
        s = list(a.get("strides", [1, 1]))
        if len(s) != 2 or s[0] != s[1]:
            raise self.err(node, "strides", "equal strides on both axes", s)
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            raise self.err(node, "dilations", "[1, 1]", a["dilations"])
        auto = a.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER", "VALID"):
            (t, b), (l, r) = _auto_pads(auto, h, k, s[0]), _auto_pads(auto, w, k, s[0])
            pads, why = [t, l, b, r], f" (auto_pad {auto} gives pads {[t, l, b, r]})"
        elif auto == "NOTSET":
            pads, why = list(a.get("pads", [0, 0, 0, 0])), ""
        else:
            raise self.err(node, "auto_pad", "NOTSET, SAME_UPPER, SAME_LOWER or VALID", auto)
        if len(set(pads)) != 1:
            raise self.err(node, "pads", "the same padding on every side" + why, pads)
        ho, wo = _window_out(h, k, s[0], pads[0], pads[0]), _window_out(w, k, s[0], pads[0], pads[0])
        if ho < 1 or wo < 1:
            raise self.err(node, "kernel_shape", f"a window that fits the input {h}x{w}", [k, k])
        return int(s[0]), int(pads[0]), (n, c, ho, wo), why

    def op_Conv(self, node, a):
        x = self.tensor(node, node.input[0], rank=4)
        w = self.const(node, node.input[1], "W")
        if w.ndim != 4 or w.shape[2] != w.shape[3]:
            raise self.err(node, "W", "a square 2-D kernel (Cout, Cin, k, k)", f"shape {w.shape}")
        if a.get("group", 1) != 1:
            raise self.err(node, "group", "1 (the CNN engine has no grouped or depthwise convolution)", a["group"])
        cin = self.shape[node.input[0]][1]
        if w.shape[1] != cin or w.shape[0] < 1:
            raise self.err(node, "W", f"shape (Cout >= 1, {cin}, k, k)", f"shape {w.shape}")
        stride, pad, out, _ = self._window(node, a, w.shape[2])
        b = self.const(node, node.input[2], "B") if len(node.input) > 2 and node.input[2] else np.zeros(w.shape[0])
        if b.shape != (w.shape[0],):
            raise self.err(node, "B", f"shape ({w.shape[0]},)", f"shape {b.shape}")
        layer = self.new_layer(node, "conv2d", [x], (out[0], w.shape[0]) + out[2:], stride=stride, padding=pad)
        self.set_weight(layer, w.astype(np.float32), b.astype(np.float32))

    def _pool(self, node, a, op):
        x = self.tensor(node, node.input[0], rank=4)
        if len(node.output) > 1 and node.output[1]:
            raise self.err(node, "outputs", "one output", "an Indices output too")
        k = list(a.get("kernel_shape", []))
        if len(k) != 2 or k[0] != k[1]:
            raise self.err(node, "kernel_shape", "a square 2-D window", k)
        stride, pad, out, why = self._window(node, a, k[0])
        if pad:
            # ONNX pads a max pool with -inf, the engine reads zeros: the same on the non-negative
            # output of a ReLU (every window holds at least one element of the image)
            src = self.layers.get(x)
            if op != "maxpool2d" or src is None or not src.get("relu") or pad >= k[0]:
                raise self.err(node, "pads", "no padding, or a MaxPool's padding below its window "
                               "right after a ReLU (where it equals sparsa's zero padding)" + why,
                               f"{[pad] * 4} on {'an AveragePool' if op != 'maxpool2d' else 'a tensor that may be negative'}"
                               if pad < k[0] else [pad] * 4)
        if a.get("ceil_mode", 0):
            _, _, h, w = self.shape[node.input[0]]
            if (_window_out(h, k[0], stride, pad, pad, True), _window_out(w, k[0], stride, pad, pad, True)) != out[2:]:
                raise self.err(node, "ceil_mode", "0 (or a window that tiles the input exactly)", 1)
        fields = {"padding": int(pad)} if pad else {}
        self.new_layer(node, op, [x], out, size=int(k[0]), stride=stride, **fields)

    def op_MaxPool(self, node, a):
        self._pool(node, a, "maxpool2d")

    def op_AveragePool(self, node, a):
        self._pool(node, a, "avgpool2d")

    def op_GlobalAveragePool(self, node, a):
        x = self.tensor(node, node.input[0], rank=4)
        n, c, h, w = self.shape[node.input[0]]
        if h != w:
            raise self.err(node, "input", "a square H x W (pooled as one square window)", f"{h}x{w}")
        self.new_layer(node, "avgpool2d", [x], (n, c, 1, 1), size=int(h), stride=int(h))["_global"] = True

    # -- LSTM --
    def op_LSTM(self, node, a):
        if self.lstm is not None or self.layers:
            raise self.err(node, "graph", "an LSTM alone", "other layers too")
        if self.src.get(node.input[0]) != "input":
            raise self.err(node, "X", "the graph input", f"'{node.input[0]}'")
        if a.get("direction", "forward") != "forward":
            raise self.err(node, "direction", "forward", a["direction"])
        for key in ("clip", "activations"):
            if key in a and not (key == "activations" and a[key] == ["Sigmoid", "Tanh", "Tanh"]):
                raise self.err(node, key, "the default (no clip; Sigmoid, Tanh, Tanh)", a[key])
        if a.get("input_forget", 0) or a.get("layout", 0):
            raise self.err(node, "input_forget/layout", "0", [a.get("input_forget", 0), a.get("layout", 0)])
        opt = [n for n in list(node.input)[4:7] if n]
        if opt:
            raise self.err(node, "sequence_lens/initial_h/initial_c", "absent (zero initial state)", opt)
        outs = list(node.output) + ["", "", ""]
        if self.output_name in (outs[1], outs[2]):
            which = "Y_h (the last hidden state)" if self.output_name == outs[1] else "Y_c (the cell state)"
            raise self.err(node, "graph output", "Y (the hidden state at every step, what sparsa's LSTM "
                           "outputs)", which)
        if len(self.shape[node.input[0]]) != 3:
            raise self.err(node, "X", "a (T, N, I) input", f"shape {_shape_str(self.shape[node.input[0]])}")
        w = self.const(node, node.input[1], "W")[0]
        r = self.const(node, node.input[2], "R")[0]
        h = w.shape[0] // 4
        if a.get("hidden_size", h) != h or r.shape != (4 * h, h):
            raise self.err(node, "hidden_size", f"{h} (from W) with R of shape ({4 * h}, {h})",
                           [a.get("hidden_size"), r.shape])
        # ONNX gate order i, o, f, c -> PyTorch's i, f, g(=c), o
        order = np.concatenate([np.arange(0, h), np.arange(2 * h, 3 * h), np.arange(3 * h, 4 * h), np.arange(h, 2 * h)])
        b = (self.const(node, node.input[3], "B")[0] if len(node.input) > 3 and node.input[3]
             else np.zeros(8 * h))
        peep = (self.const(node, node.input[7], "P")[0] if len(node.input) > 7 and node.input[7] else None)
        self.lstm = LSTMWeights(w_ih=w[order], w_hh=r[order], b_ih=b[:4 * h][order], b_hh=b[4 * h:][order],
                                w_ic=None if peep is None else peep[:h],
                                w_oc=None if peep is None else peep[h:2 * h],
                                w_fc=None if peep is None else peep[2 * h:])
        if outs[0]:
            t, n, _ = self.shape[node.input[0]]
            self.src[outs[0]], self.shape[outs[0]] = "lstm", (t, 1, n, h)

    # -- result --
    def finish(self):
        layers = list(self.layers.values())
        out_shape = self.shape[self.output_name]
        flat = len(self.input_dims) == 2 and all(l["op"] == "linear" for l in layers)
        chain = all(l["_inputs"] == [prev] for l, prev in zip(layers, ["input"] + [l["name"] for l in layers]))
        standard = all(bool(l.get("relu")) == (k < len(layers) - 1) for k, l in enumerate(layers))
        if flat and chain and standard:
            mlp = [FloatLayer(l["name"], self.arrays[l["weight"]].astype(np.float64),
                              self.arrays[l["bias"]].astype(np.float64), bool(l.get("relu"))) for l in layers]
            layers_from_arrays({f"{l.name}.{k}": getattr(l, k) for l in mlp for k in ("weight", "bias")},
                               where=self.path)   # the same checks as an .npz MLP
            return "mlp", mlp
        shape = [self.input_dims[1], 1, 1] if len(self.input_dims) == 2 else list(self.input_dims[1:])
        if len(shape) != 3 or any(not d for d in shape):
            raise user_error(self.path, "input shape", "(N, C, H, W) with known C, H, W (or --input-shape C,H,W)",
                             f"{self.input_dims}")
        spec_layers, prev = [], "input"
        for l in layers:
            entry = {k: v for k, v in l.items() if not k.startswith("_")}
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
        # sparsa's graph must give the same per-sample shape as the ONNX nodes.
        last = g.shapes()[layers[-1]["name"]]
        ours = (last[0],) if layers[-1]["op"] == "linear" else last
        if tuple(out_shape[1:]) != tuple(ours):
            raise user_error(self.path, f"graph output '{self.output_name}'",
                             f"the shape {_shape_str(out_shape)} the ONNX nodes give",
                             f"{_shape_str(ours)} per sample in sparsa's graph (refused)")
        return "cnn", g
