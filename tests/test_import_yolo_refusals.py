"""What the YOLO operators' import refuses, each by name: one line naming the file, the node and
its operator, the attribute, what is supported and what was found (never a silent change).
The supported forms are in tests/test_import_yolo_ops.py."""

import re

import numpy as np
import pytest
from onnx import helper

from sparsa.sw.errors import UserError
from sparsa.sw.model.importer import import_model

from test_import_yolo_ops import batchnorm, conv, leaky, onnx_file, resize_model

RNG_SEED = 70


def refused(path, where, pattern):
    """The import of ``path`` fails with one line that names ``where`` (e.g. "node 'up' (Resize)")
    and matches ``pattern`` after it."""
    with pytest.raises(UserError) as e:
        import_model(path)
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(str(path)) and where in msg, msg
    assert re.search(re.escape(where) + " " + pattern, msg), msg


def conv_then(tmp_path, tail, inits=None, shape=(1, 2, 6, 6), out=None, opset=17, relu=False):
    """A 3x3 Conv ('conv', 2 -> 4 channels, output 'c', or its ReLU 'r') followed by ``tail``."""
    rng = np.random.default_rng(RNG_SEED)
    inits = dict(inits or {})
    nodes = [conv("conv", "x", "c", inits, rng, 2, 4)]
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["r"], name="relu"))
    return onnx_file(tmp_path / "m.onnx", nodes + tail, inits, list(shape), out or [("y", None)], opset)


# ---- LeakyRelu ---------------------------------------------------------------------------------

FOLD = r"input: expected the output of a Conv or Gemm/MatMul \(to fold into as its leaky ReLU\), found "


def test_leaky_relu_after_a_maxpool_is_refused(tmp_path):
    path = conv_then(tmp_path, [helper.make_node("MaxPool", ["c"], ["m"], name="pool", kernel_shape=[2, 2]),
                                leaky("act", "m", "y", 0.1)])
    refused(path, "node 'act' (LeakyRelu)", FOLD + "a maxpool2d$")


def test_leaky_relu_after_an_add_is_refused(tmp_path):
    path = conv_then(tmp_path, [helper.make_node("Add", ["c", "c"], ["s"], name="add"), leaky("act", "s", "y")])
    refused(path, "node 'act' (LeakyRelu)", FOLD + "a add")


def test_leaky_relu_on_the_graph_input_is_refused(tmp_path):
    path = onnx_file(tmp_path / "m.onnx", [leaky("act", "x", "y", 0.1)], {}, [1, 2, 4, 4], [("y", [1, 2, 4, 4])])
    refused(path, "node 'act' (LeakyRelu)", FOLD + "the graph input$")


def test_leaky_relu_after_a_relu_is_refused(tmp_path):
    path = conv_then(tmp_path, [leaky("act", "r", "y", 0.1)], relu=True)
    refused(path, "node 'act' (LeakyRelu)", FOLD + "a conv2d with ReLU$")


def test_relu_and_batchnorm_after_a_leaky_relu_are_refused(tmp_path):
    path = conv_then(tmp_path, [leaky("act", "c", "a", 0.1), helper.make_node("Relu", ["a"], ["y"], name="relu2")])
    refused(path, "node 'relu2' (Relu)", "input: .*found a conv2d with LeakyRelu$")
    inits = {}
    bn = batchnorm("bn", "a", "y", inits, np.random.default_rng(1), 4)
    path = conv_then(tmp_path, [leaky("act", "c", "a", 0.1), bn], inits)
    refused(path, "node 'bn' (BatchNormalization)", "input: .*found a conv2d with LeakyRelu$")


def test_leaky_relu_on_a_tensor_read_twice_is_refused(tmp_path):
    path = conv_then(tmp_path, [leaky("act", "c", "a", 0.1), helper.make_node("Add", ["a", "c"], ["y"], name="add")])
    refused(path, "node 'act' (LeakyRelu)", FOLD + "a conv2d read by another node too$")


@pytest.mark.parametrize("alpha", [2.5, -0.1, 0.001])
def test_leaky_relu_slope_outside_the_engines_range_is_refused(tmp_path, alpha):
    path = conv_then(tmp_path, [leaky("act", "c", "y", alpha)])
    refused(path, "node 'act' (LeakyRelu)", r"alpha: expected 0 \(a ReLU\) or a slope in \[0\.004, 1\.99\] "
                                            rf"\(the engine keeps alpha \* 128 as an 8-bit integer\), found {alpha:g}$")


