"""Conv, MaxPool, AveragePool, GlobalAveragePool and Pad for :class:`sparsa.sw.model.onnx_ops.OnnxConverter`:
the ops with a window, and the padding rules that go with it.

sparsa pads with zeros, per side for a pool (``[top, left, bottom, right]``) and the same on
every side for a convolution. A zero ``Pad`` read only by a Conv or a pool becomes that layer's
padding (exact whatever the sign of the values: zeros are what it adds); a MaxPool's own pads
are -inf in ONNX, equal to zeros only on a ReLU's non-negative output.
"""

import numpy as np

__all__ = ["WindowOps"]


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


class WindowOps:
    """The window ops (a mixin of :class:`sparsa.sw.model.onnx_ops.OnnxConverter`)."""

    def _window(self, node, a, k):
        """``(stride, own pads [top, left, bottom, right], output shape, why)`` of a square k x k
        window on the node's input (after any folded Pad: its shape includes that padding), or a
        refusal; ``why`` says which pads an ``auto_pad`` gave, for the messages."""
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
        if len(pads) != 4 or min(pads) < 0:
            raise self.err(node, "pads", "four values >= 0 [top, left, bottom, right]", pads)
        pads = [int(p) for p in pads]
        ho, wo = _window_out(h, k, s[0], pads[0], pads[2]), _window_out(w, k, s[0], pads[1], pads[3])
        if ho < 1 or wo < 1:
            raise self.err(node, "kernel_shape", f"a window that fits the input {h}x{w}", [k, k])
        return int(s[0]), pads, (n, c, ho, wo), why

    def _folded_pad(self, node, own, limit, what):
        """The padding of ``node`` with a Pad before it folded in: ``own + Pad's``, per side. The
        sum must pass ``limit`` (a refusal naming the Pad, saying ``what`` is supported)."""
        pad_node, extra = self.zero_pads.get(node.input[0], (None, [0, 0, 0, 0]))
        total = [o + e for o, e in zip(own, extra)]
        if pad_node is not None and not limit(total):
            raise self.err(pad_node, "pads", f"{what} once folded into the {node.op_type} "
                           f"'{node.name or node.op_type}'", f"H, W pads {extra} (with its own {own}: {total})")
        return total

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
        stride, own, out, why = self._window(node, a, w.shape[2])
        if len(set(own)) != 1 and node.input[0] not in self.zero_pads:
            raise self.err(node, "pads", "the same padding on every side" + why, own)
        pad = self._folded_pad(node, own, lambda p: len(set(p)) == 1,
                               "the same padding on every side of H and W (sparsa's conv2d pads evenly)")[0]
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
        stride, own, out, why = self._window(node, a, k[0])
        if any(own):
            # ONNX pads a max pool with -inf, the engine reads zeros: the same on the non-negative
            # output of a ReLU (every window holds at least one element of the image). An
            # AveragePool's own pads are left out of its count (or counted, with
            # count_include_pad): never zeros divided by k^2 as sparsa's are.
            src = self.layers.get(x)
            if op != "maxpool2d" or src is None or not src.get("relu") or max(own) >= k[0]:
                raise self.err(node, "pads", "no padding, or a MaxPool's padding below its window "
                               "right after a ReLU (where it equals sparsa's zero padding)" + why,
                               f"{own} on {'an AveragePool' if op != 'maxpool2d' else 'a tensor that may be negative'}"
                               if max(own) < k[0] else own)
        pads = self._folded_pad(node, own, lambda p: max(p) < k[0], f"each side below the window size {k[0]}")
        if a.get("ceil_mode", 0):
            _, _, h, w = self.shape[node.input[0]]
            if (_window_out(h, k[0], stride, own[0], own[2], True),
                    _window_out(w, k[0], stride, own[1], own[3], True)) != out[2:]:
                raise self.err(node, "ceil_mode", "0 (or a window that tiles the input exactly)", 1)
        # one number when every side is the same (what the graph held before per-side padding)
        fields = {"padding": pads[0] if len(set(pads)) == 1 else pads} if any(pads) else {}
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

    def op_Pad(self, node, a):
        """A zero Pad of H and W read by one Conv or pool only: no layer, its pads go to that
        layer (:meth:`_folded_pad`); its output tensor is the input's layer, with the padded shape."""
        self.tensor(node, node.input[0], rank=4, read=False)
        if a.get("mode", "constant") != "constant":
            raise self.err(node, "mode", "constant (zeros)", a["mode"])
        pads, value = self._pad_values(node, a)
        if np.size(value) != 1 or float(np.reshape(value, -1)[0]) != 0:
            raise self.err(node, "constant_value", "0 (sparsa pads with zeros)", np.reshape(value, -1).tolist())
        if len(pads) != 8 or pads[0] or pads[1] or pads[4] or pads[5]:
            raise self.err(node, "pads", "padding of H and W only: [0, 0, top, left, 0, 0, bottom, right]", pads)
        if min(pads) < 0:
            raise self.err(node, "pads", "values >= 0 (a negative pad crops)", pads)
        n, c, h, w = self.shape[node.input[0]]
        t, l, b, r = pads[2], pads[3], pads[6], pads[7]
        self.alias(node, node.input[0], (n, c, h and h + t + b, w and w + l + r))
        if not any(pads):
            return
        readers = self.consumers.get(node.output[0], [])
        out = any(node.output[0] == name for name, _ in self.outputs)
        if out or len(readers) != 1 or readers[0].op_type not in ("MaxPool", "AveragePool", "Conv") \
                or list(readers[0].input).count(node.output[0]) != 1 or readers[0].input[0] != node.output[0]:
            found = ("a graph output" if out else "no node" if not readers else
                     ", ".join(f"'{r.name or r.op_type}' ({r.op_type})" for r in readers))
            raise self.err(node, "output", "read by one MaxPool, AveragePool or Conv only (whose padding it "
                           "becomes)", found)
        self.zero_pads[node.output[0]] = (node, [t, l, b, r])

    def _pad_values(self, node, a):
        """A Pad's ``(pads, constant value)``: attributes up to opset 10, inputs from 11 (with the
        opset-18 ``axes`` input, pads for those axes only)."""
        if "pads" in a:
            return [int(p) for p in a["pads"]], a.get("value", 0.0)
        if len(node.input) < 2 or not node.input[1]:
            raise self.err(node, "pads", "a pads input (opset 11+) or attribute", "none")
        pads = [int(p) for p in self.const(node, node.input[1], "pads").reshape(-1)]
        value = self.const_or_none(node, node.input[2] if len(node.input) > 2 else "", "constant_value")
        axes = self.const_or_none(node, node.input[3] if len(node.input) > 3 else "", "axes")
        if axes is not None:
            axes = [int(x) % 4 for x in axes.reshape(-1)]
            if len(pads) != 2 * len(axes) or len(set(axes)) != len(axes):
                raise self.err(node, "pads/axes", "two pads per axis, each axis once", [pads, axes])
            full = [0] * 8
            for i, ax in enumerate(axes):
                full[ax], full[ax + 4] = pads[i], pads[i + len(axes)]
            pads = full
        return pads, 0.0 if value is None else value
