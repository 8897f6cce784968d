"""Serial sparse-matrix read unit: EIE's reader, one entry of the column a cycle, for small FPGAs.

The same ports and the same answers as :class:`~sparsa.hw.eie.spm_reader.SparseMatrixReader`,
at a fraction of its area: it walks a column job's entries [start, end) one a cycle, padding
included (as EIE does), and keeps nothing but the current entry's address, the column's running
row position and one registered output. The pipelined reader decodes a whole 64-bit word a
cycle (prefix sums, compaction, pairing for ``macs == 2``) and buffers five words to keep two
multipliers fed at 100 MHz; on an iCE40 UP5K that machinery alone is a quarter of the chip, and
behind a 3 Mbaud UART link (about 1 ms an input) the compute it saves is a few microseconds.

An entry is 8 bits of the word (layout from :mod:`sparsa.sw.eie.format`): ``v`` (codebook
index, 0 = padding) and ``z`` (zeros before it). Its local row is the previous entry's row plus
``z + 1``, counted from -1 at the column's start.

Throughput: one entry (real or padding) a cycle; a job follows the previous one with no gap.
Latency: a job taken in cycle 0 shows its first real entry on ``o`` in cycle 2 (the memory read,
then the output register). ``o`` honours ``ready``. Requires ``cfg.macs == 1``.
"""

from amaranth import *
from amaranth.lib import wiring

from sparsa.sw.eie.format import ENTRY_BITS, V_BITS

from sparsa.hw.eie.layouts import row_bits
from sparsa.hw.eie.spm_reader import reader_members, sparse_matrix_memory

__all__ = ["SerialSparseMatrixReader"]


class SerialSparseMatrixReader(wiring.Component):
    """One entry a cycle over one PE's sparse-matrix memory (see module docstring).

    Members
    -------
    i : In(stream.Signature(column_job_layout))
    o : Out(stream.Signature(issue_layout))
        One real entry a cycle in slot 0, local row resolved.
    ld_en, ld_addr, ld_data : In
        Load port of the 64-bit sparse-matrix memory.
    busy : Out(1)
    emit : Out(2)
        Real entries issued this cycle (0 or 1).
    pads : Out(4)
        Padding entries retired this cycle (0 or 1).
    """

    def __init__(self, cfg, *, init=()):
        if cfg.macs != 1:
            raise ValueError(f"SerialSparseMatrixReader issues one entry a cycle: macs must be 1, not {cfg.macs}")
        self.cfg = cfg
        self._init = list(init)
        super().__init__(reader_members(cfg))

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        rd = sparse_matrix_memory(m, self, self._init)

        job_valid = Signal()
        entry = Signal(cfg.pointer_bits)       # the entry this cycle looks at
        x = Signal.like(self.i.p.x)
        next_row = Signal(row_bits(cfg))       # the row of the next entry if its z is 0

        # Whether the current entry is the job's last, and how many follow it, kept in
        # registers: computing it as entry + 1 == end put a carry chain and a comparator in front
        # of i.ready, take and the memory's read address, the UP5K build's critical path.
        last = Signal()
        left = Signal(cfg.pointer_bits)

        adv = Signal()          # the output register takes this cycle's entry
        step = Signal()         # the current entry retires
        take = Signal()         # a new job starts
        entry_next = Signal.like(entry)
        m.d.comb += [
            adv.eq(~self.o.valid | self.o.ready),
            step.eq(job_valid & adv),
            self.i.ready.eq(~job_valid | (step & last)),
            take.eq(self.i.valid & self.i.ready),
            entry_next.eq(Mux(take, self.i.p.start, Mux(step, entry + 1, entry))),
            # The word of next cycle's entry, so that rd.data always holds the current one.
            rd.addr.eq(entry_next >> 3), rd.en.eq(1),
        ]
        m.d.sync += entry.eq(entry_next)

        cur = rd.data.word_select(entry[0:3], ENTRY_BITS)
        v, z = cur[:V_BITS], cur[V_BITS:]
        row = Signal.like(next_row)
        m.d.comb += row.eq(next_row + z)

        with m.If(step):
            m.d.sync += [next_row.eq(row + 1), left.eq(left - 1), last.eq(left == 1)]
            with m.If(last):
                m.d.sync += job_valid.eq(0)
        with m.If(take):
            span = self.i.p.end - self.i.p.start
            m.d.sync += [job_valid.eq(1), x.eq(self.i.p.x), next_row.eq(0),
                         left.eq(span - 1), last.eq(span == 1)]

        real = Signal()
        m.d.comb += real.eq(step & (v != 0))
        slot = self.o.p.slot[0]
        with m.If(adv):
            m.d.sync += [self.o.valid.eq(real), slot.valid.eq(real), slot.row.eq(row), slot.v.eq(v),
                         slot.x.eq(x)]
        m.d.comb += [
            self.emit.eq(real),
            self.pads.eq(step & (v == 0)),
            self.busy.eq(job_valid | self.o.valid),
        ]
        return m
