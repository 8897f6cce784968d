"""Arithmetic unit: codebook lookup, multiply by x_j, accumulate, and the output stage.

Compute (two stages, one entry per cycle):

1. look up ``codebook[v]``, multiply by ``x_j``, and read the accumulator of ``row``;
2. add and write the accumulator back.

Back-to-back hits on the same row (the last row of column j and the first of column j+1)
are handled by the accumulator read port being transparent for the write port: a read in the
cycle of a write to the same address returns the value being written (EIE's bypass path).

Output stage (driven by the central control, one row per cycle, latency 1): ``acc + bias``,
rounding shift ``(a + 2^(S-1)) >> S``, saturation to int16, optional ReLU -- exactly
:mod:`sparsa.sw.golden_eie` -- and the accumulator is cleared behind it for the next layer.
"""

from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.sw.eie_format import ACT_MAX, ACT_MIN, BIAS_BITS

from .layouts import ACT, codebook_layout, entry_layout, row_bits

__all__ = ["ArithmeticUnit"]


class ArithmeticUnit(wiring.Component):
    """Multiply-accumulate into the PE's accumulators, then the bias/shift/saturate stage.

    Members
    -------
    i : In(stream.Signature(entry_layout))
        Always ready: one entry per cycle.
    codebook : In(codebook_layout)
        The current layer's 16 shared values.
    drain : In(1)
        Output phase: ``drain_row`` is valid this cycle (the compute port is idle then).
    drain_row : In(row bits)
    bias_addr : In
        Bias word for ``drain_row`` (layer table ``bias_base`` + row).
    shift : In(6), relu : In(1)
    y_valid : Out(1), y_row : Out, y : Out(signed(16))
        The finished activation of a row, one cycle after ``drain``.
    ld_bias, ld_addr, ld_data : In
        Load port of the bias memory.
    busy : Out(1)
    """

    def __init__(self, cfg, *, init_bias=()):
        self.cfg = cfg
        self._init_bias = list(init_bias)
        self.rb = row_bits(cfg)
        self.bias_addr_bits = max(1, (cfg.bias_words - 1).bit_length())
        super().__init__({
            "i": In(stream.Signature(entry_layout(cfg))),
            "codebook": In(codebook_layout),
            "drain": In(1), "drain_row": In(self.rb), "bias_addr": In(self.bias_addr_bits),
            "shift": In(6), "relu": In(1),
            "y_valid": Out(1), "y_row": Out(self.rb), "y": Out(ACT),
            "ld_bias": In(1), "ld_addr": In(32), "ld_data": In(64),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        acc_shape = signed(cfg.acc_bits)
        m.submodules.acc = acc = Memory(shape=acc_shape, depth=cfg.max_rows_pe, init=[])
        m.submodules.bias = bias = Memory(shape=signed(BIAS_BITS), depth=cfg.bias_words,
                                          init=self._init_bias)
        acc_wr = acc.write_port()
        # Transparent: same-row read in the write cycle sees the new sum (the bypass).
        acc_rd = acc.read_port(transparent_for=(acc_wr,))
        bias_wr = bias.write_port()
        bias_rd = bias.read_port()
        m.d.comb += [bias_wr.addr.eq(self.ld_addr), bias_wr.data.eq(self.ld_data),
                     bias_wr.en.eq(self.ld_bias)]

        # ---- compute ------------------------------------------------------------------
        m.d.comb += self.i.ready.eq(1)
        p_valid = Signal()
        p_row = Signal(self.rb)
        p_prod = Signal(signed(32))
        m.d.sync += [
            p_valid.eq(self.i.valid),
            p_row.eq(self.i.p.row),
            p_prod.eq(self.codebook[self.i.p.v] * self.i.p.x),
        ]

        # ---- output stage ---------------------------------------------------------------
        d_valid = Signal()
        d_row = Signal(self.rb)
        m.d.sync += [d_valid.eq(self.drain), d_row.eq(self.drain_row)]
        m.d.comb += [bias_rd.addr.eq(self.bias_addr), bias_rd.en.eq(1)]

        with m.If(self.drain):
            m.d.comb += acc_rd.addr.eq(self.drain_row)
        with m.Else():
            m.d.comb += acc_rd.addr.eq(self.i.p.row)
        with m.If(d_valid):
            # Clear behind the output stage so the next layer starts from zero.
            m.d.comb += [acc_wr.addr.eq(d_row), acc_wr.data.eq(0), acc_wr.en.eq(1)]
        with m.Else():
            m.d.comb += [acc_wr.addr.eq(p_row), acc_wr.data.eq(acc_rd.data + p_prod),
                         acc_wr.en.eq(p_valid)]

        # |total| < 2^acc_bits, so a shift beyond acc_bits rounds everything to 0 exactly.
        total = Signal(signed(cfg.acc_bits + 1))
        rounding = Signal(cfg.acc_bits + 1)
        shifted = Signal(signed(cfg.acc_bits + 2))
        m.d.comb += [
            total.eq(acc_rd.data + bias_rd.data),
            rounding.eq((C(1, cfg.acc_bits + 2) << self.shift) >> 1),
        ]
        with m.If(self.shift > cfg.acc_bits):
            m.d.comb += shifted.eq(0)
        with m.Else():
            m.d.comb += shifted.eq((total + rounding) >> self.shift)
        sat = Signal(ACT)
        with m.If(shifted > ACT_MAX):
            m.d.comb += sat.eq(ACT_MAX)
        with m.Elif(shifted < ACT_MIN):
            m.d.comb += sat.eq(ACT_MIN)
        with m.Else():
            m.d.comb += sat.eq(shifted)
        m.d.comb += [
            self.y_valid.eq(d_valid), self.y_row.eq(d_row),
            self.y.eq(Mux(self.relu & sat[-1], 0, sat)),
            self.busy.eq(p_valid),
        ]
        return m
