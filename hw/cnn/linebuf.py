"""3x3 window generator of the window convolver: three row streams over ibuf and the sweep.

For a CONV with flag LB (k = 3, step s in {1, 2}) :class:`WindowSweep` emits the 3x3 window of
every (input channel ``c``, output row ``py``, output column ``px``), in that order (Angel-Eye's
loop order inside a row tile: channel outermost, so a channel's 9 weights per lane stay put
while its whole tile is swept). Zero padding is generated from the image bounds, not stored.

Each window row ``r`` (input row ``y0 + py*s + r``) comes from a :class:`RowStream`: the rows
of a tile are already in ibuf (one LOAD per tile, as for the one-multiplier path), so ibuf
*is* the line buffer here. A row stream reads that row a 64-bit word (8 pixels) at a time
through its own ibuf read port into a 4-word queue and cuts the window's 3 bytes out of the
queue's first two words at the window's byte offset. Compared with copying rows into
separate line-buffer RAMs this needs no extra storage, no row-width limit and no fill phase:
the queue runs ahead across row and channel boundaries, so the next output row is prefetched
while the current one is swept.

Throughput: one window a cycle, no bubble at row or channel boundaries, as long as every
output row has at least ~3 windows (a row of ``gw`` windows needs ``((gw-1)*s + 2) // 8 + 2``
words a row stream, read one a cycle; narrower rows run at up to half speed). Latency: the
first window appears 3 cycles after ``start`` (two words per stream). Each stream uses well
under half of its port's bandwidth at s = 1 (3 words per 8 windows plus 2 per row).
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["RowStream", "WindowSweep", "stream_layout", "sweep_layout", "window_layout"]

QUEUE = 4   # words per row stream; 2 are the window's, 2 run ahead


def stream_layout():
    """Parameters of one row stream: ``start`` is the byte address of the first window of
    (c = 0, py = 0); a row advances by ``row_step`` (s*W), a channel by ``ch_step`` (bstride);
    a row's windows span ``span`` = (gw-1)*s bytes past the first. Addresses wrap modulo 2^22
    (padding windows may start before ibuf address 0; those bytes are masked)."""
    return data.StructLayout({"start": 22, "row_step": 22, "ch_step": 22, "span": 14, "gh": 12,
                              "count": 16, "step": 2})


def sweep_layout():
    return data.StructLayout({
        "count": 16, "step": 2, "gh": 12, "gw": 12, "y0": signed(14), "x0": signed(5),
        "row0": 12, "H": 12, "W": 12, "buf": 20, "bstride": 20, "wo": 12, "pbase": 16,
    })


def window_layout():
    """One window: ``x[ky*3 + kx]`` (0 outside the image), its psum address ``pix`` =
    pbase + py*gw + px, obuf address ``opix`` = py*wo + px, ``first``/``last`` channel of the CONV,
    ``chan_first`` (first window of a channel: its weights must be loaded)."""
    return data.StructLayout({"x": data.ArrayLayout(signed(8), 9), "pix": 16, "opix": 20,
                              "first": 1, "last": 1, "chan_first": 1})


class RowStream(wiring.Component):
    """One window row: ibuf words in, the window's 3 bytes out.

    Ports
    -----
    start : In(1)
        Pulse with ``params`` valid (the stream must be idle).
    rd_addr : Out(19), rd_data : In(64)
        An ibuf read port (synchronous: data the cycle after the address).
    ok : Out(1)
        ``bytes`` holds the current window's 3 bytes (byte kx at bits 8kx).
    adv, seg_end, chan_end : In(1)
        The window was consumed; it was the last of its output row; and of its channel.
    """

    def __init__(self):
        super().__init__({
            "start": In(1), "params": In(stream_layout()),
            "rd_addr": Out(19), "rd_data": In(64),
            "ok": Out(1), "bytes": Out(24),
            "adv": In(1), "seg_end": In(1), "chan_end": In(1),
        })

    def elaborate(self, platform):
        m = Module()
        sp = self.params
        p = Signal(stream_layout())

        #
        # Fetch: the words of each output row's segment, (first >> 3) .. (last >> 3) + 1 with
        # first/last the first/last window's byte address: exactly the words the consumer pops
        #
        fa, ca = Signal(22), Signal(22)           # segment / channel first byte address
        w, wend = Signal(19), Signal(19)          # next word to read, last word of the segment
        fpy, fc = Signal(12), Signal(16)
        frun, inflight = Signal(), Signal()
        cnt = Signal(range(QUEUE + 1))
        q = [Signal(64, name=f"q{i}") for i in range(QUEUE)]

        issue = Signal()
        pop = Signal(2)
        nfa = Signal(22)
        m.d.comb += [
            # count the words popped this cycle as free: a word popped at the last-but-one
            # window of a row is refilled in time for the next row's first window
            issue.eq(frun & (cnt - pop + inflight < QUEUE)),
            self.rd_addr.eq(w),
            nfa.eq(Mux(fpy == p.gh - 1, ca + p.ch_step, fa + p.row_step)),
        ]
        m.d.sync += inflight.eq(issue)
        with m.If(issue):
            with m.If(w == wend):
                m.d.sync += [fa.eq(nfa), w.eq(nfa[3:]), wend.eq((nfa + p.span)[3:22] + 1), fpy.eq(fpy + 1)]
                with m.If(fpy == p.gh - 1):
                    m.d.sync += [fpy.eq(0), fc.eq(fc + 1), ca.eq(nfa)]
                    with m.If(fc == p.count - 1):
                        m.d.sync += frun.eq(0)
            with m.Else():
                m.d.sync += w.eq(w + 1)

        #
        # Consume: the window's byte offset in q[0]; pop a word when the window moves past it,
        # both at the end of a segment
        #
        off, cofs, cch = Signal(3), Signal(3), Signal(3)   # window, segment, channel offsets
        nxt = Signal(4)
        m.d.comb += [
            self.ok.eq(cnt >= 2),
            self.bytes.eq(Cat(q[0], q[1]).bit_select(off * 8, 24)),
            nxt.eq(off + p.step),
        ]
        with m.If(self.adv):
            with m.If(self.seg_end):
                m.d.comb += pop.eq(2)
                with m.If(self.chan_end):
                    n = (cch + p.ch_step[:3])[:3]
                    m.d.sync += [cch.eq(n), cofs.eq(n), off.eq(n)]
                with m.Else():
                    n = (cofs + p.row_step[:3])[:3]
                    m.d.sync += [cofs.eq(n), off.eq(n)]
            with m.Else():
                m.d.comb += pop.eq(nxt[3])
                m.d.sync += off.eq(nxt[:3])

        # Queue: shift out `pop` words, append the word read last cycle
        push = inflight
        with m.Switch(pop):
            for pv in range(3):
                with m.Case(pv):
                    for i in range(QUEUE):
                        if i + pv < QUEUE:
                            m.d.sync += q[i].eq(q[i + pv])
                        with m.If(push & (cnt == i + pv)):
                            m.d.sync += q[i].eq(self.rd_data)
        m.d.sync += cnt.eq(cnt - pop + push)

        with m.If(self.start):
            start = sp.start
            m.d.sync += [
                p.eq(sp), fa.eq(start), ca.eq(start), w.eq(start[3:]),
                wend.eq((start + sp.span)[3:22] + 1), fpy.eq(0), fc.eq(0),
                frun.eq((sp.count != 0) & (sp.gh != 0)),
                inflight.eq(0), cnt.eq(0), off.eq(start[:3]), cofs.eq(start[:3]), cch.eq(start[:3]),
            ]
        return m


class WindowSweep(wiring.Component):
    """The window generator: three :class:`RowStream` and the (c, py, px) sweep.

    Ports
    -----
    start : In(1)
        Pulse with ``params`` valid (a CONV's fields; ``buf``/``bstride``/``row0`` place the
        tile's rows in ibuf as for the one-multiplier path).
    o : Out(stream.Signature(window_layout()))
        One window a cycle while the row streams keep up; ``o.ready`` may stall it.
    rd{r}_addr : Out(19), rd{r}_data : In(64)
        One synchronous ibuf read port per window row r = 0, 1, 2.
    busy : Out(1)
        High until the last window has been transferred.
    """

    def __init__(self):
        ports = {"start": In(1), "params": In(sweep_layout()), "busy": Out(1),
                 "o": Out(stream.Signature(window_layout()))}
        for r in range(3):
            ports[f"rd{r}_addr"] = Out(19)
            ports[f"rd{r}_data"] = In(64)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        sp = self.params
        p = Signal(sweep_layout())
        run = Signal()
        m.d.comb += self.busy.eq(run)

        rows = []
        rowbase = Signal(signed(28))     # byte address of row y0, column x0 of channel 0
        m.d.comb += rowbase.eq((sp.y0 - sp.row0) * sp.W + sp.buf + sp.x0)
        for r in range(3):
            rs = RowStream()
            m.submodules[f"row{r}"] = rs
            rows.append(rs)
            m.d.comb += [
                rs.start.eq(self.start),
                rs.params.start.eq(rowbase + r * sp.W),
                rs.params.row_step.eq(Mux(sp.step == 2, sp.W << 1, sp.W)),
                rs.params.ch_step.eq(sp.bstride),
                rs.params.span.eq(Mux(sp.step == 2, (sp.gw - 1) << 1, sp.gw - 1)),
                rs.params.gh.eq(sp.gh), rs.params.count.eq(sp.count), rs.params.step.eq(sp.step),
                getattr(self, f"rd{r}_addr").eq(rs.rd_addr),
                rs.rd_data.eq(getattr(self, f"rd{r}_data")),
            ]

        px, py = Signal(12), Signal(12)
        c = Signal(16)
        ix0, iy0 = Signal(signed(15)), Signal(signed(15))   # x0 + px*s, y0 + py*s
        pix = Signal(16)
        orow = Signal(20)
        seg_end = px == p.gw - 1
        chan_end = seg_end & (py == p.gh - 1)
        adv = Signal()
        m.d.comb += [
            self.o.valid.eq(run & rows[0].ok & rows[1].ok & rows[2].ok),
            adv.eq(self.o.valid & self.o.ready),
        ]
        for rs in rows:
            m.d.comb += [rs.adv.eq(adv), rs.seg_end.eq(seg_end), rs.chan_end.eq(chan_end)]

        win = self.o.p
        for r, rs in enumerate(rows):
            row_ok = (iy0 + r >= 0) & (iy0 + r < p.H)
            for kx in range(3):
                col_ok = (ix0 + kx >= 0) & (ix0 + kx < p.W)
                m.d.comb += win.x[3 * r + kx].eq(Mux(row_ok & col_ok, rs.bytes[8 * kx:8 * kx + 8], 0))
        m.d.comb += [win.pix.eq(pix), win.opix.eq(orow + px), win.first.eq(c == 0),
                     win.last.eq(c == p.count - 1), win.chan_first.eq((px == 0) & (py == 0))]

        with m.If(self.start):
            m.d.sync += [p.eq(sp), run.eq((sp.count != 0) & (sp.gh != 0) & (sp.gw != 0)),
                         px.eq(0), py.eq(0), c.eq(0), ix0.eq(sp.x0), iy0.eq(sp.y0), pix.eq(sp.pbase), orow.eq(0)]
        with m.Elif(adv):
            m.d.sync += [px.eq(px + 1), ix0.eq(ix0 + p.step), pix.eq(pix + 1)]
            with m.If(seg_end):
                m.d.sync += [px.eq(0), ix0.eq(p.x0), py.eq(py + 1), iy0.eq(iy0 + p.step), orow.eq(orow + p.wo)]
                with m.If(py == p.gh - 1):
                    m.d.sync += [py.eq(0), iy0.eq(p.y0), c.eq(c + 1), pix.eq(p.pbase), orow.eq(0)]
                    with m.If(c == p.count - 1):
                        m.d.sync += run.eq(0)
        return m
