"""The CNN SoC behind the UART host link, with its DRAM in block RAM: what an open-flow board
runs for a CNN pack.

:class:`CNNLinkSoC` joins:

* :class:`sparsa.hw.link.LinkBridge`: UART frames to AXI4-Lite accesses and stream beats;
* :class:`sparsa.hw.cnn.soc.CNNSoC`: the engine and its registers (:data:`~sparsa.hw.cnn.soc.CNN_REGISTERS`
  at 0x00-0x7F), the same SoC a Zynq drives;
* :class:`sparsa.hw.cnn.block_ram.AXIBlockRAM`: the memory the engine's AXI4 master reads and
  writes (DRAM_BASE stays 0: the pack's ``dram.bin`` starts at its first byte);
* :class:`MemoryWindow`: the host's way into that memory (:data:`WINDOW_REGISTERS` at 0x80-0xFF):
  WIN_ADDR is where the next 16-bit value goes or comes from; the link's SEND values are written
  there one after the other, and RECV reads WIN_COUNT values from there (the last one with
  ``last``).

So the CNN runtime of a Zynq (:class:`sparsa.runtime_cnn.CNNLinuxBackend`) drives it unchanged:
its registers by name over the link, its DRAM buffer through the window
(:class:`sparsa.link.LinkMemory`). ``leds``: 0 a link command is being received, executed or
answered; 1 the SoC's ``irq``.
"""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from sparsa.hw.axil import AXILiteDecoder, AXILiteRegisterFile, AXILiteSignature, axil_flat
from sparsa.hw.cnn.axi import axi4_flat_view
from sparsa.hw.cnn.block_ram import AXIBlockRAM, HostPortSignature
from sparsa.hw.cnn.soc import CNNSoC
from sparsa.hw.link import LinkBridge, y_layout

__all__ = ["CNNLinkSoC", "MemoryWindow", "WINDOW_REGISTERS", "WINDOW_BASE"]

WINDOW_BASE = 0x80
# name, byte offset, access, description (offsets on the link; the SoC's own registers are below)
WINDOW_REGISTERS = [
    ("WIN_ADDR", 0x80, "RW", "byte address in the on-chip DRAM of the next value SEND writes or RECV reads "
                             "(2-byte aligned: [0] reads 0); each value moves it on by 2; from MEM_BYTES on, "
                             "values read 0 and are not written"),
    ("WIN_COUNT", 0x84, "RW", "16-bit values RECV may still read from WIN_ADDR (the last one carries "
                              "last); each value read counts it down; a SEND value sets it to 0"),
    ("MEM_BYTES", 0x88, "RO", "size of the on-chip DRAM in bytes"),
]


class MemoryWindow(wiring.Component):
    """See the module docstring: the window registers (an AXI4-Lite slave), ``x`` (16-bit values
    to write at WIN_ADDR) and ``y`` (values read from WIN_ADDR), on the memory's host port.
    A written value takes 1 cycle once the memory is free; a read value is offered 2 cycles
    after the memory takes the request. Past the memory's end values read 0 and writes are
    dropped, as on the engine's side (:class:`~sparsa.hw.cnn.block_ram.AXIBlockRAM`)."""

    def __init__(self, addr_bits, mem_bytes):
        self.mem_bytes = mem_bytes
        super().__init__({"bus": In(AXILiteSignature(8)), "x": In(stream.Signature(16)),
                          "y": Out(stream.Signature(y_layout)), "host": Out(HostPortSignature(addr_bits))})

    def elaborate(self, platform):
        m = Module()
        m.submodules.regs = rf = AXILiteRegisterFile(WINDOW_REGISTERS, held=("WIN_ADDR", "WIN_COUNT"))
        connect(m, flipped(self.bus), rf.bus)
        addr, count = Signal(32), Signal(32)
        m.d.comb += [rf.win_addr.eq(addr), rf.win_count.eq(count), rf.mem_bytes.eq(self.mem_bytes)]
        host, x, y = self.host, self.x, self.y
        half = addr[1:3]
        have = Signal()               # y holds the value at addr
        asked = Signal()              # the memory took the read of it last cycle
        inside = Signal()             # addr is in the memory (the host port's address would wrap)
        m.d.comb += [host.addr.eq(addr[3:]), host.wdata.eq(Cat(x.payload, x.payload, x.payload, x.payload)),
                     host.wmask.eq(0b11 << (half * 2)), inside.eq(addr < self.mem_bytes)]
        with m.If(rf.win_addr_w | rf.win_count_w):
            # A new place to read from: a value fetched for the old one is not it.
            m.d.sync += [have.eq(0), asked.eq(0), y.valid.eq(0)]
            with m.If(rf.win_addr_w):
                m.d.sync += addr.eq(rf.w_data & ~1)
            with m.Else():
                m.d.sync += count.eq(rf.w_data)
        with m.Elif(asked):
            m.d.sync += [asked.eq(0), have.eq(1), y.valid.eq(1),
                         y.payload.data.eq(host.rdata.word_select(half, 16)), y.payload.last.eq(count == 1)]
        with m.Elif(x.valid):
            # A write ends a read: a value fetched ahead could be the one it overwrites, and
            # addr no longer points after it.
            m.d.sync += [have.eq(0), y.valid.eq(0), count.eq(0)]
            with m.If(inside):
                m.d.comb += [host.valid.eq(1), host.write.eq(1), x.ready.eq(host.ready)]
                with m.If(host.ready):
                    m.d.sync += addr.eq(addr + 2)
            with m.Else():
                m.d.comb += x.ready.eq(1)
                m.d.sync += addr.eq(addr + 2)
        with m.Elif(have):
            with m.If(y.ready):
                m.d.sync += [have.eq(0), y.valid.eq(0), addr.eq(addr + 2), count.eq(count - 1)]
        with m.Elif(count != 0):
            with m.If(inside):
                m.d.comb += host.valid.eq(1)
                with m.If(host.ready):
                    m.d.sync += asked.eq(1)
            with m.Else():
                m.d.sync += [have.eq(1), y.valid.eq(1), y.payload.data.eq(0), y.payload.last.eq(count == 1)]
        return m


class CNNLinkSoC(wiring.Component):
    """See the module docstring. ``cfg``: the :class:`~sparsa.sw.cnn.config.CNNConfig`;
    ``divisor``: clock cycles per UART bit; ``mem_bytes``: the on-chip DRAM (a power of two)."""

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    leds: Out(2)

    def __init__(self, cfg, divisor, mem_bytes):
        self.cfg, self.divisor, self.mem_bytes = cfg, divisor, mem_bytes
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.soc = soc = CNNSoC(self.cfg)
        m.submodules.link = link = LinkBridge(self.divisor)
        m.submodules.ram = ram = AXIBlockRAM(self.mem_bytes // 8)
        m.submodules.window = window = MemoryWindow(ram.addr_bits, self.mem_bytes)
        m.submodules.decoder = decoder = AXILiteDecoder(8, select_bit=7)
        connect(m, link.axil, decoder.bus)
        connect(m, decoder.lo, axil_flat(soc))
        connect(m, decoder.hi, window.bus)
        connect(m, axi4_flat_view(soc, "m_axi_"), ram.axi)
        connect(m, window.host, ram.host)
        connect(m, link.x, window.x)
        connect(m, window.y, link.y)
        m.d.comb += [link.rx.eq(self.uart_rx), self.uart_tx.eq(link.tx), self.leds.eq(Cat(link.busy, soc.irq))]
        return m
