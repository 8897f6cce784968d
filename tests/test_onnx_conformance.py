"""ONNX's own node test cases, for every op the importer supports: right numbers or one line.

The cases come from the installed ``onnx`` wheel's generator (``onnx.backend.test.case.node``:
importing an op's module runs its ``export*`` functions, which build the model and compute the
expected outputs with ONNX's reference implementation; the wheel ships no ``data/node`` files,
and nothing is downloaded). Per case: the first graph input stays the input and the others
(weights, biases, shape tensors) become initializers with the case's values, since sparsa reads
weights as constants. Then the import either

* succeeds, and sparsa's float forward matches the expected output (shape and values), or
* raises a one-line ``UserError`` (an unsupported variant: never exit 0 with wrong numbers).

``IMPORTED`` lists the cases that must import, so a regression into refusing is caught too.
"""

import importlib

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from sparsa.sw.errors import UserError
from sparsa.sw.model.importer import import_model
from sparsa.sw.model.onnx_ops import SUPPORTED_OPS

# op -> the generator module under onnx.backend.test.case.node
_MODULES = {"BatchNormalization": "batch_normalization"}


def _cases():
    import onnx.backend.test.case.node as node_cases
    for op in SUPPORTED_OPS:
        importlib.import_module(f"onnx.backend.test.case.node.{_MODULES.get(op, op.lower())}")
    ops = set(SUPPORTED_OPS)
    # _NodeTestCases is where the exporters collect (what collect_testcases returns).
    return {c.name: c for c in node_cases._NodeTestCases
            if c.kind == "node" and ops & {n.op_type for n in c.model.graph.node}}


CASES = _cases()

# The cases sparsa imports and must compute right (the others are refused in one line).
IMPORTED = {
    "test_averagepool_2d_default", "test_averagepool_2d_precomputed_strides", "test_averagepool_2d_strides",
    "test_basic_conv_with_padding", "test_basic_conv_without_padding", "test_conv_with_autopad_same",
    "test_conv_with_strides_no_padding", "test_conv_with_strides_padding",
    "test_gemm_alpha", "test_gemm_beta", "test_gemm_default_no_bias", "test_gemm_default_scalar_bias",
    "test_gemm_default_single_elem_vector_bias", "test_gemm_default_vector_bias", "test_gemm_default_zero_bias",
    "test_gemm_transposeB", "test_matmul_2d",
    "test_maxpool_2d_default", "test_maxpool_2d_precomputed_strides", "test_maxpool_2d_strides",
    "test_globalaveragepool", "test_globalaveragepool_precomputed",
}


# Behind an identity layer (test_onnx_node_case_after_an_identity_layer), these import too.
IMPORTED_AFTER_LAYER = {"test_batchnorm_epsilon", "test_batchnorm_example", "test_identity"}


def _bind_weights(case, inputs):
    """The case's model with every graph input but the first turned into an initializer."""
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    g = model.graph
    keep = g.input[0]
    for vi, val in zip(list(g.input)[1:], inputs[1:]):
        g.initializer.append(numpy_helper.from_array(np.asarray(val), vi.name))
    del g.input[:]
    g.input.append(keep)
    return model


def _with_identity_layer(model):
    """``model`` behind an identity 1x1 Conv (4-D input) or Gemm (2-D input) named 'pre', so an op
    sparsa fuses into a layer (Relu, BatchNormalization, a bias Add, ...) has one; None for other
    ranks or for non-float inputs."""
    g = model.graph
    t = g.input[0].type.tensor_type
    dims = [d.dim_value for d in t.shape.dim]
    if t.elem_type != onnx.TensorProto.FLOAT or len(dims) not in (2, 4) or not all(dims):
        return None
    new = onnx.ModelProto()
    new.CopyFrom(model)
    g, x = new.graph, g.input[0].name
    for n in g.node:
        n.input[:] = ["pre_out" if i == x else i for i in n.input]
    c = dims[1]
    eye = np.eye(c, dtype=np.float32)
    g.initializer.append(numpy_helper.from_array(eye.reshape(c, c, 1, 1) if len(dims) == 4 else eye, "pre_w"))
    op = "Conv" if len(dims) == 4 else "Gemm"
    g.node.insert(0, onnx.helper.make_node(op, [x, "pre_w"], ["pre_out"], name="pre"))
    return new


def _ours(model, x):
    if model.kind == "lstm":   # X (T, N, I): one sequence per batch element -> Y (T, 1, N, H)
        return np.stack([model.forward(x[:, n]) for n in range(x.shape[1])], axis=1)[:, None]
    return model.forward(x)


def _check(path, model_proto, case, must_import):
    inputs, outputs = case.data_sets[0]
    onnx.save(model_proto, str(path))
    try:
        model = import_model(path)
    except UserError as e:
        msg = str(e)
        assert "\n" not in msg and msg.startswith(str(path)), msg
        assert not must_import, f"{path.stem} must import: {msg}"
        return
    assert must_import, f"{path.stem} imported but is not listed as imported"
    want = np.asarray(outputs[0], dtype=np.float64)
    got = _ours(model, np.asarray(inputs[0], dtype=np.float64))
    assert got.shape == want.shape
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * max(1.0, float(np.abs(want).max())))


@pytest.mark.parametrize("name", sorted(CASES))
def test_onnx_node_case(tmp_path, name):
    case = CASES[name]
    _check(tmp_path / f"{name}.onnx", _bind_weights(case, case.data_sets[0][0]), case, name in IMPORTED)


CONTEXT_CASES = sorted(n for n in CASES if _with_identity_layer(CASES[n].model) is not None)


@pytest.mark.parametrize("name", CONTEXT_CASES)
def test_onnx_node_case_after_an_identity_layer(tmp_path, name):
    """The same case behind an identity layer: ops that fuse into a layer get one to fuse into."""
    case = CASES[name]
    model = _with_identity_layer(_bind_weights(case, case.data_sets[0][0]))
    _check(tmp_path / f"{name}_pre.onnx", model, case, name in IMPORTED or name in IMPORTED_AFTER_LAYER)


def test_every_supported_op_has_cases():
    ops = {n.op_type for c in CASES.values() for n in c.model.graph.node}
    assert set(SUPPORTED_OPS) <= ops
    assert IMPORTED <= set(CASES) and IMPORTED_AFTER_LAYER <= set(CONTEXT_CASES)
    print(f"{len(CASES)} cases, {len(CONTEXT_CASES)} also behind an identity layer; "
          f"{len(IMPORTED)} + {len(IMPORTED_AFTER_LAYER)} import")
