"""Instruction-level model of the CNN engine: runs a program on a DRAM image, exactly per
:mod:`sparsa.sw.cnn.isa`.

The engine state is the four buffers of :class:`~sparsa.sw.cnn.config.CNNConfig` (ibuf int8,
wbuf ``(wbuf_words, lanes)`` int16, bias int32 per lane, obuf ``(lanes, obuf_depth)`` int8).
Every access is bounds-checked: an address outside a buffer or outside DRAM raises
:class:`CNNExecError` (the compiler emitted a bad program). CONV and POOL are vectorised with
numpy; the products are summed in float64 matmuls, exact because every sum stays far below
2^53 (at most ``wbuf_words`` products of an int8 by an int16, each below 2^22).

:func:`execute` returns :class:`ExecStats`: per instruction its op, layer, DRAM bytes and the
*ideal* compute: a CONV issues ``lanes`` multiplies per MAC cycle, with
``gh*gw*count*k*k`` MAC cycles (direct) or ``gh*gw*count*16`` (Winograd); the 3x3 window
convolver (flag LB) issues ``9*lanes`` multiplies per MAC cycle, ``gh*gw*count`` MAC cycles.
The convolver's partial-sum banks (``psum``, ``(lanes, psum_depth)`` int64) persist between
instructions, as in the hardware.

A SAVE without flag SYNC runs in the background on the engine, so this model runs it as late
as the engine may: when the next SAVE, an instruction with SYNC, or END starts. Its obuf
words are read and its DRAM bytes written then. A program that overwrites those obuf words,
or loads those DRAM bytes, before then without SYNC (a compiler bug the hardware might only
show sometimes) gives the results of that worst case here, which differ from the correct ones
whenever the overwritten or stale bytes do.
"""

from dataclasses import dataclass, field

import numpy as np

from sparsa.sw.cnn.isa import INSTR_BYTES, LOAD_QUEUE, WINO_AT, WINO_BT, Flag, Op, Target, decode_program

__all__ = ["execute", "ExecStats", "CNNExecError", "post"]


class CNNExecError(RuntimeError):
    """A program did something the engine cannot (a compiler bug, not a user error)."""


@dataclass
class ExecStats:
    """What :func:`execute` did.

    Attributes
    ----------
    instructions : list of dict
        One per executed instruction (END included): ``index``, ``op`` (name), ``layer``,
        ``mac_cycles`` (CONV), ``mults`` (``mac_cycles * lanes``, ``* 9 * lanes`` on the
        convolver), ``elems`` (POOL/ADD outputs
        times window), ``dram_read`` / ``dram_write`` (bytes).
    lanes : int
    """
    lanes: int
    instructions: list = field(default_factory=list)

    def total(self, key):
        return sum(i[key] for i in self.instructions)

    @property
    def mac_cycles(self):
        return self.total("mac_cycles")

    @property
    def mults(self):
        return self.total("mults")

    def by_layer(self):
        """``{layer: {"mac_cycles", "mults", "elems", "dram_read", "dram_write", "instructions"}}``."""
        out = {}
        for i in self.instructions:
            if i["op"] == "END":
                continue
            d = out.setdefault(i["layer"], {"mac_cycles": 0, "mults": 0, "elems": 0, "dram_read": 0,
                                            "dram_write": 0, "instructions": 0})
            for k in ("mac_cycles", "mults", "elems", "dram_read", "dram_write"):
                d[k] += i[k]
            d["instructions"] += 1
        return out


def post(acc, bias, shift, relu, alpha=None):
    """The output stage: ``acc + bias``, rounding shift, leaky ReLU of slope ``alpha / 128``
    when ``alpha`` is not None, int8 saturation, optional ReLU."""
    s = np.asarray(acc, dtype=np.int64) + np.asarray(bias, dtype=np.int64)
    if shift > 0:
        s = (s + (1 << (shift - 1))) >> shift
    if alpha is not None:
        s = np.where(s < 0, (s * alpha + 64) >> 7, s)
    s = np.clip(s, -128, 127)
    if relu:
        s = np.maximum(s, 0)
    return s.astype(np.int8)


def _matmul_exact(a, b):
    """Integer a @ b through float64 (see the module docstring for why it is exact)."""
    return np.rint(np.matmul(a.astype(np.float64), b.astype(np.float64))).astype(np.int64)


