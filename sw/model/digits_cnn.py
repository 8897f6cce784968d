"""A small CNN for the 8x8 digits, trained with numpy only (the CNN engine's demo model).

``digits_cnn_graph`` describes the network; :func:`train_digits_cnn` trains it by Adam on
scikit-learn's bundled digits (offline; the 80/20 split of :func:`sparsa.sw.model.digits.load_data`),
with im2col convolutions and their hand-written backward passes::

    input (1, 8, 8) in [0, 1]
    conv1 3x3 pad 1, 8 ch, ReLU  -> maxpool 2  -> (8, 4, 4)
    conv2 3x3 pad 1, 16 ch, ReLU -> maxpool 2  -> (16, 2, 2)
    fc    linear 64 -> 10 (logits)
"""

import numpy as np

from sparsa.sw.model.digits import digits_images
from sparsa.sw.model.graph import Graph, graph_forward

__all__ = ["digits_cnn_graph", "train_digits_cnn"]


def digits_cnn_graph(params):
    """The float sparsa-model graph of the digits CNN with ``params`` (name -> array)."""
    conv = lambda n: {"name": n, "op": "conv2d", "weight": f"{n}.weight", "bias": f"{n}.bias",
                      "stride": 1, "padding": 1, "relu": True}
    layers = [conv("conv1"), {"name": "pool1", "op": "maxpool2d", "size": 2, "stride": 2},
              conv("conv2"), {"name": "pool2", "op": "maxpool2d", "size": 2, "stride": 2},
              {"name": "fc", "op": "linear", "weight": "fc.weight", "bias": "fc.bias", "relu": False}]
    spec = {"format": "sparsa-model", "version": 1, "input": {"shape": [1, 8, 8], "dtype": "float32"},
            "layers": layers}
    return Graph(spec, {k: v.astype(np.float32) for k, v in params.items()})


#
# im2col layers with backward passes (batch first)
#

def _im2col(x, k, pad):
    n, c, h, w = x.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    cols = np.empty((n, c, k, k, ho, wo))
    for dy in range(k):
        for dx in range(k):
            cols[:, :, dy, dx] = xp[:, :, dy:dy + ho, dx:dx + wo]
    return cols.reshape(n, c * k * k, ho * wo), (ho, wo)


def _col2im(dcols, shape, k, pad):
    n, c, h, w = shape
    ho, wo = h + 2 * pad - k + 1, w + 2 * pad - k + 1
    dcols = dcols.reshape(n, c, k, k, ho, wo)
    dxp = np.zeros((n, c, h + 2 * pad, w + 2 * pad))
    for dy in range(k):
        for dx in range(k):
            dxp[:, :, dy:dy + ho, dx:dx + wo] += dcols[:, :, dy, dx]
    return dxp[:, :, pad:pad + h, pad:pad + w]


def _conv_fwd(x, w, b, pad):
    cols, (ho, wo) = _im2col(x, w.shape[2], pad)
    y = np.einsum("ok,nkp->nop", w.reshape(w.shape[0], -1), cols) + b[None, :, None]
    return y.reshape(x.shape[0], w.shape[0], ho, wo), cols


def _conv_bwd(dy, x_shape, cols, w, pad):
    dy = dy.reshape(dy.shape[0], dy.shape[1], -1)
    dw = np.einsum("nop,nkp->ok", dy, cols).reshape(w.shape)
    db = dy.sum(axis=(0, 2))
    dcols = np.einsum("ok,nop->nkp", w.reshape(w.shape[0], -1), dy)
    return _col2im(dcols, x_shape, w.shape[2], pad), dw, db


def _pool_fwd(x):
    n, c, h, w = x.shape
    blocks = x.reshape(n, c, h // 2, 2, w // 2, 2)
    y = blocks.max(axis=(3, 5))
    return y, blocks == y[:, :, :, None, :, None]


def _pool_bwd(dy, mask):
    n, c, h2, _, w2, _ = mask.shape
    # Ties share the gradient equally (after a ReLU they are mostly zeros, whose gradient is 0 anyway).
    share = mask / mask.sum(axis=(3, 5), keepdims=True)
    return (share * dy[:, :, :, None, :, None]).reshape(n, c, 2 * h2, 2 * w2)


def _forward(p, x):
    c1, cols1 = _conv_fwd(x, p["conv1.weight"], p["conv1.bias"], 1)
    r1 = np.maximum(c1, 0)
    p1, m1 = _pool_fwd(r1)
    c2, cols2 = _conv_fwd(p1, p["conv2.weight"], p["conv2.bias"], 1)
    r2 = np.maximum(c2, 0)
    p2, m2 = _pool_fwd(r2)
    flat = p2.reshape(len(x), -1)
    logits = flat @ p["fc.weight"].T + p["fc.bias"]
    return logits, (x, cols1, c1, m1, p1, cols2, c2, m2, flat)


def _backward(p, cache, dlogits):
    x, cols1, c1, m1, p1, cols2, c2, m2, flat = cache
    g = {"fc.weight": dlogits.T @ flat, "fc.bias": dlogits.sum(axis=0)}
    dp2 = (dlogits @ p["fc.weight"]).reshape(len(x), 16, 2, 2)
    dc2 = _pool_bwd(dp2, m2) * (c2 > 0)
    dp1, g["conv2.weight"], g["conv2.bias"] = _conv_bwd(dc2, p1.shape, cols2, p["conv2.weight"], 1)
    dc1 = _pool_bwd(dp1, m1) * (c1 > 0)
    _, g["conv1.weight"], g["conv1.bias"] = _conv_bwd(dc1, x.shape, cols1, p["conv1.weight"], 1)
    return g


def train_digits_cnn(seed=0, epochs=20, batch=32, lr=3e-3):
    """Train the digits CNN; returns ``(graph, test_accuracy)`` (float graph, float64 forward).

    Adam (beta 0.9 / 0.999) on softmax cross-entropy, He-normal initialisation, all seeded:
    the same ``seed`` gives the same weights.
    """
    rng = np.random.default_rng(seed)
    x_tr, x_te, y_tr, y_te = digits_images(seed)
    he = lambda *s: rng.normal(size=s) * np.sqrt(2.0 / np.prod(s[1:]))
    p = {"conv1.weight": he(8, 1, 3, 3), "conv1.bias": np.zeros(8),
         "conv2.weight": he(16, 8, 3, 3), "conv2.bias": np.zeros(16),
         "fc.weight": he(10, 64), "fc.bias": np.zeros(10)}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(v) for k, v in p.items()}
    t = 0
    for _ in range(epochs):
        order = rng.permutation(len(x_tr))
        for i in range(0, len(order), batch):
            idx = order[i:i + batch]
            logits, cache = _forward(p, x_tr[idx])
            prob = np.exp(logits - logits.max(axis=1, keepdims=True))
            prob /= prob.sum(axis=1, keepdims=True)
            prob[np.arange(len(idx)), y_tr[idx]] -= 1.0
            grads = _backward(p, cache, prob / len(idx))
            t += 1
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                p[k] -= lr * (m[k] / (1 - 0.9 ** t)) / (np.sqrt(v[k] / (1 - 0.999 ** t)) + 1e-8)
    graph = digits_cnn_graph(p)
    acc = float(np.mean(np.argmax(graph_forward(graph, x_te), axis=1) == y_te))
    return graph, acc
