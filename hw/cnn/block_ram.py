"""On-chip memory in place of DRAM for the CNN engine on a board without a memory controller.

:class:`AXIBlockRAM` is an AXI4 slave (64-bit data, INCR bursts of 8-byte beats, as the
engine's :class:`~sparsa.hw.cnn.axi.AXIReader` and :class:`~sparsa.hw.cnn.axi.AXIWriter` issue
them) over one block RAM of ``depth`` 64-bit words, plus a host port through which the board's
host link fills the memory and reads the results (:class:`sparsa.hw.cnn.link_soc.MemoryWindow`).

One access at a time, the engine first: the FSM takes an AR or AW when idle, else a host
request. A read burst answers its first beat 2 cycles after AR and then one beat a cycle while
RREADY is high; a write burst takes one beat a cycle and answers B the cycle after WLAST. A host
request takes one cycle; a read's data is on ``host.rdata`` the cycle after it is taken.

Beats outside the memory (byte address from ``depth * 8`` on) read 0 and are not written, and
their responses are OKAY: the runtime checks that a pack fits before it loads one, so the engine
never reaches them with a pack it was given.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.hw.cnn.axi import AXI4Signature

__all__ = ["AXIBlockRAM", "HostPortSignature"]


class HostPortSignature(wiring.Signature):
    """The memory's host port, from the requester's side: ``valid``, ``write``, ``addr`` (64-bit
    word), ``wdata``, ``wmask`` (a bit per byte) out; ``ready`` (taken this cycle) and ``rdata``
    (a read's word, the cycle after) in."""

    def __init__(self, addr_bits):
        super().__init__({"valid": Out(1), "write": Out(1), "addr": Out(addr_bits), "wdata": Out(64),
                          "wmask": Out(8), "ready": In(1), "rdata": In(64)})


class AXIBlockRAM(wiring.Component):
    """See the module docstring. ``depth``: 64-bit words (a power of two)."""

    def __init__(self, depth):
        if depth < 2 or depth & (depth - 1):
            raise ValueError(f"AXIBlockRAM depth: expected a power of two from 2, found {depth}")
        self.depth = depth
        self.addr_bits = (depth - 1).bit_length()
        super().__init__({"axi": In(AXI4Signature()), "host": In(HostPortSignature(self.addr_bits))})

    def elaborate(self, platform):
        m = Module()
        axi, host = self.axi, self.host
        m.submodules.mem = mem = Memory(shape=64, depth=self.depth, init=[])
        rd = mem.read_port()
        wr = mem.write_port(granularity=8)

        word = Signal(32 - 3)         # the burst's current beat (byte address / 8)
        left = Signal(8)              # beats after the current one
        inside = Signal()
        read_inside = Signal()
        m.d.comb += [inside.eq(word < self.depth), rd.addr.eq(word[:self.addr_bits]), wr.addr.eq(word[:self.addr_bits]),
                     axi.r.resp.eq(0), axi.b.resp.eq(0)]

        with m.FSM(name="ram"):
            with m.State("IDLE"):
                with m.If(axi.ar.valid):
                    m.d.comb += axi.ar.ready.eq(1)
                    m.d.sync += [word.eq(axi.ar.addr[3:]), left.eq(axi.ar.len), axi.r.id.eq(axi.ar.id)]
                    m.next = "READ_FIRST"
                with m.Elif(axi.aw.valid):
                    m.d.comb += axi.aw.ready.eq(1)
                    m.d.sync += [word.eq(axi.aw.addr[3:]), axi.b.id.eq(axi.aw.id)]
                    m.next = "WRITE"
                with m.Elif(host.valid):
                    m.d.comb += [host.ready.eq(1), rd.addr.eq(host.addr), wr.addr.eq(host.addr),
                                 wr.data.eq(host.wdata)]
                    with m.If(host.write):
                        m.d.comb += wr.en.eq(host.wmask)
            with m.State("READ_FIRST"):           # the first beat's word is read in this cycle
                m.d.sync += read_inside.eq(inside)
                m.next = "READ"
            with m.State("READ"):
                m.d.comb += [axi.r.valid.eq(1), axi.r.data.eq(Mux(read_inside, rd.data, 0)),
                             axi.r.last.eq(left == 0)]
                # The read port reads the next beat's word only while this one is taken, so
                # that a stalled RREADY keeps the data steady.
                m.d.comb += [rd.addr.eq((word + 1)[:self.addr_bits]), rd.en.eq(axi.r.ready)]
                with m.If(axi.r.ready):
                    m.d.sync += [word.eq(word + 1), left.eq(left - 1), read_inside.eq(word + 1 < self.depth)]
                    with m.If(left == 0):
                        m.next = "IDLE"
            with m.State("WRITE"):
                m.d.comb += [axi.w.ready.eq(1), wr.data.eq(axi.w.data)]
                with m.If(axi.w.valid):
                    m.d.comb += wr.en.eq(Mux(inside, axi.w.strb, 0))
                    m.d.sync += word.eq(word + 1)
                    with m.If(axi.w.last):
                        m.next = "RESPOND"
            with m.State("RESPOND"):
                m.d.comb += axi.b.valid.eq(1)
                with m.If(axi.b.ready):
                    m.next = "IDLE"
        m.d.comb += host.rdata.eq(rd.data)
        return m
