"""The CNN golden model against an independent reference, named edge cases, and the checks of
integer graphs (:func:`validate_int_graph`).

The reference computes every sum in float64 with the float executor's own convolution and
pooling (``graph._conv``, ``graph._pool``: exact, since every value is an integer far below
2**53) and rounds by ``floor(acc / 2**shift + 1/2)`` in float64 (a power-of-two division is
exact) instead of the golden model's integer add-and-shift; a few points are recomputed with
Python ints and Fractions.
"""

import copy
from fractions import Fraction
import math

import numpy as np
import pytest

from sparsa.sw.cnn.golden import cnn_forward, conv2d_int, int_layer_outputs, validate_int_graph
from sparsa.sw.errors import UserError
from sparsa.sw.model.graph import Graph, _conv, _pool, _sources

SEED = 31


def int_graph(layers, arrays, shape):
    return Graph({"format": "sparsa-model", "version": 1, "input": {"shape": list(shape), "dtype": "int8"},
                  "layers": layers}, arrays)


def ref_finish(acc, shift, relu):
    y = np.floor(acc / 2.0 ** shift + 0.5) if shift else acc
    y = np.clip(y, -128, 127)
    return np.maximum(y, 0) if relu else y


def ref_forward(graph, x):
    """Independent float64 reference of the integer semantics (one input, every layer)."""
    vals = {"input": np.asarray(x, dtype=np.float64)}
    prev = "input"
    for layer in graph.layers:
        op = layer["op"]
        srcs = [vals[s] for s in _sources(layer, prev)]
        if op == "conv2d":
            acc = _conv(srcs[0], graph.arrays[layer["weight"]].astype(np.float64),
                        graph.arrays[layer["bias"]].astype(np.float64), layer.get("stride", 1), layer.get("padding", 0))
            y = ref_finish(acc, layer.get("shift", 0), layer.get("relu"))
        elif op == "linear":
            acc = graph.arrays[layer["weight"]].astype(np.float64) @ srcs[0].reshape(-1) \
                + graph.arrays[layer["bias"]].astype(np.float64)
            y = ref_finish(acc, layer.get("shift", 0), layer.get("relu")).reshape(-1, 1, 1)
        elif op == "maxpool2d":
            y = _pool(srcs[0], layer["size"], layer.get("stride", layer["size"]), np.max)
        elif op == "avgpool2d":
            y = np.floor(_pool(srcs[0], layer["size"], layer.get("stride", layer["size"]), np.mean) + 0.5)
        else:
            y = np.clip(srcs[0] + srcs[1], -128, 127)
            if layer.get("relu"):
                y = np.maximum(y, 0)
        vals[layer["name"]] = y
        prev = layer["name"]
    return vals


def residual_net(rng, shape=(3, 9, 9)):
    c = shape[0]
    r = lambda *s: rng.integers(-128, 128, size=s).astype(np.int8)
    rb = lambda n: rng.integers(-3000, 3000, size=n).astype(np.int32)
    arrays = {"c1.w": r(6, c, 3, 3), "c1.b": rb(6), "c2.w": r(6, 6, 3, 3), "c2.b": rb(6),
              "c3.w": r(6, c, 1, 1), "c3.b": rb(6), "c4.w": r(5, 6, 5, 5), "c4.b": rb(5),
              "fc.w": r(4, 5 * 2 * 2), "fc.b": rb(4)}
    layers = [
        {"name": "c1", "op": "conv2d", "weight": "c1.w", "bias": "c1.b", "stride": 1, "padding": 1, "shift": 9,
         "relu": True},
        {"name": "c2", "op": "conv2d", "weight": "c2.w", "bias": "c2.b", "stride": 1, "padding": 1, "shift": 10,
         "relu": False},
        {"name": "c3", "op": "conv2d", "weight": "c3.w", "bias": "c3.b", "inputs": "input", "shift": 7},
        {"name": "res", "op": "add", "inputs": ["c2", "c3"], "relu": True},
        {"name": "c4", "op": "conv2d", "weight": "c4.w", "bias": "c4.b", "stride": 2, "padding": 2, "shift": 11,
         "relu": True},                                                         # 9x9 -> 5x5
        {"name": "mp", "op": "maxpool2d", "size": 2, "stride": 1},              # 5x5 -> 4x4
        {"name": "ap", "op": "avgpool2d", "size": 2, "stride": 2},              # 4x4 -> 2x2
        {"name": "fc", "op": "linear", "weight": "fc.w", "bias": "fc.b", "shift": 8},
    ]
    return int_graph(layers, arrays, shape)


