"""The CNN engine's load unit: LOAD beats from DRAM into ibuf, wbuf or the bias registers."""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.memory import WritePort
from amaranth.lib.wiring import In, Out
from amaranth.utils import ceil_log2

from sparsa.sw.cnn.isa import FIELD_BITS, Target

from sparsa.hw.cnn.axi import beat_layout
from sparsa.hw.cnn.sequencer import load_row_layout

__all__ = ["LoadUnit"]


class LoadUnit(wiring.Component):
    """Writes a LOAD's rows, one DRAM beat a cycle, into its target.

    * ibuf (64-bit words, byte enables): each beat is rotated onto ibuf words; the part that
      spills into the next word waits in a carry register and is merged with the next beat,
      so one word is written a cycle; a row whose last beat spills costs one more cycle.
    * wbuf (``weight_bits * lanes``-bit words, one beat or more): beats are shifted into a
      word, written when full.
    * bias (``32 * lanes`` bits): beats are shifted in.

    Ports
    -----
    begin : In(1)
        A LOAD may begin (clears the carry and the wbuf word count).
    target : In(Target)
        The LOAD's target field.
    load_row_start : In(1), load_row : In(load_row_layout())
        A row's read command was accepted; its first destination and DRAM byte lane.
    load_run : In(1), i : In(stream.Signature(beat_layout))
        The row's beats (``load_run`` while they are expected).
    load_row_done : Out(1)
        The row's last byte is written (comb, with the last write).
    ibuf, wbuf : memory write ports (driven)
    bias : Out(32 * lanes)
    """

    def __init__(self, cfg):
        self.cfg = cfg
        P = cfg.lanes
        # `In(WritePort.Signature)`: the flipped port, i.e. the side that drives it
        super().__init__({
            "begin": In(1), "target": In(FIELD_BITS["target"]),
            "load_row_start": In(1), "load_row": In(load_row_layout()),
            "load_run": In(1), "i": In(stream.Signature(beat_layout)), "load_row_done": Out(1),
            "ibuf": In(WritePort.Signature(addr_width=ceil_log2(cfg.ibuf_bytes // 8), shape=64, granularity=8)),
            "wbuf": In(WritePort.Signature(addr_width=ceil_log2(cfg.wbuf_words), shape=cfg.weight_bits * P)),
            "bias": Out(32 * P),
        })

    def elaborate(self, platform):
        m = Module()
        P = self.cfg.lanes
        ib_w, wb_w, beat = self.ibuf, self.wbuf, self.i
        dest = Signal(20)
        ld_word = Signal(17)
        ld_rot = Signal(3)
        carry = Signal(64)
        carry_en = Signal(8)
        ld_flush = Signal()
        w_beats = self.cfg.weight_word_bytes // 8          # beats per wbuf word (>= 1)
        w_word = Signal(self.cfg.weight_bits * P)
        w_cnt = Signal(range(max(2, w_beats)))

        with m.If(self.begin):
            m.d.sync += [w_cnt.eq(0), ld_flush.eq(0), carry_en.eq(0)]
        with m.If(self.load_row_start):
            # DRAM lane j of beat k goes to ibuf byte s + 8k + j, s = dest - (dram & 7)
            ld_start = Signal(signed(22))
            m.d.comb += ld_start.eq(self.load_row.dest - self.load_row.lo)
            m.d.sync += [dest.eq(self.load_row.dest), ld_word.eq(ld_start >> 3), ld_rot.eq(ld_start[:3]),
                         carry.eq(0), carry_en.eq(0), ld_flush.eq(0)]

        tgt = self.target
        with m.If(self.load_run & (tgt == Target.IBUF)):
            with m.If(ld_flush):
                m.d.comb += [ib_w.addr.eq(ld_word), ib_w.data.eq(carry), ib_w.en.eq(carry_en),
                             self.load_row_done.eq(1)]
                m.d.sync += [ld_flush.eq(0), carry_en.eq(0)]
            with m.Else():
                m.d.comb += beat.ready.eq(1)
                lanes = Signal(8)
                rot_d, rot_en = Signal(128), Signal(16)
                m.d.comb += [
                    lanes.eq((C(0xFF, 8) << beat.p.lo)[:8] & (C(0xFF, 8) >> ~beat.p.hi)),
                    rot_d.eq(Cat(beat.p.data, C(0, 64)) << (ld_rot * 8)),
                    rot_en.eq(Cat(lanes, C(0, 8)) << ld_rot),
                ]
                with m.If(beat.valid):
                    m.d.comb += [ib_w.addr.eq(ld_word), ib_w.data.eq(rot_d[:64] | carry),
                                 ib_w.en.eq(rot_en[:8] | carry_en)]
                    m.d.sync += [ld_word.eq(ld_word + 1), carry.eq(rot_d[64:]), carry_en.eq(rot_en[8:])]
                    with m.If(beat.p.last):
                        with m.If(rot_en[8:] != 0):
                            m.d.sync += ld_flush.eq(1)
                        with m.Else():
                            m.d.comb += self.load_row_done.eq(1)
        with m.If(self.load_run & (tgt == Target.WBUF)):
            m.d.comb += beat.ready.eq(1)
            with m.If(beat.valid):
                word = Cat(w_word[64:], beat.p.data)
                m.d.sync += [w_word.eq(word), w_cnt.eq(w_cnt + 1)]
                with m.If(w_cnt == w_beats - 1):
                    m.d.comb += [wb_w.addr.eq(dest), wb_w.data.eq(word), wb_w.en.eq(1)]
                    m.d.sync += [dest.eq(dest + 1), w_cnt.eq(0)]
                m.d.comb += self.load_row_done.eq(beat.p.last)
        with m.If(self.load_run & (tgt == Target.BIAS)):
            m.d.comb += beat.ready.eq(1)
            with m.If(beat.valid):
                m.d.sync += self.bias.eq(Cat(self.bias[64:], beat.p.data))
                m.d.comb += self.load_row_done.eq(beat.p.last)
        return m
