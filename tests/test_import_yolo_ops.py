"""The ONNX import of what a YOLOv3-tiny export uses beyond ResNet: LeakyRelu (folded into its
layer), Resize/Upsample (nearest, integer scale), Concat (channels), a zero Pad (folded into the
next pool or Conv), a MaxPool padded per side after a ReLU, and several graph outputs (one
flattened vector). Each against onnxruntime; a small YOLO-like network also through int8 and
the engine's program. The refusals are in tests/test_import_yolo_refusals.py."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from sparsa.sw.cnn.compiler import compile_graph
from sparsa.sw.cnn.compress import compress_cnn, quant_error, quantize_input
from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.golden import cnn_forward
from sparsa.sw.errors import UserError
from sparsa.sw.model.graph import load_graph
from sparsa.sw.model.importer import import_model
from sparsa.sw.model.onnx_resize import repeats

from test_import_onnx import check_close

OPSET = 17


def onnx_file(path, nodes, inits, in_shape, outs, opset=OPSET):
    """Write an ONNX model: ``outs`` [(name, shape)], ``inits`` name -> array (int64 arrays stay
    int64, the rest become float32)."""
    graph = helper.make_graph(
        nodes, "m", [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, s) for n, s in outs],
        [numpy_helper.from_array(v if v.dtype == np.int64 else v.astype(np.float32), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 8
    if all(shape is not None for _, shape in outs):     # the checker wants declared output shapes
        onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ort_outputs(path, x):
    """onnxruntime's outputs, flattened per sample and joined (what sparsa gives for several)."""
    outs = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x.astype(np.float32)})
    return outs[0] if len(outs) == 1 else np.concatenate([o.reshape(len(x), -1) for o in outs], axis=1)


def conv(name, x, y, inits, rng, cin, cout, k=3, bias=True, **attrs):
    """A Conv node (padding k // 2 unless ``attrs`` say otherwise) with random weights in ``inits``."""
    inits[name + ".w"] = rng.normal(size=(cout, cin, k, k)) / np.sqrt(cin * k * k)
    ins = [x, name + ".w"]
    if bias:
        inits[name + ".b"] = rng.normal(size=cout) * 0.1
        ins.append(name + ".b")
    attrs.setdefault("pads", [k // 2] * 4)
    return helper.make_node("Conv", ins, [y], name=name, kernel_shape=[k, k], **attrs)


def batchnorm(name, x, y, inits, rng, c):
    stats = [f"{name}.{f}" for f in ("s", "b", "m", "v")]
    for f, v in zip(stats, (rng.uniform(0.5, 1.5, c), rng.normal(0, 0.1, c), rng.normal(0, 0.1, c),
                            rng.uniform(0.5, 1.5, c))):
        inits[f] = v
    return helper.make_node("BatchNormalization", [x] + stats, [y], name=name)


def leaky(name, x, y, alpha=None):
    return helper.make_node("LeakyRelu", [x], [y], name=name, **({} if alpha is None else {"alpha": alpha}))


def compare(path, shape, seed):
    """Import ``path``, run it and onnxruntime on seeded random inputs; returns the model."""
    print(f"seed={seed}")
    model = import_model(path)
    x = np.random.default_rng(seed).normal(size=(1,) + tuple(shape))
    check_close(model.forward(x), ort_outputs(path, x))
    return model


# ---- LeakyRelu ---------------------------------------------------------------------------------

@pytest.mark.parametrize("bn,alpha", [(False, 0.1), (True, 0.1), (True, None), (False, 1.5), (False, 0.004)])
def test_leaky_relu_folds_into_the_conv_before_it(tmp_path, bn, alpha):
    rng = np.random.default_rng(50)
    inits = {}
    nodes = [conv("conv", "x", "c", inits, rng, 3, 5, bias=not bn)]
    if bn:
        nodes.append(batchnorm("bn", "c", "n", inits, rng, 5))
    nodes.append(leaky("act", nodes[-1].output[0], "y", alpha))
    model = compare(onnx_file(tmp_path / "m.onnx", nodes, inits, [1, 3, 6, 6], [("y", [1, 5, 6, 6])]), (3, 6, 6), 50)
    [layer] = model.graph.layers
    assert layer["leaky"] == pytest.approx(0.01 if alpha is None else alpha) and not layer["relu"]


@pytest.mark.parametrize("last", [False, True])
def test_leaky_relu_after_a_gemm_makes_a_graph_not_an_mlp(tmp_path, last):
    # sparsa's MLP format has ReLUs only: a leaky fully connected stack stays a graph of linears
    # (the leaky ReLU between the layers, or after the last, where an MLP has no activation)
    rng = np.random.default_rng(51)
    inits = {"w1": rng.normal(size=(8, 6)), "b1": rng.normal(size=8), "w2": rng.normal(size=(3, 8))}
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["a"], name="relu") if last else leaky("act", "h", "a", 0.2),
             helper.make_node("Gemm", ["a", "w2"], ["z" if last else "y"], name="fc2", transB=1)]
    if last:
        nodes.append(leaky("act", "z", "y", 0.2))
    model = compare(onnx_file(tmp_path / "m.onnx", nodes, inits, [1, 6], [("y", [1, 3])]), (6,), 51)
    want = [None, pytest.approx(0.2)] if last else [pytest.approx(0.2), None]
    assert model.kind == "cnn" and [l.get("leaky") for l in model.graph.layers] == want


