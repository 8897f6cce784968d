"""The ONNX import of what ResNet-18's export needs beyond VGG16: a max pool that pads (after a
ReLU only), and a global average pool over a window that is not a power of two (folded into the
classifier); each against onnxruntime, and the cases that must stay refused."""

import numpy as np
import pytest
from onnx import helper

from sparsa.sw.cnn.compress import compress_cnn, quantize_input
from sparsa.sw.cnn.compiler import compile_graph
from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.golden import cnn_forward
from sparsa.sw.errors import UserError
from sparsa.sw.model.importer import import_model

from test_import_onnx import check_close, onnxruntime_run, save_model


def relu_pool(pads, k=3, s=2, relu=True, auto_pad=None):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1])]
    x = "c"
    if relu:
        nodes.append(helper.make_node("Relu", ["c"], ["r"], name="relu"))
        x = "r"
    kw = {"auto_pad": auto_pad} if auto_pad else {"pads": [pads] * 4}
    nodes.append(helper.make_node("MaxPool", [x], ["y"], name="pool", kernel_shape=[k, k], strides=[s, s], **kw))
    return nodes


@pytest.mark.parametrize("h,k,s,p", [(9, 3, 2, 1), (8, 3, 2, 1), (7, 2, 1, 1), (10, 5, 3, 2), (6, 3, 1, 1)])
def test_maxpool_that_pads_after_a_relu_matches_onnxruntime(tmp_path, h, k, s, p):
    print("seed=31")
    rng = np.random.default_rng(31)
    ho = (h + 2 * p - k) // s + 1
    path = save_model(tmp_path / "m.onnx", relu_pool(p, k, s), {"w": rng.normal(size=(4, 2, 3, 3))},
                      [1, 2, h, h], [1, 4, ho, ho])
    model = import_model(path)
    assert model.graph.layers[-1]["padding"] == p
    x = rng.normal(size=(1, 2, h, h))
    check_close(model.forward(x), onnxruntime_run(path, x))
    # and through int8 and the engine's program (the instruction-level model) bit-exact
    g = compress_cnn(model.graph, rng.uniform(-2, 2, (4, 2, h, h)))
    xq = quantize_input(g, x[0])
    y, _ = compile_graph(g, CNNConfig(lanes=4, ibuf_bytes=256, obuf_depth=64, wbuf_words=128)).run(xq)
    np.testing.assert_array_equal(y, cnn_forward(g, xq))


def test_same_padded_maxpool_after_a_relu_keeps_its_size(tmp_path):
    rng = np.random.default_rng(32)
    path = save_model(tmp_path / "m.onnx", relu_pool(None, 3, 1, auto_pad="SAME_UPPER"),
                      {"w": rng.normal(size=(3, 3, 3, 3))}, [1, 3, 12, 12], [1, 3, 12, 12])
    x = rng.normal(size=(1, 3, 12, 12))
    check_close(import_model(path).forward(x), onnxruntime_run(path, x))


def test_maxpool_that_pads_a_tensor_that_may_be_negative_is_refused(tmp_path):
    rng = np.random.default_rng(33)
    path = save_model(tmp_path / "m.onnx", relu_pool(1, relu=False), {"w": rng.normal(size=(4, 2, 3, 3))},
                      [1, 2, 9, 9], [1, 4, 5, 5])
    with pytest.raises(UserError, match=r"node 'pool' \(MaxPool\) pads: expected no padding, or a MaxPool's "
                                        r"padding below its window right after a ReLU.*may be negative"):
        import_model(path)


def gap_head(h, extra_reader=False):
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], name="conv", kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
             helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("GlobalAveragePool", ["r"], ["g"], name="gap"),
             helper.make_node("Flatten", ["g"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "fw", "fb"], ["y"], name="fc", transB=1)]
    return nodes


@pytest.mark.parametrize("h,k,p,stages", [(7, 8, 1, [2, 2, 2]), (3, 4, 1, [2, 2]), (6, 8, 1, [2, 2, 2]),
                                          (15, 16, 1, [2, 2, 2, 2]), (4, 4, 0, [2, 2]), (8, 8, 0, [2, 2, 2])])