def test_every_layer_matches_the_independent_reference():
    print("seed", SEED)
    rng = np.random.default_rng(SEED)
    g = residual_net(rng)
    validate_int_graph(g, "net")
    for _ in range(5):
        x = rng.integers(-128, 128, size=g.input_shape).astype(np.int8)
        got, ref = int_layer_outputs(g, x), ref_forward(g, x)
        for layer in g.layers:
            y = got[layer["name"]]
            assert y.dtype == np.int8, layer["name"]
            np.testing.assert_array_equal(y.astype(np.int64), ref[layer["name"]].astype(np.int64),
                                          err_msg=layer["name"])
        np.testing.assert_array_equal(cnn_forward(g, x), ref["fc"].reshape(-1))
    # Every op saturated somewhere across the layers (the test exercises the clipping).
    outs = int_layer_outputs(g, x)
    assert any((outs[n] == 127).any() or (outs[n] == -128).any() for n in ("c2", "res", "fc", "c3"))
    # Batched input gives the same as one at a time.
    xb = rng.integers(-128, 128, size=(3,) + g.input_shape).astype(np.int8)
    np.testing.assert_array_equal(cnn_forward(g, xb), np.stack([cnn_forward(g, v) for v in xb]))


def test_a_few_points_in_python_ints():
    rng = np.random.default_rng(SEED + 1)
    g = residual_net(rng)
    x = rng.integers(-128, 128, size=g.input_shape).astype(np.int8)
    out = int_layer_outputs(g, x)
    w, b = g.arrays["c1.w"], g.arrays["c1.b"]
    xi = [[[int(v) for v in row] for row in ch] for ch in x]

    def px(c, i, j):
        return xi[c][i][j] if 0 <= i < 9 and 0 <= j < 9 else 0

    for (o, i, j) in [(0, 0, 0), (5, 8, 8), (3, 4, 2), (2, 0, 8)]:
        acc = int(b[o]) + sum(int(w[o, c, dy, dx]) * px(c, i + dy - 1, j + dx - 1)
                              for c in range(3) for dy in range(3) for dx in range(3))
        y = math.floor(Fraction(acc, 2 ** 9) + Fraction(1, 2))
        y = max(0, min(127, max(-128, y)))
        assert int(out["c1"][o, i, j]) == y
    # The residual add at one point: saturating sum then ReLU.
    s = int(out["c2"][1, 3, 3]) + int(out["c3"][1, 3, 3])
    assert int(out["res"][1, 3, 3]) == max(0, min(127, max(-128, s)))
    # Average pool at one point: floor(mean + 1/2).
    win = [int(out["mp"][2, 2 + a, 2 + c]) for a in range(2) for c in range(2)]
    assert int(out["ap"][2, 1, 1]) == math.floor(Fraction(sum(win), 4) + Fraction(1, 2))


@pytest.mark.parametrize("k,stride,pad", [(1, 1, 0), (3, 1, 1), (3, 2, 0), (5, 2, 2), (7, 1, 3), (2, 2, 1)])
def test_conv2d_int_equals_float64_conv(k, stride, pad):
    rng = np.random.default_rng(SEED + k * 10 + stride + pad)
    x = rng.integers(-128, 128, size=(4, 11, 10))
    w = rng.integers(-128, 128, size=(3, 4, k, k))
    b = rng.integers(-2 ** 31, 2 ** 31, size=3)
    ref = _conv(x.astype(float), w.astype(float), b.astype(float), stride, pad)
    got = conv2d_int(x, w, b, stride, pad)
    assert got.dtype == np.int64
    np.testing.assert_array_equal(got, ref.astype(np.int64))


