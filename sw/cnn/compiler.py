"""Compile an integer sparsa-model graph into a CNN engine program and its DRAM layout.

DRAM (byte addresses; the engine sees one flat space)::

    0                 instructions (128 bytes each, END last)
    data = align64    weights: per conv/linear layer (64-aligned), per group of `lanes` output
                      channels: bias (lanes x int32 LE) then the weight words (lanes x int16 LE)
    align64           the input activation (C, H, W) int8
    align64 ...       every layer's output (C, H, W) int8, in layer order

Weight word w of a group holds lane l = output channel ``co0 + l`` (0 past Cout): direct
``w = ci*k*k + ky*k + kx``; Winograd (3x3 stride-1 conv only) ``w = ci*16 + e`` with
``U = G2 g G2^T`` flattened row-major. Each layer is cut into tiles of output rows that fit
the buffers (its input rows of every channel in ibuf, its weights in wbuf, one output group in
obuf); per tile: LOAD the input rows, then per output group LOAD BIAS, LOAD WBUF (once per
layer when there is only one group), CONV, SAVE. Pools tile rows (and channels), ``add`` tiles
channels and spans of each channel, ``linear`` is a 1x1 conv on the (C*H*W, 1, 1) input.
A layer that cannot fit even as one output row raises a one-line :class:`UserError`.

SAVEs run in the background of the engine. Successive computes write the two halves of obuf
in turn when a group's outputs fit half of it (field ``obase``), so that each SAVE drains one
half while the next compute fills the other; :func:`order_saves` then sets flag SYNC wherever
an instruction would touch what a running SAVE still reads or writes.
"""

from dataclasses import dataclass, field

import numpy as np

from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.isa import WINO_G2, Flag, INSTR_BYTES, Op, Target, encode_program, field_range
from sparsa.sw.errors import UserError, user_error
from sparsa.sw.cnn.golden import validate_int_graph
from sparsa.sw.model.graph import _sources

__all__ = ["Program", "compile_graph", "order_saves", "DATAPATHS", "ALIGN"]

DATAPATHS = ("direct", "winograd")
ALIGN = 64


