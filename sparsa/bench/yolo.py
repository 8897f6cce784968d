"""YOLOv3-tiny as ONNX, built with ``onnx.helper`` (random weights, nothing downloaded).

:func:`yolov3_tiny_onnx` writes the network of darknet's ``yolov3-tiny.cfg`` as the PyTorch
port (ultralytics) exports it: thirteen convolutions, each Conv (no bias) + BatchNormalization +
LeakyRelu(0.1) except the two heads (1x1 Conv with bias, linear); five 2x2 max pools of stride 2
and a sixth of stride 1 that keeps 13x13 (a ZeroPad2d((0, 1, 0, 1)), exported as Pad, then the
pool); the second head's branch takes the 13x13x256 features through a 1x1 convolution, a 2x
nearest Resize, and a Concat with the 26x26x256 features of the fifth convolution. Two outputs:
``3 * (classes + 5)`` channels at 1/32 and 1/16 of the input.

:func:`yolov3_tiny_counts` counts its weights and multiply-accumulates from the layer table
alone, independently of the ONNX file, for the benchmark and the tests.
"""

import numpy as np

__all__ = ["YOLOV3_TINY_BACKBONE", "yolov3_tiny_counts", "yolov3_tiny_onnx"]

# The backbone: (output channels, max pool stride after the 3x3 convolution or 0 for none)
YOLOV3_TINY_BACKBONE = ((16, 2), (32, 2), (64, 2), (128, 2), (256, 2), (512, 1), (1024, 0))
ROUTE = 4          # the backbone convolution whose output the second head concatenates (26x26x256)


def _layers(size, width, classes):
    """The convolutions as ``(name, cin, cout, k, hw, bn)`` (``hw`` the output side)."""
    ch = lambda c: max(1, int(round(c * width)))
    heads = 3 * (classes + 5)
    out, hw, c = [], size, 3
    for i, (cout, pool) in enumerate(YOLOV3_TINY_BACKBONE):
        out.append((f"conv{i}", c, ch(cout), 3, hw, True))
        c = ch(cout)
        hw = hw // pool if pool == 2 else hw
    out += [("conv7", c, ch(256), 1, hw, True), ("conv8", ch(256), ch(512), 3, hw, True),
            ("head1", ch(512), heads, 1, hw, False),
            ("conv10", ch(256), ch(128), 1, hw, True),
            ("conv11", ch(128) + ch(256), ch(256), 3, 2 * hw, True),
            ("head2", ch(256), heads, 1, 2 * hw, False)]
    return out


def yolov3_tiny_counts(*, size=416, width=1.0, classes=80):
    """``(parameters, MACs)`` of :func:`yolov3_tiny_onnx` (parameters as PyTorch counts them:
    convolution weights, head biases, BatchNorm scale and shift)."""
    params = macs = 0
    for _, cin, cout, k, hw, bn in _layers(size, width, classes):
        params += cout * cin * k * k + (2 * cout if bn else cout)
        macs += cout * cin * k * k * hw * hw
    return params, macs


def yolov3_tiny_onnx(path, *, size=416, width=1.0, classes=80, seed=0):
    """Write YOLOv3-tiny to ``path`` as ONNX (opset 13), see the module docstring. ``size``
    (a multiple of 32), ``width`` (channel scale) and ``classes`` give the reduced versions the
    RTL tests run. Returns ``{"gop", "params"}`` (GOP = 2 x MACs / 1e9)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    if size % 32:
        raise ValueError(f"YOLOv3-tiny input size: expected a multiple of 32, found {size}")
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def init(name, arr, dtype=np.float32):
        inits.append(numpy_helper.from_array(np.asarray(arr, dtype), name))

    def conv(x, name, cin, cout, k, bn):
        init(name + ".w", rng.standard_normal((cout, cin, k, k)) * np.sqrt(2.0 / (cin * k * k)))
        ins = [x, name + ".w"]
        if not bn:
            init(name + ".b", rng.normal(0, 0.1, cout))
            ins.append(name + ".b")
        nodes.append(helper.make_node("Conv", ins, [name], name=name, kernel_shape=[k, k], pads=[k // 2] * 4))
        if not bn:
            return name
        stats = [name + ".bn." + f for f in ("scale", "bias", "mean", "var")]
        for f, arr in zip(stats, (rng.uniform(0.5, 1.5, cout), rng.normal(0, 0.1, cout),
                                  rng.normal(0, 0.1, cout), rng.uniform(0.5, 1.5, cout))):
            init(f, arr)
        nodes.extend([helper.make_node("BatchNormalization", [name] + stats, [name + ".bn"], name=name + "_bn"),
                      helper.make_node("LeakyRelu", [name + ".bn"], [name + ".act"], name=name + "_leaky",
                                       alpha=0.1)])
        return name + ".act"

    convs = {c[0]: c for c in _layers(size, width, classes)}
    x = "input"
    for i, (_, pool) in enumerate(YOLOV3_TINY_BACKBONE):
        _, cin, cout, k, _, bn = convs[f"conv{i}"]
        x = conv(x, f"conv{i}", cin, cout, k, bn)
        if i == ROUTE:
            route = x
        if pool == 2:
            nodes.append(helper.make_node("MaxPool", [x], [f"pool{i}"], name=f"pool{i}", kernel_shape=[2, 2],
                                          strides=[2, 2]))
            x = f"pool{i}"
        elif pool == 1:           # ZeroPad2d((0, 1, 0, 1)) + MaxPool2d(2, 1): 13x13 stays 13x13
            init("pad.pads", [0, 0, 0, 0, 0, 0, 1, 1], np.int64)
            nodes += [helper.make_node("Pad", [x, "pad.pads"], [f"pad{i}"], name=f"pad{i}", mode="constant"),
                      helper.make_node("MaxPool", [f"pad{i}"], [f"pool{i}"], name=f"pool{i}", kernel_shape=[2, 2],
                                       strides=[1, 1])]
            x = f"pool{i}"
    branch = conv(x, "conv7", *convs["conv7"][1:4], True)
    x = conv(branch, "conv8", *convs["conv8"][1:4], True)
    head1 = conv(x, "head1", *convs["head1"][1:4], False)
    x = conv(branch, "conv10", *convs["conv10"][1:4], True)
    init("up.scales", [1, 1, 2, 2])
    nodes += [helper.make_node("Resize", [x, "", "up.scales"], ["up"], name="upsample", mode="nearest",
                               coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
              helper.make_node("Concat", ["up", route], ["route"], name="route", axis=1)]
    head2 = conv("route", "conv11", *convs["conv11"][1:4], True)
    head2 = conv(head2, "head2", *convs["head2"][1:4], False)
    no, s = 3 * (classes + 5), size // 32
    graph = helper.make_graph(
        nodes, "yolov3_tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, 3, size, size])],
        [helper.make_tensor_value_info(head1, TensorProto.FLOAT, [1, no, s, s]),
         helper.make_tensor_value_info(head2, TensorProto.FLOAT, [1, no, 2 * s, 2 * s])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    params, macs = yolov3_tiny_counts(size=size, width=width, classes=classes)
    return {"gop": 2 * macs / 1e9, "params": params}