def one_conv(w, b, shift, relu, shape=(1, 2, 2), pad=0):
    w = np.asarray(w, dtype=np.int8)
    return int_graph([{"name": "c", "op": "conv2d", "weight": "w", "bias": "b", "padding": pad, "shift": shift,
                       "relu": relu}], {"w": w, "b": np.asarray(b, dtype=np.int32)}, shape)


def test_all_zero_input_gives_the_rounded_bias():
    g = one_conv(np.ones((4, 1, 3, 3)), [0, 300, -300, 2 ** 31 - 1], 2, False, shape=(1, 5, 5), pad=1)
    y = cnn_forward(g, np.zeros((1, 5, 5), np.int8))
    # 300 / 4 = 75; -300 / 4 = -75; int32 max / 4 saturates at 127.
    assert [int(y[o, 0, 0]) for o in range(4)] == [0, 75, -75, 127]
    assert np.all(y == y[:, :1, :1])


def test_shift_zero_does_not_round_and_saturates():
    g = one_conv([[[[1]]], [[[-1]]]], [0, 0], 0, False, shape=(1, 1, 3))
    y = cnn_forward(g, np.array([[[5, 127, -128]]], np.int8))
    assert y[0].ravel().tolist() == [5, 127, -128]
    assert y[1].ravel().tolist() == [-5, -127, 127]        # -(-128) = 128 saturates to 127


def test_negative_ties_round_toward_plus_infinity():
    # 1x1 kernel of 1, bias 0: acc = x. shift 1: -3/2 = -1.5 -> -1, -1/2 -> 0, 3/2 -> 2, -5/2 -> -2.
    g = one_conv([[[[1]]]], [0], 1, False, shape=(1, 1, 6))
    y = cnn_forward(g, np.array([[[-3, -1, 3, -5, 1, -2]]], np.int8))
    assert y.ravel().tolist() == [-1, 0, 2, -2, 1, -1]
    # shift 2 via the bias: acc = x - 2; -6/4 = -1.5 -> -1, -10/4 = -2.5 -> -2.
    g = one_conv([[[[1]]]], [-2], 2, False, shape=(1, 1, 2))
    assert cnn_forward(g, np.array([[[-4, -8]]], np.int8)).ravel().tolist() == [-1, -2]
    # Average pool: (-2 + 2) >> 2 = 0 (mean -0.5 -> 0), (-6 + 2) >> 2 = -1 (mean -1.5 -> -1).
    g = int_graph([{"name": "p", "op": "avgpool2d", "size": 2, "stride": 2}], {}, (1, 2, 4))
    y = cnn_forward(g, np.array([[[-1, -1, -2, -2], [0, 0, -1, -1]]], np.int8))
    assert y.ravel().tolist() == [0, -1]


def test_saturation_on_both_sides():
    g = one_conv(np.full((2, 1, 2, 2), 127), [0, 0], 0, False)
    g.arrays["w"][1] = -128
    y = cnn_forward(g, np.full((1, 2, 2), 127, np.int8))
    assert y.ravel().tolist() == [127, -128]
    # With ReLU the negative saturation becomes 0.
    g.layers[0]["relu"] = True
    assert cnn_forward(g, np.full((1, 2, 2), 127, np.int8)).ravel().tolist() == [127, 0]
    # Linear: the same both ways; add: 100 + 100 -> 127, -100 + -100 -> -128.
    lin = int_graph([{"name": "fc", "op": "linear", "weight": "w", "bias": "b", "shift": 3}],
                    {"w": np.array([[127] * 4, [-128] * 4], np.int8), "b": np.zeros(2, np.int32)}, (1, 2, 2))
    assert cnn_forward(lin, np.full((1, 2, 2), 100, np.int8)).tolist() == [127, -128]
    add = int_graph([{"name": "a", "op": "add", "inputs": ["input", "input"]}], {}, (1, 1, 3))
    assert cnn_forward(add, np.array([[[100, -100, -3]]], np.int8)).ravel().tolist() == [127, -128, -6]