def test_leaky_relu_with_alpha_0_is_a_relu(tmp_path):
    rng = np.random.default_rng(52)
    inits = {}
    nodes = [conv("conv", "x", "c", inits, rng, 2, 3), leaky("act", "c", "y", 0.0)]
    model = compare(onnx_file(tmp_path / "m.onnx", nodes, inits, [1, 2, 5, 5], [("y", [1, 3, 5, 5])]), (2, 5, 5), 52)
    assert model.graph.layers[0]["relu"] and "leaky" not in model.graph.layers[0]


# ---- Resize / Upsample -------------------------------------------------------------------------

MODES = ["asymmetric", "half_pixel", "pytorch_half_pixel", "half_pixel_symmetric", "tf_half_pixel_for_nn",
         "align_corners"]
NEAREST = ["floor", "round_prefer_floor", "round_prefer_ceil", "ceil"]


def resize_model(path, s, mode, nearest, h=5, opset=OPSET, sizes=False):
    rng = np.random.default_rng(53)
    inits = {}
    nodes = [conv("conv", "x", "c", inits, rng, 2, 3)]
    if sizes:
        inits["sizes"] = np.array([1, 3, h * s, h * s], np.int64)
        ins = ["c", "", "", "sizes"]
    else:
        inits["scales"] = np.array([1, 1, s, s], np.float32)
        ins = ["c", "", "scales"]
    if opset < 13:       # roi (and scales, with sizes) must be given before opset 13: empty tensors
        inits["roi"] = np.zeros(0)
        ins[1] = "roi"
        if sizes:
            inits["no_scales"] = np.zeros(0)
            ins[2] = "no_scales"
    nodes.append(helper.make_node("Resize", ins, ["y"], name="up", mode="nearest",
                                  coordinate_transformation_mode=mode, nearest_mode=nearest))
    return onnx_file(path, nodes, inits, [1, 2, h, h], [("y", [1, 3, h * s, h * s])], opset)


@pytest.mark.parametrize("opset", [11, 13, 17])
def test_pytorch_nn_upsample_export_imports_as_upsample(tmp_path, opset):
    """``nn.Upsample(scale_factor=2, mode="nearest")`` as torch.onnx.export writes it on opsets
    11-17: Resize(X, roi, scales=[1, 1, 2, 2]), asymmetric, floor."""
    path = resize_model(tmp_path / "m.onnx", 2, "asymmetric", "floor", opset=opset)
    model = compare(path, (2, 5, 5), 53)
    assert [(l["op"], l.get("scale")) for l in model.graph.layers] == [("conv2d", None), ("upsample", 2)]


@pytest.mark.parametrize("h", [5, 13])
@pytest.mark.parametrize("s", [1, 2, 3])
@pytest.mark.parametrize("nearest", NEAREST)
@pytest.mark.parametrize("mode", MODES)
def test_resize_imports_exactly_the_modes_that_repeat_pixels(tmp_path, mode, nearest, s, h):
    """Every (coordinate_transformation_mode, nearest_mode) pair at scales 1-3: imported ones
    match onnxruntime; refused ones really are not a repetition (onnxruntime's output differs)."""
    path = resize_model(tmp_path / "m.onnx", s, mode, nearest, h)
    x = np.random.default_rng(54).normal(size=(1, 2, h, h))
    ref = ort_outputs(path, x)
    if repeats(mode, nearest, s):
        check_close(import_model(path).forward(x), ref)
    else:
        with pytest.raises(UserError, match=r"node 'up' \(Resize\) coordinate_transformation_mode/nearest_mode: "
                                            rf"expected a pair that repeats pixels at scale {s}.*found {mode}/{nearest}$"):
            import_model(path)
        # asymmetric + floor is a repetition (imported above): this pair's result is not
        rep = ort_outputs(resize_model(tmp_path / "rep.onnx", s, "asymmetric", "floor", h), x)
        assert ref.shape == rep.shape and not np.array_equal(ref, rep)


