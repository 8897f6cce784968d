"""Tiling plans of the CNN compiler: which output rows, weights and outputs of a layer fit
the engine's buffers (ibuf, wbuf, obuf) at once, and the weight blocks as the lanes read them.

Every function here is pure: it sizes, it does not emit. A layer that cannot fit even as one
output row raises a one-line :class:`~sparsa.sw.errors.UserError` naming the buffer, what it
needed and the :class:`~sparsa.sw.cnn.config.CNNConfig` setting to raise.
"""

import numpy as np

from sparsa.sw.cnn.isa import WINO_G2
from sparsa.sw.errors import user_error

__all__ = ["too_big", "fitting_rows", "max_rows", "balance_rows", "weight_block", "acc_bound", "plan_conv",
           "pieces", "kernel_pieces",
           "plan_linebuffer"]


def too_big(name, buf, need, have, what, setting):
    return user_error(f"layer {name}", buf, f"at most {have} {setting[1]} (CNNConfig.{setting[0]})",
                      f"{need} {setting[1]} for {what} ({need - have} too many)")


def fitting_rows(budget, per_row):
    return budget // per_row if per_row else 1 << 30


def max_rows(ho, h, rows_fit, k, s, wino):
    """Most output rows per tile whose input rows (clipped to the image) fit ``rows_fit``."""
    if rows_fit >= h:
        return ho
    if wino:
        r = (rows_fit - 2) // 2 * 2      # 2*ceil(R/2) + 2 rows for R output rows
        return r if r >= 2 else 0
    return (rows_fit - k) // s + 1 if rows_fit >= k else 0


