"""ONNX's LSTM op for :class:`sparsa.sw.model.onnx_ops.OnnxConverter`: one forward layer alone,
as PyTorch ``nn.LSTM`` weights."""

import numpy as np

from sparsa.sw.model.lstm import LSTMWeights
from sparsa.sw.model.onnx_base import shape_str

__all__ = ["LstmOp"]


class LstmOp:
    """The LSTM op (a mixin of :class:`sparsa.sw.model.onnx_ops.OnnxConverter`)."""

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
            raise self.err(node, "X", "a (T, N, I) input", f"shape {shape_str(self.shape[node.input[0]])}")
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
