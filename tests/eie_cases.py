"""Random and hand-made EIE packs for the hardware tests (seeded; seeds are printed)."""

import numpy as np

from sparsa.sw.eie.config import EIEConfig
from sparsa.sw.eie.golden import GoldenLayer, run_layers
from sparsa.sw.eie.pack import Pack, make_layer


def random_index(rows, cols, density, rng):
    mask = rng.random((rows, cols)) < density
    return (mask * rng.integers(1, 16, (rows, cols))).astype(np.uint8)


def random_codebook(rng, scale=3000):
    cb = np.zeros(16, dtype=np.int16)
    vals = rng.integers(-scale, scale + 1, 15)
    vals[vals == 0] = 1
    cb[1:] = vals
    return cb


def pack_from_indices(indices, codebooks, pes, biases=None, shifts=None, relus=None):
    layers = []
    for li, idx in enumerate(indices):
        i, j = np.nonzero(idx)
        layers.append(make_layer(f"layer{li}", idx.shape[0], idx.shape[1], i, j, idx[i, j],
                                 codebooks[li], pes,
                                 bias=None if biases is None else biases[li],
                                 shift=0 if shifts is None else shifts[li],
                                 relu=False if relus is None else relus[li]))
    return Pack(pes=pes, layers=layers)


def random_pack(shapes, pes, density, rng, *, shift=9, relu_hidden=True, bias_scale=5000):
    """A len(shapes)-layer MLP; shapes = [(rows, cols), ...] chained."""
    idx = [random_index(r, c, density, rng) for r, c in shapes]
    cbs = [random_codebook(rng) for _ in shapes]
    biases = [rng.integers(-bias_scale, bias_scale + 1, r).astype(np.int32) for r, _ in shapes]
    relus = [relu_hidden and li < len(shapes) - 1 for li in range(len(shapes))]
    return pack_from_indices(idx, cbs, pes, biases, [shift] * len(shapes), relus)


def independent_golden(pack, x):
    """The golden model rebuilt from the dense index matrices (not from the pack's slices)."""
    from sparsa.sw.eie.format import decode_layer
    layers = []
    for l in pack.layers:
        idx = decode_layer(l.slices, l.rows, l.cols)
        layers.append(GoldenLayer.from_dense(l.codebook[idx].astype(np.int64), l.bias, l.shift, l.relu))
    return run_layers(layers, x)


def random_input(cols, rng, batch=2, density=0.6, scale=200):
    x = rng.integers(-scale, scale + 1, (batch, cols)).astype(np.int16)
    x[rng.random((batch, cols)) >= density] = 0
    return x


def hw_config(pes, *, queue_depth=8, max_cols=100, max_layers=3):
    """One hardware size per PE count, big enough for every test pack of that PE count."""
    rows_pe = -(-max_cols // pes)
    spm = 1024
    return EIEConfig.from_args(pes, queue_depth=queue_depth, max_cols=max_cols, max_rows_pe=rows_pe,
                               spm_words=spm, ptr_words=max_layers * (max_cols // 2 + 1),
                               bias_words=max_layers * rows_pe, max_layers=max_layers)