def test_global_average_pool_over_7x7_becomes_a_padded_8x8_pool(tmp_path, h, k, p, stages):
    """The engine's average pool divides by a power of two, over windows at most 7 wide: an
    h x h global pool becomes a k x k one over the zero-padded input (mean * h^2/k^2), made of
    2 x 2 pools of stride 2 (the engine's strides are at most 3), and the classifier is scaled by k^2/h^2; against onnxruntime in
    float, and in int8 on the engine's program bit-exact."""
    print("seed=34")
    rng = np.random.default_rng(34)
    inits = {"w": rng.normal(size=(6, 3, 3, 3)), "fw": rng.normal(size=(5, 6)), "fb": rng.normal(size=5)}
    path = save_model(tmp_path / "m.onnx", gap_head(h), inits, [1, 3, h, h], [1, 5])
    model = import_model(path)
    layers = model.graph.layers
    assert [l["op"] for l in layers] == ["conv2d"] + ["avgpool2d"] * len(stages) + ["linear"]
    assert [(l["size"], l["stride"]) for l in layers[1:-1]] == [(s, s) for s in stages]
    assert [l.get("padding", 0) for l in layers[1:-1]] == [p] + [0] * (len(stages) - 1)
    assert model.graph.shapes()[layers[-2]["name"]] == (6, 1, 1)
    np.testing.assert_allclose(model.graph.arrays[layers[-1]["weight"]], inits["fw"] * k * k / (h * h), rtol=1e-6)
    x = rng.normal(size=(1, 3, h, h))
    check_close(model.forward(x), onnxruntime_run(path, x))
    g = compress_cnn(model.graph, rng.normal(size=(8, 3, h, h)))
    xq = quantize_input(g, x[0])
    y, _ = compile_graph(g, CNNConfig()).run(xq)
    np.testing.assert_array_equal(y, cnn_forward(g, xq))


def test_global_average_pool_needing_more_than_one_padding_row_stays_a_pool_and_int8_refuses_it(tmp_path):
    """5 x 5 would need 3 rows of padding to reach 8 x 8: not rewritten; the float model is
    still exact, and the int8 compression says why it cannot run (not a silent change)."""
    rng = np.random.default_rng(35)
    inits = {"w": rng.normal(size=(6, 3, 3, 3)), "fw": rng.normal(size=(5, 6)), "fb": rng.normal(size=5)}
    path = save_model(tmp_path / "m.onnx", gap_head(5), inits, [1, 3, 5, 5], [1, 5])
    model = import_model(path)
    assert [(l["op"], l.get("size")) for l in model.graph.layers][1] == ("avgpool2d", 5)
    x = rng.normal(size=(1, 3, 5, 5))
    check_close(model.forward(x), onnxruntime_run(path, x))
    with pytest.raises(UserError, match=r"size: expected a window of size\*\*2 = a power of two"):
        compress_cnn(model.graph)


def test_global_average_pool_over_2x2_stays_one_pool(tmp_path):
    rng = np.random.default_rng(35)
    inits = {"w": rng.normal(size=(6, 3, 3, 3)), "fw": rng.normal(size=(5, 6)), "fb": rng.normal(size=5)}
    path = save_model(tmp_path / "m.onnx", gap_head(2), inits, [1, 3, 2, 2], [1, 5])
    model = import_model(path)
    assert [(l["op"], l.get("size")) for l in model.graph.layers] == [("conv2d", None), ("avgpool2d", 2),
                                                                      ("linear", None)]
    x = rng.normal(size=(1, 3, 2, 2))
    check_close(model.forward(x), onnxruntime_run(path, x))


def test_the_pools_made_for_a_global_average_pool_do_not_take_a_nodes_name(tmp_path):
    # found by review: a Conv named like the added stage was overwritten, and the import refused
    rng = np.random.default_rng(42)
    nodes = gap_head(7)
    nodes[0].name = "gap_2x2"
    inits = {"w": rng.normal(size=(6, 3, 3, 3)), "fw": rng.normal(size=(5, 6)), "fb": rng.normal(size=5)}
    path = save_model(tmp_path / "m.onnx", nodes, inits, [1, 3, 7, 7], [1, 5])
    model = import_model(path)
    names = [l["name"] for l in model.graph.layers]
    assert names[0] == "gap_2x2" and len(set(names)) == len(names) == 5
    x = rng.normal(size=(1, 3, 7, 7))
    check_close(model.forward(x), onnxruntime_run(path, x))