# ---- Resize / Upsample -------------------------------------------------------------------------

def resize_after_conv(tmp_path, scales=None, sizes=None, **attrs):
    inits, ins = {}, ["c", "", ""]
    if scales is not None:
        inits["scales"], ins[2] = np.array(scales, np.float32), "scales"
    if sizes is not None:
        inits["sizes"] = np.array(sizes, np.int64)
        ins.append("sizes")
    return conv_then(tmp_path, [helper.make_node("Resize", ins, ["y"], name="up", **attrs)], inits)


SCALES = r"scales: expected \[1, 1, s, s\] with an integer s >= 1 \(or sizes \[N, C, s\*H, s\*W\]\), found "


def test_resize_that_is_not_nearest_is_refused(tmp_path):
    refused(resize_after_conv(tmp_path, [1, 1, 2, 2], mode="linear"), "node 'up' (Resize)",
            r"mode: expected nearest \(pixel repetition: sparsa's upsample\), found linear$")


@pytest.mark.parametrize("scales", [[1, 1, 1.5, 1.5], [1, 1, 2, 3], [1, 2, 2, 2], [1, 1, 0.5, 0.5]],
                         ids=["non_integer", "unequal", "channels", "downsample"])
def test_resize_scale_that_is_not_an_integer_repetition_is_refused(tmp_path, scales):
    refused(resize_after_conv(tmp_path, scales, mode="nearest", coordinate_transformation_mode="asymmetric",
                              nearest_mode="floor"), "node 'up' (Resize)", SCALES + r"\[1\.0, ")


def test_resize_sizes_that_are_not_a_multiple_are_refused(tmp_path):
    refused(resize_after_conv(tmp_path, sizes=[1, 4, 14, 14], mode="nearest", coordinate_transformation_mode="asymmetric",
                              nearest_mode="floor"), "node 'up' (Resize)", SCALES + r"\[1\.0, 1\.0, 2\.33333, 2\.33333\]$")


@pytest.mark.parametrize("mode,nearest,s", [("half_pixel", "floor", 2), ("asymmetric", "round_prefer_ceil", 2),
                                            ("asymmetric", "round_prefer_floor", 3), ("align_corners", "floor", 2),
                                            ("align_corners", "round_prefer_floor", 3), ("half_pixel", "ceil", 2)])
def test_resize_modes_that_shift_pixels_are_refused(tmp_path, mode, nearest, s):
    refused(resize_model(tmp_path / "m.onnx", s, mode, nearest), "node 'up' (Resize)",
            rf"coordinate_transformation_mode/nearest_mode: expected a pair that repeats pixels at scale {s}: "
            rf".*found {mode}/{nearest}$")


def test_resize_tf_crop_and_resize_and_aspect_ratio_policies_are_refused(tmp_path):
    refused(resize_after_conv(tmp_path, [1, 1, 2, 2], mode="nearest", coordinate_transformation_mode="tf_crop_and_resize"),
            "node 'up' (Resize)", "coordinate_transformation_mode: expected not tf_crop_and_resize")
    refused(resize_after_conv(tmp_path, sizes=[1, 4, 12, 12], mode="nearest", keep_aspect_ratio_policy="not_larger"),
            "node 'up' (Resize)", "keep_aspect_ratio_policy: expected stretch")


def test_upsample_that_is_not_nearest_is_refused(tmp_path):
    path = conv_then(tmp_path, [helper.make_node("Upsample", ["c"], ["y"], name="up", mode="linear",
                                                 scales=[1.0, 1.0, 2.0, 2.0])], opset=7)
    refused(path, "node 'up' (Upsample)", r"mode: expected nearest")


# ---- Concat ------------------------------------------------------------------------------------

@pytest.mark.parametrize("axis", [2, 0, -1])
def test_concat_on_another_axis_is_refused(tmp_path, axis):
    path = conv_then(tmp_path, [helper.make_node("Concat", ["c", "c"], ["y"], name="cat", axis=axis)])
    refused(path, "node 'cat' (Concat)", rf"axis: expected 1 \(or -3\): the channels of \(N, C, H, W\) tensors, "
                                         rf"found {axis}$")


