"""Bit-exact golden model of the EIE PE array (what the hardware must compute).

For every layer, in order, with ``x`` the int16 input activations::

    acc_i = bias_i + sum_j W_ij * x_j          exact integer (no wrap-around)
    acc_i = (acc_i + 2**(S-1)) >> S            only if S > 0 (arithmetic shift)
    y_i   = saturate_int16(acc_i)
    y_i   = max(y_i, 0)                        only if the layer has ReLU

and ``y`` feeds the next layer. ``W_ij`` is the int16 codebook value of the stored index.
The accumulation is exact: |acc| <= cols * 2**30 + 2**31 < 2**63 for any realistic layer,
and scipy's integer sparse product never rounds.
"""

from dataclasses import dataclass

import numpy as np

from sparsa.sw.fixedpoint import round_shift, saturate

__all__ = ["GoldenLayer", "layer_forward", "run_layers"]


@dataclass
class GoldenLayer:
    """One layer as the golden model sees it.

    Attributes
    ----------
    weight : scipy.sparse matrix (rows, cols) of int64 weight values.
    bias : int64 array (rows,)
    shift : int >= 0
    relu : bool
    """
    weight: object        # a scipy.sparse matrix
    bias: np.ndarray
    shift: int = 0
    relu: bool = False

    @classmethod
    def from_coo(cls, rows, cols, i, j, values, bias=None, shift=0, relu=False):
        # scipy only here: a board's runtime loads packs without the golden model's scipy.
        import scipy.sparse as sp
        w = sp.csr_matrix((np.asarray(values, dtype=np.int64), (i, j)), shape=(rows, cols), dtype=np.int64)
        b = np.zeros(rows, dtype=np.int64) if bias is None else np.asarray(bias, dtype=np.int64)
        return cls(w, b, int(shift), bool(relu))

    @classmethod
    def from_dense(cls, weight, bias=None, shift=0, relu=False):
        weight = np.asarray(weight, dtype=np.int64)
        i, j = np.nonzero(weight)
        return cls.from_coo(*weight.shape, i, j, weight[i, j], bias, shift, relu)

    @property
    def rows(self):
        return self.weight.shape[0]

    @property
    def cols(self):
        return self.weight.shape[1]


def layer_forward(layer, x):
    """One layer on int16 activations ``x`` of shape (cols,) or (batch, cols) -> int16."""
    x = np.asarray(x, dtype=np.int64)
    acc = (layer.weight @ x.T).T + layer.bias          # exact int64
    acc = round_shift(acc, layer.shift)
    y = saturate(acc, 16)
    if layer.relu:
        y = np.maximum(y, 0)
    return y.astype(np.int16)


def run_layers(layers, x, *, keep_all=False):
    """Run ``layers`` in order; returns the last output (or every layer's with keep_all)."""
    outs = []
    for layer in layers:
        x = layer_forward(layer, x)
        outs.append(x)
    return outs if keep_all else x
