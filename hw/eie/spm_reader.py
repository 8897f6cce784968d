"""Sparse-matrix read unit: column jobs in, up to ``cfg.macs`` real (v, row) entries per cycle out.

The sparse-matrix memory is 64 bits wide: eight (v, z) entries per word
(layout from :mod:`sparsa.sw.eie_format`). Two stages:

* the **word fetcher** walks the words of each column job [start, end) and reads one word per
  cycle into a 4-deep word FIFO, tagging each with the lanes that belong to the job;
* the **lane picker** takes the lowest remaining lane holding a real entry (v != 0), adds
  ``z + 1`` of every lane up to it to the running row position, and emits that entry. With
  ``cfg.macs == 2`` it also emits the next real entry of the same word in the same cycle
  when that entry's row has the other parity, i.e. belongs to the other accumulator bank.

Padding entries (v = 0, z = 15) between real entries of the same word are skipped in the same
cycle: they only move the row address. A padding entry costs a cycle only when the rest of a
word is nothing but padding (then all of it is consumed in one cycle). EIE spends a cycle on
every padding entry; this is the main reason sparsa beats its cycle counts.

Why two: a PE whose rows average about one entry per column (NT-We: 600 rows over 64 PEs)
is as fast as the broadcast at one entry a cycle, so its queue fills at every column heavier
than average and the whole array stalls. Retiring up to two entries a cycle gives it slack.

Throughput: one word per cycle; one real entry per cycle, or two when they pair.
Latency: job to first entry 3 cycles.
"""

from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.fifo import SyncFIFOBuffered
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.sw.eie_format import ENTRIES_PER_WORD, ENTRY_BITS, V_BITS, Z_BITS, WORD_BITS

from .layouts import column_job_layout, issue_layout, row_bits

__all__ = ["SparseMatrixReader"]

_LANES = ENTRIES_PER_WORD


class SparseMatrixReader(wiring.Component):
    """Word fetcher + lane picker over one PE's sparse-matrix memory.

    Members
    -------
    i : In(stream.Signature(column_job_layout))
    o : Out(stream.Signature(issue_layout))
        Up to ``cfg.macs`` real entries a cycle, local rows resolved, slot = row % macs.
    ld_en, ld_addr, ld_data : In
        Load port of the 64-bit sparse-matrix memory.
    busy : Out(1)
    emit : Out(2)
        Real entries issued this cycle (0..macs), for the ``busy`` and ``macs`` counters.
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
            "o": Out(stream.Signature(issue_layout(cfg))),
            "ld_en": In(1), "ld_addr": In(32), "ld_data": In(64),
            "busy": Out(1), "emit": Out(2), "pads": Out(4),
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
        pos = Signal(row_bits(cfg))
        pos_in = Signal.like(pos)
        m.d.comb += pos_in.eq(Mux(h_first & (consumed == 0), 0, pos))
        in_range = Signal(_LANES)
        remaining = Signal(_LANES)
        real = Signal(_LANES)
        m.d.comb += [
            in_range.eq(((C(0xFF, 8) << h_lo)[0:8]) & (C(0xFF, 8) >> ~h_hi)),
            remaining.eq(in_range & ~consumed),
            real.eq(remaining & Cat(*[vl != 0 for vl in v])),
        ]

        def through(lane_onehot):
            """Remaining lanes up to and including ``lane_onehot``."""
            return remaining & (lane_onehot | (lane_onehot - 1)[0:_LANES])

        def advance(mask):
            """Row-position advance over the lanes in ``mask`` (each moves it by z + 1)."""
            return sum(Mux(mask[l], z[l] + 1, 0) for l in range(_LANES))

        def pick(lane_onehot):
            pv = Signal(V_BITS)
            for l in range(_LANES):
                with m.If(lane_onehot[l]):
                    m.d.comb += pv.eq(v[l])
            return pv

        # Entry A: the lowest remaining real lane. Entry B (cfg.macs == 2): the next one,
        # issued in the same cycle when its row has the other parity (other accumulator bank).
        lsb_a = Signal(_LANES)
        m.d.comb += lsb_a.eq(real & (~real + 1))
        upto_a = Signal(_LANES)
        m.d.comb += upto_a.eq(through(lsb_a))
        row_a = Signal.like(pos)
        m.d.comb += row_a.eq(pos_in + advance(upto_a) - 1)
        pair = Signal()
        upto_b = Signal(_LANES)
        row_b = Signal.like(pos)
        if cfg.macs == 2:
            rest = Signal(_LANES)
            lsb_b = Signal(_LANES)
            m.d.comb += [
                rest.eq(real & ~lsb_a),
                lsb_b.eq(rest & (~rest + 1)),
                upto_b.eq(through(lsb_b)),
                row_b.eq(pos_in + advance(upto_b) - 1),
                pair.eq(rest.any() & (row_a[0] != row_b[0])),
            ]
            v_b = pick(lsb_b)
        any_real = Signal()
        upto = Signal(_LANES)
        m.d.comb += [
            any_real.eq(real.any()),
            # Lanes consumed this cycle: through the last entry issued, or all remaining lanes
            # when they are only padding.
            upto.eq(Mux(pair, upto_b, Mux(any_real, upto_a, remaining))),
        ]
        new_pos = Signal.like(pos)
        m.d.comb += new_pos.eq(pos_in + advance(upto))
        v_a = pick(lsb_a)

        step = Signal()
        done_word = Signal()
        m.d.comb += [
            step.eq(words.r_rdy & (self.o.ready | ~self.o.valid)),
            done_word.eq((remaining & ~upto) == 0),
            words.r_en.eq(step & done_word),
        ]
        with m.If(self.o.ready | ~self.o.valid):
            m.d.sync += [self.o.valid.eq(words.r_rdy & any_real), self.o.p.x.eq(h_x)]
            for b in range(cfg.macs):
                slot = self.o.p.slot[b]
                a_here = row_a[0] == b if cfg.macs == 2 else C(1)
                m.d.sync += [
                    slot.valid.eq(words.r_rdy & any_real & (a_here | pair)),
                    slot.row.eq(Mux(a_here, row_a, row_b)),
                    slot.v.eq(Mux(a_here, v_a, v_b) if cfg.macs == 2 else v_a),
                ]
        with m.If(step):
            m.d.sync += [pos.eq(new_pos), consumed.eq(Mux(done_word, 0, consumed | upto))]
        issued = Signal(2)
        m.d.comb += [
            issued.eq(Mux(step & any_real, 1 + pair, 0)),
            self.emit.eq(issued),
            self.pads.eq(Mux(step, sum(upto[l] for l in range(_LANES)) - issued, 0)),
            # words.level, not r_rdy: the buffered FIFO holds a word a cycle before showing it.
            self.busy.eq(job_valid | inflight | (words.level != 0) | self.o.valid),
        ]
        return m
