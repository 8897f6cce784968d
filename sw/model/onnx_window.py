"""Conv, MaxPool, AveragePool and GlobalAveragePool for :class:`sparsa.sw.model.onnx_ops.OnnxConverter`:
the ops with a window, and the padding rules that go with it."""

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