def test_maxpool_and_avgpool_with_stride():
    x = np.arange(-12, 13, dtype=np.int8).reshape(1, 5, 5)
    g = int_graph([{"name": "m", "op": "maxpool2d", "size": 3, "stride": 2}], {}, (1, 5, 5))
    assert cnn_forward(g, x).ravel().tolist() == [0, 2, 10, 12]
    g = int_graph([{"name": "a", "op": "avgpool2d", "size": 4, "stride": 1}], {}, (1, 5, 5))
    x = np.random.default_rng(SEED).integers(-128, 128, size=(1, 5, 5)).astype(np.int8)
    ref = _pool(x.astype(float), 4, 1, np.mean)
    np.testing.assert_array_equal(cnn_forward(g, x).astype(float), np.floor(ref + 0.5))


#
# validate_int_graph
#

def _set(path, value):
    def mutate(g):
        if path[0] == "arrays":
            g.arrays[path[1]] = value
        elif path[0] == "input":
            g.spec["input"][path[1]] = value
        else:
            g.layers[path[0]][path[1]] = value
    return mutate


BAD = [
    ("float input", _set(("input", "dtype"), "float32"), ["input.dtype", "'int8'", "'float32'"]),
    ("weight range", _set(("arrays", "c1.w"), np.full((6, 3, 3, 3), 128, np.int16)), ["c1.weight", "int8", "128"]),
    ("weight dtype", _set(("arrays", "fc.w"), np.zeros((4, 20), np.float32)), ["fc.weight", "integer", "float32"]),
    ("bias range", _set(("arrays", "c2.b"), np.full(6, -2 ** 31 - 1, np.int64)),
     ["c2.bias", "int32", str(-2 ** 31 - 1)]),
    ("shift high", _set((0, "shift"), 32), ["c1.shift", "0..31", "32"]),
    ("shift negative", _set((7, "shift"), -1), ["fc.shift", "0..31", "-1"]),
    ("shift float", _set((1, "shift"), 1.5), ["c2.shift", "1.5"]),
    ("kernel 9", _set(("arrays", "c3.w"), np.zeros((6, 3, 9, 9), np.int8)), ["c3.weight", "1..7", "k = 9"]),
    ("stride 3", _set((4, "stride"), 3), ["c4.stride", "1..2", "3"]),
    ("padding k", _set((0, "padding"), 3), ["c1.padding", "0..2", "3"]),
    ("avgpool 3x3", _set((6, "size"), 3), ["ap.size", "power of two", "9 elements"]),
    ("pool stride 0", _set((5, "stride"), 0), ["mp.stride", "0"]),
    ("pool padding side", _set((5, "padding"), [0, 0, 2, 1]), ["mp.padding", "0..1", "2"]),
    ("avgpool padding uneven", _set((6, "padding"), [0, 0, 1, 1]), ["ap.padding", "every side"]),
    ("leaky with relu", _set((0, "leaky"), 0.1), ["c1.leaky", "without relu"]),
    ("leaky slope", _set((1, "leaky"), 2.5), ["c2.leaky", "alpha", "2.5"]),
    ("upsample scale", lambda g: g.layers.insert(6, {"name": "u3", "op": "upsample", "scale": 3}),
     ["u3.scale", "2..2", "3"]),
]


