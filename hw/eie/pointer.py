"""Pointer read unit: column j in, the entry range [p_j, p_j+1) out, empty columns dropped.

The pointers of a layer live in two banks, even (p_0, p_2, ...) and odd (p_1, p_3, ...), so
p_j and p_j+1 are always in different banks and come out in the same cycle (EIE, III-C).

Throughput one column per cycle; latency 2 cycles (synchronous pointer memories, then the job
FIFO). Columns with no entries for this PE never reach the sparse-matrix reader, so they cost
this PE nothing but the pointer cycle, which overlaps the arithmetic on earlier columns.

The column jobs wait in a FIFO of ``JOB_FIFO_DEPTH``. A column is read only when a FIFO entry
is free for it (a registered credit count; an empty column gives its credit back), so the
input handshake starts from flip-flops instead of from the pointer comparison.
"""

from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.hw.eie.layouts import activation_layout, column_job_layout

__all__ = ["PointerUnit"]


class PointerUnit(wiring.Component):
    """Even/odd pointer banks and the column-range lookup.

    Members
    -------
    i : In(stream.Signature(activation_layout))
        (j, x_j) from the activation queue.
    o : Out(stream.Signature(column_job_layout))
        (start, end, x_j) for columns with at least one entry.
    ptr_base : In(ptr address bits)
        The current layer's bank base (layer table ``ptr_base``).
    ld_even, ld_odd : In(1)
        Load-port write enables for the banks.
    ld_addr, ld_data : In
        Load-port address and data (low ``pointer_bits`` bits used).
    busy : Out(1)
        A column is in flight or a job waits in the FIFO.
    """

    JOB_FIFO_DEPTH = 4

    def __init__(self, cfg, *, init_even=(), init_odd=()):
        self.cfg = cfg
        self._init = (list(init_even), list(init_odd))
        self.addr_bits = max(1, (cfg.ptr_words - 1).bit_length())
        super().__init__({
            "i": In(stream.Signature(activation_layout(cfg))),
            "o": Out(stream.Signature(column_job_layout(cfg))),
            "ptr_base": In(self.addr_bits),
            "ld_even": In(1), "ld_odd": In(1),
            "ld_addr": In(32), "ld_data": In(64),
            "busy": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        banks = []
        for name, init in zip(("even", "odd"), self._init):
            mem = Memory(shape=cfg.pointer_bits, depth=cfg.ptr_words, init=init)
            m.submodules[f"ptr_{name}"] = mem
            banks.append(mem)
        even, odd = banks
        # Loads happen only while the array is idle; no read/write overlap to be transparent for.
        for mem, en in ((even, self.ld_even), (odd, self.ld_odd)):
            wp = mem.write_port()
            m.d.comb += [wp.addr.eq(self.ld_addr), wp.data.eq(self.ld_data), wp.en.eq(en)]
        rd_even, rd_odd = even.read_port(), odd.read_port()

        # Stage 1: address the banks. Stage 2 (s_*): the pointers are on the read ports.
        s_valid = Signal()
        s_odd = Signal()
        s_x = Signal.like(self.i.p.x)
        start = Signal(cfg.pointer_bits)
        end = Signal(cfg.pointer_bits)
        m.submodules.jobs = jobs = SyncFIFO(width=len(self.o.p.as_value()), depth=self.JOB_FIFO_DEPTH)
        job = Signal(self.o.p.shape())         # the FIFO entry: a column job
        credits = Signal(range(self.JOB_FIFO_DEPTH + 1), init=self.JOB_FIFO_DEPTH)
        advance = Signal()
        nonempty = Signal()
        m.d.comb += [
            start.eq(Mux(s_odd, rd_odd.data, rd_even.data)),
            end.eq(Mux(s_odd, rd_even.data, rd_odd.data)),
            # end > start, as end != start: pointers never decrease (pack loading checks it), and
            # which bank holds which does not matter to an inequality. No carry chain and no
            # bank multiplexer in front of the FIFO's write and the credit count (the UP5K
            # build's critical path).
            nonempty.eq(rd_even.data != rd_odd.data),
            jobs.w_en.eq(s_valid & nonempty),
            job.start.eq(start), job.end.eq(end), job.x.eq(s_x), jobs.w_data.eq(job),
            self.o.valid.eq(jobs.r_rdy), self.o.p.eq(jobs.r_data), jobs.r_en.eq(self.o.ready),
            advance.eq(credits != 0),
            self.i.ready.eq(advance),
        ]
        took = Signal()
        m.d.comb += took.eq(self.i.valid & advance)
        # A column takes a credit; the reader taking a job or an empty column gives one back.
        m.d.sync += credits.eq(credits - took + (self.o.valid & self.o.ready) + (s_valid & ~nonempty))
        q = Signal(cfg.col_bits + self.addr_bits + 2)
        m.d.comb += [
            q.eq((self.ptr_base << 1) + self.i.p.col),
            rd_even.addr.eq((q + 1) >> 1), rd_odd.addr.eq(q >> 1),
            rd_even.en.eq(1), rd_odd.en.eq(1),
        ]
        m.d.sync += [s_valid.eq(took), s_odd.eq(q[0]), s_x.eq(self.i.p.x)]
        m.d.comb += self.busy.eq(s_valid | (jobs.level != 0))
        return m