@pytest.mark.parametrize("opset", [11, 13])
def test_resize_with_sizes_an_integer_multiple(tmp_path, opset):
    model = compare(resize_model(tmp_path / "m.onnx", 3, "asymmetric", "floor", opset=opset, sizes=True),
                    (2, 5, 5), 55)
    assert model.graph.layers[-1]["scale"] == 3


def test_resize_with_axes_2_3(tmp_path):
    rng = np.random.default_rng(56)
    inits = {"scales": np.array([2.0, 2.0])}
    nodes = [conv("conv", "x", "c", inits, rng, 2, 3),
             helper.make_node("Resize", ["c", "", "scales"], ["y"], name="up", mode="nearest", axes=[2, 3],
                              coordinate_transformation_mode="asymmetric", nearest_mode="floor")]
    compare(onnx_file(tmp_path / "m.onnx", nodes, inits, [1, 2, 4, 4], [("y", [1, 3, 8, 8])], 18), (2, 4, 4), 56)


@pytest.mark.parametrize("op,opset,attr", [("Upsample", 7, True), ("Upsample", 9, False), ("Resize", 10, False)])
def test_old_upsample_and_resize_10(tmp_path, op, opset, attr):
    rng = np.random.default_rng(57)
    inits, ins, kw = {}, ["c"], {"mode": "nearest"}
    if attr:
        kw["scales"] = [1.0, 1.0, 2.0, 2.0]
    else:
        inits["scales"] = np.array([1, 1, 2, 2], np.float32)
        ins.append("scales")
    nodes = [conv("conv", "x", "c", inits, rng, 2, 3), helper.make_node(op, ins, ["y"], name="up", **kw)]
    model = compare(onnx_file(tmp_path / "m.onnx", nodes, inits, [1, 2, 4, 4], [("y", [1, 3, 8, 8])], opset),
                    (2, 4, 4), 57)
    assert model.graph.layers[-1]["op"] == "upsample"


# ---- Concat ------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [1, -3])
def test_concat_of_channels(tmp_path, axis):
    """Two layers, the graph input and one layer twice, joined along the channels."""
    rng = np.random.default_rng(58)
    inits = {}
    nodes = [conv("c1", "x", "a", inits, rng, 2, 3), conv("c2", "x", "b", inits, rng, 2, 4, k=1),
             helper.make_node("Concat", ["a", "x", "b", "a"], ["y"], name="cat", axis=axis)]
    model = compare(onnx_file(tmp_path / "m.onnx", nodes, inits, [1, 2, 5, 5], [("y", [1, 12, 5, 5])]), (2, 5, 5), 58)
    assert model.graph.layers[-1]["inputs"] == ["c1", "input", "c2", "c1"]


# ---- Pad and per-side pool padding -------------------------------------------------------------

def pad_node(pads, opset, value=None, axes=None, x="c", y="p"):
    """A zero Pad of ``pads`` [top, left, bottom, right] as opset ``opset`` writes it (the
    initializers it needs are returned too)."""
    t, l, b, r = pads
    if opset < 11:
        return helper.make_node("Pad", [x], [y], name="pad", pads=[0, 0, t, l, 0, 0, b, r], mode="constant"), {}
    inits = {"pads": np.array([t, l, b, r] if axes else [0, 0, t, l, 0, 0, b, r], np.int64)}
    ins = [x, "pads"]
    if value is not None:
        inits["value"] = np.array(value, np.float32)
        ins.append("value")
    if axes:
        inits["axes"] = np.array(axes, np.int64)
        ins += [""] * (3 - len(ins)) + ["axes"]
    return helper.make_node("Pad", ins, [y], name="pad", mode="constant"), inits


@pytest.mark.parametrize("opset,value,axes", [(17, None, None), (17, 0.0, None), (10, None, None),
                                              (18, None, [2, 3]), (18, 0.0, [-2, -1])])
