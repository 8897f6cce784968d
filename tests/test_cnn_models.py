"""The digits CNN (numpy training): float accuracy, and the int8 golden model after compress_cnn."""

import numpy as np

from sparsa.sw.cnn.compress import compress_cnn, quantize_input
from sparsa.sw.cnn.golden import cnn_forward, validate_int_graph
from sparsa.sw.model.digits import digits_images
from sparsa.sw.model.digits_cnn import train_digits_cnn
from sparsa.sw.model.graph import graph_forward

SEED = 0


def test_digits_cnn_float_and_int8_accuracy():
    print("seed", SEED)
    graph, acc = train_digits_cnn(SEED)
    x_tr, x_te, y_tr, y_te = digits_images(SEED)
    assert acc == np.mean(np.argmax(graph_forward(graph, x_te), axis=1) == y_te)
    q = compress_cnn(graph, x_tr)                    # calibrated on the training split
    validate_int_graph(q, "digits")
    int_acc = float(np.mean(np.argmax(cnn_forward(q, quantize_input(q, x_te)), axis=1) == y_te))
    print(f"digits CNN test accuracy: float {acc:.4f}, int8 golden {int_acc:.4f} ({len(y_te)} images)")
    assert acc >= 0.9
    assert int_acc >= 0.88
    # Input pixels k/16 in [0, 1] are exact at 6 fractional bits.
    assert q.spec["quant"]["input_frac"] == 6
    np.testing.assert_array_equal(quantize_input(q, x_te), np.round(x_te * 64).astype(np.int8))


def test_training_is_deterministic():
    a, acc_a = train_digits_cnn(SEED, epochs=1)
    b, acc_b = train_digits_cnn(SEED, epochs=1)
    assert acc_a == acc_b and all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)
