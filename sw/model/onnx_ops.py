"""The ONNX graph walker behind :func:`sparsa.sw.model.importer.load_onnx`: one method per op.

Every tensor's ONNX shape (batch axis first, ``None`` where the file leaves it open) is worked
out here from the op's own definition, independently of sparsa's graph, and checked three
times: against the size limit, against the graph output's declared shape, and against the
shape sparsa's graph gives (so a variant this walker turns into something else is refused,
never run). Variants that sparsa cannot express are refused with one line naming the node,
the op, the attribute and what is supported.
"""

import numpy as np

from sparsa.sw.errors import user_error
from sparsa.sw.model.graph import Graph, validate
from sparsa.sw.model.mlp import FloatLayer, layers_from_arrays
from sparsa.sw.model.onnx_base import ConverterBase, safe_name, shape_str
from sparsa.sw.model.onnx_lstm import LstmOp
from sparsa.sw.model.onnx_resize import ResizeOps
from sparsa.sw.model.onnx_window import WindowOps

__all__ = ["SUPPORTED_OPS", "OnnxConverter", "safe_name"]

SUPPORTED_OPS = ("Gemm", "MatMul", "Relu", "LeakyRelu", "Flatten", "Reshape", "Conv", "MaxPool", "AveragePool",
                 "GlobalAveragePool", "Pad", "Resize", "Upsample", "Concat", "Add", "BatchNormalization",
                 "Identity", "Dropout", "LSTM")

# The leaky ReLU slopes sparsa's graph takes (graph.validate: the engine keeps alpha * 128 as an
# 8-bit integer, so 1/256 rounds to 1 and 255.5/128 would round to 256).
LEAKY_MIN, LEAKY_MAX = 0.5 / 128, 255.5 / 128


class OnnxConverter(WindowOps, ResizeOps, LstmOp, ConverterBase):
    """Walks the nodes once, turning them into sparsa layers.

    ``convert`` returns ``("mlp", [FloatLayer])``, ``("cnn", Graph)`` or ``("lstm", LSTMWeights)``.
    """

    # -- walk --
    def convert(self, nodes):
        # how many nodes read each tensor (a graph output counts as one): a layer is only
        # folded away when nothing else will read it; which nodes (a Pad looks at its reader)
        self.readers, self.consumers = {}, {}
        # every name a node may give its layer (new_layer avoids the ones already taken; the
        # pools made for a global average pool avoid these too)
        self.reserved = {safe_name(n.name) for n in nodes if n.name}
        for node in nodes:
            for t in node.input:
                self.readers[t] = self.readers.get(t, 0) + 1
                self.consumers.setdefault(t, []).append(node)
        for name, _ in self.outputs:
            self.readers[name] = self.readers.get(name, 0) + 1
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
            if len(self.outputs) > 1:
                raise user_error(self.path, "graph outputs", "one output (Y) for an LSTM", f"{len(self.outputs)} outputs")
            if self.layers:
                raise user_error(self.path, "graph", "an LSTM alone", f"an LSTM and {len(self.layers)} other layers")
            if self.src.get(self.output_name) != "lstm":
                raise user_error(self.path, "graph output", "the LSTM's output Y", f"'{self.output_name}'")
            self.check_output(self.output_name, self.output_dims)
            return "lstm", self.lstm
        last = list(self.layers)[-1] if self.layers else None
        if last is None:
            raise user_error(self.path, "graph", "at least one supported layer", "none")
        if len(self.outputs) > 1:
            self.join_outputs()
        elif self.src.get(self.output_name) != last:
            raise user_error(self.path, "graph output", "the output of the last layer", f"'{self.output_name}'")
        for name, dims in self.outputs:
            self.check_output(name, dims)
        return self.finish()

    def check_output(self, name, want):
        """The shape worked out for graph output ``name`` against the shape ``want`` the file declares."""
        ours = self.shape.get(name)
        if ours is None or want is None:
            return
        if len(ours) != len(want) or any(a and b and a != b for a, b in zip(ours, want)):
            raise user_error(self.path, f"graph output '{name}'", f"the declared shape {shape_str(want)}",
                             f"shape {shape_str(ours)} from the nodes (a variant sparsa gets wrong: refused)")

    def join_outputs(self):
        """Several graph outputs (YOLO's heads): one last ``concat`` with ``flatten`` of the layers
        that make them, in the graph's output order, so the model gives one vector."""
        srcs = []
        for name, _ in self.outputs:
            src = self.src.get(name)
            if src not in self.layers:
                raise user_error(self.path, f"graph output '{name}'", "the output of a layer",
                                 "the graph input" if src == "input" else "a tensor no supported node makes")
            srcs.append(src)
        name, k = "outputs", 1
        while name in self.layers or name in self.reserved:
            name, k = f"outputs_{k}", k + 1
        self.layers[name] = {"name": name, "op": "concat", "_inputs": srcs, "flatten": True}

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
                           " and ".join(shape_str(self.shape[n]) for n in names))
        self.new_layer(node, "add", srcs, self.shape[names[0]])

    def op_LeakyRelu(self, node, a):
        alpha = float(a.get("alpha", 0.01))
        if alpha != 0 and not LEAKY_MIN <= alpha < LEAKY_MAX:
            raise self.err(node, "alpha", "0 (a ReLU) or a slope in [0.004, 1.99] (the engine keeps "
                           "alpha * 128 as an 8-bit integer)", f"{alpha:g}")
        layer = self.fresh(node, node.input[0], ("linear", "conv2d"),
                           "the output of a Conv or Gemm/MatMul (to fold into as its leaky ReLU)")
        if alpha == 0:
            layer["relu"] = True
        else:
            layer["leaky"] = alpha
        self.alias(node, node.input[0])

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

    # -- result --
    def finish(self):
        layers = list(self.layers.values())
        flat = len(self.input_dims) == 2 and all(l["op"] == "linear" for l in layers)
        chain = all(l["_inputs"] == [prev] for l, prev in zip(layers, ["input"] + [l["name"] for l in layers]))
        standard = all(bool(l.get("relu")) == (k < len(layers) - 1) and l.get("leaky") is None
                       for k, l in enumerate(layers))
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
        # sparsa's graph must give the same per-sample shape as the ONNX nodes, for every output.
        shapes, outs = g.shapes(), []
        for name, _ in self.outputs:
            src = self.src[name]
            ours = (shapes[src][0],) if self.layers[src]["op"] == "linear" else shapes[src]
            if tuple(self.shape[name][1:]) != tuple(ours):
                raise user_error(self.path, f"graph output '{name}'",
                                 f"the shape {shape_str(self.shape[name])} the ONNX nodes give",
                                 f"{shape_str(ours)} per sample in sparsa's graph (refused)")
            outs.append({"name": name, "shape": [int(d) for d in ours]})
        if len(outs) > 1:
            # which values of the joined output vector are which ONNX output (ImportedModel says it)
            g.spec["outputs"] = outs
        return "cnn", g
