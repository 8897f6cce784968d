"""The CNN engine's compute datapath: operand fetch from ibuf/wbuf and the MAC lanes.

One instruction at a time (CONV, POOL or ADD), started by ``start``:

* CONV direct: the window walker (:mod:`.window`) reads one input byte a cycle; it is
  broadcast to the P lanes, each multiplying it by its weight from the same wbuf word and
  accumulating. One MAC per lane per cycle, no bubbles inside an instruction.
* CONV with flag LB: the 3x3 window convolver (:mod:`.linebuf` + :mod:`.convolver`), whose
  three row streams use ibuf ports a, b and c; 9 MACs per lane per cycle.
* CONV Winograd: the walker reads a 4x4 tile per input channel (16 cycles); the tile is
  transformed (``V = B^T d B``) and each lane does 16 multiplies ``U[e] * V[e]`` on its one
  multiplier into 16 accumulators while the next tile is read. After the last channel,
  ``Y = A^T M A / 4`` gives a 2x2 output tile, sent as four results on four cycles.
* POOL: max or rounded average over the window, one input a cycle; with flag LB (k 2 or 3,
  on an engine with the convolver) the convolver's window sweep delivers a whole window a
  cycle and a reducer here takes its max or sum (the convolver itself stays idle).
* ADD: two ibuf reads a cycle (ports a and b), one result a cycle.
"""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from sparsa.sw.cnn.isa import Op

from sparsa.hw.cnn.convolver import WindowConvolver
from sparsa.hw.cnn.linebuf import WindowSweep
from sparsa.hw.cnn.output import ACC_BITS, result_layout
from sparsa.hw.cnn.sequencer import instr_layout
from sparsa.hw.cnn.window import WindowWalker
from sparsa.hw.cnn.winograd import input_transform, output_transform

__all__ = ["Lanes"]


def _tree(values, op):
    """``op`` over ``values`` as a balanced tree (depth log2 n, not n - 1)."""
    while len(values) > 1:
        values = [op(values[i], values[i + 1]) if i + 1 < len(values) else values[i]
                  for i in range(0, len(values), 2)]
    return values[0]


