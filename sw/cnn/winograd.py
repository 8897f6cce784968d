"""Integer Winograd F(2x2, 3x3): the transforms, a whole-layer convolution and multiply counts.

With the integer matrices of :mod:`sparsa.sw.cnn.isa` (``G2 = 2 G``)::

    U = G2 g G2^T        weight, 3x3 -> 4x4   (4x the textbook U = G g G^T)
    V = B^T d B          input tile, 4x4 -> 4x4
    Y = A^T (sum_c U . V) A / 4                 output tile, 2x2

``A^T (U . V) A`` is 4x the 3x3 correlation of the tile, an integer, so ``Y / 4`` is exact
(:func:`winograd_conv2d` asserts it). For int8 ``g`` every ``U`` fits signed 12 bits
(-1152..1147) and for int8 ``d`` every ``V`` fits signed 11 bits (-512..510); see
docs/cnn.md.
"""

import numpy as np

from sparsa.sw.cnn.isa import WINO_AT, WINO_BT, WINO_G2

__all__ = ["weight_transform", "input_transform", "output_transform", "winograd_conv2d",
           "multiplies", "DATAPATHS"]

DATAPATHS = ("direct", "winograd")


def weight_transform(g):
    """``U = G2 g G2^T`` (int64) for ``g`` of shape (..., 3, 3)."""
    g = np.asarray(g, dtype=np.int64)
    assert g.shape[-2:] == (3, 3), g.shape
    return WINO_G2 @ g @ WINO_G2.T


def input_transform(d):
    """``V = B^T d B`` (int64) for 4x4 tiles ``d`` of shape (..., 4, 4)."""
    d = np.asarray(d, dtype=np.int64)
    assert d.shape[-2:] == (4, 4), d.shape
    return WINO_BT @ d @ WINO_BT.T


def output_transform(m):
    """``A^T M A`` (int64, (..., 2, 2)) for ``M`` of shape (..., 4, 4); still 4x the result."""
    m = np.asarray(m, dtype=np.int64)
    assert m.shape[-2:] == (4, 4), m.shape
    return WINO_AT @ m @ WINO_AT.T


def winograd_conv2d(x, w, b, pad):
    """Stride-1 3x3 convolution by F(2x2, 3x3): x (C, H, W) int, w (Cout, C, 3, 3) int,
    b (Cout,) -> int64 (Cout, Ho, Wo), equal to ``cnn_golden.conv2d_int(x, w, b, 1, pad)``.

    The output is cut in 2x2 tiles (ceil(Ho/2) x ceil(Wo/2)); the input is zero-padded by
    ``pad`` and, for odd Ho or Wo, one more row or column whose outputs are dropped.
    """
    x = np.asarray(x, dtype=np.int64)
    w = np.asarray(w, dtype=np.int64)
    c, h, wd = x.shape
    assert w.shape[1:] == (c, 3, 3), (w.shape, x.shape)
    ho, wo = h + 2 * pad - 2, wd + 2 * pad - 2
    assert ho >= 1 and wo >= 1, (h, wd, pad)
    th, tw = -(-ho // 2), -(-wo // 2)
    xp = np.pad(x, ((0, 0), (pad, pad + 2 * th - ho), (pad, pad + 2 * tw - wo)))
    # Overlapping 4x4 tiles at stride 2: d[c, ty, tx, i, j] = xp[c, 2ty + i, 2tx + j].
    d = np.stack([np.stack([xp[:, i:i + 2 * th:2, j:j + 2 * tw:2] for j in range(4)], axis=-1)
                  for i in range(4)], axis=-2)
    m = np.einsum("ocij,ctsij->otsij", weight_transform(w), input_transform(d))
    y4 = output_transform(m)                                  # (Cout, th, tw, 2, 2)
    assert not np.any(y4 & 3), "Winograd output not divisible by 4"
    y = (y4 >> 2).transpose(0, 1, 3, 2, 4).reshape(w.shape[0], 2 * th, 2 * tw)
    return y[:, :ho, :wo] + np.asarray(b, dtype=np.int64)[:, None, None]


def multiplies(cin, cout, ho, wo, datapath):
    """Multiplications of one stride-1 3x3 layer: ``direct`` 9 per output pixel per input
    channel (also on the window ``convolver``, which does the 9 in one cycle); ``winograd`` 16 per
    2x2 output tile (ceil(Ho/2) * ceil(Wo/2) tiles) per input channel."""
    if datapath in ("direct", "convolver"):
        return 9 * cin * cout * ho * wo
    if datapath == "winograd":
        return 16 * cin * cout * (-(-ho // 2)) * (-(-wo // 2))
    raise ValueError(f"datapath: expected one of {', '.join(DATAPATHS)}, found {datapath!r}")