def test_concat_of_a_constant_is_refused(tmp_path):
    path = conv_then(tmp_path, [helper.make_node("Concat", ["c", "k"], ["y"], name="cat", axis=1)],
                     {"k": np.ones((1, 2, 6, 6))})
    refused(path, "node 'cat' (Concat)", "inputs: expected computed tensors \\(no constants\\), found the constant 'k'$")


def test_concat_of_vectors_is_refused(tmp_path):
    inits = {"w": np.ones((3, 4))}
    nodes = [helper.make_node("Gemm", ["x", "w"], ["a"], name="fc", transB=1),
             helper.make_node("Concat", ["a", "a"], ["y"], name="cat", axis=1)]
    path = onnx_file(tmp_path / "m.onnx", nodes, inits, [1, 4], [("y", [1, 6])])
    refused(path, "node 'cat' (Concat)", r"input: expected a \(N, C, H, W\) tensor, found shape \(1, 3\)$")


# ---- Pad ---------------------------------------------------------------------------------------

def pad_then_pool(tmp_path, pad_inits, pad_attrs=None, k=2, s=1, pool="MaxPool", relu=False, **pool_attrs):
    ins = ["r" if relu else "c"] + list(pad_inits)
    nodes = [helper.make_node("Pad", ins, ["p"], name="pad", **(pad_attrs or {})),
             helper.make_node(pool, ["p"], ["y"], name="pool", kernel_shape=[k, k], strides=[s, s], **pool_attrs)]
    return conv_then(tmp_path, nodes, pad_inits, relu=relu)


def pads(*p):
    return {"pads": np.array(p, np.int64)}


def test_pad_with_a_nonzero_value_is_refused(tmp_path):
    path = pad_then_pool(tmp_path, {**pads(0, 0, 0, 0, 0, 0, 1, 1), "v": np.array(1.0, np.float32)})
    refused(path, "node 'pad' (Pad)", r"constant_value: expected 0 \(sparsa pads with zeros\), found \[1\.0\]$")


def test_pad_in_reflect_mode_is_refused(tmp_path):
    path = pad_then_pool(tmp_path, pads(0, 0, 0, 0, 0, 0, 1, 1), {"mode": "reflect"})
    refused(path, "node 'pad' (Pad)", r"mode: expected constant \(zeros\), found reflect$")


@pytest.mark.parametrize("p", [[0, 1, 0, 0, 0, 0, 1, 1], [1, 0, 0, 0, 0, 0, 0, 0]], ids=["channels", "batch"])
def test_pad_of_channels_or_batch_is_refused(tmp_path, p):
    refused(pad_then_pool(tmp_path, pads(*p)), "node 'pad' (Pad)",
            r"pads: expected padding of H and W only: \[0, 0, top, left, 0, 0, bottom, right\]")


def test_negative_pad_is_refused(tmp_path):
    refused(pad_then_pool(tmp_path, pads(0, 0, 0, 0, 0, 0, -1, 1)), "node 'pad' (Pad)",
            r"pads: expected values >= 0 \(a negative pad crops\)")


def test_uneven_pad_before_a_conv_is_refused(tmp_path):
    rng = np.random.default_rng(RNG_SEED)
    inits = pads(0, 0, 0, 0, 0, 0, 1, 1)
    nodes = [helper.make_node("Pad", ["c", "pads"], ["p"], name="pad"), conv("conv2", "p", "y", inits, rng, 4, 3, pads=[0] * 4)]
    refused(conv_then(tmp_path, nodes, inits), "node 'pad' (Pad)",
            r"pads: expected the same padding on every side of H and W \(sparsa's conv2d pads evenly\) once folded "
            r"into the Conv 'conv2', found H, W pads \[0, 0, 1, 1\]")


def test_pad_wider_than_the_pool_window_is_refused(tmp_path):
    refused(pad_then_pool(tmp_path, pads(0, 0, 0, 0, 0, 0, 2, 2)), "node 'pad' (Pad)",
            r"pads: expected each side below the window size 2 once folded into the MaxPool 'pool'")