def test_global_average_pool_read_twice_is_not_folded(tmp_path):
    """Two classifiers read the pool: it is not folded into the first (which would leave the
    second without an input); the import is refused for the graph it really is (an Add of two
    (N, 5) tensors), not for a missing tensor."""
    rng = np.random.default_rng(36)
    nodes = gap_head(7)[:3] + [
        helper.make_node("Flatten", ["g"], ["f"], name="flat", axis=1),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["a"], name="fc1", transB=1),
        helper.make_node("Gemm", ["f", "fw", "fb"], ["b"], name="fc2", transB=1),
        helper.make_node("Add", ["a", "b"], ["y"], name="sum")]
    inits = {"w": rng.normal(size=(6, 3, 3, 3)), "fw": rng.normal(size=(5, 6)), "fb": rng.normal(size=5)}
    path = save_model(tmp_path / "m.onnx", nodes, inits, [1, 3, 7, 7], [1, 5])
    with pytest.raises(UserError, match=r"node 'sum' \(Add\) inputs: expected two \(N, C, H, W\) tensors"):
        import_model(path)


# A ReLU, BatchNorm or bias is folded into the layer that produces its input, which changes
# every tensor naming that layer: a node that reads the pre-ReLU tensor *after* the fold
# (found by review) used to get the ReLU'd values silently. Each is refused now.
def _conv(name, x, y, cout=4, cin=2):
    return helper.make_node("Conv", [x, name], [y], name=name + "_node", kernel_shape=[3, 3], pads=[1] * 4)


def test_maxpool_reading_the_pre_relu_tensor_after_the_fold_is_refused(tmp_path):
    rng = np.random.default_rng(37)
    nodes = [_conv("w", "x", "c"), helper.make_node("Relu", ["c"], ["r"], name="relu"),
             helper.make_node("MaxPool", ["c"], ["m"], name="pool", kernel_shape=[3, 3], pads=[1] * 4),
             helper.make_node("Add", ["r", "m"], ["y"], name="add")]
    path = save_model(tmp_path / "m.onnx", nodes, {"w": rng.normal(size=(4, 2, 3, 3))}, [1, 2, 6, 6], [1, 4, 6, 6])
    with pytest.raises(UserError, match=r"node 'relu' \(Relu\) input: .*read by another node too"):
        import_model(path)


def test_conv_reading_the_pre_relu_tensor_after_the_fold_is_refused(tmp_path):
    rng = np.random.default_rng(38)
    nodes = [_conv("w", "x", "c"), helper.make_node("Relu", ["c"], ["r"], name="relu"),
             _conv("w2", "c", "d"), helper.make_node("Add", ["r", "d"], ["y"], name="add")]
    path = save_model(tmp_path / "m.onnx", nodes, {"w": rng.normal(size=(4, 2, 3, 3)),
                                                   "w2": rng.normal(size=(4, 4, 3, 3))}, [1, 2, 6, 6], [1, 4, 6, 6])
    with pytest.raises(UserError, match=r"node 'relu' \(Relu\) input: .*read by another node too"):
        import_model(path)


def test_add_reading_the_conv_beside_its_batchnorm_is_refused(tmp_path):
    rng = np.random.default_rng(39)
    bn = {k: rng.uniform(0.5, 1.5, 4) for k in ("s", "b", "m", "v")}
    nodes = [_conv("w", "x", "c"),
             helper.make_node("BatchNormalization", ["c", "s", "b", "m", "v"], ["n"], name="bn"),
             helper.make_node("Add", ["n", "c"], ["y"], name="add")]
    path = save_model(tmp_path / "m.onnx", nodes, {"w": rng.normal(size=(4, 2, 3, 3)), **bn},
                      [1, 2, 6, 6], [1, 4, 6, 6])
    with pytest.raises(UserError, match=r"node 'bn' \(BatchNormalization\) input: .*read by another node too"):
        import_model(path)


def test_relu_on_a_tensor_that_is_also_the_graph_output_is_refused(tmp_path):
    rng = np.random.default_rng(40)
    nodes = [_conv("w", "x", "y"), helper.make_node("Relu", ["y"], ["r"], name="relu")]
    path = save_model(tmp_path / "m.onnx", nodes, {"w": rng.normal(size=(4, 2, 3, 3))}, [1, 2, 6, 6], [1, 4, 6, 6])
    with pytest.raises(UserError, match=r"node 'relu' \(Relu\) input: .*read by another node too"):
        import_model(path)
