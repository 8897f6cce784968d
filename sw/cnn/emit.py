"""Instruction emission of the CNN compiler: each layer (conv, pool, element-wise add) as
tiles of LOAD / CONV / POOL / ADD / SAVE instructions, with DRAM addresses relative to the
data base (:class:`Emitter`); the tiling comes from :mod:`sparsa.sw.cnn.plan`.
"""

from sparsa.sw.cnn.golden import leaky_mult, pool_pads
from sparsa.sw.cnn.isa import Flag, Op, Target, field_range
from sparsa.sw.cnn.plan import balance_rows, fitting_rows, max_rows, pieces, plan_conv, too_big
from sparsa.sw.errors import user_error

__all__ = ["Emitter", "emit_conv", "emit_conv_linebuffer", "emit_pool", "emit_upsample", "emit_add", "act_fields"]


def act_fields(L):
    """A conv/linear layer's activation as CONV fields: ``(flags, alpha)`` (ReLU, leaky ReLU or none)."""
    if L.get("leaky") is not None:
        return Flag.LEAKY, leaky_mult(L["leaky"])
    return (Flag.RELU if L.get("relu") else 0), 0


class Emitter:
    """Instructions with DRAM addresses relative to the data base (fixed at the end)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.instrs = []
        self.layer = 0
        self.name = ""
        self.stats = None
        self.where = "graph"
        self.half = 0
        # With `halves` (the layer was planned for half of ibuf and wbuf) successive inputs and
        # weights go to alternate halves, so that the next ones can load beside a compute
        # (sw/cnn/overlap.py); `ib` and `wb` are the current halves' bases.
        self.halves = False
        self.ib = self.wb = 0

    def fork(self, halves):
        """A new emitter for one layer's instructions, carrying on from this one's state."""
        sub = Emitter(self.cfg)
        sub.layer, sub.name, sub.where, sub.half, sub.halves = self.layer, self.name, self.where, self.half, halves
        sub.stats = {"dram_read": 0, "dram_write": 0, "mac_cycles": 0}
        return sub

    def join(self, sub):
        """Append ``sub``'s instructions (see :meth:`fork`) and take over its obuf half."""
        self.instrs += sub.instrs
        self.half = sub.half

    def next_input(self):
        """The next LOADs of a compute's input go to the other half of ibuf (with ``halves``)."""
        self.ib = (self.cfg.ibuf_bytes // 2 // 8 * 8 - self.ib) if self.halves else 0

    def next_weights(self):
        """The next LOADs of a compute's weights go to the other half of wbuf (with ``halves``)."""
        self.wb = (self.cfg.wbuf_words // 2 - self.wb) if self.halves else 0

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
        if op == Op.LOAD and f["target"] != Target.BIAS:
            f["buf"] += self.ib if f["target"] == Target.IBUF else self.wb
        elif op in (Op.CONV, Op.POOL, Op.ADD):
            f["buf"] += self.ib
            if op == Op.ADD:
                f["b"] += self.ib
            if op == Op.CONV:
                f["wbase"] = self.wb
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
        """LOAD WBUF of the next compute's ``nwords`` words (in the other half, with ``halves``)."""
        self.next_weights()
        B = self.cfg.weight_word_bytes
        per = field_range("length")[1] // B          # words per LOAD (length field)
        for w0 in range(0, nwords, per):
            n = min(per, nwords - w0)
            self.emit(op=Op.LOAD, target=Target.WBUF, dram=dram + w0 * B, count=1, length=n * B, buf=w0)


def emit_conv_linebuffer(e, cfg, L, x_addr, in_shape, w_addr, wdat, out_addr, out_shape):
    """Emit a conv layer for the window convolver (see :func:`plan_linebuffer`): 3x3, or a
    k x k kernel as n x n 3x3 pieces (``n = pieces(k)``), one CONV each over the same input
    rows with the window origin moved by (3a, 3b), accumulating in psum."""
    P = cfg.lanes
    cin, h, wd = in_shape
    cout, ho, wo = out_shape
    s, p, nwords, k = wdat["stride"], wdat["pad"], wdat["nwords"], wdat["k"]
    n_p = pieces(k)
    offsets = [(3 * a, 3 * b) for a in range(n_p) for b in range(n_p)]      # piece i = a*n + b
    r, cc = wdat["lb"]
    limit = wdat.get("in_bytes")       # a linear layer: the input's true size in bytes
    groups = -(-cout // P)
    gbytes = 4 * P + nwords * cfg.weight_word_bytes
    relu, alpha = act_fields(L)
    tiles = 0
    for oy0 in range(0, ho, r):
        rr = min(r, ho - oy0)
        tiles += 1
        y0 = oy0 * s - p
        r0, r1 = max(0, y0), min(h - 1, y0 + (rr - 1) * s + 3 * n_p - 1)     # the pieces' rows
        nrows = r1 - r0 + 1
        if nrows <= 0:              # every row this tile reads is padding
            r0, nrows = 0, 0

        def load(c0, n):
            e.next_input()
            if limit is not None:
                # a linear layer's flat input seen as 3 x 3 channels: load only its own bytes;
                # the ibuf bytes past them meet zero weights (see compiler.linear_as_conv)
                e.load_rows(x_addr + c0 * h * wd, 1, min(n * h * wd, limit - c0 * h * wd), 0, 0, 0)
            elif nrows > 0:
                e.load_rows(x_addr + c0 * h * wd + r0 * wd, n, nrows * wd, h * wd, 0, nrows * wd)

        def conv(c0, n, pbase, piece=0):
            """The CONV of channels c0..c0+n (of one kernel piece); returns its obuf base
            (None: HOLD, no output)."""
            first = c0 == 0 and piece == 0
            last = c0 + n == cin and piece == len(offsets) - 1
            dy, dx = offsets[piece]
            ob = e.obuf_base(rr * wo) if last else 0
            flags = Flag.LB | (0 if first else Flag.ACC) | (relu if last else Flag.HOLD)
            e.emit(op=Op.CONV, flags=flags, count=n, buf=0, bstride=nrows * wd, b=pbase, k=3, step=s,
                   shift=wdat["shift"], gh=rr, gw=wo, y0=y0 + dy, x0=dx - p, row0=r0, H=h, W=wd,
                   out_rows=rr, wo=wo, obase=ob, alpha=alpha if last else 0)
            return ob if last else None

        def save(g, ob):
            co0 = g * P
            e.emit(op=Op.SAVE, count=min(P, cout - co0), dram=out_addr + co0 * ho * wo + oy0 * wo,
                   dstride=ho * wo, length=rr * wo, buf=ob, ostride=rr * wo)

        if cc == cin and n_p == 1:
            # every channel in ibuf at once: one LOAD of the tile, then each group in turn
            load(0, cin)
            for g in range(groups):
                ga = w_addr + g * gbytes
                if groups > 1 or oy0 == 0:
                    e.emit(op=Op.LOAD, target=Target.BIAS, dram=ga, count=1, length=4 * P)
                    e.load_weights(ga + 4 * P, nwords)
                save(g, conv(0, cin, 0))
            continue
        # channel chunks (and kernel pieces): each chunk is loaded once and used by `gp`
        # groups, whose partial sums sit side by side in psum (CONV field b = the group's psum
        # base); a piece's weights are channel block `piece` of the group's words
        npix = rr * wo
        gp = max(1, min(groups, cfg.psum_depth // npix))
        for g0 in range(0, groups, gp):
            gs = range(g0, min(groups, g0 + gp))
            for c0 in range(0, cin, cc):
                n = min(cc, cin - c0)
                load(c0, n)
                for g in gs:
                    ga = w_addr + g * gbytes
                    for piece in range(len(offsets)):
                        e.load_weights(ga + 4 * P + (piece * cin + c0) * 9 * cfg.weight_word_bytes, n * 9)
                        if c0 + n == cin and piece == len(offsets) - 1:
                            e.emit(op=Op.LOAD, target=Target.BIAS, dram=ga, count=1, length=4 * P)
                        ob = conv(c0, n, (g - g0) * npix, piece)
                        if ob is not None:
                            save(g, ob)
    return tiles, groups


def emit_conv(e, cfg, L, x_addr, in_shape, w_addr, wdat, out_addr, out_shape):
    """Emit a conv (or linear-as-1x1-conv) layer. ``wdat``: dict of the layer parameters."""
    if wdat.get("lb"):
        return emit_conv_linebuffer(e, cfg, L, x_addr, in_shape, w_addr, wdat, out_addr, out_shape)
    P = cfg.lanes
    cin, h, wd = in_shape
    cout, ho, wo = out_shape
    k, s, p, wino = wdat["k"], wdat["stride"], wdat["pad"], wdat["wino"]
    nwords = wdat["nwords"]
    r = plan_conv(cfg, L["name"], in_shape, out_shape, k, s, wino)
    groups = -(-cout // P)
    gbytes = 4 * P + nwords * cfg.weight_word_bytes
    act, alpha = act_fields(L)
    flags = act | (Flag.WINO if wino else 0)
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
        e.next_input()
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
                   out_rows=rr, wo=wo, obase=ob, alpha=alpha)
            e.emit(op=Op.SAVE, count=min(P, cout - co0), dram=out_addr + co0 * ho * wo + oy0 * wo,
                   dstride=ho * wo, length=rr * wo, buf=ob, ostride=rr * wo)
    return tiles, groups


def emit_pool(e, cfg, L, x_addr, in_shape, out_addr, out_shape):
    P = cfg.lanes
    name = L["name"]
    c, h, wd = in_shape
    _, ho, wo = out_shape
    k = L.get("size", 2)
    s = L.get("stride", k)
    pt, pl = pool_pads(L)[:2]        # the window reads zeros outside the image (an average counts them)
    avg = L["op"] == "avgpool2d"
    shift = (k * k).bit_length() - 1
    if avg and k * k > 1 and k * k // 2 != 1 << (shift - 1):
        # validate_int_graph allows only power-of-two windows, where the golden model's + n/2
        # equals the engine's + 2^(shift-1)
        raise user_error(f"layer {name}", "size", "an average-pool window of a power of two elements", f"{k}")
    chosen = None
    for cc in range(c, 0, -1):
        r_obuf = cfg.obuf_depth // (-(-cc // P) * wo)
        r_ibuf = max_rows(ho, h, fitting_rows(cfg.ibuf_bytes, cc * wd), k, s, False)
        if min(r_obuf, r_ibuf) >= 1:
            chosen = cc, min(ho, r_obuf, r_ibuf)
            break
    if chosen is None:
        if wo > cfg.obuf_depth:
            raise too_big(name, "obuf", wo, cfg.obuf_depth, f"one output row of {wo} pixels",
                           ("obuf_depth", "entries"))
        raise too_big(name, "ibuf", k * wd, cfg.ibuf_bytes, f"{k} input rows x {wd} columns of one channel",
                       ("ibuf_bytes", "bytes"))
    cc, r = chosen
    r = balance_rows(ho, r, False)
    # on the window convolver's sweep a whole 2x2 or 3x3 window a cycle, not one element
    sweep = Flag.LB if cfg.convolver and k in (2, 3) and s in (1, 2) else 0
    tiles = 0
    for oy0 in range(0, ho, r):
        rr = min(r, ho - oy0)
        tiles += 1
        y0 = oy0 * s - pt
        r0, r1 = max(0, y0), min(h - 1, y0 + (rr - 1) * s + k - 1)
        nrows = r1 - r0 + 1          # >= 1: padding is below the window size
        for c0 in range(0, c, cc):
            n = min(cc, c - c0)
            e.next_input()
            e.load_rows(x_addr + c0 * h * wd + r0 * wd, n, nrows * wd, h * wd, 0, nrows * wd)
            ob = e.obuf_base(-(-n // P) * rr * wo)
            e.emit(op=Op.POOL, flags=(Flag.AVG if avg else 0) | sweep, count=n, buf=0, bstride=nrows * wd,
                   ostride=rr * wo, k=k, step=s, shift=shift if avg else 0, gh=rr, gw=wo, y0=y0, x0=-pl,
                   row0=r0, H=h, W=wd, out_rows=rr, wo=wo, obase=ob)
            e.emit(op=Op.SAVE, count=n, dram=out_addr + c0 * ho * wo + oy0 * wo, dstride=ho * wo,
                   length=rr * wo, buf=ob, ostride=rr * wo)
    return tiles, -(-c // cc)


def emit_upsample(e, cfg, L, x_addr, in_shape, out_addr, out_shape):
    """A 2x nearest upsample: POOL with k = 1 and flag UP, which reads input pixel
    (py // 2, px // 2) for output pixel (py, px); tiles of an even number of output rows and
    of as many channels as fit, each tile's input rows loaded once."""
    P = cfg.lanes
    c, h, wd = in_shape
    _, ho, wo = out_shape
    chosen = None
    for cc in range(c, 0, -1):
        r_obuf = cfg.obuf_depth // (-(-cc // P) * wo) // 2 * 2
        r_ibuf = 2 * fitting_rows(cfg.ibuf_bytes, cc * wd)
        if min(r_obuf, r_ibuf) >= 2:
            chosen = cc, min(ho, r_obuf, r_ibuf)
            break
    if chosen is None:
        if 2 * wo > cfg.obuf_depth:
            raise too_big(L["name"], "obuf", 2 * wo, cfg.obuf_depth, f"two output rows of {wo} pixels",
                          ("obuf_depth", "entries"))
        raise too_big(L["name"], "ibuf", wd, cfg.ibuf_bytes, f"one input row of {wd} columns",
                      ("ibuf_bytes", "bytes"))
    cc, r = chosen
    r = min(ho, -(-balance_rows(ho, r, False) // 2) * 2)
    tiles = 0
    for oy0 in range(0, ho, r):
        rr = min(r, ho - oy0)
        tiles += 1
        r0, nrows = oy0 // 2, -(-rr // 2)
        for c0 in range(0, c, cc):
            n = min(cc, c - c0)
            e.next_input()
            e.load_rows(x_addr + c0 * h * wd + r0 * wd, n, nrows * wd, h * wd, 0, nrows * wd)
            ob = e.obuf_base(-(-n // P) * rr * wo)
            e.emit(op=Op.POOL, flags=Flag.UP, count=n, buf=0, bstride=nrows * wd, ostride=rr * wo, k=1, step=1,
                   gh=rr, gw=wo, y0=r0, x0=0, row0=r0, H=h, W=wd, out_rows=rr, wo=wo, obase=ob)
            e.emit(op=Op.SAVE, count=n, dram=out_addr + c0 * ho * wo + oy0 * wo, dstride=ho * wo,
                   length=rr * wo, buf=ob, ostride=rr * wo)
    return tiles, -(-c // cc)


def emit_add(e, cfg, L, a_addr, b_addr, shape, out_addr):
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
        raise too_big(L["name"], "ibuf", 2, cfg.ibuf_bytes, "one element of each input", ("ibuf_bytes", "bytes"))
    flags = Flag.RELU if L.get("relu") else 0
    tiles = 0
    for c0 in range(0, c, cc):
        m = min(cc, c - c0)
        for off in range(0, n, span):
            ln = min(span, n - off)
            tiles += 1
            e.next_input()
            e.load_rows(a_addr + c0 * n + off, m, ln, n, 0, ln)
            e.load_rows(b_addr + c0 * n + off, m, ln, n, m * ln, ln)
            ob = e.obuf_base(-(-m // P) * ln)
            e.emit(op=Op.ADD, flags=flags, count=m, length=ln, buf=0, b=m * ln, bstride=ln, ostride=ln, obase=ob)
            e.emit(op=Op.SAVE, count=m, dram=out_addr + c0 * n + off, dstride=n, length=ln, buf=ob, ostride=ln)
    return tiles, -(-c // cc)
