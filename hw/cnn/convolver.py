"""The 3x3 window convolver's lanes: per lane 9 multipliers, an adder tree and a partial-sum bank.

Takes the windows of :class:`~.linebuf.WindowSweep` (one per cycle; channel outermost) and
for every lane l computes ``sum_j w[l][c][j] * x[j]`` (9 MACs), adds it to the pixel's
partial sum in lane l's psum bank and writes it back; on the CONV's last channel the sum
goes to the engine's output stage instead (bias, shift, saturate, ReLU -> obuf), unless flag
HOLD keeps it in psum for a following CONV with flag ACC (channel chunks).

Weights: channel c's 9 words (wbuf words ``9c .. 9c+8``; lane l's weight is the low byte of
its ``weight_bits``-bit field: the convolver's weights are int8) are read into a shadow register bank while channel c-1 is swept and become the active bank with
c's first window; so weight loading costs nothing once a channel has >= 10 windows (smaller
tiles stall the sweep for the difference).

With ``pair_multipliers`` lanes 2i and 2i+1 share each multiplier: ``(w[2i+1] * 2^16 +
w[2i]) * x`` (a 25 x 8 product, one DSP48) holds both int8 x int8 products 16 bits apart; the
low half is lane 2i's (a product fits 16 bits), the high half plus the low half's sign bit is
lane 2i+1's. Same latency, half the multipliers.

Pipeline (a window accepted at T): T+1 multiply (registered products), T+2 three sums of 3,
T+3 sum of 3 and the psum read, T+4 add to psum and write it (or hand the sum to the output
stage). Throughput one window a cycle, 9*lanes MACs. The read-modify-write is hazard-free
without bubbles: a pixel's next visit (next channel) is at least one window later, so its
psum read is at T+4 at the earliest, the same cycle as the previous write, and the read port
is transparent for the write port.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.hw.cnn.linebuf import window_layout

__all__ = ["WindowConvolver", "LATENCY"]

LATENCY = 4   # window accepted -> result at the outputs


class WindowConvolver(wiring.Component):
    """Ports
    -------
    start : In(1)
        Pulse as the sweep starts (loads channel 0's weights).
    pool : In(1)
        The sweep serves a POOL (held for the instruction): every window is accepted at once,
        and nothing is multiplied into psum, counted or sent to the output stage.
    acc_in, hold : In(1)
        The CONV's ACC and HOLD flags (held for the whole instruction).
    i : In(stream.Signature(window_layout()))
        Windows; not ready on a channel's first window until its weights are in.
    wb_addr : Out(16), wb_data : In(weight_bits * lanes)
        The wbuf read port (synchronous).
    o_valid, o_addr, o_vals : Out
        Final sums (one pixel of every lane, ``acc_bits`` signed) for the output stage.
    mac : Out(1)
        9 multiplies per lane this cycle (for the MAC-cycle counter).
    busy : Out(1)
        Weights loading or a window in the pipeline.
    """

    def __init__(self, cfg, acc_bits):
        self.cfg = cfg
        self.acc_bits = acc_bits
        P = cfg.lanes
        super().__init__({
            "start": In(1), "pool": In(1), "acc_in": In(1), "hold": In(1),
            "i": In(stream.Signature(window_layout())),
            "wb_addr": Out(16), "wb_data": In(cfg.weight_bits * P),
            "o_valid": Out(1), "o_addr": Out(20), "o_vals": Out(data.ArrayLayout(signed(acc_bits), P)),
            "mac": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P = self.cfg.lanes
        A = self.acc_bits

        #
        # Weights: shadow bank loaded from wbuf (one word a cycle), active bank used by the multipliers
        #
        wb = self.cfg.weight_bits
        shadow = [Signal(wb * P, name=f"shadow{j}") for j in range(9)]
        active = [Signal(wb * P, name=f"active{j}") for j in range(9)]
        ld_run, ld_v, sh_full = Signal(), Signal(), Signal()
        ld_j, ld_jd = Signal(4), Signal(4)
        ld_base = Signal(16)
        m.d.comb += self.wb_addr.eq(ld_base + ld_j)
        m.d.sync += [ld_v.eq(ld_run), ld_jd.eq(ld_j)]
        with m.If(ld_run):
            m.d.sync += ld_j.eq(ld_j + 1)
            with m.If(ld_j == 8):
                m.d.sync += ld_run.eq(0)
        with m.If(ld_v):
            for j in range(9):
                with m.If(ld_jd == j):
                    m.d.sync += shadow[j].eq(self.wb_data)
            with m.If(ld_jd == 8):
                m.d.sync += sh_full.eq(1)

        win = self.i.p
        accept = Signal()
        m.d.comb += [self.i.ready.eq(self.pool | ~win.chan_first | sh_full),
                     accept.eq(self.i.valid & self.i.ready)]
        with m.If(accept & win.chan_first & ~self.pool):
            m.d.sync += [a.eq(s) for a, s in zip(active, shadow)]
            m.d.sync += sh_full.eq(0)
            with m.If(~win.last):
                m.d.sync += [ld_run.eq(1), ld_j.eq(0), ld_base.eq(ld_base + 9)]
        with m.If(self.start):
            m.d.sync += [ld_run.eq(1), ld_j.eq(0), ld_base.eq(0), sh_full.eq(0)]

        #
        # T+1: the window; 9 multiplies per lane into registers
        #
        v1, v2, v3, v4 = Signal(), Signal(), Signal(), Signal()
        meta = data.StructLayout({"pix": 16, "opix": 20, "first": 1, "last": 1})
        m1, m2, m3, m4 = (Signal(meta, name=f"meta{i}") for i in range(1, 5))
        x1 = Signal(data.ArrayLayout(signed(8), 9))
        m.d.sync += [v1.eq(accept & ~self.pool), v2.eq(v1), v3.eq(v2), v4.eq(v3), m2.eq(m1), m3.eq(m2), m4.eq(m3)]
        with m.If(accept):
            m.d.sync += [x1.eq(win.x), m1.pix.eq(win.pix), m1.opix.eq(win.opix), m1.first.eq(win.first),
                         m1.last.eq(win.last)]
        m.d.comb += self.mac.eq(v1)

        # T+1 products (int8 x int8), one multiplier per lane and tap, or per pair of lanes
        weight = lambda j, lane: active[j][wb * lane:wb * lane + 8].as_signed()
        prod = [[Signal(signed(17), name=f"prod{lane}_{j}") for j in range(9)] for lane in range(P)]
        for j in range(9):
            if self.cfg.pair_multipliers:
                for i in range(P // 2):
                    lo, hi = 2 * i, 2 * i + 1
                    packed = Signal(signed(25), name=f"pk{i}_{j}")
                    pp = Signal(signed(33), name=f"pp{i}_{j}")
                    m.d.comb += packed.eq((weight(j, hi) << 16) + weight(j, lo))
                    m.d.sync += pp.eq(packed * x1[j])
                    m.d.comb += [prod[lo][j].eq(pp[:16].as_signed()), prod[hi][j].eq(pp[16:32].as_signed() + pp[15])]
            else:
                for lane in range(P):
                    m.d.sync += prod[lane][j].eq(weight(j, lane) * x1[j])

        # T+2: products -> three sums of three; T+3: the lane's sum (the adder tree, 2 levels)
        psum_rd = []
        for lane in range(P):
            prods = prod[lane]
            s3 = [Signal(signed(26), name=f"s3_{lane}_{g}") for g in range(3)]
            t4 = Signal(signed(28), name=f"t4_{lane}")
            m.d.sync += [s3[g].eq(prods[3 * g] + prods[3 * g + 1] + prods[3 * g + 2]) for g in range(3)]
            m.d.sync += t4.eq(s3[0] + s3[1] + s3[2])

            # psum bank: read at T+3 (address of the window in m3), add and write at T+4.
            # Transparent read: a write to the same pixel in the same cycle (the previous
            # channel's visit, one window ahead) is seen by the read.
            mem = Memory(shape=A, depth=self.cfg.psum_depth, init=[])
            m.submodules[f"psum{lane}"] = mem
            wr = mem.write_port()
            rd = mem.read_port(transparent_for=(wr,))
            acc = Signal(signed(A), name=f"acc{lane}")
            out = v4 & m4.last & ~self.hold
            m.d.comb += [
                rd.addr.eq(m3.pix),
                acc.eq(Mux(m4.first & ~self.acc_in, 0, rd.data.as_signed()) + t4),
                wr.addr.eq(m4.pix), wr.data.eq(acc), wr.en.eq(v4 & ~out),
                self.o_vals[lane].eq(acc),
            ]
            psum_rd.append(rd)
        m.d.comb += [self.o_valid.eq(v4 & m4.last & ~self.hold), self.o_addr.eq(m4.opix),
                     self.busy.eq(ld_run | ld_v | v1 | v2 | v3 | v4)]
        return m