@pytest.mark.parametrize("reader", ["Relu", "two", "output"])
def test_pad_not_read_by_one_conv_or_pool_only_is_refused(tmp_path, reader):
    inits = pads(0, 0, 1, 1, 0, 0, 1, 1)
    nodes = [helper.make_node("Pad", ["c", "pads"], ["p"], name="pad")]
    out = [("y", None)]
    if reader == "Relu":
        nodes.append(helper.make_node("Relu", ["p"], ["y"], name="relu2"))
        found = r"'relu2' \(Relu\)"
    else:
        nodes.append(helper.make_node("MaxPool", ["p"], ["y"], name="pool", kernel_shape=[2, 2]))
        if reader == "two":
            nodes.append(helper.make_node("MaxPool", ["p"], ["y2"], name="pool2", kernel_shape=[3, 3]))
            out.append(("y2", None))
            found = r"'pool' \(MaxPool\), 'pool2' \(MaxPool\)"
        else:
            out.append(("p", None))
            found = "a graph output"
    refused(conv_then(tmp_path, nodes, inits, out=out), "node 'pad' (Pad)",
            rf"output: expected read by one MaxPool, AveragePool or Conv only \(whose padding it becomes\), found {found}$")


def test_pools_own_padding_after_a_pad_still_needs_a_relu(tmp_path):
    refused(pad_then_pool(tmp_path, pads(0, 0, 0, 0, 0, 0, 1, 1), pads=[1, 1, 0, 0]), "node 'pool' (MaxPool)",
            r"pads: expected no padding, .*found \[1, 1, 0, 0\] on a tensor that may be negative$")
    refused(pad_then_pool(tmp_path, pads(0, 0, 0, 0, 0, 0, 1, 1), pool="AveragePool", relu=True, pads=[1, 1, 0, 0]),
            "node 'pool' (AveragePool)", r"pads: expected no padding, .*found \[1, 1, 0, 0\] on an AveragePool$")


# ---- MaxPool padded per side -------------------------------------------------------------------

@pytest.mark.parametrize("act", ["none", "leaky"])
@pytest.mark.parametrize("kw", [{"pads": [0, 0, 1, 1]}, {"auto_pad": "SAME_UPPER"}])
def test_maxpool_padded_per_side_on_a_tensor_that_may_be_negative_is_refused(tmp_path, act, kw):
    tail = [leaky("act", "c", "a", 0.1)] if act == "leaky" else []
    tail.append(helper.make_node("MaxPool", ["a" if tail else "c"], ["y"], name="pool", kernel_shape=[2, 2],
                                 strides=[1, 1], **kw))
    refused(conv_then(tmp_path, tail), "node 'pool' (MaxPool)",
            r"pads: expected no padding, or a MaxPool's padding below its window right after a ReLU .*"
            r"found \[0, 0, 1, 1\] on a tensor that may be negative$")


# ---- several outputs ---------------------------------------------------------------------------

def test_second_output_of_the_wrong_declared_shape_is_refused(tmp_path):
    path = conv_then(tmp_path, [helper.make_node("MaxPool", ["c"], ["y"], name="pool", kernel_shape=[2, 2],
                                                 strides=[2, 2])],
                     out=[("c", [1, 4, 6, 6]), ("y", [1, 4, 2, 2])])
    with pytest.raises(UserError, match=r"graph output 'y': expected the declared shape \(1, 4, 2, 2\), "
                                        r"found shape \(1, 4, 3, 3\)"):
        import_model(path)


def test_graph_input_as_one_of_the_outputs_is_refused(tmp_path):
    path = conv_then(tmp_path, [helper.make_node("Identity", ["x"], ["xi"], name="id")],
                     out=[("c", [1, 4, 6, 6]), ("xi", [1, 2, 6, 6])])
    with pytest.raises(UserError, match=r"graph output 'xi': expected the output of a layer, found the graph input$"):
        import_model(path)


def test_lstm_with_two_outputs_is_refused(tmp_path):
    rng = np.random.default_rng(RNG_SEED)
    inits = {"W": rng.normal(size=(1, 12, 2)), "R": rng.normal(size=(1, 12, 3))}
    nodes = [helper.make_node("LSTM", ["x", "W", "R"], ["y", "yh"], name="lstm", hidden_size=3)]
    path = onnx_file(tmp_path / "m.onnx", nodes, inits, [4, 1, 2], [("y", [4, 1, 1, 3]), ("yh", [1, 1, 3])])
    with pytest.raises(UserError, match=r"graph outputs: expected one output \(Y\) for an LSTM, found 2 outputs$"):
        import_model(path)
