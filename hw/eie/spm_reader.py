"""Sparse-matrix read unit: column jobs in, one real (v, row) entry per cycle out.

The sparse-matrix memory is 64 bits wide: eight (v, z) entries per word
(layout from :mod:`sparsa.sw.eie_format`). Two stages:

* the **word fetcher** walks the words of each column job [start, end) and reads one word per
  cycle into a 4-deep word FIFO, tagging each with the lanes that belong to the job;
* the **lane picker** takes the lowest remaining lane holding a real entry (v != 0), adds
  ``z + 1`` of every lane up to it to the running row position, and emits that entry.

Padding entries (v = 0, z = 15) between real entries of the same word are skipped in the same
cycle: they only move the row address. A padding entry costs a cycle only when the rest of a
word is nothing but padding (then all of it is consumed in one cycle). EIE spends a cycle on
every padding entry; this is the main reason sparsa beats its cycle counts.

Throughput: one real entry per cycle. Latency: job to first entry 3 cycles.
"""

from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.sw.eie_format import ENTRIES_PER_WORD, ENTRY_BITS, V_BITS, Z_BITS, WORD_BITS

from .layouts import column_job_layout, entry_layout, row_bits

__all__ = ["SparseMatrixReader"]

_LANES = ENTRIES_PER_WORD


