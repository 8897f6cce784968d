"""Window walker: the address generator of CONV and POOL.

It visits, one per cycle, every input element a CONV or POOL instruction reads (loops, outer
to inner: pool channel ``c``, grid row ``py``, grid column ``px``, conv input channel ``ci``,
``ky``, ``kx``) and emits a :data:`token_layout` for each: the ibuf address, whether the
element is inside the image (padding reads as zero), the weight-word index, the flags that
open and close an accumulation, and where the result goes in the output buffer. With ``up``
(POOL flag UP) the window moves every second grid column and row, so that each input element
is read for a 2x2 block of outputs (a nearest-neighbour upsample).

No multipliers in the loop: every address is kept as running sums. Throughput one token a
cycle with no stall (the datapath behind it never back-pressures); latency 1 cycle.
"""

from amaranth import *
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["WindowWalker", "token_layout", "walk_layout"]


def walk_layout(cfg):
    return data.StructLayout({
        "pool": 1, "wino": 1, "up": 1, "count": 16, "k": 3, "step": 2, "gh": 12, "gw": 12,
        "y0": signed(14), "x0": signed(5), "row0": 12, "H": 12, "W": 12,
        "buf": 20, "bstride": 20, "ostride": 20, "wo": 12, "out_rows": 12,
    })


def token_layout(cfg):
    return data.StructLayout({
        "addr": 20, "inb": 1, "first": 1, "last": 1, "widx": 16,
        "bank": range(cfg.lanes), "opix": 20,
        # Winograd only: the 2x2 output tile's lower row / right column is inside the output
        "y1_ok": 1, "x1_ok": 1,
    })


class WindowWalker(wiring.Component):
    """Pulse ``start`` with ``params`` valid; tokens follow on ``tok``/``tok_valid``, and
    ``busy`` stays high until the last token has been emitted."""

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "start": In(1), "params": In(walk_layout(cfg)),
            "tok": Out(token_layout(cfg)), "tok_valid": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        p = Signal(walk_layout(cfg))
        run = Signal()
        m.d.comb += self.busy.eq(run)

        c = Signal(16)          # pool channel
        py, px = Signal(12), Signal(12)
        ci = Signal(16)         # conv input channel
        ky, kx = Signal(3), Signal(3)
        c_base = Signal(20)     # buf + c * bstride
        ch_base = Signal(20)    # buf + (c + ci) * bstride
        iy_org, ix_org = Signal(signed(15)), Signal(signed(15))
        row_org = Signal(signed(26))   # (iy_org - row0) * W
        row_cur = Signal(signed(26))   # (iy_org + ky - row0) * W
        row_start = Signal(signed(26))  # (y0 - row0) * W, for each new pool channel
        widx = Signal(16)
        bank = Signal(range(cfg.lanes))
        obase, orow, ocol = Signal(20), Signal(20), Signal(20)
        oy, ox = Signal(13), Signal(13)   # Winograd: first output row/column of the tile
        hy, hx = Signal(), Signal()       # flag UP: the first of a pair of grid rows / columns
        # With flag UP the window moves every second grid point (2x upsample)
        x_move = ~p.up | hx
        y_move = ~p.up | hy

        n_ci = Mux(p.pool, 1, p.count)
        n_c = Mux(p.pool, p.count, 1)
        kx_wrap = kx == p.k - 1
        ky_wrap = ky == p.k - 1
        ci_wrap = ci == n_ci - 1
        px_wrap = px == p.gw - 1
        py_wrap = py == p.gh - 1
        c_wrap = c == n_c - 1

        iy = Signal(signed(16))
        ix = Signal(signed(16))
        m.d.comb += [iy.eq(iy_org + ky), ix.eq(ix_org + kx)]

        # The token for the current loop position (registered: latency 1).
        m.d.sync += self.tok_valid.eq(run)
        with m.If(run):
            m.d.sync += [
                self.tok.addr.eq(ch_base + row_cur + ix),
                self.tok.inb.eq((iy >= 0) & (iy < p.H) & (ix >= 0) & (ix < p.W)),
                self.tok.first.eq((ci == 0) & (ky == 0) & (kx == 0)),
                self.tok.last.eq(ci_wrap & ky_wrap & kx_wrap),
                self.tok.widx.eq(widx),
                self.tok.bank.eq(bank),
                self.tok.opix.eq(obase + orow + ocol),
                self.tok.y1_ok.eq(oy + 1 < p.out_rows),
                self.tok.x1_ok.eq(ox + 1 < p.wo),
            ]

        step_w = Mux(p.step == 3, p.W + (p.W << 1), Mux(p.step == 2, p.W << 1, p.W))   # step * W
        ostep = Mux(p.wino, 2, 1)
        orow_step = Mux(p.wino, p.wo << 1, p.wo)

        with m.If(self.start):
            m.d.sync += [
                p.eq(self.params), run.eq(1),
                c.eq(0), py.eq(0), px.eq(0), ci.eq(0), ky.eq(0), kx.eq(0),
                c_base.eq(self.params.buf), ch_base.eq(self.params.buf),
                iy_org.eq(self.params.y0), ix_org.eq(self.params.x0),
                row_org.eq((self.params.y0 - self.params.row0) * self.params.W),
                row_cur.eq((self.params.y0 - self.params.row0) * self.params.W),
                row_start.eq((self.params.y0 - self.params.row0) * self.params.W),
                widx.eq(0), bank.eq(0), obase.eq(0), orow.eq(0), ocol.eq(0), oy.eq(0), ox.eq(0),
                hy.eq(0), hx.eq(0),
            ]
        with m.Elif(run):
            m.d.sync += [kx.eq(kx + 1), widx.eq(widx + 1)]
            with m.If(kx_wrap):
                m.d.sync += [kx.eq(0), ky.eq(ky + 1), row_cur.eq(row_cur + p.W)]
                with m.If(ky_wrap):
                    m.d.sync += [ky.eq(0), ci.eq(ci + 1), ch_base.eq(ch_base + p.bstride), row_cur.eq(row_org)]
                    with m.If(ci_wrap):
                        # next grid point
                        m.d.sync += [ci.eq(0), ch_base.eq(c_base), widx.eq(0),
                                     px.eq(px + 1), hx.eq(~hx),
                                     ocol.eq(ocol + ostep), ox.eq(ox + ostep)]
                        with m.If(x_move):
                            m.d.sync += ix_org.eq(ix_org + p.step)
                        with m.If(px_wrap):
                            m.d.sync += [px.eq(0), ix_org.eq(p.x0), ocol.eq(0), ox.eq(0), hx.eq(0),
                                         py.eq(py + 1), hy.eq(~hy),
                                         orow.eq(orow + orow_step), oy.eq(oy + ostep)]
                            with m.If(y_move):
                                m.d.sync += [iy_org.eq(iy_org + p.step), row_org.eq(row_org + step_w),
                                             row_cur.eq(row_org + step_w)]
                            with m.Else():
                                m.d.sync += row_cur.eq(row_org)
                            with m.If(py_wrap):
                                # next pool channel
                                m.d.sync += [py.eq(0), iy_org.eq(p.y0), oy.eq(0), orow.eq(0), hy.eq(0),
                                             row_org.eq(row_start), row_cur.eq(row_start),
                                             c.eq(c + 1), c_base.eq(c_base + p.bstride),
                                             ch_base.eq(c_base + p.bstride),
                                             bank.eq(bank + 1)]
                                with m.If(bank == cfg.lanes - 1):
                                    m.d.sync += [bank.eq(0), obase.eq(obase + p.ostride)]
                                with m.If(c_wrap):
                                    m.d.sync += run.eq(0)
        return m
