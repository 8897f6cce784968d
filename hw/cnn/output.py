"""The CNN engine's output stage: + bias, rounding shift, leaky ReLU, saturate, ReLU -> obuf."""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from sparsa.sw.cnn.isa import Op

from sparsa.hw.cnn.sequencer import instr_layout

__all__ = ["OutputStage", "result_layout", "ACC_BITS"]

ACC_BITS = 40      # accumulators: bias (32 bits) + up to 2^17 int8 products, Winograd Y with margin


def result_layout(cfg):
    """One result of every lane for pixel ``addr`` of obuf: written to every bank (``all``:
    CONV) or only to bank ``bank`` (POOL, ADD); ``bias``: add the lanes' biases."""
    return data.StructLayout({"vals": data.ArrayLayout(signed(ACC_BITS), cfg.lanes), "addr": 20,
                              "bank": range(cfg.lanes), "all": 1, "bias": 1})


class OutputStage(wiring.Component):
    """Four pipeline stages from a result to its obuf bytes, one result a cycle, no stall.

    T1: + bias (CONV) and the address; T2: rounding shift by the instruction's ``shift`` (CONV,
    average POOL) and ``+ obase`` on the address; T3: a CONV with flag LEAKY multiplies a
    negative value by ``alpha`` (clamped to 15 bits first: for any alpha >= 1 a value below
    -16384 saturates to -128 either way, so the product stays small); then ``(x + 64) >> 7``,
    saturation to int8 and ReLU (CONV and ADD with flag RELU) on the way into obuf at T3's write.

    Ports
    -----
    i : In(stream.Signature(result_layout(cfg), always_ready=True))
    instr : In(instr_layout())
        The running instruction (op, flags, shift, obase).
    bias : In(32 * lanes)
    obuf : array of ``lanes`` obuf write ports (driven; 64-bit words, byte enables)
    busy : Out(1)
        A result is in the stage (not yet written).
    """

    def __init__(self, cfg):
        self.cfg = cfg
        wp = WritePort.Signature(addr_width=ceil_log2(cfg.obuf_depth // 8), shape=64, granularity=8)
        super().__init__({
            "i": In(stream.Signature(result_layout(cfg), always_ready=True)),
            "instr": In(instr_layout()), "bias": In(32 * cfg.lanes),
            "obuf": In(wp).array(cfg.lanes),       # In: the flipped port, the side that drives it
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        P = self.cfg.lanes
        f, pi = self.instr, self.i.p
        is_conv = f.op == Op.CONV
        is_pool = f.op == Op.POOL
        relu, avg, leaky = f.flags[0], f.flags[2], f.flags[7]
        shift = Mux(is_conv | (is_pool & avg), f.shift, 0)
        do_relu = relu & (is_conv | (f.op == Op.ADD))
        do_leaky = leaky & is_conv
        o1_valid, o2_valid, o3_valid = Signal(), Signal(), Signal()
        o1_addr, o2_addr, o3_addr = Signal(20), Signal(20), Signal(20)
        o1_we, o2_we, o3_we = Signal(P), Signal(P), Signal(P)
        we = Mux(pi.all, C((1 << P) - 1, P), C(1, P) << pi.bank)
        # obuf addresses are offset by the instruction's obase (a stage of its own for the adder)
        m.d.sync += [o1_valid.eq(self.i.valid), o1_addr.eq(pi.addr), o1_we.eq(we),
                     o2_valid.eq(o1_valid), o2_addr.eq(o1_addr + f.obase), o2_we.eq(o1_we),
                     o3_valid.eq(o2_valid), o3_addr.eq(o2_addr), o3_we.eq(o2_we)]
        m.d.comb += self.busy.eq(o1_valid | o2_valid | o3_valid)
        rnd = Mux(shift == 0, 0, (C(1, 33) << shift) >> 1)
        for lane in range(P):
            s1 = Signal(signed(ACC_BITS + 1), name=f"s1_{lane}")
            s2 = Signal(signed(ACC_BITS + 1), name=f"s2_{lane}")
            b = self.bias[32 * lane:32 * lane + 32].as_signed()
            m.d.sync += s1.eq(pi.vals[lane] + Mux(pi.bias, b, 0))
            m.d.sync += s2.eq((s1 + rnd) >> shift)
            c2 = Signal(signed(15), name=f"c2_{lane}")
            m.d.comb += c2.eq(Mux(s2 > 16383, 16383, Mux(s2 < -16384, -16384, s2)))
            s3 = Signal(signed(24), name=f"s3_{lane}")      # the value times 128 (times alpha if leaky)
            m.d.sync += s3.eq(Mux(do_leaky & (c2 < 0), c2 * f.alpha, c2 << 7))
            s4 = Signal(signed(17), name=f"s4_{lane}")
            m.d.comb += s4.eq((s3 + 64) >> 7)
            sat = Signal(signed(8), name=f"sat{lane}")
            m.d.comb += sat.eq(Mux(s4 > 127, 127, Mux(s4 < -128, -128, s4)))
            port = self.obuf[lane]
            m.d.comb += [
                port.addr.eq(o3_addr[3:]),
                port.data.eq(Cat(*[Mux(do_relu & (sat < 0), 0, sat)] * 8)),
                port.en.eq(Mux(o3_valid & o3_we[lane], C(1, 8) << o3_addr[:3], 0)),
            ]
        return m