class Lanes(wiring.Component):
    """The compute datapath of CONV, POOL and ADD, from ibuf/wbuf reads to results.

    Latency from the first token to its result on ``o``: direct CONV 4 cycles after the last
    input of a pixel (read, multiply, accumulate, result); Winograd 20 after a tile's last
    byte (16-step multiply, transform); POOL 1, ADD 1 (after the reads); convolver
    :data:`~.convolver.LATENCY` + 1. Throughput: one input element (or one 3x3 window) a
    cycle; results never wait (``o`` is always ready).

    Ports
    -----
    start : In(1), instr : In(instr_layout())
        Start the instruction on ``instr`` (held until ``busy`` falls).
    ibuf_a, ibuf_b[, ibuf_c] : ibuf read ports (driven: address); ``ibuf_c`` only with the convolver
    wbuf : wbuf read port (driven)
    o : Out(stream.Signature(result_layout(cfg), always_ready=True))
        Results for the output stage.
    mac : Out(1)
        The multipliers were fed this cycle (for the MAC-cycle counter).
    busy : Out(1)
        The instruction still has inputs to read or results in flight.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        ib = ReadPort.Signature(addr_width=ceil_log2(cfg.ibuf_bytes // 8), shape=64)
        # In(ReadPort.Signature): the flipped port, i.e. the side that drives address and enable
        super().__init__({
            "start": In(1), "instr": In(instr_layout()),
            "ibuf_a": In(ib), "ibuf_b": In(ib), **({"ibuf_c": In(ib)} if cfg.convolver else {}),
            "wbuf": In(ReadPort.Signature(addr_width=ceil_log2(cfg.wbuf_words), shape=cfg.weight_bits * cfg.lanes)),
            "o": Out(stream.Signature(result_layout(cfg), always_ready=True)),
            "mac": Out(1), "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        P = cfg.lanes
        f = self.instr
        compute_start = self.start
        # Without the Winograd datapath (cfg.winograd False) the flag reads as 0 and the
        # tile, sequencer and output-transform logic below is not generated.
        wino = f.flags[1] if cfg.winograd else C(0, 1)
        n_acc = 16 if cfg.winograd else 1
        avg = f.flags[2]
        # Without the window convolver (cfg.convolver False) LB reads as 0 and it is not generated.
        lb = f.flags[3] if cfg.convolver else C(0, 1)

        # ibuf is 64 bits wide (LOAD writes a beat a cycle); ports a and b read bytes
        ib_a, ib_b, wb_r = self.ibuf_a, self.ibuf_b, self.wbuf
        ib_c = self.ibuf_c if cfg.convolver else None
        ia_addr, ib_addr = Signal(20), Signal(20)          # byte addresses of the two reads
        ia_lo, ib_lo = Signal(3), Signal(3)
        m.d.comb += [ib_a.addr.eq(ia_addr[3:]), ib_b.addr.eq(ib_addr[3:])]
        m.d.sync += [ia_lo.eq(ia_addr[:3]), ib_lo.eq(ib_addr[:3])]
        ia_byte, ib_byte = ib_a.data.word_select(ia_lo, 8), ib_b.data.word_select(ib_lo, 8)

        m.submodules.walker = walker = WindowWalker(cfg)
        add_run = Signal()

        #
        # Compute: walker tokens (CONV, POOL) or the ADD counters
        #
        is_conv = f.op == Op.CONV
        is_pool = f.op == Op.POOL
        wp = walker.params
        m.d.comb += [
            walker.start.eq(compute_start & ((is_conv | is_pool) & ~lb)),
            wp.pool.eq(is_pool), wp.wino.eq(is_conv & wino), wp.up.eq(is_pool & f.flags[8]), wp.count.eq(f.count), wp.k.eq(f.k),
            wp.step.eq(f.step), wp.gh.eq(f.gh), wp.gw.eq(f.gw), wp.y0.eq(f.y0), wp.x0.eq(f.x0),
            wp.row0.eq(f.row0), wp.H.eq(f.H), wp.W.eq(f.W), wp.buf.eq(f.buf),
            wp.bstride.eq(f.bstride), wp.ostride.eq(f.ostride), wp.wo.eq(f.wo),
            wp.out_rows.eq(f.out_rows),
        ]
        tok = walker.tok

        # ADD counters (channel c, element i)
        a_c, a_i = Signal(16), Signal(20)
        a_base = Signal(20)            # c * bstride
        a_bank = Signal(range(P))
        a_obase = Signal(20)
        with m.If(compute_start & (f.op == Op.ADD)):
            m.d.sync += [add_run.eq((f.count != 0) & (f.length != 0)), a_c.eq(0), a_i.eq(0),
                         a_base.eq(0), a_bank.eq(0), a_obase.eq(0)]
        with m.Elif(add_run):
            m.d.sync += a_i.eq(a_i + 1)
            with m.If(a_i == f.length - 1):
                m.d.sync += [a_i.eq(0), a_c.eq(a_c + 1), a_base.eq(a_base + f.bstride), a_bank.eq(a_bank + 1)]
                with m.If(a_bank == P - 1):
                    m.d.sync += [a_bank.eq(0), a_obase.eq(a_obase + f.ostride)]
                with m.If(a_c == f.count - 1):
                    m.d.sync += add_run.eq(0)

        # ibuf/wbuf read addresses (T0 -> data at T1)
        seq_run = Signal()
        seq_e = Signal(4)
        seq_base = Signal(16)
        with m.If(add_run):
            m.d.comb += [ia_addr.eq(f.buf + a_base + a_i), ib_addr.eq(f.b + a_base + a_i)]
        with m.Else():
            m.d.comb += ia_addr.eq(tok.addr)
        # weight word w is at wbuf[wbase + w] (the compiler loads the next weights into the other half)
        w_idx = Signal(16)
        m.d.comb += [w_idx.eq(Mux(wino, seq_base + seq_e, tok.widx)), wb_r.addr.eq(f.wbase + w_idx)]

        # 3x3 window convolver: the sweep's row streams read ibuf words, the lanes read wbuf
        cv_valid = C(0, 1)
        cv_busy = C(0, 1)
        cv_mac = C(0, 1)
        sp_valid = C(0, 1)
        if cfg.convolver:
            m.submodules.sweep = sweep = WindowSweep()
            m.submodules.conv3 = conv3 = WindowConvolver(cfg, ACC_BITS)
            wiring.connect(m, sweep.o, conv3.i)
            sw = sweep.params
            m.d.comb += [
                sweep.start.eq(compute_start & (is_conv | is_pool) & lb),
                conv3.start.eq(compute_start & is_conv & lb), conv3.pool.eq(is_pool),
                conv3.acc_in.eq(f.flags[4]), conv3.hold.eq(f.flags[5]),
                sw.count.eq(f.count), sw.step.eq(f.step), sw.gh.eq(f.gh), sw.gw.eq(f.gw),
                sw.y0.eq(f.y0), sw.x0.eq(f.x0), sw.row0.eq(f.row0), sw.H.eq(f.H), sw.W.eq(f.W),
                sw.buf.eq(f.buf), sw.bstride.eq(f.bstride), sw.wo.eq(f.wo), sw.pbase.eq(f.b),
                ib_c.addr.eq(sweep.rd2_addr), sweep.rd0_data.eq(ib_a.data), sweep.rd1_data.eq(ib_b.data),
                sweep.rd2_data.eq(ib_c.data), conv3.wb_data.eq(wb_r.data),
            ]
            with m.If((is_conv | is_pool) & lb):
                m.d.comb += [ib_a.addr.eq(sweep.rd0_addr), ib_b.addr.eq(sweep.rd1_addr), w_idx.eq(conv3.wb_addr)]

            # POOL with flag LB: the sweep's windows reduced whole, one a cycle (the k x k
            # corner of the 3x3 window: k 2 or 3), one channel after the other into bank c % P
            win = sweep.o.p
            take = sweep.o.valid & sweep.o.ready & is_pool
            taps = [win.x[j] for j in range(9)]
            use = [Mux(f.k == 3, 1, (j // 3 < 2) & (j % 3 < 2)) for j in range(9)]
            sp_red, sp_addr = Signal(signed(ACC_BITS)), Signal(20)
            sp_bank = Signal(range(P))
            s_bank, s_obase = Signal(range(P)), Signal(20)
            # Balanced trees, 4 levels: a chain of 8 compares was the ECP5 board system's
            # critical path (50 ns). Taps outside the k x k corner count as -128 in the max
            # (tap 0 is always in it, so they never win) and as 0 in the sum.
            mx = _tree([Mux(use[j], taps[j], -128) for j in range(9)], lambda a, b: Mux(a > b, a, b))
            total = _tree([Mux(use[j], taps[j], 0) for j in range(9)], lambda a, b: a + b)
            with m.If(compute_start):
                m.d.sync += [s_bank.eq(0), s_obase.eq(0)]
            bank_now, obase_now = Signal.like(s_bank), Signal.like(s_obase)
            m.d.comb += [bank_now.eq(s_bank), obase_now.eq(s_obase)]
            with m.If(take & win.chan_first & ~win.first):       # a new channel
                m.d.comb += [bank_now.eq(Mux(s_bank == P - 1, 0, s_bank + 1)),
                             obase_now.eq(Mux(s_bank == P - 1, s_obase + f.ostride, s_obase))]
                m.d.sync += [s_bank.eq(bank_now), s_obase.eq(obase_now)]
            sp_v = Signal()
            m.d.sync += [sp_v.eq(take), sp_red.eq(Mux(avg, total, mx)), sp_addr.eq(obase_now + win.opix),
                         sp_bank.eq(bank_now)]
            sp_valid = sp_v
            cv_valid, cv_busy, cv_mac = conv3.o_valid, sweep.busy | conv3.busy | sp_v, conv3.mac

        # T1: tokens with their data
        t1 = Signal.like(tok)
        t1_valid = Signal()
        a1 = Signal()
        a1_addr = Signal(20)
        a1_bank = Signal(range(P))
        m.d.sync += [t1.eq(tok), t1_valid.eq(walker.tok_valid), a1.eq(add_run),
                     a1_addr.eq(a_obase + a_i), a1_bank.eq(a_bank)]
        x1 = Signal(signed(8))
        m.d.comb += x1.eq(Mux(t1.inb, ia_byte, 0))
        wb = cfg.weight_bits
        w_lane = [wb_r.data[wb * lane:wb * lane + wb].as_signed() for lane in range(P)]

        # Output-stage input (one source per instruction)
        o = self.o.p
        pi_valid, pi_vals, pi_addr, pi_bank, pi_all, pi_bias = (
            self.o.valid, [o.vals[lane] for lane in range(P)], o.addr, o.bank, o.all, o.bias)

        # Direct convolution: T1 multiply, T2 accumulate, T3 result
        conv_direct = is_conv & ~wino
        prod = [Signal(signed(28), name=f"prod{lane}") for lane in range(P)]
        p_first, p_last, p_valid = Signal(), Signal(), Signal()
        p_e = Signal(4)
        p_addr = Signal(20)
        macc = [Array(Signal(signed(ACC_BITS), name=f"m{lane}_{e}") for e in range(n_acc)) for lane in range(P)]

        # Winograd tile assembly (T1) and the 16-step multiply sequence
        tile = Signal(128)
        td = Signal()
        td_first, td_last = Signal(), Signal()
        tile_first = Signal()
        vreg = [Signal(signed(12), name=f"v{e}") for e in range(16)]
        seq_first, seq_last = Signal(), Signal()
        seq_addr, seq_y1, seq_x1 = Signal(20), Signal(), Signal()
        td_addr, td_y1, td_x1 = Signal(20), Signal(), Signal()
        td_base = Signal(16)
        # issue stage registers (carried so that a new tile can overwrite the sequencer)
        q_valid, q_first, q_last = Signal(), Signal(), Signal()
        q_e = Signal(4)
        q_v = Signal(signed(12))
        q_addr, q_y1, q_x1 = Signal(20), Signal(), Signal()

        with m.If(t1_valid & is_conv & wino):
            m.d.sync += tile.eq(Cat(tile[8:], x1))
            with m.If(t1.widx[:4] == 0):
                m.d.sync += tile_first.eq(t1.first)
            with m.If(t1.widx[:4] == 15):
                m.d.sync += [td.eq(1), td_first.eq(tile_first), td_last.eq(t1.last), td_addr.eq(t1.opix),
                             td_y1.eq(t1.y1_ok), td_x1.eq(t1.x1_ok), td_base.eq(t1.widx - 15)]
            with m.Else():
                m.d.sync += td.eq(0)
        with m.Else():
            m.d.sync += td.eq(0)

        # td: the complete tile is in `tile`; latch V and (re)start the sequence
        tile_bytes = [tile[8 * e:8 * e + 8].as_signed() for e in range(16)]
        with m.If(td):
            m.d.sync += [v.eq(expr) for v, expr in zip(vreg, input_transform(tile_bytes))]
            m.d.sync += [seq_run.eq(1), seq_e.eq(0), seq_base.eq(td_base), seq_first.eq(td_first),
                         seq_last.eq(td_last), seq_addr.eq(td_addr), seq_y1.eq(td_y1), seq_x1.eq(td_x1)]
        with m.Elif(seq_run):
            m.d.sync += seq_e.eq(seq_e + 1)
            with m.If(seq_e == 15):
                m.d.sync += seq_run.eq(0)
        # issue: wbuf address is seq_base + seq_e this cycle; the weight arrives with q_*
        m.d.sync += [q_valid.eq(seq_run), q_e.eq(seq_e), q_v.eq(Array(vreg)[seq_e]), q_first.eq(seq_first),
                     q_last.eq(seq_last & (seq_e == 15)), q_addr.eq(seq_addr), q_y1.eq(seq_y1), q_x1.eq(seq_x1)]

        # multiply stage (shared multiplier per lane): direct from T1, Winograd from q_*
        mul_b = Signal(signed(12))
        with m.If(wino):
            m.d.comb += mul_b.eq(q_v)
            m.d.sync += [p_valid.eq(q_valid & is_conv), p_first.eq(q_first), p_last.eq(q_last), p_e.eq(q_e),
                         p_addr.eq(q_addr)]
        with m.Else():
            m.d.comb += mul_b.eq(x1)
            m.d.sync += [p_valid.eq(t1_valid & conv_direct), p_first.eq(t1.first), p_last.eq(t1.last),
                         p_e.eq(0), p_addr.eq(t1.opix)]
        for lane in range(P):
            m.d.sync += prod[lane].eq(w_lane[lane] * mul_b)
        mac_now = Mux(wino, q_valid & is_conv, t1_valid & conv_direct) | cv_mac
        m.d.comb += self.mac.eq(mac_now)

        # accumulate
        fin, fin_w = Signal(), Signal()
        fin_addr = Signal(20)
        w_y1, w_x1 = Signal(), Signal()
        m.d.sync += [fin.eq(0), fin_w.eq(0)]
        with m.If(p_valid):
            for lane in range(P):
                m.d.sync += macc[lane][p_e].eq(Mux(p_first, 0, macc[lane][p_e]) + prod[lane])
            with m.If(p_last):
                m.d.sync += [fin.eq(~wino), fin_w.eq(wino), fin_addr.eq(p_addr)]
        # the seq's pixel flags ride along with p_addr via q_*; keep the last tile's
        with m.If(q_valid & q_last):
            m.d.sync += [w_y1.eq(q_y1), w_x1.eq(q_x1)]

        # Winograd output tile: Y = A^T M A, then four results over four cycles
        ytile = [[Signal(signed(ACC_BITS), name=f"y{lane}_{q}") for q in range(4)] for lane in range(P)]
        y_cnt = Signal(3)
        y_addr = Signal(20)
        y_ok = Signal(4)
        with m.If(fin_w if cfg.winograd else C(0, 1)):
            for lane in range(P) if cfg.winograd else ():
                outs = output_transform([macc[lane][e] for e in range(16)])
                m.d.sync += [ytile[lane][q].eq(outs[q]) for q in range(4)]
            m.d.sync += [y_cnt.eq(4), y_addr.eq(fin_addr), y_ok.eq(Cat(1, w_x1, w_y1, w_x1 & w_y1))]
        with m.Elif(y_cnt != 0):
            m.d.sync += y_cnt.eq(y_cnt - 1)
            for lane in range(P):
                m.d.sync += [ytile[lane][q].eq(ytile[lane][q + 1]) for q in range(3)]
            m.d.sync += y_ok.eq(y_ok >> 1)
        y_off = Array([C(0, 20), C(1, 20), f.wo, f.wo + 1])[4 - y_cnt]

        # POOL reduction at T1
        pacc = Signal(signed(ACC_BITS))
        pnew = Signal(signed(ACC_BITS))
        m.d.comb += pnew.eq(Mux(t1.first, x1, Mux(avg, pacc + x1, Mux(x1 > pacc, x1, pacc))))
        with m.If(t1_valid & is_pool):
            m.d.sync += pacc.eq(pnew)

        # ADD at T1
        add_sum = Signal(signed(10))
        m.d.comb += add_sum.eq(ia_byte.as_signed() + ib_byte.as_signed())

        with m.If(sp_valid):
            if cfg.convolver:
                m.d.comb += [pi_valid.eq(1), pi_addr.eq(sp_addr), pi_bank.eq(sp_bank)]
                m.d.comb += [pi_vals[lane].eq(sp_red) for lane in range(P)]
        with m.Elif(cv_valid):
            if cfg.convolver:
                m.d.comb += [pi_valid.eq(1), pi_addr.eq(conv3.o_addr), pi_all.eq(1), pi_bias.eq(1)]
                m.d.comb += [pi_vals[lane].eq(conv3.o_vals[lane]) for lane in range(P)]
        with m.Elif(fin):
            m.d.comb += [pi_valid.eq(1), pi_addr.eq(fin_addr), pi_all.eq(1), pi_bias.eq(1)]
            m.d.comb += [pi_vals[lane].eq(macc[lane][0]) for lane in range(P)]
        with m.Elif(y_cnt != 0):
            m.d.comb += [pi_valid.eq(y_ok[0]), pi_addr.eq(y_addr + y_off), pi_all.eq(1), pi_bias.eq(1)]
            m.d.comb += [pi_vals[lane].eq(ytile[lane][0] >> 2) for lane in range(P)]
        with m.Elif(t1_valid & is_pool & t1.last):
            m.d.comb += [pi_valid.eq(1), pi_addr.eq(t1.opix), pi_bank.eq(t1.bank)]
            m.d.comb += [pi_vals[lane].eq(pnew) for lane in range(P)]
        with m.Elif(a1):
            m.d.comb += [pi_valid.eq(1), pi_addr.eq(a1_addr), pi_bank.eq(a1_bank)]
            m.d.comb += [pi_vals[lane].eq(add_sum) for lane in range(P)]

        # Every stage's valid bit: each stage sets the next one's in the same cycle it empties,
        # so this stays high without a gap until the last result has gone to the output stage.
        m.d.comb += self.busy.eq(walker.busy | add_run | walker.tok_valid | t1_valid | a1 | td | seq_run |
                                 q_valid | p_valid | fin | fin_w | (y_cnt != 0) | cv_busy)
        return m
