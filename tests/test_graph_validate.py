"""sparsa's own graph files are untrusted input: each malformed one is a one-line UserError."""

import json

import numpy as np
import pytest

from sparsa.sw.errors import UserError
from sparsa.sw.model.graph import MAX_TENSOR_ELEMENTS, load_graph


def _conv_spec(**conv):
    layer = {"name": "c", "op": "conv2d", "weight": "w", "bias": "b", "padding": 1, **conv}
    return {"format": "sparsa-model", "version": 1, "input": {"shape": [2, 4, 4], "dtype": "float32"},
            "layers": [layer]}


def _write(tmp_path, spec, **arrays):
    arrays = arrays or {"w": np.ones((3, 2, 3, 3), np.float32), "b": np.zeros(3, np.float32)}
    path = tmp_path / "g.npz"
    np.savez(path, graph=np.array(json.dumps(spec)), **arrays)
    return path


def _one_line_error(path, pattern):
    with pytest.raises(UserError, match=pattern) as e:
        load_graph(path)
    assert "\n" not in str(e.value)


def test_a_well_formed_graph_loads(tmp_path):
    g = load_graph(_write(tmp_path, _conv_spec()))
    assert g.shapes()["c"] == (3, 4, 4)


@pytest.mark.parametrize("spec,kind", [([1, 2], "list"), ("conv", "string"), (None, "null"), (3, "number")])
def test_graph_that_is_not_an_object(tmp_path, spec, kind):
    _one_line_error(_write(tmp_path, spec), rf"graph: expected a JSON object .*found a JSON {kind}$")


@pytest.mark.parametrize("inputs", [[], {}, [["input"]], [1], ["input", "input"]])
def test_malformed_layer_inputs(tmp_path, inputs):
    _one_line_error(_write(tmp_path, _conv_spec(inputs=inputs)), r"c\.inputs: expected ")


def test_add_with_one_input(tmp_path):
    spec = _conv_spec()
    spec["layers"].append({"name": "s", "op": "add", "inputs": ["c"]})
    _one_line_error(_write(tmp_path, spec), r"s\.inputs: expected 2 inputs for add, found \['c'\]")


def test_conv_with_zero_output_channels(tmp_path):
    path = _write(tmp_path, _conv_spec(), w=np.ones((0, 2, 3, 3), np.float32), b=np.zeros(0, np.float32))
    _one_line_error(path, r"w: expected shape \(Cout >= 1, 2, k >= 1, k\), found shape \(0, 2, 3, 3\)")


def test_linear_with_a_wrong_bias(tmp_path):
    spec = _conv_spec()
    spec["layers"] = [{"name": "fc", "op": "linear", "weight": "w", "bias": "b"}]
    path = _write(tmp_path, spec, w=np.ones((5, 32), np.float32), b=np.zeros(4, np.float32))
    _one_line_error(path, r"b: expected shape \(5,\), found shape \(4,\)")


def test_weight_name_that_is_not_a_string(tmp_path):
    _one_line_error(_write(tmp_path, _conv_spec(weight=["w"])), r"c\.weight: expected the name of an array")


def test_boolean_input_size_is_not_an_integer(tmp_path):
    spec = _conv_spec()
    spec["input"]["shape"] = [True, 4, 4]
    _one_line_error(_write(tmp_path, spec), r"input\.shape: expected \[C, H, W\] of positive integers")


def test_absurd_input_size_is_refused_with_the_limit(tmp_path):
    spec = _conv_spec()
    spec["input"]["shape"] = [1, 100000, 100000]
    _one_line_error(_write(tmp_path, spec), rf"input\.shape: expected at most {MAX_TENSOR_ELEMENTS:,} values "
                                            r"per tensor .*found shape \(1, 100000, 100000\) = 10,000,000,000 values")


def test_absurd_layer_output_is_refused(tmp_path):
    # 1 x 4096 x 4096 input is within the limit; a 3x3 conv to 2 channels doubles it past 2**24.
    spec = _conv_spec()
    spec["input"]["shape"] = [1, 4096, 4096]
    path = _write(tmp_path, spec, w=np.ones((2, 1, 3, 3), np.float32), b=np.zeros(2, np.float32))
    _one_line_error(path, r"c output: expected at most .*found shape \(2, 4096, 4096\)")


@pytest.mark.parametrize("conv,field,found", [
    ({"stride": 0}, "stride", "0"), ({"stride": "2"}, "stride", "'2'"), ({"padding": -1}, "padding", "-1"),
    ({"padding": True}, "padding", "True"),
])
def test_stride_and_padding_errors_name_the_field_not_the_weight(tmp_path, conv, field, found):
    _one_line_error(_write(tmp_path, _conv_spec(**conv)), rf"c\.{field}: expected an integer >= \d, found {found}$")


@pytest.mark.parametrize("conv,k,message", [
    ({"stride": 3}, 3, r"c\.stride: expected an integer in 1\.\.2, found 3$"),
    ({"padding": 3}, 3, r"c\.padding: expected an integer in 0\.\.2, found 3$"),
    ({"padding": 1}, 1, r"c\.padding: expected an integer in 0\.\.0, found 1$"),
    ({"padding": 0}, 9, r"c\.weight: expected a kernel size k in 1\.\.7, found k = 9$"),
])
def test_cnn_engine_stride_padding_and_kernel_limits_name_the_field(tmp_path, conv, k, message):
    """The integer graph the CNN engine runs: stride 1..2, padding 0..k-1, kernel 1..7."""
    from sparsa.sw.cnn.golden import validate_int_graph
    spec = _conv_spec(**conv)
    spec["input"].update(shape=[2, 12, 12], dtype="int8")
    path = _write(tmp_path, spec, w=np.ones((3, 2, k, k), np.int8), b=np.zeros(3, np.int32))
    with pytest.raises(UserError, match=message) as e:
        validate_int_graph(load_graph(path), str(path))
    assert "\n" not in str(e.value)


def test_an_absurd_upsample_scale_is_one_line_not_a_traceback(tmp_path):
    from sparsa.sw.model.graph import Graph, validate
    g = Graph({"format": "sparsa-model", "version": 1, "input": {"shape": [1, 4, 4], "dtype": "float32"},
               "layers": [{"name": "u", "op": "upsample", "scale": 10 ** 400}]}, {})
    with pytest.raises(UserError) as e:
        validate(g, "g.npz")
    assert "\n" not in str(e.value) and "u output" in str(e.value) and "size limit" in str(e.value)


@pytest.mark.parametrize("outputs", [{"a": 1}, [{"name": 3, "shape": [1]}], [{"name": "a", "shape": []}],
                                     [{"name": "a", "shape": [2, -1]}], [{"name": "a", "shape": ["x"]}]])
def test_malformed_outputs_list(outputs):
    from sparsa.sw.model.graph import Graph, validate
    g = Graph({"format": "sparsa-model", "version": 1, "input": {"shape": [1, 4, 4], "dtype": "float32"},
               "layers": [{"name": "p", "op": "maxpool2d"}], "outputs": outputs}, {})
    with pytest.raises(UserError, match="outputs: expected a list of"):
        validate(g, "g.npz")
