"""The MLPClassifier prune-and-retrain loop: masks hold, shared values stay shared."""

import numpy as np
import pytest

from sparsa.sw.compress.prune import pe_counts
from sparsa.sw.compress.retrain import RetrainConfig, accuracy, deep_compress_mlp, mlp_layers

# One module-scoped training run: keep its tests on one xdist worker (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("sw_retrain")

SEED = 5


@pytest.fixture(scope="module")
def result():
    from sklearn.datasets import load_digits
    print("seed", SEED)
    x, y = load_digits(return_X_y=True)
    x, y = x[:600] / 16.0, y[:600]
    cfg = RetrainConfig(hidden=(32,), float_epochs=30, schedule=(0.5, 0.2), prune_epochs=10,
                        share_epochs=10, bits=3, pes=4, seed=SEED)
    return cfg, x, y, deep_compress_mlp(x, y, cfg)


def test_final_weights_are_pruned_to_the_last_density_and_balanced(result):
    cfg, _, _, res = result
    for layer, mask in zip(res.layers, res.masks):
        assert mask.sum() == int(0.2 * mask.size)
        assert np.all(layer.weight[~mask] == 0)
        counts = pe_counts(mask, cfg.pes)
        assert counts.max() - counts.min() <= 1


def test_final_weights_take_only_the_shared_values(result):
    cfg, _, _, res = result
    for layer, (centroids, index) in zip(res.layers, res.shared):
        assert np.array_equal(layer.weight, centroids[index])
        assert np.unique(layer.weight[index > 0]).size <= (1 << cfg.bits) - 1
        assert np.array_equal(index > 0, layer.weight != 0)


def test_layers_mirror_the_classifier(result):
    _, x, y, res = result
    layers = mlp_layers(res.classifier)
    assert [l.weight.shape for l in layers] == [(32, 64), (10, 32)]
    assert [l.relu for l in layers] == [True, False]
    assert accuracy(layers, x, y) == pytest.approx(np.mean(res.classifier.predict(x) == y))


def test_history_and_accuracy_after_compression(result):
    _, x, y, res = result
    assert [h["phase"] for h in res.history] == ["float", "prune", "share"]
    assert accuracy(res.float_layers, x, y) > 0.85
    assert accuracy(res.layers, x, y) > 0.8


def test_per_layer_density_schedule():
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    x = rng.normal(size=(200, 8))
    y = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0)      # 3 classes: 3 output units
    cfg = RetrainConfig(hidden=(16,), float_epochs=2, schedule=((0.5, 0.75),), prune_epochs=1,
                        share_epochs=1, seed=SEED)
    res = deep_compress_mlp(x, y, cfg)
    assert [int(m.sum()) for m in res.masks] == [64, 36]


def test_binary_classifier_single_logit_accuracy():
    # sklearn gives a 2-class problem one logistic output: predict class 1 when logit > 0.
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    x = rng.normal(size=(300, 4))
    y = (x[:, 0] + x[:, 1] > 0).astype(int)
    cfg = RetrainConfig(hidden=(8,), float_epochs=30, schedule=(1.0,), prune_epochs=1, share_epochs=1, seed=SEED)
    res = deep_compress_mlp(x, y, cfg)
    assert res.layers[-1].rows == 1
    assert accuracy(res.layers, x, y) == pytest.approx(np.mean(res.classifier.predict(x) == y))