def test_zero_pad_then_stride_1_maxpool_as_ultralytics_builds_it(tmp_path, opset, value, axes):
    """``nn.ZeroPad2d((0, 1, 0, 1))`` then ``nn.MaxPool2d(2, 1)`` on a leaky (negative) tensor:
    the pool padded [0, 0, 1, 1] with zeros, exact (ONNX pads with zeros too, here)."""
    rng = np.random.default_rng(59)
    inits = {}
    pad, extra = pad_node([0, 0, 1, 1], opset, value, axes)
    nodes = [conv("conv", "x", "c", inits, rng, 2, 4), pad,
             helper.make_node("MaxPool", ["p"], ["y"], name="pool", kernel_shape=[2, 2], strides=[1, 1])]
    path = onnx_file(tmp_path / "m.onnx", nodes, {**inits, **extra}, [1, 2, 6, 6], [("y", [1, 4, 6, 6])], opset)
    model = compare(path, (2, 6, 6), 59)
    assert model.graph.layers[-1]["padding"] == [0, 0, 1, 1]


@pytest.mark.parametrize("op,pads,k,s,attrs,want", [
    ("AveragePool", [1, 1, 1, 1], 2, 2, {}, 1),
    ("MaxPool", [2, 0, 1, 1], 3, 2, {}, [2, 0, 1, 1]),
    ("MaxPool", [1, 1, 0, 0], 2, 1, {"pads": [0, 0, 1, 1]}, 1),      # after a ReLU: own pads allowed
    ("Conv", [1, 1, 1, 1], 3, 1, {"pads": [0] * 4}, 1),
    ("Conv", [1, 1, 1, 1], 3, 2, {"pads": [1] * 4}, 2),
    ("Conv", [2, 1, 0, 1], 3, 1, {"pads": [0, 1, 2, 1]}, 2),       # uneven Pad + uneven pads = even
])
def test_zero_pad_folds_into_the_next_window(tmp_path, op, pads, k, s, attrs, want):
    rng = np.random.default_rng(60)
    inits = {}
    pad, extra = pad_node(pads, OPSET, x="r")
    nodes = [conv("conv", "x", "c", inits, rng, 2, 4), helper.make_node("Relu", ["c"], ["r"], name="relu"), pad]
    if op == "Conv":
        nodes.append(conv("conv2", "p", "y", inits, rng, 4, 3, k=k, strides=[s, s], **attrs))
    else:
        nodes.append(helper.make_node(op, ["p"], ["y"], name="pool", kernel_shape=[k, k], strides=[s, s], **attrs))
    # no declared output shape: the importer works it out, and check_close compares it
    path = onnx_file(tmp_path / "m.onnx", nodes, {**inits, **extra}, [1, 2, 7, 7], [("y", None)])
    model = compare(path, (2, 7, 7), 60)
    assert model.graph.layers[-1]["padding"] == want


@pytest.mark.parametrize("k,s,kw,want", [
    (2, 1, {"pads": [0, 0, 1, 1]}, [0, 0, 1, 1]), (3, 2, {"pads": [1, 0, 1, 2]}, [1, 0, 1, 2]),
    (2, 1, {"auto_pad": "SAME_UPPER"}, [0, 0, 1, 1]), (2, 1, {"auto_pad": "SAME_LOWER"}, [1, 1, 0, 0]),
    (3, 2, {"auto_pad": "SAME_LOWER"}, [1, 1, 0, 0])])
def test_maxpool_padded_per_side_after_a_relu(tmp_path, k, s, kw, want):
    """ONNX's -inf padding equals zeros on a ReLU's output: imported as the per-side list."""
    rng = np.random.default_rng(61)
    inits = {}
    nodes = [conv("conv", "x", "c", inits, rng, 2, 4), helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["r"], ["y"], name="pool", kernel_shape=[k, k], strides=[s, s], **kw)]
    path = onnx_file(tmp_path / "m.onnx", nodes, inits, [1, 2, 8, 8], [("y", None)])
    model = compare(path, (2, 8, 8), 61)
    assert model.graph.layers[-1]["padding"] == want


# ---- several outputs, and a small YOLO ---------------------------------------------------------