@pytest.mark.parametrize("mutate,needles", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_validate_int_graph_refuses(mutate, needles):
    g = residual_net(np.random.default_rng(SEED))
    validate_int_graph(g, "net.npz")
    g = Graph(copy.deepcopy(g.spec), dict(g.arrays))
    mutate(g)
    with pytest.raises(UserError) as e:
        validate_int_graph(g, "net.npz")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("net.npz: ")
    for n in needles:
        assert n in msg, msg


def test_validate_int_graph_accepts_missing_shift_as_zero():
    g = one_conv([[[[1]]]], [0], 0, False)
    del g.layers[0]["shift"]
    validate_int_graph(g, "g")


#
# YOLO's operators: leaky ReLU, per-side pool padding, upsample, concat
#

def ref_leaky(v, alpha):
    """Python-Fraction reference: a negative rounded value v times round(alpha*128)/128, rounded
    half up, saturated."""
    a = math.floor(Fraction(alpha) * 128 + Fraction(1, 2))
    out = math.floor(Fraction(int(v) * a, 128) + Fraction(1, 2)) if v < 0 else int(v)
    return max(-128, min(127, out))


@pytest.mark.parametrize("alpha", [0.1, 0.01, 0.5, 0.9921875, 1.5])
def test_leaky_relu_in_python_fractions(alpha):
    """A 1x1 conv with weight 1 and shift 0 passes its bias through, so the bias sweeps every
    pre-activation value from -40000 to 300 (far below -16384, where the engine clamps)."""
    vals = np.concatenate([np.arange(-300, 301), [-40000, -16385, -16384, -16383, -1281, -1280, -1279]])
    g = one_conv([[[[1]]]], [0], 0, False)
    g.layers[0]["relu"] = False
    g.layers[0]["leaky"] = alpha
    for v in vals:
        g.arrays["b"] = np.array([v], np.int32)
        got = int(cnn_forward(g, np.zeros((1, 2, 2), np.int8))[0, 0, 0])
        assert got == ref_leaky(v, alpha), (alpha, v, got)


def test_leaky_conv_against_float_within_the_slope_error():
    """Golden int8 leaky conv against float: the only errors are the output rounding (half an
    LSB) and alpha kept to 7 bits (|0.1 - 13/128| = 0.0016 of each negative value)."""
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    w = rng.integers(-20, 21, (4, 3, 3, 3)).astype(np.int8)
    b = rng.integers(-500, 501, 4).astype(np.int32)
    g = int_graph([{"name": "c", "op": "conv2d", "weight": "c.w", "bias": "c.b", "padding": 1, "shift": 4,
                    "leaky": 0.1}], {"c.w": w, "c.b": b}, (3, 6, 6))
    x = rng.integers(-128, 128, (3, 6, 6)).astype(np.int8)
    acc = _conv(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64), 1, 1) / 16
    ref = np.clip(np.where(acc < 0, acc * 0.1, acc), -128, 127)
    got = cnn_forward(g, x).astype(np.float64)
    bound = 0.5 + 0.5 * 0.1 + np.abs(np.minimum(acc, 0)) * abs(13 / 128 - 0.1) + 1e-9
    assert np.all(np.abs(got - ref) <= bound)
    assert (acc < 0).any() and (acc > 0).any()


def test_pool_padding_per_side_upsample_and_concat_by_hand():
    rng = np.random.default_rng(SEED)
    x = rng.integers(-128, 128, (2, 5, 4)).astype(np.int8)
    layers = [{"name": "mp", "op": "maxpool2d", "size": 2, "stride": 1, "padding": [0, 0, 1, 1]},
              {"name": "up", "op": "upsample", "scale": 2, "inputs": "input"},
              {"name": "cat", "op": "concat", "inputs": ["mp", "input"]},
              {"name": "flat", "op": "concat", "inputs": ["up", "mp"], "flatten": True}]
    g = int_graph(layers, {}, (2, 5, 4))
    vals = int_layer_outputs(g, x)
    # stride-1 2x2 max pool padded with zeros at the bottom and the right: same size as x
    mp = np.zeros((2, 5, 4), np.int64)
    for c in range(2):
        for i in range(5):
            for j in range(4):
                win = [int(x[c, y, z]) if y < 5 and z < 4 else 0 for y in (i, i + 1) for z in (j, j + 1)]
                mp[c, i, j] = max(win)
    np.testing.assert_array_equal(vals["mp"], mp)
    up = np.array([[[x[c, i // 2, j // 2] for j in range(8)] for i in range(10)] for c in range(2)])
    np.testing.assert_array_equal(vals["up"], up)
    np.testing.assert_array_equal(vals["cat"][:2], mp)
    np.testing.assert_array_equal(vals["cat"][2:], x)
    flat = cnn_forward(g, x)
    assert flat.shape == (2 * 10 * 8 + 2 * 5 * 4,)
    np.testing.assert_array_equal(flat, np.concatenate([up.reshape(-1), mp.reshape(-1)]))
