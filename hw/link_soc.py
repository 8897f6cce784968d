"""The EIE SoC behind the UART host link: what an open-flow board runs.

:class:`LinkSoC` is :class:`sparsa.hw.soc.EIESoC` (the same registers, load port and streams a
Zynq drives over AXI) with :class:`sparsa.hw.link.LinkBridge` as its host: UART frames become
AXI4-Lite accesses and stream beats. Its ports are the board's: ``uart_rx``, ``uart_tx`` and
``leds`` (0: a link command is being received, executed or answered; 1: the SoC's ``irq``,
DONE while the host has set IRQ_EN).
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect

from sparsa.hw.axil import axil_flat
from sparsa.hw.link import LinkBridge
from sparsa.hw.soc import EIESoC

__all__ = ["LinkSoC"]


class LinkSoC(wiring.Component):
    """See the module docstring. ``divisor``: clock cycles per UART bit."""

    uart_rx: In(1, init=1)
    uart_tx: Out(1, init=1)
    leds: Out(2)

    def __init__(self, cfg, divisor, memory_map=None):
        self.cfg, self.divisor, self.mm = cfg, divisor, memory_map
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        m.submodules.soc = soc = EIESoC(self.cfg, self.mm)
        m.submodules.link = link = LinkBridge(self.divisor)
        connect(m, link.axil, axil_flat(soc))
        m.d.comb += [
            link.rx.eq(self.uart_rx), self.uart_tx.eq(link.tx),
            soc.s_axis_tdata.eq(link.x.payload), soc.s_axis_tvalid.eq(link.x.valid), link.x.ready.eq(soc.s_axis_tready),
            link.y.payload.data.eq(soc.m_axis_tdata), link.y.payload.last.eq(soc.m_axis_tlast),
            link.y.valid.eq(soc.m_axis_tvalid), soc.m_axis_tready.eq(link.y.ready),
            self.leds.eq(Cat(link.busy, soc.irq)),
        ]
        return m