def test_two_outputs_become_one_flattened_concat(tmp_path, capsys):
    from sparsa.cli import main
    rng = np.random.default_rng(62)
    inits = {}
    nodes = [conv("c1", "x", "a", inits, rng, 2, 3), conv("c2", "a", "b", inits, rng, 3, 2, k=1, strides=[2, 2]),
             helper.make_node("Relu", ["b"], ["br"], name="relu")]
    outs = [("br", [1, 2, 3, 3]), ("a", [1, 3, 6, 6])]        # declared in this order, not the nodes'
    path = onnx_file(tmp_path / "m.onnx", nodes, inits, [1, 2, 6, 6], outs)
    model = compare(path, (2, 6, 6), 62)
    last = model.graph.layers[-1]
    assert last == {"name": "outputs", "op": "concat", "inputs": ["c2", "c1"], "flatten": True}
    assert model.graph.spec["outputs"] == [{"name": "br", "shape": [2, 3, 3]}, {"name": "a", "shape": [3, 6, 6]}]
    assert model.output_note() == ("output: the 2 graph outputs, flattened and joined in order into one vector "
                                   "of 126 values: 'br' (2, 3, 3) = [0:18], 'a' (3, 6, 6) = [18:126]")
    assert main(["import", str(path), "-o", str(tmp_path / "g.npz")]) == 0
    assert "'a' (3, 6, 6) = [18:126]" in capsys.readouterr().out
    assert load_graph(tmp_path / "g.npz").spec["outputs"] == model.graph.spec["outputs"]


def yolo_like(path, seed):
    """YOLOv3-tiny's shape in miniature: Conv-BN-LeakyRelu, MaxPool 2/2, ZeroPad + MaxPool 2/1, a
    1x1 conv branch, Resize x2, Concat with an earlier layer, two heads as two outputs."""
    rng = np.random.default_rng(seed)
    inits, nodes = {}, []

    def cbl(name, x, cin, cout, k=3):
        nodes.extend([conv(name, x, name, inits, rng, cin, cout, k, bias=False),
                      batchnorm(name + "_bn", name, name + ".bn", inits, rng, cout),
                      leaky(name + "_leaky", name + ".bn", name + ".act", 0.1)])
        return name + ".act"

    route = cbl("conv0", "x", 3, 6)                                               # 6 x 16 x 16
    nodes.append(helper.make_node("MaxPool", [route], ["pool0"], name="pool0", kernel_shape=[2, 2], strides=[2, 2]))
    x = cbl("conv1", "pool0", 6, 8)                                               # 8 x 8 x 8
    pad, extra = pad_node([0, 0, 1, 1], 13, x=x, y="pad1")
    inits.update(extra)
    nodes += [pad, helper.make_node("MaxPool", ["pad1"], ["pool1"], name="pool1", kernel_shape=[2, 2], strides=[1, 1])]
    branch = cbl("conv2", "pool1", 8, 8, k=1)
    nodes.append(conv("head1", branch, "out1", inits, rng, 8, 7, k=1))
    x = cbl("conv3", branch, 8, 4, k=1)
    inits["up.scales"] = np.array([1, 1, 2, 2], np.float32)
    nodes += [helper.make_node("Resize", [x, "", "up.scales"], ["up"], name="upsample", mode="nearest",
                               coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
              helper.make_node("Concat", ["up", route], ["route"], name="route", axis=1)]
    x = cbl("conv4", "route", 10, 6)
    nodes.append(conv("head2", x, "out2", inits, rng, 6, 7, k=1))
    return onnx_file(path, nodes, inits, [1, 3, 16, 16], [("out1", [1, 7, 8, 8]), ("out2", [1, 7, 16, 16])], 13)


def test_yolo_like_network_imports_and_runs_on_the_engine_program(tmp_path):
    path = yolo_like(tmp_path / "yolo.onnx", 63)
    model = compare(path, (3, 16, 16), 63)
    ops = [(l["op"], l.get("leaky") is not None, l.get("padding")) for l in model.graph.layers]
    assert ops == [("conv2d", True, 1), ("maxpool2d", False, None), ("conv2d", True, 1),
                   ("maxpool2d", False, [0, 0, 1, 1]), ("conv2d", True, 0), ("conv2d", False, 0),
                   ("conv2d", True, 0), ("upsample", False, None), ("concat", False, None),
                   ("conv2d", True, 1), ("conv2d", False, 0), ("concat", False, None)]
    rng = np.random.default_rng(64)
    calib = rng.normal(size=(16, 3, 16, 16))
    g = compress_cnn(model.graph, calib)
    assert quant_error(g, model.graph, calib[:4]) < 0.1
    for k in range(2):
        xq = quantize_input(g, rng.normal(size=(3, 16, 16)))
        y, _ = compile_graph(g, CNNConfig()).run(xq)
        assert y.shape == (7 * 64 + 7 * 256,)
        np.testing.assert_array_equal(y, cnn_forward(g, xq))