def balance_rows(ho, r, wino):
    """Same tile count, tiles as even as possible (even rows for Winograd)."""
    tiles = -(-ho // r)
    rb = -(-ho // tiles)
    if wino and rb % 2 and rb < ho:
        rb += 1                          # r is even here, so still rb <= r
    return min(rb, r)


def pieces(k):
    """3x3 pieces a side of a k x k kernel on the window convolver."""
    return -(-k // 3)


def kernel_pieces(w):
    """A k x k kernel (cout, cin, k, k) as 3x3 pieces, (cout, n*n*cin, 3, 3), n = pieces(k):
    piece (a, b) holds taps ``3a..3a+2`` x ``3b..3b+2`` (zero past k) and is channel block
    ``a*n + b``, so that ``conv_k(x) = sum over pieces of conv_3x3`` with the piece's window
    origin moved by (3a, 3b)."""
    cout, cin, k, _ = w.shape
    n = pieces(k)
    wp = np.zeros((cout, cin, 3 * n, 3 * n), dtype=w.dtype)
    wp[:, :, :k, :k] = w
    blocks = [wp[:, :, 3 * a:3 * a + 3, 3 * b:3 * b + 3] for a in range(n) for b in range(n)]
    return np.concatenate(blocks, axis=1)


def weight_block(w, b, P, wino, bits=16):
    """Bytes of one conv layer's weights (per group: bias then words of ``bits``-bit weights)
    and the words per group."""
    cout = w.shape[0]
    if wino:
        u = WINO_G2 @ w @ WINO_G2.T                      # (cout, cin, 4, 4)
        words = u.reshape(cout, -1)                      # column ci*16 + e
    else:
        words = w.reshape(cout, -1)                      # column ci*k*k + ky*k + kx
    nwords = words.shape[1]
    out = bytearray()
    for co0 in range(0, cout, P):
        n = min(P, cout - co0)
        bias = np.zeros(P, "<i4")
        bias[:n] = b[co0:co0 + n]
        wg = np.zeros((nwords, P), "<i2" if bits == 16 else "i1")
        wg[:, :n] = words[co0:co0 + n].T
        out += bias.tobytes() + wg.tobytes()
    return bytes(out), nwords


def acc_bound(w, wino):
    if not wino:
        return int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()) * 128
    u = np.abs(WINO_G2 @ w @ WINO_G2.T)                  # M = sum_ci U V, |V| <= 4 * 128
    return 9 * int(u.sum(axis=1).max()) * 512            # Y = A^T M A sums up to 9 M's


def plan_conv(cfg, name, in_shape, out_shape, k, s, wino):
    """Output rows per tile of a conv layer, or a :class:`UserError` naming the buffer that
    cannot hold even one output row (two for Winograd)."""
    cin, h, wd = in_shape
    _, ho, wo = out_shape
    nwords = cin * (16 if wino else k * k)
    if nwords > cfg.wbuf_words:
        raise too_big(name, "wbuf", nwords, cfg.wbuf_words,
                       f"{cin} input channels x {16 if wino else k * k} words per channel",
                       ("wbuf_words", "words"))
    r_obuf = cfg.obuf_depth // wo
    if r_obuf < 1:
        raise too_big(name, "obuf", wo, cfg.obuf_depth, f"one output row of {wo} pixels",
                       ("obuf_depth", "entries"))
    rows_fit = fitting_rows(cfg.ibuf_bytes, cin * wd)
    r_ibuf = max_rows(ho, h, rows_fit, k, s, wino)
    if r_ibuf < 1:
        span = min(h, 4 if wino else k)
        raise too_big(name, "ibuf", cin * span * wd, cfg.ibuf_bytes,
                       f"{cin} channels x {span} input rows x {wd} columns (one output row)",
                       ("ibuf_bytes", "bytes"))
    r = min(ho, r_obuf, r_ibuf)
    if wino and r < ho and r % 2:
        r -= 1
        if r < 1:
            raise too_big(name, "obuf", 2 * wo, cfg.obuf_depth,
                           f"two output rows of {wo} pixels (Winograd)", ("obuf_depth", "entries"))
    return balance_rows(ho, r, wino)


def plan_linebuffer(cfg, in_shape, out_shape, k, s):
    """``(rows per tile, channels per chunk)`` of a layer on the 3x3 window convolver, or None
    when it cannot run there (not k x k with 3 <= k <= 7 and stride 1/2, no convolver, or not
    even one output row of one channel fits psum/obuf/ibuf).

    A k x k kernel with k > 3 runs as ``pieces(k)**2`` 3x3 pieces (:func:`kernel_pieces`),
    each a CONV over the same input rows with its window origin moved by 3 rows or columns,
    all accumulating in psum.

    Rows per tile: as many as psum and obuf hold (whole maps for VGG-sized crops), with one
    channel's input rows in ibuf. Channels per chunk: as many of those row sets as ibuf and
    wbuf (9 words a channel) hold. With several chunks, each output group runs one CONV per
    chunk, accumulating in psum (flags ACC/HOLD), so every weight word is loaded once per tile
    and group however deep the layer; each input chunk is loaded once for as many output
    groups as psum holds side by side (``psum_depth // (rows x Wo)``), so a deep layer's input
    is read from DRAM about once per tile.
    """
    cin, h, wd = in_shape
    _, ho, wo = out_shape
    if not (cfg.convolver and 3 <= k <= 7 and s in (1, 2)):
        return None
    # the pieces' windows span 3 * pieces(k) rows (the taps past k are zero, but the rows they
    # read must be this tile's, so they are loaded too)
    ke = 3 * pieces(k)
    r = min(ho, cfg.psum_depth // wo, cfg.obuf_depth // wo)
    if r >= 1 and min(h, (r - 1) * s + ke) * wd > cfg.ibuf_bytes:
        r = min(r, max_rows(ho, h, cfg.ibuf_bytes // wd, ke, s, False))
    if r < 1 or cfg.wbuf_words < 9:
        return None
    r = balance_rows(ho, r, False)
    nrows = min(h, (r - 1) * s + ke)
    cc = min(cin, cfg.ibuf_bytes // (nrows * wd), cfg.wbuf_words // 9)
    chunks = -(-cin // cc)
    return r, -(-cin // chunks)
