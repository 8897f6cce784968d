"""Pointer read unit: column j in, the entry range [p_j, p_j+1) out, empty columns dropped.

The pointers of a layer live in two banks, even (p_0, p_2, ...) and odd (p_1, p_3, ...), so
p_j and p_j+1 are always in different banks and come out in the same cycle (EIE, III-C).

Throughput one column per cycle; latency 1 cycle (synchronous pointer memories). Columns with
no entries for this PE never reach the sparse-matrix reader, so they cost this PE nothing
but the pointer cycle, which overlaps the arithmetic on earlier columns.
"""

from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from .layouts import activation_layout, column_job_layout

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
        A column is in flight.
    """

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
        advance = Signal()
        start = Signal(cfg.pointer_bits)
        end = Signal(cfg.pointer_bits)
        m.d.comb += [
            start.eq(Mux(s_odd, rd_odd.data, rd_even.data)),
            end.eq(Mux(s_odd, rd_even.data, rd_odd.data)),
            self.o.valid.eq(s_valid & (end > start)),
            self.o.p.start.eq(start), self.o.p.end.eq(end), self.o.p.x.eq(s_x),
            # Empty columns leave at once; others wait for the reader.
            advance.eq(~self.o.valid | self.o.ready),
            self.i.ready.eq(advance),
        ]
        q = Signal(cfg.col_bits + self.addr_bits + 2)
        m.d.comb += [
            q.eq((self.ptr_base << 1) + self.i.p.col),
            rd_even.addr.eq((q + 1) >> 1), rd_odd.addr.eq(q >> 1),
            rd_even.en.eq(advance), rd_odd.en.eq(advance),
        ]
        with m.If(advance):
            m.d.sync += [s_valid.eq(self.i.valid), s_odd.eq(q[0]), s_x.eq(self.i.p.x)]
        m.d.comb += self.busy.eq(s_valid)
        return m