def _align(n, a=ALIGN):
    return -(-n // a) * a


@dataclass
class Program:
    """A compiled graph: the instruction stream and where everything lives in DRAM.

    Attributes
    ----------
    cfg : CNNConfig
    datapath : str
        The requested conv datapath (each layer's own is in ``layers[i]["datapath"]``).
    program : bytes
        The instruction stream (it is also the start of DRAM, at address 0).
    image : bytes
        The initial DRAM contents before the input: instructions and weights.
    dram_size : int
        Bytes of DRAM the program touches (input and every layer output included).
    input_addr, input_shape, output_addr, output_shape
        The input (C, H, W) and the last layer's output (C, H, W) in DRAM.
    output_flat : bool
        The last layer is ``linear``: :meth:`read_output` returns shape (out,) like
        ``cnn_golden.cnn_forward``.
    layers : list of dict
        Per layer: ``index, name, op, inputs, shape, out_addr, instr_start, instr_end`` (the
        half-open range of instruction indices), ``macs`` (true multiply-accumulates),
        ``mac_cycles`` (ideal engine cycles of its CONVs), ``datapath`` (``direct``,
        ``winograd`` or None), ``weight_addr, weight_bytes, row_tiles, groups, dram_read,
        dram_write, acc_bound`` (largest accumulator magnitude possible, int8 inputs).
    """
    cfg: CNNConfig
    datapath: str
    program: bytes
    image: bytes
    dram_size: int
    input_addr: int
    input_shape: tuple
    output_addr: int
    output_shape: tuple
    output_flat: bool = False
    layers: list = field(default_factory=list)
    graph: object = None          # the integer Graph it was compiled from (for the golden model)

    @property
    def n_instructions(self):
        return len(self.program) // INSTR_BYTES

    def dram_image(self, x=None):
        """The whole initial DRAM (``bytearray`` of ``dram_size``) with input ``x`` (C, H, W)
        int8 placed (zeros when None)."""
        dram = bytearray(self.dram_size)
        dram[:len(self.image)] = self.image
        if x is not None:
            x = np.asarray(x)
            if x.shape != tuple(self.input_shape):
                raise ValueError(f"input: expected shape {tuple(self.input_shape)}, found {x.shape}")
            if x.dtype != np.int8:
                if x.size and (x.min() < -128 or x.max() > 127 or x.dtype.kind not in "iu"):
                    raise ValueError("input: expected int8 values")
                x = x.astype(np.int8)
            n = x.size
            dram[self.input_addr:self.input_addr + n] = x.tobytes()
        return dram

    def read(self, dram, addr, shape):
        n = int(np.prod(shape))
        return np.frombuffer(bytes(dram[addr:addr + n]), dtype=np.int8).reshape(shape).copy()

    def read_output(self, dram):
        """The last layer's output from a DRAM image after the run (as ``cnn_forward`` gives it)."""
        y = self.read(dram, self.output_addr, tuple(self.output_shape))
        return y.reshape(-1) if self.output_flat else y

    def read_layer(self, dram, name):
        """Any layer's (C, H, W) output, by name."""
        for m in self.layers:
            if m["name"] == name:
                return self.read(dram, m["out_addr"], tuple(m["shape"]))
        raise KeyError(name)

    def run(self, x):
        """Run on the instruction-level model: ``(output, ExecStats)``."""
        from sparsa.sw.cnn.executor import execute
        dram = self.dram_image(x)
        stats = execute(self.program, dram, self.cfg)
        return self.read_output(dram), stats


class _Emitter:
    """Instructions with DRAM addresses relative to the data base (fixed at the end)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.instrs = []
        self.layer = 0
        self.name = ""
        self.stats = None
        self.where = "graph"
        self.half = 0

    def obuf_base(self, need):
        """obuf base for the next compute's outputs, ``need`` words per bank: the two halves
        of obuf in turn when the outputs fit half, so that the compute can fill one half while
        the previous SAVE drains the other; else 0 (and :func:`order_saves` makes it wait)."""
        half = self.cfg.obuf_depth // 2 // 8 * 8
        if need > half:
            return 0
        self.half ^= 1
        return half * (1 - self.half)

    def emit(self, **f):
        f.setdefault("layer", self.layer & 0xFF)
        op = f["op"]
        if op in (Op.LOAD, Op.SAVE):
            key = "dram_read" if op == Op.LOAD else "dram_write"
            self.stats[key] += f["count"] * f["length"]
        if op == Op.CONV:
            words = 16 if f["flags"] & Flag.WINO else 1 if f["flags"] & Flag.LB else f["k"] * f["k"]
            self.stats["mac_cycles"] += f["gh"] * f["gw"] * f["count"] * words
        for k, v in f.items():
            lo, hi = field_range(k)
            if k != "dram" and not lo <= int(v) <= hi:
                raise user_error(f"{self.where}: layer {self.name}", f"instruction field {k}",
                                 f"{lo}..{hi} (the engine's {k} field)", f"{int(v)}")
        self.instrs.append(f)

    def load_rows(self, dram, count, length, dstride, buf, bstride):
        """LOAD IBUF of ``count`` chunks; one contiguous LOAD when the chunks are adjacent in
        both DRAM and ibuf (whole channels)."""
        if count > 1 and length == dstride == bstride and count * length <= field_range("length")[1]:
            count, length = 1, count * length
        self.emit(op=Op.LOAD, target=Target.IBUF, dram=dram, count=count, length=length,
                  dstride=dstride if count > 1 else 0, buf=buf, bstride=bstride if count > 1 else 0)

    def load_weights(self, dram, nwords):
        P = self.cfg.lanes
        per = (field_range("length")[1] // (2 * P))          # words per LOAD (length field)
        for w0 in range(0, nwords, per):
            n = min(per, nwords - w0)
            self.emit(op=Op.LOAD, target=Target.WBUF, dram=dram + w0 * 2 * P, count=1,
                      length=n * 2 * P, buf=w0)


def _too_big(name, buf, need, have, what, setting):
    return user_error(f"layer {name}", buf, f"at most {have} {setting[1]} (CNNConfig.{setting[0]})",
                      f"{need} {setting[1]} for {what} ({need - have} too many)")


def _rows_fit(budget, per_row):
    return budget // per_row if per_row else 1 << 30


def _max_rows(ho, h, rows_fit, k, s, wino):
    """Most output rows per tile whose input rows (clipped to the image) fit ``rows_fit``."""
    if rows_fit >= h:
        return ho
    if wino:
        r = (rows_fit - 2) // 2 * 2      # 2*ceil(R/2) + 2 rows for R output rows
        return r if r >= 2 else 0
    return (rows_fit - k) // s + 1 if rows_fit >= k else 0


def _balance(ho, r, wino):
    """Same tile count, tiles as even as possible (even rows for Winograd)."""
    tiles = -(-ho // r)
    rb = -(-ho // tiles)
    if wino and rb % 2 and rb < ho:
        rb += 1                          # r is even here, so still rb <= r
    return min(rb, r)


def _weight_block(w, b, P, wino):
    """Bytes of one conv layer's weights (per group: bias then words) and the words per group."""
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
        wg = np.zeros((nwords, P), "<i2")
        wg[:, :n] = words[co0:co0 + n].T
        out += bias.tobytes() + wg.tobytes()
    return bytes(out), nwords


def _acc_bound(w, wino):
    if not wino:
        return int(np.abs(w).reshape(w.shape[0], -1).sum(axis=1).max()) * 128
    u = np.abs(WINO_G2 @ w @ WINO_G2.T)                  # M = sum_ci U V, |V| <= 4 * 128
    return 9 * int(u.sum(axis=1).max()) * 512            # Y = A^T M A sums up to 9 M's


def _plan_conv(cfg, name, in_shape, out_shape, k, s, wino):
    """Output rows per tile of a conv layer, or a :class:`UserError` naming the buffer that
    cannot hold even one output row (two for Winograd)."""
    cin, h, wd = in_shape
    _, ho, wo = out_shape
    nwords = cin * (16 if wino else k * k)
    if nwords > cfg.wbuf_words:
        raise _too_big(name, "wbuf", nwords, cfg.wbuf_words,
                       f"{cin} input channels x {16 if wino else k * k} words per channel",
                       ("wbuf_words", "words"))
    r_obuf = cfg.obuf_depth // wo
    if r_obuf < 1:
        raise _too_big(name, "obuf", wo, cfg.obuf_depth, f"one output row of {wo} pixels",
                       ("obuf_depth", "entries"))
    rows_fit = _rows_fit(cfg.ibuf_bytes, cin * wd)
    r_ibuf = _max_rows(ho, h, rows_fit, k, s, wino)
    if r_ibuf < 1:
        span = min(h, 4 if wino else k)
        raise _too_big(name, "ibuf", cin * span * wd, cfg.ibuf_bytes,
                       f"{cin} channels x {span} input rows x {wd} columns (one output row)",
                       ("ibuf_bytes", "bytes"))
    r = min(ho, r_obuf, r_ibuf)
    if wino and r < ho and r % 2:
        r -= 1
        if r < 1:
            raise _too_big(name, "obuf", 2 * wo, cfg.obuf_depth,
                           f"two output rows of {wo} pixels (Winograd)", ("obuf_depth", "entries"))
    return _balance(ho, r, wino)


def _plan_lb(cfg, in_shape, out_shape, k, s):
    """``(rows per tile, channels per chunk)`` of a layer on the 3x3 window convolver, or None
    when it cannot run there (not 3x3 stride 1/2, no convolver, or not even one output row of
    one channel fits psum/obuf/ibuf).

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
    if not (cfg.convolver and k == 3 and s in (1, 2)):
        return None
    r = min(ho, cfg.psum_depth // wo, cfg.obuf_depth // wo)
    if r >= 1 and min(h, (r - 1) * s + 3) * wd > cfg.ibuf_bytes:
        r = min(r, _max_rows(ho, h, cfg.ibuf_bytes // wd, k, s, False))
    if r < 1 or cfg.wbuf_words < 9:
        return None
    r = _balance(ho, r, False)
    nrows = min(h, (r - 1) * s + 3)
    cc = min(cin, cfg.ibuf_bytes // (nrows * wd), cfg.wbuf_words // 9)
    chunks = -(-cin // cc)
    return r, -(-cin // chunks)


def _conv_lb(e, cfg, L, x_addr, in_shape, w_addr, wdat, out_addr, out_shape):
    """Emit a 3x3 conv layer for the window convolver (see :func:`_plan_lb`)."""
    P = cfg.lanes
    cin, h, wd = in_shape
    cout, ho, wo = out_shape
    s, p, nwords = wdat["stride"], wdat["pad"], wdat["nwords"]
    r, cc = wdat["lb"]
    groups = -(-cout // P)
    gbytes = 4 * P + nwords * 2 * P
    relu = Flag.RELU if L.get("relu") else 0
    tiles = 0
    for oy0 in range(0, ho, r):
        rr = min(r, ho - oy0)
        tiles += 1
        y0 = oy0 * s - p
        r0, r1 = max(0, y0), min(h - 1, y0 + (rr - 1) * s + 2)
        nrows = r1 - r0 + 1
        if nrows <= 0:              # every row this tile reads is padding
            r0, nrows = 0, 0

        def load(c0, n):
            if nrows > 0:
                e.load_rows(x_addr + c0 * h * wd + r0 * wd, n, nrows * wd, h * wd, 0, nrows * wd)

        def conv(c0, n, pbase):
            """The CONV of channels c0..c0+n; returns its obuf base (None: HOLD, no output)."""
            last = c0 + n == cin
            ob = e.obuf_base(rr * wo) if last else 0
            flags = Flag.LB | (Flag.ACC if c0 else 0) | (relu if last else Flag.HOLD)
            e.emit(op=Op.CONV, flags=flags, count=n, buf=0, bstride=nrows * wd, b=pbase, k=3, step=s,
                   shift=wdat["shift"], gh=rr, gw=wo, y0=y0, x0=-p, row0=r0, H=h, W=wd,
                   out_rows=rr, wo=wo, obase=ob)
            return ob if last else None

        def save(g, ob):
            co0 = g * P
            e.emit(op=Op.SAVE, count=min(P, cout - co0), dram=out_addr + co0 * ho * wo + oy0 * wo,
                   dstride=ho * wo, length=rr * wo, buf=ob, ostride=rr * wo)

        if cc == cin:
            # every channel in ibuf at once: one LOAD of the tile, then each group in turn
            load(0, cin)
            for g in range(groups):
                ga = w_addr + g * gbytes
                if groups > 1 or oy0 == 0:
                    e.emit(op=Op.LOAD, target=Target.BIAS, dram=ga, count=1, length=4 * P)
                    e.load_weights(ga + 4 * P, nwords)
                save(g, conv(0, cin, 0))
            continue
        # channel chunks: each chunk is loaded once and used by `gp` groups, whose partial sums
        # sit side by side in psum (CONV field b = the group's psum base)
        npix = rr * wo
        gp = max(1, min(groups, cfg.psum_depth // npix))
        for g0 in range(0, groups, gp):
            gs = range(g0, min(groups, g0 + gp))
            for c0 in range(0, cin, cc):
                n = min(cc, cin - c0)
                load(c0, n)
                for g in gs:
                    ga = w_addr + g * gbytes
                    e.load_weights(ga + 4 * P + c0 * 9 * 2 * P, n * 9)
                    if c0 + n == cin:
                        e.emit(op=Op.LOAD, target=Target.BIAS, dram=ga, count=1, length=4 * P)
                    ob = conv(c0, n, (g - g0) * npix)
                    if ob is not None:
                        save(g, ob)
    return tiles, groups


def _conv(e, cfg, L, x_addr, in_shape, w_addr, wdat, out_addr, out_shape):
    """Emit a conv (or linear-as-1x1-conv) layer. ``wdat``: dict of the layer parameters."""
    if wdat.get("lb"):
        return _conv_lb(e, cfg, L, x_addr, in_shape, w_addr, wdat, out_addr, out_shape)
    P = cfg.lanes
    cin, h, wd = in_shape
    cout, ho, wo = out_shape
    k, s, p, wino = wdat["k"], wdat["stride"], wdat["pad"], wdat["wino"]
    nwords = wdat["nwords"]
    r = _plan_conv(cfg, L["name"], in_shape, out_shape, k, s, wino)
    groups = -(-cout // P)
    gbytes = 4 * P + nwords * 2 * P
    flags = (Flag.RELU if L.get("relu") else 0) | (Flag.WINO if wino else 0)
    tiles = 0
    for oy0 in range(0, ho, r):
        rr = min(r, ho - oy0)
        tiles += 1
        if wino:
            y0, gh, gw, kk, step = oy0 - p, -(-rr // 2), -(-wo // 2), 4, 2
            last = y0 + 2 * gh + 1
        else:
            y0, gh, gw, kk, step = oy0 * s - p, rr, wo, k, s
            last = y0 + (rr - 1) * s + k - 1
        r0, r1 = max(0, y0), min(h - 1, last)
        nrows = r1 - r0 + 1
        if nrows > 0:
            e.load_rows(x_addr + r0 * wd, cin, nrows * wd, h * wd, 0, nrows * wd)
        else:                       # every row this tile reads is padding
            r0, nrows = 0, 0
        for g in range(groups):
            co0 = g * P
            if groups > 1 or oy0 == 0:
                ga = w_addr + g * gbytes
                e.emit(op=Op.LOAD, target=Target.BIAS, dram=ga, count=1, length=4 * P)
                e.load_weights(ga + 4 * P, nwords)
            ob = e.obuf_base(rr * wo)
            e.emit(op=Op.CONV, flags=flags, count=cin, buf=0, bstride=nrows * wd, k=kk, step=step,
                   shift=wdat["shift"], gh=gh, gw=gw, y0=y0, x0=-p, row0=r0, H=h, W=wd,
                   out_rows=rr, wo=wo, obase=ob)
            e.emit(op=Op.SAVE, count=min(P, cout - co0), dram=out_addr + co0 * ho * wo + oy0 * wo,
                   dstride=ho * wo, length=rr * wo, buf=ob, ostride=rr * wo)
    return tiles, groups


def _pool(e, cfg, L, x_addr, in_shape, out_addr, out_shape):
    P = cfg.lanes
    name = L["name"]
    c, h, wd = in_shape
    _, ho, wo = out_shape
    k = L.get("size", 2)
    s = L.get("stride", k)
    avg = L["op"] == "avgpool2d"
    shift = (k * k).bit_length() - 1
    if avg and k * k > 1 and k * k // 2 != 1 << (shift - 1):
        # validate_int_graph allows only power-of-two windows, where the golden model's + n/2
        # equals the engine's + 2^(shift-1)
        raise user_error(f"layer {name}", "size", "an average-pool window of a power of two elements", f"{k}")
    chosen = None
    for cc in range(c, 0, -1):
        r_obuf = cfg.obuf_depth // (-(-cc // P) * wo)
        r_ibuf = _max_rows(ho, h, _rows_fit(cfg.ibuf_bytes, cc * wd), k, s, False)
        if min(r_obuf, r_ibuf) >= 1:
            chosen = cc, min(ho, r_obuf, r_ibuf)
            break
    if chosen is None:
        if wo > cfg.obuf_depth:
            raise _too_big(name, "obuf", wo, cfg.obuf_depth, f"one output row of {wo} pixels",
                           ("obuf_depth", "entries"))
        raise _too_big(name, "ibuf", k * wd, cfg.ibuf_bytes, f"{k} input rows x {wd} columns of one channel",
                       ("ibuf_bytes", "bytes"))
    cc, r = chosen
    r = _balance(ho, r, False)
    tiles = 0
    for oy0 in range(0, ho, r):
        rr = min(r, ho - oy0)
        tiles += 1
        r0 = oy0 * s
        nrows = (rr - 1) * s + k
        for c0 in range(0, c, cc):
            n = min(cc, c - c0)
            e.load_rows(x_addr + c0 * h * wd + r0 * wd, n, nrows * wd, h * wd, 0, nrows * wd)
            ob = e.obuf_base(-(-n // P) * rr * wo)
            e.emit(op=Op.POOL, flags=Flag.AVG if avg else 0, count=n, buf=0, bstride=nrows * wd,
                   ostride=rr * wo, k=k, step=s, shift=shift if avg else 0, gh=rr, gw=wo, y0=r0, x0=0,
                   row0=r0, H=h, W=wd, out_rows=rr, wo=wo, obase=ob)
            e.emit(op=Op.SAVE, count=n, dram=out_addr + c0 * ho * wo + oy0 * wo, dstride=ho * wo,
                   length=rr * wo, buf=ob, ostride=rr * wo)
    return tiles, -(-c // cc)


def _add(e, cfg, L, a_addr, b_addr, shape, out_addr):
    P = cfg.lanes
    c, h, wd = shape
    n = h * wd
    cc = min(c, cfg.ibuf_bytes // (2 * n), P * (cfg.obuf_depth // n))
    if cc >= 1:
        span = n
    else:
        cc = min(c, P)
        span = min(n, cfg.obuf_depth, cfg.ibuf_bytes // (2 * cc))
        if span < 1:
            cc, span = 1, min(n, cfg.obuf_depth, cfg.ibuf_bytes // 2)
    if span < 1:
        raise _too_big(L["name"], "ibuf", 2, cfg.ibuf_bytes, "one element of each input", ("ibuf_bytes", "bytes"))
    flags = Flag.RELU if L.get("relu") else 0
    tiles = 0
    for c0 in range(0, c, cc):
        m = min(cc, c - c0)
        for off in range(0, n, span):
            ln = min(span, n - off)
            tiles += 1
            e.load_rows(a_addr + c0 * n + off, m, ln, n, 0, ln)
            e.load_rows(b_addr + c0 * n + off, m, ln, n, m * ln, ln)
            ob = e.obuf_base(-(-m // P) * ln)
            e.emit(op=Op.ADD, flags=flags, count=m, length=ln, buf=0, b=m * ln, bstride=ln, ostride=ln, obase=ob)
            e.emit(op=Op.SAVE, count=m, dram=out_addr + c0 * n + off, dstride=n, length=ln, buf=ob, ostride=ln)
    return tiles, -(-c // cc)


def _span(lo, count, stride, length):
    """[lo, hi) of ``lo + r*stride + j``, r < count, j < length (empty: None)."""
    return (lo, lo + (count - 1) * stride + length) if count > 0 and length > 0 else None


def _obuf_writes(f, P):
    """The obuf words (any bank) a CONV, POOL or ADD writes, as one [lo, hi) span."""
    op, ob = f["op"], f.get("obase", 0)
    if op == Op.CONV:
        if f.get("flags", 0) & Flag.HOLD:
            return None
        rows = min(f["out_rows"], 2 * f["gh"]) if f.get("flags", 0) & Flag.WINO else f["gh"]
        cols = min(f["wo"], 2 * f["gw"]) if f.get("flags", 0) & Flag.WINO else f["gw"]
        return _span(ob, rows, f["wo"], cols)
    if op == Op.POOL:
        return _span(ob, -(-f["count"] // P), f["ostride"], (f["gh"] - 1) * f["wo"] + f["gw"])
    if op == Op.ADD:
        return _span(ob, -(-f["count"] // P), f["ostride"], f["length"])
    return None


def _overlap(a, b):
    return a is not None and b is not None and a[0] < b[1] and b[0] < a[1]


def order_saves(instrs, P):
    """Set flag SYNC on the instructions that must wait for a SAVE still running (in place).

    A SAVE without SYNC runs in the background (see :mod:`sparsa.sw.cnn.isa`). An instruction
    gets SYNC when it would write obuf words that SAVE reads, or read DRAM bytes it writes,
    and each layer's last SAVE gets SYNC, so that the layer's cycles end with its output in
    DRAM. The next SAVE waits for the previous one anyway (one store unit).
    """
    pending = None                  # (obuf span, DRAM span) of a SAVE that may be running
    for i, f in enumerate(instrs):
        op = f["op"]
        if pending is not None:
            reads = _span(f["dram"], f["count"], f.get("dstride", 0), f["length"]) if op == Op.LOAD else None
            if _overlap(_obuf_writes(f, P), pending[0]) or _overlap(reads, pending[1]):
                f["flags"] = f.get("flags", 0) | Flag.SYNC
                pending = None
        if op == Op.SAVE:
            if i + 1 == len(instrs) or instrs[i + 1]["layer"] != f["layer"]:
                f["flags"] = f.get("flags", 0) | Flag.SYNC
                pending = None
            else:
                pending = (_span(f["buf"], -(-f["count"] // P), f["ostride"], f["length"]),
                           _span(f["dram"], f["count"], f["dstride"], f["length"]))
    return instrs


def compile_graph(graph, cfg=None, datapath="direct", where="graph"):
    """Compile an integer graph (checked by :func:`~sparsa.sw.cnn.golden.validate_int_graph`) for ``cfg``.

    ``datapath`` ``"winograd"`` runs every 3x3 stride-1 conv on the F(2x2,3x3) datapath (other
    layers, and a layer whose Winograd weights would not fit wbuf, use the direct one).
    Returns a :class:`Program`; a layer the buffers cannot hold raises :class:`UserError`.
    """
    cfg = cfg or CNNConfig()
    if datapath not in DATAPATHS:
        raise user_error(where, "datapath", " or ".join(DATAPATHS), repr(datapath))
    if datapath == "winograd" and not cfg.winograd:
        raise user_error(where, "datapath", "direct on an engine built without Winograd "
                         "(CNNConfig.winograd False)", "winograd")
    validate_int_graph(graph, where)
    shapes = dict(graph.shapes(), input=tuple(graph.input_shape))
    P = cfg.lanes

    # Pass 1: weights (relative to the data base), then activations.
    wblob = bytearray()
    wdats = {}
    prev = "input"
    for L in graph.layers:
        src, prev = _sources(L, prev)[0], L["name"]
        if L["op"] not in ("conv2d", "linear"):
            continue
        w = graph.arrays[L["weight"]].astype(np.int64)
        b = graph.arrays[L["bias"]].astype(np.int64)
        shift = int(L.get("shift", 0))
        if L["op"] == "linear":
            w = w.reshape(w.shape[0], -1, 1, 1)
            stride, pad = 1, 0
        else:
            stride, pad = L.get("stride", 1), L.get("padding", 0)
        k = w.shape[2]
        wino = datapath == "winograd" and L["op"] == "conv2d" and k == 3 and stride == 1
        if wino:
            try:
                _plan_conv(cfg, L["name"], shapes[src], shapes[L["name"]], k, stride, True)
            except UserError:
                wino = False            # Winograd needs more wbuf (16 vs 9 words) or ibuf rows
        lb = None if wino or L["op"] != "conv2d" else _plan_lb(cfg, shapes[src], shapes[L["name"]], k, stride)
        blob, nwords = _weight_block(w, b, P, wino)
        addr = _align(len(wblob))
        wblob += bytes(addr - len(wblob)) + blob
        wdats[L["name"]] = dict(k=k, stride=stride, pad=pad, wino=wino, lb=lb, nwords=nwords, shift=shift,
                                addr=addr, nbytes=len(blob), acc_bound=_acc_bound(w, wino),
                                macs=int(w.size) * int(np.prod(shapes[L["name"]][1:])))
    acts = {"input": _align(len(wblob))}
    top = acts["input"] + int(np.prod(graph.input_shape))
    for L in graph.layers:
        acts[L["name"]] = _align(top)
        top = acts[L["name"]] + int(np.prod(shapes[L["name"]]))

    # Pass 2: instructions.
    e = _Emitter(cfg)
    e.where = where
    metas = []
    prev = "input"
    for idx, L in enumerate(graph.layers):
        name, op = L["name"], L["op"]
        srcs = _sources(L, prev)
        e.layer, e.name = idx, name
        e.stats = {"dram_read": 0, "dram_write": 0, "mac_cycles": 0}
        start = len(e.instrs)
        meta = {"index": idx, "name": name, "op": op, "inputs": srcs,
                "shape": list(shapes[name]), "out_addr": acts[name], "datapath": None, "macs": 0,
                "weight_addr": None, "weight_bytes": 0, "acc_bound": None, "multipliers": 0}
        if op in ("conv2d", "linear"):
            wd = wdats[name]
            in_shape = shapes[srcs[0]]
            if op == "linear":
                in_shape = (int(np.prod(in_shape)), 1, 1)
            tiles, groups = _conv(e, cfg, L, acts[srcs[0]], in_shape, wd["addr"], wd, acts[name], shapes[name])
            meta.update(datapath="winograd" if wd["wino"] else "convolver" if wd["lb"] else "direct",
                        macs=wd["macs"], multipliers=cfg.lanes * (9 if wd["lb"] else 1),
                        weight_addr=wd["addr"], weight_bytes=wd["nbytes"], acc_bound=wd["acc_bound"])
        elif op in ("maxpool2d", "avgpool2d"):
            tiles, groups = _pool(e, cfg, L, acts[srcs[0]], shapes[srcs[0]], acts[name], shapes[name])
        else:
            tiles, groups = _add(e, cfg, L, acts[srcs[0]], acts[srcs[1]], shapes[name], acts[name])
        meta.update(instr_start=start, instr_end=len(e.instrs), row_tiles=tiles, groups=groups, **e.stats)
        metas.append(meta)
        prev = name

    order_saves(e.instrs, P)
    # Place: instructions at 0, the data base after them (END included).
    base = _align((len(e.instrs) + 1) * INSTR_BYTES)
    dram_size = base + _align(top)
    if dram_size > 1 << 32:
        raise user_error(where, "DRAM", "at most 4 GiB (32-bit addresses)", f"{dram_size} bytes")
    for f in e.instrs:
        if f["op"] in (Op.LOAD, Op.SAVE):
            f["dram"] += base
    for m in metas:
        m["out_addr"] += base
        if m["weight_addr"] is not None:
            m["weight_addr"] += base
    program = encode_program(e.instrs)
    image = program + bytes(base - len(program)) + bytes(wblob)
    last = graph.layers[-1]
    return Program(graph=graph, cfg=cfg, datapath=datapath, program=program, image=image, dram_size=dram_size,
                   input_addr=base + acts["input"], input_shape=tuple(graph.input_shape),
                   output_addr=base + acts[last["name"]], output_shape=tuple(shapes[last["name"]]),
                   output_flat=last["op"] == "linear", layers=metas)