class SparseMatrixReader(wiring.Component):
    """Word fetcher + lane picker over one PE's sparse-matrix memory.

    Members
    -------
    i : In(stream.Signature(column_job_layout))
    o : Out(stream.Signature(entry_layout))
        Real entries, with the local row already resolved.
    ld_en, ld_addr, ld_data : In
        Load port of the 64-bit sparse-matrix memory.
    busy : Out(1)
    emit : Out(1)
        A real entry left this cycle (for the busy counter).
    pads : Out(4)
        Padding entries consumed this cycle (0..8).
    """

    FIFO_DEPTH = 4

    def __init__(self, cfg, *, init=()):
        self.cfg = cfg
        self._init = list(init)
        self.addr_bits = max(1, (cfg.spm_words - 1).bit_length())
        super().__init__({
            "i": In(stream.Signature(column_job_layout(cfg))),
            "o": Out(stream.Signature(entry_layout(cfg))),
            "ld_en": In(1), "ld_addr": In(32), "ld_data": In(64),
            "busy": Out(1), "emit": Out(1), "pads": Out(4),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.spm = spm = Memory(shape=WORD_BITS, depth=cfg.spm_words, init=self._init)
        wp = spm.write_port()
        m.d.comb += [wp.addr.eq(self.ld_addr), wp.data.eq(self.ld_data), wp.en.eq(self.ld_en)]
        rd = spm.read_port()   # loads only while idle: no transparency needed

        # ---- word fetcher ---------------------------------------------------------------
        # FIFO entry: word | lo lane | hi lane | first word of column | x
        fifo_w = WORD_BITS + 3 + 3 + 1 + 16
        m.submodules.words = words = SyncFIFOBuffered(width=fifo_w, depth=self.FIFO_DEPTH)
        job_valid = Signal()
        job = Signal.like(self.i.p)
        word = Signal(cfg.pointer_bits - 3 + 1)
        last_word = Signal.like(word)
        first = Signal()
        inflight = Signal()
        inflight_lo = Signal(3)
        inflight_hi = Signal(3)
        inflight_first = Signal()
        inflight_x = Signal(16)
        # Room for the word being read and the one already in flight.
        room = Signal()
        m.d.comb += room.eq(words.level + inflight < self.FIFO_DEPTH)
        issue = Signal()
        m.d.comb += [
            issue.eq(job_valid & room),
            rd.addr.eq(word), rd.en.eq(1),
        ]
        is_last = Signal()
        m.d.comb += is_last.eq(word == last_word)
        # Take a new job when none is held or the held one issues its last word now.
        m.d.comb += self.i.ready.eq(~job_valid | (issue & is_last))
        with m.If(self.i.valid & self.i.ready):
            m.d.sync += [
                job_valid.eq(1), job.eq(self.i.p),
                word.eq(self.i.p.start >> 3),
                last_word.eq((self.i.p.end - 1) >> 3),
                first.eq(1),
            ]
        with m.Elif(issue):
            m.d.sync += [word.eq(word + 1), first.eq(0)]
            with m.If(is_last):
                m.d.sync += job_valid.eq(0)
        m.d.sync += [
            inflight.eq(issue),
            inflight_lo.eq(Mux(first, job.start[0:3], 0)),
            inflight_hi.eq(Mux(is_last, (job.end - 1)[0:3], 7)),
            inflight_first.eq(first),
            inflight_x.eq(job.x),
        ]
        m.d.comb += [
            words.w_en.eq(inflight),
            words.w_data.eq(Cat(rd.data, inflight_lo, inflight_hi, inflight_first, inflight_x)),
        ]

        # ---- lane picker ----------------------------------------------------------------
        h_word = words.r_data[0:WORD_BITS]
        h_lo = words.r_data[WORD_BITS:WORD_BITS + 3]
        h_hi = words.r_data[WORD_BITS + 3:WORD_BITS + 6]
        h_first = words.r_data[WORD_BITS + 6]
        h_x = words.r_data[WORD_BITS + 7:WORD_BITS + 7 + 16]
        v = [h_word[ENTRY_BITS * l:ENTRY_BITS * l + V_BITS] for l in range(_LANES)]
        z = [h_word[ENTRY_BITS * l + V_BITS:ENTRY_BITS * (l + 1)] for l in range(_LANES)]

        consumed = Signal(_LANES)
        pos = Signal(row_bits(self.cfg))
        in_range = Signal(_LANES)
        remaining = Signal(_LANES)
        real = Signal(_LANES)
        lsb = Signal(_LANES)
        upto = Signal(_LANES)
        any_real = Signal()
        m.d.comb += [
            in_range.eq(((C(0xFF, 8) << h_lo)[0:8]) & (C(0xFF, 8) >> ~h_hi)),
            remaining.eq(in_range & ~consumed),
            real.eq(remaining & Cat(*[vl != 0 for vl in v])),
            any_real.eq(real.any()),
            lsb.eq(real & (~real + 1)),
            # Lanes consumed this cycle: up to and including the picked real entry, or all
            # remaining lanes when they are only padding.
            upto.eq(Mux(any_real, remaining & (lsb | (lsb - 1)[0:_LANES]), remaining)),
        ]
        delta = Signal(8)
        m.d.comb += delta.eq(sum(Mux(upto[l], z[l] + 1, 0) for l in range(_LANES)))
        pos_in = Signal.like(pos)
        m.d.comb += pos_in.eq(Mux(h_first & (consumed == 0), 0, pos))
        new_pos = Signal.like(pos)
        m.d.comb += new_pos.eq(pos_in + delta)
        pick_v = Signal(V_BITS)
        m.d.comb += pick_v.eq(Mux(lsb[0], v[0], 0))
        for l in range(1, _LANES):
            with m.If(lsb[l]):
                m.d.comb += pick_v.eq(v[l])
        step = Signal()
        done_word = Signal()
        m.d.comb += [
            step.eq(words.r_rdy & (self.o.ready | ~self.o.valid)),
            done_word.eq((remaining & ~upto) == 0),
            words.r_en.eq(step & done_word),
        ]
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += [
                self.o.valid.eq(words.r_rdy & any_real),
                self.o.p.row.eq(new_pos - 1),
                self.o.p.v.eq(pick_v),
                self.o.p.x.eq(h_x),
            ]
        with m.If(step):
            m.d.sync += [pos.eq(new_pos), consumed.eq(Mux(done_word, 0, consumed | upto))]
        m.d.comb += [
            self.emit.eq(step & any_real),
            self.pads.eq(Mux(step, sum(upto[l] for l in range(_LANES)) - any_real, 0)),
            # words.level, not r_rdy: the buffered FIFO holds a word a cycle before showing it.
            self.busy.eq(job_valid | inflight | (words.level != 0) | self.o.valid),
        ]
        return m
