"""Random integer CNN graphs shared by the compiler tests and the RTL tests."""

import numpy as np

from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.model.graph import Graph

SMALL = CNNConfig(lanes=4, ibuf_bytes=2048, obuf_depth=256, wbuf_words=512, psum_depth=128)
TINY = CNNConfig(lanes=4, ibuf_bytes=1024, obuf_depth=48, wbuf_words=256, psum_depth=32)
CONFIGS = {"default": CNNConfig(), "small": SMALL, "tiny": TINY}


class Builder:
    """Integer graphs layer by layer, tracking shapes."""

    def __init__(self, rng, shape):
        self.rng = rng
        self.spec = {"format": "sparsa-model", "version": 1,
                     "input": {"shape": list(shape), "dtype": "int8"}, "layers": []}
        self.arrays = {}
        self.shapes = {"input": tuple(shape)}
        self.prev = "input"

    @property
    def shape(self):
        return self.shapes[self.prev]

    def _add(self, layer, shape):
        layer["name"] = name = layer.get("name") or f"l{len(self.spec['layers'])}"
        self.spec["layers"].append(layer)
        self.shapes[name] = shape
        self.prev = name
        return name

    def _params(self, name, w_shape, wmax, n):
        rng = self.rng
        self.arrays[name + ".w"] = rng.integers(-wmax, wmax + 1, w_shape).astype(np.int8)
        self.arrays[name + ".b"] = rng.integers(-4 * wmax * 32, 4 * wmax * 32 + 1, w_shape[0]).astype(np.int32)
        # about unit gain for ~uniform int8 inputs, so values stay spread over int8
        return max(0, int(round(np.log2(np.sqrt(n) * wmax * 0.6))))

    def conv(self, cout, k, stride=1, pad=0, relu=None, saturate=False, leaky=None, inputs=None):
        c, h, w = self.shapes[inputs or self.prev]
        name = f"l{len(self.spec['layers'])}"
        wmax = 127 if saturate else int(self.rng.integers(8, 128))
        shift = self._params(name, (cout, c, k, k), wmax, c * k * k)
        relu = (bool(self.rng.integers(2)) if relu is None else relu) and leaky is None
        ho, wo = (h + 2 * pad - k) // stride + 1, (w + 2 * pad - k) // stride + 1
        layer = {"name": name, "op": "conv2d", "weight": name + ".w", "bias": name + ".b",
                 "stride": stride, "padding": pad, "relu": relu, "shift": 0 if saturate else shift}
        if leaky is not None:
            layer["leaky"] = leaky
        if inputs:
            layer["inputs"] = inputs
        return self._add(layer, (cout, ho, wo))

    def linear(self, out, relu=False):
        n = int(np.prod(self.shape))
        name = f"l{len(self.spec['layers'])}"
        shift = self._params(name, (out, n), 64, n)
        return self._add({"name": name, "op": "linear", "weight": name + ".w", "bias": name + ".b",
                          "relu": relu, "shift": shift}, (out, 1, 1))

    def pool(self, size, stride=None, avg=False):
        c, h, w = self.shape
        s = stride or size
        return self._add({"op": "avgpool2d" if avg else "maxpool2d", "size": size, "stride": s},
                         (c, (h - size) // s + 1, (w - size) // s + 1))

    def pool_padded(self, size, stride, pads):
        """A max pool with zero padding ``[top, left, bottom, right]``."""
        c, h, w = self.shape
        t, l, b, r = pads
        return self._add({"op": "maxpool2d", "size": size, "stride": stride, "padding": list(pads)},
                         (c, (h + t + b - size) // stride + 1, (w + l + r - size) // stride + 1))

    def upsample(self, inputs=None):
        c, h, w = self.shapes[inputs or self.prev]
        layer = {"op": "upsample", "scale": 2}
        if inputs:
            layer["inputs"] = inputs
        return self._add(layer, (c, 2 * h, 2 * w))

    def concat(self, inputs, flatten=False):
        if flatten:
            shape = (sum(int(np.prod(self.shapes[i])) for i in inputs), 1, 1)
        else:
            shape = (sum(self.shapes[i][0] for i in inputs),) + self.shapes[inputs[0]][1:]
        return self._add({"op": "concat", "inputs": list(inputs), "flatten": flatten}, shape)

    def add(self, a, b, relu=False):
        return self._add({"op": "add", "inputs": [a, b], "relu": relu}, self.shapes[a])

    def graph(self):
        return Graph(self.spec, self.arrays)


def check_cycle_model(prog, res, rel, layer_rel, instr=(2, 0.0)):
    """The cycle model (``sparsa.sw.cnn.timing``) against an RTL run ``res`` of ``prog``
    (``sim.cnn.runner.run_program``): the total within ``rel``, every layer within
    ``layer_rel``, every instruction within ``instr[0]`` cycles or ``instr[1]`` of its own
    cycles. Prints the differences; returns (total, worst layer) relative differences."""
    from sparsa.sw.cnn.timing import program_cycles
    tm = program_cycles(prog.program)
    rtl = int(res["cycles"][0])
    total = (tm.cycles - rtl) / rtl
    model = tm.layer_cycles(prog.layers)
    # a layer without instructions (a concat written in place) has 0 cycles in both
    assert all(a == 0 for a, b in zip(model, res["layer_cycles"][0]) if b == 0)
    worst = max(abs(a - b) / b for a, b in zip(model, res["layer_cycles"][0]) if b > 0)
    got, want = np.diff(tm.retire, prepend=0), np.diff(res["retire_cycles"][0], prepend=0)
    off = np.abs(got - want)
    print(f"cycle model {tm.cycles:,} vs RTL {rtl:,} ({100 * total:+.3f}%); largest per-layer difference "
          f"{100 * worst:.2f}%; largest per-instruction difference {int(off.max())} cycles")
    assert abs(total) <= rel and worst <= layer_rel, (tm.cycles, rtl, model, res["layer_cycles"][0])
    bad = np.flatnonzero(off > np.maximum(instr[0], instr[1] * want))
    assert bad.size == 0, [(int(i), int(got[i]), int(want[i])) for i in bad[:5]]
    return total, worst


def run_every_layer_on_rtl(prog, graph, x, **kw):
    """Run ``prog`` on the RTL (``sim.cnn.runner.run_program``); its output *and every layer's*
    (read back from DRAM) must equal the golden model's, for each input of x (C, H, W) or
    (B, C, H, W). Returns the run's result."""
    from sparsa.sim.cnn.runner import run_program
    from sparsa.sw.cnn.golden import cnn_forward, int_layer_outputs
    res = run_program(prog, x, layers=True, **kw)
    ref = cnn_forward(graph, x)
    assert res["y"].shape == ref.shape
    np.testing.assert_array_equal(res["y"], ref)
    for xb, got in zip(x if x.ndim == 4 else x[None], res["layer_outputs"]):
        want = int_layer_outputs(graph, xb)
        for m in prog.layers:
            np.testing.assert_array_equal(got[m["name"]].reshape(-1), want[m["name"]].reshape(-1), err_msg=m["name"])
    return res


def yolo_ops_graph(seed):
    """YOLOv3-tiny's operators on a small random graph: 3x3 convs with leaky ReLU (0.1), 2x2
    max pools of stride 2 and of stride 1 padded right and bottom, a 1x1 conv, a 2x upsample,
    a channel concat of the upsample with an earlier layer (in place) and of the input (a
    copy), and the two heads joined by a flattening concat."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 4)), int(rng.integers(4, 7)) * 2, int(rng.integers(4, 7)) * 2)
    b = Builder(rng, shape)
    b.conv(int(rng.integers(4, 9)), 3, pad=1, leaky=0.1)
    early = b.prev
    b.pool(2)
    b.conv(int(rng.integers(5, 11)), 3, pad=1, leaky=float(rng.uniform(0.05, 0.9)))
    b.pool_padded(2, 1, [0, 0, 1, 1])
    deep = b.conv(int(rng.integers(3, 7)), 1, leaky=0.1)
    head1 = b.conv(int(rng.integers(3, 7)), 1, relu=False)
    up = b.upsample(inputs=deep)
    b.concat([up, early, "input"])
    head2 = b.conv(int(rng.integers(3, 7)), 3, pad=1, relu=False)
    b.concat([head1, head2], flatten=True)
    return b.graph(), rng.integers(-128, 128, shape).astype(np.int8)


def random_graph(seed):
    """Every op, odd sizes, k 1/3/5, stride 2, padding 0..2, a residual add, a linear head."""
    rng = np.random.default_rng(seed)
    shape = (int(rng.integers(1, 5)), int(rng.integers(6, 10)) * 2 + 1, int(rng.integers(5, 10)) * 2 + 1)
    b = Builder(rng, shape)
    b.conv(int(rng.integers(5, 11)), 3, pad=1)                       # Winograd-able
    k = int(rng.choice([1, 3, 5]))
    b.conv(int(rng.integers(3, 8)), k, stride=int(rng.integers(1, 3)), pad=int(rng.integers(0, min(k, 3))))
    skip = b.prev
    b.conv(b.shape[0], 3, pad=1, relu=False)
    b.add(b.prev, skip, relu=bool(rng.integers(2)))
    b.conv(int(rng.integers(4, 10)), 3, pad=int(rng.integers(0, 3)), saturate=bool(rng.integers(2)))
    if rng.integers(2):
        b.pool(2, avg=bool(rng.integers(2)))
    else:
        b.pool(3, stride=int(rng.integers(1, 3)))          # avgpool windows are powers of two
    b.conv(int(rng.integers(3, 7)), 1)
    if rng.integers(2):
        while np.prod(b.shape) > 200:        # keep the linear's weights inside TINY's wbuf
            b.pool(2)
        b.linear(int(rng.integers(3, 12)))
    return b.graph(), rng.integers(-128, 128, shape).astype(np.int8)
