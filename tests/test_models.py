"""Loading float models: .npy matrices, .npz MLPs (layer{k} and PyTorch state_dict names)."""

import numpy as np
import pytest

from sparsa.sw.errors import UserError
from sparsa.sw.model.importer import load_mlp
from sparsa.sw.model.mlp import float_forward


def test_npy_matrix_is_one_layer_without_relu(tmp_path):
    w = np.arange(12, dtype=np.int32).reshape(3, 4)
    np.save(tmp_path / "w.npy", w)
    (layer,) = load_mlp(tmp_path / "w.npy")
    assert layer.name == "layer0" and layer.weight.dtype == np.float64
    assert np.array_equal(layer.weight, w) and np.array_equal(layer.bias, np.zeros(3))
    assert not layer.relu


def test_state_dict_names_in_file_order_with_relu_between(tmp_path):
    # What np.savez(path, **{k: v.numpy() for k, v in model.state_dict().items()}) writes
    # for nn.Sequential(Linear(4, 8), ReLU(), Linear(8, 3)).
    rng = np.random.default_rng(0)
    sd = {"0.weight": rng.normal(size=(8, 4)).astype(np.float32), "0.bias": np.ones(8, np.float32),
          "2.weight": rng.normal(size=(3, 8)).astype(np.float32), "2.bias": np.zeros(3, np.float32)}
    np.savez(tmp_path / "m.npz", **sd)
    layers = load_mlp(tmp_path / "m.npz")
    assert [l.name for l in layers] == ["0", "2"]
    assert [l.relu for l in layers] == [True, False]
    assert np.array_equal(layers[0].bias, np.ones(8))
    assert [l.relu for l in load_mlp(tmp_path / "m.npz", relu=False)] == [False, False]


def test_missing_bias_is_zero(tmp_path):
    np.savez(tmp_path / "m.npz", **{"layer0.weight": np.ones((2, 3)), "layer1.weight": np.ones((1, 2))})
    layers = load_mlp(tmp_path / "m.npz")
    assert np.array_equal(layers[1].bias, [0.0])


def test_float_forward_applies_relu_except_last():
    from sparsa.sw.model.mlp import FloatLayer
    l0 = FloatLayer("a", np.array([[1.0], [-1.0]]), np.zeros(2), True)
    l1 = FloatLayer("b", np.array([[1.0, 1.0]]), np.array([-5.0]), False)
    assert float_forward([l0, l1], np.array([[2.0]]))[0, 0] == pytest.approx(-3.0)


@pytest.mark.parametrize("arrays, field", [
    ({"0.weight": np.ones((2, 3)), "1.weight": np.ones((1, 4))}, "1.weight"),
    ({"0.weight": np.ones((2, 3)), "0.bias": np.ones(3)}, "0.bias"),
    ({"0.weight": np.ones((2, 3)), "0.running_mean": np.ones(2)}, "0.running_mean"),
    ({"0.bias": np.ones(3)}, "model"),
])
def test_bad_npz_names_the_field(tmp_path, arrays, field):
    np.savez(tmp_path / "m.npz", **arrays)
    with pytest.raises(UserError, match=field.replace(".", r"\.")):
        load_mlp(tmp_path / "m.npz")
