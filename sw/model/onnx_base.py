"""The state and helpers of the ONNX graph walk (:class:`sparsa.sw.model.onnx_ops.OnnxConverter`
is built on :class:`ConverterBase`): tensor bookkeeping, one-line refusals, layer creation and
the check that a layer can take a folded op.
"""

import re

import numpy as np

from sparsa.sw.errors import user_error
from sparsa.sw.model.graph import MAX_TENSOR_ELEMENTS

__all__ = ["ConverterBase", "safe_name", "shape_str", "text"]


def safe_name(name):
    return re.sub(r"[^A-Za-z0-9_]", "_", name) or "layer"


def text(v):
    """An attribute value as text: bytes decoded, lists element-wise."""
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, (list, tuple)):
        return [text(e) for e in v]
    return v


def shape_str(shape):
    return "(" + ", ".join("?" if d is None else str(d) for d in shape) + ")"


class ConverterBase:
    """What every op method uses: ``src``/``shape`` map each ONNX tensor to the sparsa layer
    producing it and its ONNX shape; ``layers`` and ``arrays`` are the result so far."""

    def __init__(self, path, consts, input_name, input_dims, outputs, opset=None):
        """``outputs``: ``[(name, declared dims or None), ...]`` in the graph's order; ``opset``
        the model's default-domain opset (None: the newest rules)."""
        self.path, self.consts = path, consts
        self.input_dims = input_dims
        self.outputs = list(outputs)
        self.output_name, self.output_dims = self.outputs[0]
        self.opset = opset
        self.src = {input_name: "input"}     # tensor -> producing layer name ("input")
        self.shape = {input_name: tuple(input_dims)}   # tensor -> ONNX shape, batch first
        self.layers = {}                     # name -> layer dict (insertion = topological order)
        self.arrays = {}
        self.used = set()                    # layers whose output something already consumed
        self.zero_pads = {}                  # tensor of a folded Pad -> (Pad node, [top, left, bottom, right])
        self.lstm = None
        self.check_size(None, input_name, input_dims)

    # -- helpers --
    def err(self, node, field, limit, found):
        return user_error(self.path, f"node '{node.name or node.op_type}' ({node.op_type}) {field}", limit, found)

    def attrs(self, node):
        import onnx
        return {a.name: text(onnx.helper.get_attribute_value(a)) for a in node.attribute}

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
            raise self.err(node, "input", f"a {what} tensor", f"shape {shape_str(self.shape[name])}")
        if read:
            self.used.add(self.src[name])
        return self.src[name]

    def check_size(self, node, tensor, shape):
        n = int(np.prod([d for d in shape[1:] if d], dtype=np.float64))
        if n > MAX_TENSOR_ELEMENTS:
            where = f"node '{node.name or node.op_type}' ({node.op_type}) output" if node else "graph input"
            raise user_error(self.path, f"{where} '{tensor}'", f"at most {MAX_TENSOR_ELEMENTS:,} values per "
                             "sample (sparsa's size limit)", f"shape {shape_str(shape)} = {n:,.0f} values")

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
        """The layer producing ``tensor`` if its op is in ``ops``, has no ReLU or leaky ReLU yet and
        nothing else reads it, before or after (so a following op can be folded into it: folding
        changes the values of every tensor that names that layer); else a one-line refusal."""
        prev = self.src.get(tensor)
        layer = self.layers.get(prev)
        shared = prev in self.used or any(self.readers.get(t, 0) != 1 for t, s in self.src.items() if s == prev)
        act = layer is not None and (layer.get("relu") or layer.get("leaky") is not None)
        if layer is None or layer["op"] not in ops or act or shared:
            found = ("the graph input" if prev == "input" else f"'{tensor}'" if layer is None
                     else f"a {layer['op']}" + (" with ReLU" if layer.get("relu") else "")
                     + (" with LeakyRelu" if layer.get("leaky") is not None else "")
                     + (" read by another node too" if shared else ""))
            raise self.err(node, "input", what, found)
        return layer

    def const_or_none(self, node, name, what):
        """An optional constant input: None when the name is empty or the tensor has no values
        (how ONNX leaves out an optional input), else as :meth:`const`."""
        if not name or (name in self.consts and self.consts[name].size == 0):
            return None
        return self.const(node, name, what)