class _Engine:
    def __init__(self, dram, cfg):
        if isinstance(dram, (bytearray, memoryview)):
            dram = np.frombuffer(dram, dtype=np.uint8)
        if not (isinstance(dram, np.ndarray) and dram.dtype == np.uint8 and dram.ndim == 1):
            raise TypeError("dram: expected a bytearray or a 1-D uint8 numpy array")
        if not dram.flags.writeable:
            raise TypeError("dram: expected a writable buffer")
        self.dram = dram
        self.cfg = cfg
        self.P = cfg.lanes
        self.ibuf = np.zeros(cfg.ibuf_bytes, dtype=np.int8)
        self.wbuf = np.zeros((cfg.wbuf_words, cfg.lanes), dtype=np.int16)
        self.bias = np.zeros(cfg.lanes, dtype=np.int32)
        self.obuf = np.zeros((cfg.lanes, cfg.obuf_depth), dtype=np.int8)
        self.psum = np.zeros((cfg.lanes, cfg.psum_depth), dtype=np.int64)
        self.where = ""
        self.pending = None         # a SAVE the engine may still be running: (fields, where)
        self.queue = []             # LOADs with flag BG waiting for the next compute: (fields, where)
        self.ibuf_queued = np.zeros(cfg.ibuf_bytes, dtype=bool)     # what they will write
        self.wbuf_queued = np.zeros(cfg.wbuf_words, dtype=bool)

    def fail(self, msg):
        raise CNNExecError(f"{self.where}: {msg}")

    def check(self, idx, size, what):
        """Every index in ``idx`` (an int array) must lie in [0, size)."""
        if idx.size and (idx.min() < 0 or idx.max() >= size):
            self.fail(f"{what} address {int(idx.min())}..{int(idx.max())} outside 0..{size - 1}")

    def span(self, base, count, stride, length):
        """(count, length) addresses ``base + r*stride + j``."""
        return base + np.arange(count, dtype=np.int64)[:, None] * stride + np.arange(length, dtype=np.int64)[None, :]

    # LOAD / SAVE

    def reading(self, queued, what):
        """A compute reads buffer entries; ``queued`` says which of them a queued LOAD writes."""
        if np.any(queued):
            self.fail(f"reads {what} that a LOAD with flag BG, queued for this compute, writes")

    def load(self, f, st):
        """A LOAD: now, or with flag BG queued for the next compute (checked here, run then)."""
        count, length = f["count"], f["length"]
        src = self.span(f["dram"], count, f["dstride"], length)
        self.check(src, self.dram.size, "DRAM")
        st["dram_read"] = count * length
        t = f["target"]
        dst, queued = None, None
        if t == Target.IBUF:
            dst, queued = self.span(f["buf"], count, f["bstride"], length), self.ibuf_queued
            self.check(dst, self.ibuf.size, "ibuf")
        elif t == Target.WBUF:
            wb = self.cfg.weight_word_bytes
            if length % wb or f["dram"] % 8 or f["dstride"] % 8:
                self.fail(f"LOAD WBUF: length {length} not a multiple of {wb} or DRAM address "
                          f"{f['dram']} (stride {f['dstride']}) not 8-aligned")
            dst, queued = self.span(f["buf"], count, f["bstride"], length // wb), self.wbuf_queued
            self.check(dst, self.cfg.wbuf_words, "wbuf word")
        if dst is not None and self.queue and queued[dst].any():
            self.fail("writes what a LOAD with flag BG, queued before it, writes too")
        if not f["flags"] & Flag.BG:
            self.run_load(f, src, dst)
            return
        if queued is None:
            self.fail(f"LOAD with flag BG to target {t}: only IBUF and WBUF LOADs run in the background")
        if len(self.queue) == LOAD_QUEUE:
            self.fail(f"more than {LOAD_QUEUE} LOADs with flag BG before a compute (the engine's load queue)")
        queued[dst] = True
        self.queue.append((f, self.where, src, dst))

    def run_queued(self):
        """The compute has read its operands: the LOADs queued for it write theirs."""
        for f, where, src, dst in self.queue:
            here, self.where = self.where, where
            self.run_load(f, src, dst)
            self.where = here
        self.queue = []
        self.ibuf_queued[:] = False
        self.wbuf_queued[:] = False

    def run_load(self, f, src, dst):
        """Write a LOAD's DRAM bytes ``src`` to its target (``dst``: the ibuf or wbuf
        addresses, checked by :meth:`load`)."""
        t = f["target"]
        count, length = f["count"], f["length"]
        data = self.dram[src]
        if t == Target.IBUF:
            self.ibuf[dst] = data.view(np.int8)
        elif t == Target.WBUF:
            self.wbuf[dst.reshape(-1)] = np.ascontiguousarray(data).view(
                "<i2" if self.cfg.weight_bits == 16 else "i1").reshape(-1, self.P)
        elif t == Target.BIAS:
            if count != 1 or length != 4 * self.P or f["dram"] % 8:
                self.fail(f"LOAD BIAS: expected count 1, length {4 * self.P}, 8-aligned DRAM address; "
                          f"found count {count}, length {length}, address {f['dram']}")
            self.bias[:] = np.ascontiguousarray(data).view("<i4").reshape(-1)
        else:
            self.fail(f"LOAD: unknown target {t}")

    def save(self, f, st):
        """Start a SAVE: the previous one finishes first; SYNC finishes this one too."""
        self.finish_save()
        st["dram_write"] = f["count"] * f["length"]
        self.pending = (f, self.where)
        if f["flags"] & Flag.SYNC:
            self.finish_save()

    def finish_save(self):
        if self.pending is None:
            return
        (f, where), self.pending = self.pending, None
        here, self.where = self.where, where
        self.do_save(f)
        self.where = here

    def do_save(self, f):
        P = self.P
        count, length = f["count"], f["length"]
        c = np.arange(count, dtype=np.int64)
        src = f["buf"] + (c // P)[:, None] * f["ostride"] + np.arange(length, dtype=np.int64)[None, :]
        self.check(src, self.cfg.obuf_depth, "obuf")
        dst = self.span(f["dram"], count, f["dstride"], length)
        self.check(dst, self.dram.size, "DRAM")
        self.dram[dst] = self.obuf[(c % P)[:, None], src].view(np.uint8)

    # Input windows

    def window(self, f, base, count, nrows, ncols):
        """``X[c, r, x]`` = the value CONV/POOL read at image row ``y0 + r``, column ``x0 + x``
        of channel c (0 outside the image), shape (count, nrows, ncols), int64."""
        H, W = f["H"], f["W"]
        iy = f["y0"] + np.arange(nrows, dtype=np.int64)
        ix = f["x0"] + np.arange(ncols, dtype=np.int64)
        ry = (iy >= 0) & (iy < H)
        rx = (ix >= 0) & (ix < W)
        rows = iy[ry]
        cols = ix[rx]
        X = np.zeros((count, nrows, ncols), dtype=np.int64)
        if rows.size and cols.size and count:
            addr = (base + np.arange(count, dtype=np.int64)[:, None, None] * f["bstride"]
                    + ((rows - f["row0"]) * W)[None, :, None] + cols[None, None, :])
            self.check(addr, self.ibuf.size, "ibuf")
            self.reading(self.ibuf_queued[addr], "ibuf bytes")
            X[np.ix_(np.arange(count), np.flatnonzero(ry), np.flatnonzero(rx))] = self.ibuf[addr]
        return X

    def obase(self, f):
        if f["obase"] % 8:
            self.fail(f"obase {f['obase']} is not a multiple of 8")
        return f["obase"]

    def obuf_index(self, rows, cols, wo, base=0):
        """obuf offsets ``base + r*wo + c`` for an output grid, checked."""
        idx = base + np.asarray(rows, np.int64)[:, None] * wo + np.asarray(cols, np.int64)[None, :]
        self.check(idx, self.cfg.obuf_depth, "obuf")
        return idx

    # CONV

    def weights(self, f, nwords):
        """The ``nwords`` wbuf words a CONV reads, from word ``wbase`` on."""
        lo = f["wbase"]
        if lo + nwords > self.cfg.wbuf_words:
            self.fail(f"CONV reads wbuf words {lo}..{lo + nwords - 1}, wbuf holds {self.cfg.wbuf_words}")
        self.reading(self.wbuf_queued[lo:lo + nwords], "wbuf")
        return self.wbuf[lo:lo + nwords]

    def conv(self, f, st):
        P = self.P
        count, gh, gw, step = f["count"], f["gh"], f["gw"], f["step"]
        relu = bool(f["flags"] & Flag.RELU)
        if f["flags"] & Flag.WINO:
            if f["k"] != 4 or step != 2:
                self.fail(f"Winograd CONV needs k 4 and step 2, found k {f['k']}, step {step}")
            if not self.cfg.winograd:
                self.fail("Winograd CONV on an engine built without the Winograd datapath")
            nwords = count * 16
            wl = self.weights(f, nwords)
            X = self.window(f, f["buf"], count, 2 * gh + 2, 2 * gw + 2)
            # D[a, b, c, py, px] = X[c, 2py + a, 2px + b]: the 4x4 tile of grid point (py, px).
            D = np.stack([np.stack([X[:, a:a + 2 * gh:2, b:b + 2 * gw:2] for b in range(4)]) for a in range(4)])
            V = np.einsum("ia,abcpq,jb->ijcpq", WINO_BT, D, WINO_BT).reshape(16, count, gh * gw)
            Wt = wl.reshape(count, 16, P).transpose(1, 2, 0)      # (e, lane, ci)
            M = _matmul_exact(Wt, V).reshape(4, 4, P, gh, gw)
            Y = np.einsum("ia,abLpq,jb->ijLpq", WINO_AT, M, WINO_AT)              # (2, 2, lane, py, px)
            if np.any(Y % 4):
                self.fail("Winograd output not a multiple of 4: wbuf does not hold G2 g G2^T words")
            Y = (Y // 4).transpose(2, 3, 0, 4, 1).reshape(P, 2 * gh, 2 * gw)
            nr, nc = min(f["out_rows"], 2 * gh), min(f["wo"], 2 * gw)
            acc = Y[:, :nr, :nc]
            st["mac_cycles"] = gh * gw * count * 16
        else:
            k = f["k"]
            nwords = count * k * k
            wl = self.weights(f, nwords)
            X = self.window(f, f["buf"], count, (gh - 1) * step + k, (gw - 1) * step + k)
            cols = np.stack([X[:, dy:dy + step * (gh - 1) + 1:step, dx:dx + step * (gw - 1) + 1:step]
                             for dy in range(k) for dx in range(k)], axis=1)   # (ci, ky*k+kx, py, px)
            acc = _matmul_exact(wl.T, cols.reshape(nwords, gh * gw)).reshape(P, gh, gw)
            nr, nc = gh, gw
            st["mac_cycles"] = gh * gw * nwords
        st["mults"] = st["mac_cycles"] * P
        if f["flags"] & Flag.LB:
            if not self.cfg.convolver:
                self.fail("LB CONV on an engine built without the window convolver")
            if f["k"] != 3 or step not in (1, 2) or f["flags"] & Flag.WINO:
                self.fail(f"LB CONV needs k 3, step 1 or 2, no WINO; found k {f['k']}, step {step}")
            if wl.min(initial=0) < -128 or wl.max(initial=0) > 127:
                self.fail("LB CONV with weights outside int8 (the convolver multiplies each word's low byte)")
            pb = f["b"]
            if gw != f["wo"] or pb + gh * gw > self.cfg.psum_depth:
                self.fail(f"LB CONV grid {gh}x{gw} (wo {f['wo']}) at psum {pb}: needs gw == wo and "
                          f"b + gh*gw <= psum_depth {self.cfg.psum_depth}")
            st["mac_cycles"] = gh * gw * count
            st["mults"] = st["mac_cycles"] * 9 * P
            acc = acc.reshape(P, gh * gw)
            if f["flags"] & Flag.ACC:
                acc = acc + self.psum[:, pb:pb + gh * gw]
            if f["flags"] & Flag.HOLD:
                self.psum[:, pb:pb + gh * gw] = acc
                return
            acc = acc.reshape(P, gh, gw)
        elif f["flags"] & (Flag.ACC | Flag.HOLD):
            self.fail("ACC/HOLD without LB")
        out = post(acc, self.bias[:, None, None], f["shift"], relu,
                   f["alpha"] if f["flags"] & Flag.LEAKY else None)
        idx = self.obuf_index(range(nr), range(nc), f["wo"], self.obase(f))
        self.obuf[:, idx] = out

    # POOL / ADD

    def pool(self, f, st):
        P = self.P
        count, gh, gw, step, k = f["count"], f["gh"], f["gw"], f["step"], f["k"]
        if k < 1 or step < 1:
            self.fail(f"POOL with k {k}, step {step}")
        if f["flags"] & Flag.LB:
            if not self.cfg.convolver:
                self.fail("LB POOL on an engine built without the window convolver")
            if k not in (2, 3) or step not in (1, 2) or gw != f["wo"] or f["flags"] & Flag.UP:
                self.fail(f"LB POOL needs k 2 or 3, step 1 or 2, gw == wo, no UP; found k {k}, step {step}, "
                          f"gw {gw}, wo {f['wo']}")
        up = 2 if f["flags"] & Flag.UP else 1
        gh, gw = -(-gh // up), -(-gw // up)    # distinct windows; repeated below with flag UP
        X = self.window(f, f["buf"], count, (gh - 1) * step + k, (gw - 1) * step + k)
        win = np.stack([X[:, dy:dy + step * (gh - 1) + 1:step, dx:dx + step * (gw - 1) + 1:step]
                        for dy in range(k) for dx in range(k)])
        if f["flags"] & Flag.AVG:
            shift = (k * k).bit_length() - 1
            if f["shift"] != shift:
                self.fail(f"average POOL k {k}: shift field {f['shift']}, expected log2(k*k) = {shift}")
            s = win.sum(axis=0)
            y = (s + (1 << shift >> 1)) >> shift
            # Keep the low 8 bits (the golden model's astype(int8)); only a window whose size
            # is not a power of two can leave the int8 range.
            y = y.astype(np.int8)
        else:
            y = win.max(axis=0).astype(np.int8)
        if up > 1:
            gh, gw = f["gh"], f["gw"]
            y = np.repeat(np.repeat(y, up, axis=1), up, axis=2)[:, :gh, :gw]
        c = np.arange(count, dtype=np.int64)
        pix = (np.arange(gh)[:, None] * f["wo"] + np.arange(gw)[None, :]).reshape(1, -1)
        idx = self.obase(f) + (c // P)[:, None] * f["ostride"] + pix
        self.check(idx, self.cfg.obuf_depth, "obuf")
        self.obuf[(c % P)[:, None], idx] = y.reshape(count, -1)
        st["elems"] = count * gh * gw * k * k

    def add(self, f, st):
        P = self.P
        count, length = f["count"], f["length"]
        a = self.span(f["buf"], count, f["bstride"], length)
        b = self.span(f["b"], count, f["bstride"], length)
        self.check(a, self.ibuf.size, "ibuf")
        self.check(b, self.ibuf.size, "ibuf")
        self.reading(self.ibuf_queued[a], "ibuf bytes")
        self.reading(self.ibuf_queued[b], "ibuf bytes")
        y = np.clip(self.ibuf[a].astype(np.int64) + self.ibuf[b], -128, 127)
        if f["flags"] & Flag.RELU:
            y = np.maximum(y, 0)
        c = np.arange(count, dtype=np.int64)
        idx = self.obase(f) + (c // P)[:, None] * f["ostride"] + np.arange(length, dtype=np.int64)[None, :]
        self.check(idx, self.cfg.obuf_depth, "obuf")
        self.obuf[(c % P)[:, None], idx] = y.astype(np.int8)
        st["elems"] = count * length


def execute(program, dram, cfg):
    """Run ``program`` (instruction bytes, see :mod:`~sparsa.sw.cnn.isa`) on ``dram`` in place.

    ``dram`` is a ``bytearray`` or a writable 1-D ``uint8`` array holding the whole DRAM image
    (weights and input placed); outputs are written into it. Stops at END (a stream without
    END raises :class:`CNNExecError`). Returns :class:`ExecStats`.
    """
    if len(program) % INSTR_BYTES:
        raise CNNExecError(f"program: {len(program)} bytes, not a multiple of {INSTR_BYTES}")
    eng = _Engine(dram, cfg)
    stats = ExecStats(cfg.lanes)
    handlers = {Op.LOAD: eng.load, Op.SAVE: eng.save, Op.CONV: eng.conv, Op.POOL: eng.pool, Op.ADD: eng.add}
    for n, f in enumerate(decode_program(bytes(program))):
        try:
            op = Op(f["op"])
        except ValueError:
            raise CNNExecError(f"instruction {n}: unknown op {f['op']}") from None
        eng.where = f"instruction {n} ({op.name}, layer {f['layer']})"
        st = {"index": n, "op": op.name, "layer": f["layer"], "mac_cycles": 0, "mults": 0, "elems": 0,
              "dram_read": 0, "dram_write": 0}
        stats.instructions.append(st)
        if eng.queue and op in (Op.SAVE, Op.END):
            eng.fail("only LOADs may come between a LOAD with flag BG and the compute it waits for")
        if op == Op.END:
            eng.finish_save()
            return stats
        if f["flags"] & Flag.SYNC and op != Op.SAVE:
            eng.finish_save()
        handlers[op](f, st)
        if op in (Op.CONV, Op.POOL, Op.ADD):
            eng.run_queued()
    raise CNNExecError("program: no END instruction")
