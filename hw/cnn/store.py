"""The CNN engine's store unit: a SAVE, from obuf to DRAM, in the background of the sequencer."""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import ReadPort
from amaranth.lib.wiring import In, Out, connect, flipped
from amaranth.utils import ceil_log2

from sparsa.sw.cnn.isa import FIELD_BITS

from sparsa.hw.cnn.axi import AXI4Signature, AXIWriter
from sparsa.hw.cnn.sequencer import instr_layout

__all__ = ["StoreUnit"]


class StoreUnit(wiring.Component):
    """Runs one SAVE at a time: ``count`` rows of ``length`` bytes, row r from obuf bank
    ``r % lanes`` at ``buf + (r // lanes) * ostride`` to DRAM ``dram + r * dstride``.

    It takes its own copy of the SAVE's fields at ``start``, so the sequencer can fetch and
    run the next instructions meanwhile (the compiler alternates obuf halves and sets flag
    SYNC where an instruction must wait for it).

    Data path: obuf word reads -> 4-entry FIFO -> pairs of words rotated into DRAM-aligned
    beats with strobes -> AXI writer. Throughput one beat a cycle within a burst; a row costs
    its AW and B handshakes (:class:`~.axi.AXIWriter`) and two cycles of its own.

    Ports
    -----
    start : In(1), instr : In(instr_layout())
        Take the SAVE on ``instr`` (when not ``busy``).
    busy : Out(1)
    obuf : array of ``lanes`` obuf read ports (driven: address and enable)
    axi : Out(AXI4Signature(read=False))
        The AW/W/B half of the engine's AXI4 master.
    """

    def __init__(self, cfg):
        self.cfg = cfg
        rp = ReadPort.Signature(addr_width=ceil_log2(cfg.obuf_depth // 8), shape=64)
        super().__init__({
            "start": In(1), "instr": In(instr_layout()), "busy": Out(1),
            "obuf": In(rp).array(cfg.lanes),        # In: the flipped port, the side that drives it
            "axi": Out(AXI4Signature(read=False)),
        })

    def elaborate(self, platform):
        m = Module()
        P = self.cfg.lanes
        f = self.instr
        m.submodules.wr = wr = AXIWriter()
        connect(m, flipped(self.axi), wr.axi)

        st_count, st_length = Signal(FIELD_BITS["count"]), Signal(FIELD_BITS["length"])
        st_dstride, st_ostride = Signal(FIELD_BITS["dstride"]), Signal(FIELD_BITS["ostride"])
        sv_c = Signal(16)
        sv_dram = Signal(32)
        sv_gbase = Signal(20)
        sv_bank = Signal(range(P))
        sv_bank_d = Signal(range(P))
        sv_word = Signal(17)            # next obuf word to read
        sv_words = Signal(18)           # words still to read (beats + 1)
        sv_rot = Signal(3)              # byte rotation from obuf words to DRAM beats
        sv_beat = Signal(18)            # beats sent
        sv_nbeats = Signal(18)
        sv_first_strb, sv_last_strb = Signal(8), Signal(8)
        sv_prev = Signal(64)
        sv_have_prev = Signal()
        sv_inflight = Signal()
        m.submodules.sv_fifo = sv_fifo = SyncFIFO(width=64, depth=4)

        with m.FSM(name="store") as store:
            m.d.comb += self.busy.eq(~store.ongoing("S_IDLE"))
            with m.State("S_IDLE"):
                with m.If(self.start):
                    m.d.sync += [sv_c.eq(0), sv_dram.eq(f.dram), sv_gbase.eq(f.buf), sv_bank.eq(0),
                                 st_count.eq(f.count), st_length.eq(f.length),
                                 st_dstride.eq(f.dstride), st_ostride.eq(f.ostride)]
                    m.next = "S_CMD"
            with m.State("S_CMD"):
                with m.If(sv_c == st_count):
                    m.next = "S_IDLE"
                with m.Else():
                    m.d.comb += [wr.cmd.valid.eq(1), wr.cmd.p.addr.eq(sv_dram), wr.cmd.p.nbytes.eq(st_length)]
                    # DRAM beat k holds bank bytes s + 8k .. s + 8k + 7, s = bank start - (dram & 7)
                    d7 = sv_dram[:3]
                    start = Signal(signed(22))
                    nbeats = Signal(18)
                    m.d.comb += [start.eq(sv_gbase - d7), nbeats.eq((d7 + st_length + 7) >> 3)]
                    with m.If(wr.cmd.ready):
                        m.d.sync += [sv_word.eq(start >> 3), sv_rot.eq(start[:3]), sv_words.eq(nbeats + 1),
                                     sv_nbeats.eq(nbeats), sv_beat.eq(0), sv_have_prev.eq(0),
                                     sv_first_strb.eq(C(0xFF, 8) << d7),
                                     sv_last_strb.eq(C(0xFF, 8) >> ~(d7 + st_length - 1)[:3])]  # 7 - last lane
                        m.next = "S_DATA"
                        with m.If(st_length == 0):
                            m.next = "S_NEXT"
            with m.State("S_DATA"):
                with m.If(wr.done):
                    m.next = "S_NEXT"
            with m.State("S_NEXT"):
                m.d.sync += [sv_c.eq(sv_c + 1), sv_dram.eq(sv_dram + st_dstride), sv_bank.eq(sv_bank + 1)]
                with m.If(sv_bank == P - 1):
                    m.d.sync += [sv_bank.eq(0), sv_gbase.eq(sv_gbase + st_ostride)]
                m.next = "S_CMD"

        in_save = store.ongoing("S_DATA")
        room = sv_fifo.level + sv_inflight < 3
        issue = in_save & (sv_words != 0) & room
        for port in self.obuf:
            m.d.comb += [port.addr.eq(sv_word), port.en.eq(issue)]
        m.d.sync += [sv_inflight.eq(issue), sv_bank_d.eq(sv_bank)]
        with m.If(issue):
            m.d.sync += [sv_word.eq(sv_word + 1), sv_words.eq(sv_words - 1)]
        m.d.comb += [sv_fifo.w_en.eq(sv_inflight), sv_fifo.w_data.eq(Array(p.data for p in self.obuf)[sv_bank_d])]
        pair = Cat(sv_prev, sv_fifo.r_data)
        strb = Signal(8)
        m.d.comb += strb.eq(Mux(sv_beat == 0, sv_first_strb, 0xFF) & Mux(sv_beat == sv_nbeats - 1, sv_last_strb, 0xFF))
        m.d.comb += [wr.data.valid.eq(in_save & sv_have_prev & sv_fifo.r_rdy),
                     # bytes outside the strobes are zeroed: they may never have been written (X in simulation)
                     wr.data.p.data.eq(pair.bit_select(sv_rot * 8, 64) & Cat(*[strb[i].replicate(8) for i in range(8)])),
                     wr.data.p.strb.eq(strb)]
        with m.If(in_save & sv_fifo.r_rdy & (~sv_have_prev | wr.data.ready)):
            m.d.comb += sv_fifo.r_en.eq(1)
            m.d.sync += [sv_prev.eq(sv_fifo.r_data), sv_have_prev.eq(1)]
            with m.If(sv_have_prev):
                m.d.sync += sv_beat.eq(sv_beat + 1)
        return m
