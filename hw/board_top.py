"""The open-flow board system: what ``sparsa build --board icebreaker|ulx3s-85f`` puts into the
bitstream and what ``--port sim:<board>`` simulates.

:class:`BoardTop` is the oscillator, a PLL making the system clock, a reset, and
:class:`sparsa.hw.link_soc.LinkSoC` (the EIE SoC behind the UART host link; for a CNN pack
:class:`sparsa.hw.cnn.link_soc.CNNLinkSoC`) on the board's USB UART and LEDs. Elaborated with a
platform (an amaranth-boards platform, for the bitstream) it takes its pins from
``platform.request``; elaborated without one (simulation) the same pins are its ports ``clk``,
``button``, ``uart_rx``, ``uart_tx`` and ``leds``, and the PLL is a pass-through (the
simulator's clock is the system clock). Everything else is the same elaboration.

Clock and reset: the PLL (:class:`Ecp5Pll`: ``EHXPLLL``; :class:`Ice40Pll`: ``SB_PLL40_PAD``)
makes the ``sync`` clock from the oscillator. ``sync`` is held in reset until the PLL reports
lock, while the reset button is pressed, and for 2 more cycles
(:class:`amaranth.lib.cdc.ResetSynchronizer`). A button press resets the SoC as a power-up
does: the host link sees a new session (:mod:`sparsa.sw.link`).

LEDs, in board order as far as the board has them: see :data:`LED_MEANINGS`. The heartbeat
toggles every 2**24 cycles (0.28 s at 60 MHz): the clock runs and reset is over.
"""

from amaranth import *
from amaranth.lib import io
from amaranth.lib.cdc import ResetSynchronizer

from sparsa.hw.link_soc import LinkSoC

__all__ = ["BoardTop", "Ecp5Pll", "Ice40Pll", "PassThroughPll", "LED_MEANINGS"]

LED_MEANINGS = ("link activity (a command being received, executed or answered)",
                "DONE with IRQ_EN set (the SoC's irq)", "heartbeat")


class PassThroughPll(Elaboratable):
    """Simulation's stand-in for a PLL: the output clock is the input, always locked."""

    def __init__(self):
        self.clk_in = Signal()
        self.clk_out = Signal()
        self.locked = Signal()

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [self.clk_out.eq(self.clk_in), self.locked.eq(1)]
        return m


class Ecp5Pll(PassThroughPll):
    """ECP5 ``EHXPLLL``, feedback from CLKOP (``ecppll``'s configuration). ``setting``: a
    :class:`sparsa.boards.pll.Ecp5Pll` (dividers ``clki_div``, ``clkfb_div``, ``clkop_div``,
    ``clkop_cphase``); ``f_in_mhz``: the oscillator. nextpnr derives the output clock's timing
    constraint from these parameters and the input pin's frequency."""

    def __init__(self, setting, f_in_mhz):
        super().__init__()
        self.setting, self.f_in_mhz = setting, f_in_mhz

    def elaborate(self, platform):
        s = self.setting
        m = Module()
        m.submodules.pll = Instance(
            "EHXPLLL",
            p_PLLRST_ENA="DISABLED", p_INTFB_WAKE="DISABLED", p_STDBY_ENABLE="DISABLED",
            p_DPHASE_SOURCE="DISABLED", p_OUTDIVIDER_MUXA="DIVA", p_OUTDIVIDER_MUXB="DIVB",
            p_OUTDIVIDER_MUXC="DIVC", p_OUTDIVIDER_MUXD="DIVD",
            p_CLKI_DIV=s.clki_div, p_CLKOP_ENABLE="ENABLED", p_CLKOP_DIV=s.clkop_div,
            p_CLKOP_CPHASE=s.clkop_cphase, p_CLKOP_FPHASE=0, p_FEEDBK_PATH="CLKOP", p_CLKFB_DIV=s.clkfb_div,
            a_FREQUENCY_PIN_CLKI=f"{self.f_in_mhz:g}", a_FREQUENCY_PIN_CLKOP=f"{s.f_out_mhz:g}",
            a_ICP_CURRENT="12", a_LPF_RESISTOR="8", a_MFG_ENABLE_FILTEROPAMP="1", a_MFG_GMCREF_SEL="2",
            i_RST=0, i_STDBY=0, i_CLKI=self.clk_in, i_CLKFB=self.clk_out,
            i_PHASESEL0=0, i_PHASESEL1=0, i_PHASEDIR=1, i_PHASESTEP=1, i_PHASELOADREG=1, i_PLLWAKESYNC=0,
            i_ENCLKOP=0, o_CLKOP=self.clk_out, o_LOCK=self.locked)
        return m


class Ice40Pll(PassThroughPll):
    """iCE40 ``SB_PLL40_PAD``, SIMPLE feedback (``icepll``'s configuration). ``setting``: a
    :class:`sparsa.boards.pll.Ice40Pll`."""

    # nextpnr places an iCE40 PLL only where the oscillator pin feeds it directly (the
    # iCEBreaker's pin 35 and the PLL share a site): the top hands over the raw pin (``pad``).
    takes_pad = True

    def __init__(self, setting):
        super().__init__()
        self.setting = setting
        self.pad = None

    def elaborate(self, platform):
        s = self.setting
        m = Module()
        m.submodules.pll = Instance(
            "SB_PLL40_PAD",
            p_FEEDBACK_PATH="SIMPLE", p_DIVR=s.divr, p_DIVF=s.divf, p_DIVQ=s.divq,
            p_FILTER_RANGE=s.filter_range,
            i_PACKAGEPIN=self.pad.io, i_RESETB=1, i_BYPASS=0,
            o_PLLOUTGLOBAL=self.clk_out, o_LOCK=self.locked)
        return m


class BoardTop(Elaboratable):
    """See the module docstring.

    ``cfg``: the :class:`sparsa.sw.eie.config.EIEConfig` of the array; ``divisor``: system
    clock cycles per UART bit; ``pll``: an :class:`Ecp5Pll` / :class:`Ice40Pll` (``None``: the
    pass-through of simulation); ``clock``, ``button``: the platform's resource names of the
    oscillator and the reset button; ``n_leds``: how many of the board's LEDs to drive (up to 3);
    ``memory_map``: a model to hold from power-up (memory contents and MODEL_ID; ``None``: the
    host loads one over the link). With a :class:`sparsa.sw.cnn.config.CNNConfig` as ``cfg`` the
    SoC is :class:`sparsa.hw.cnn.link_soc.CNNLinkSoC` with ``mem_bytes`` of on-chip DRAM.
    """

    def __init__(self, cfg, divisor, *, pll=None, clock="clk", button="button", n_leds=2, memory_map=None,
                 mem_bytes=None):
        self.cfg, self.divisor, self.clock, self.button = cfg, divisor, clock, button
        self.mm, self.mem_bytes = memory_map, mem_bytes
        self.pll = pll or PassThroughPll()
        self.n_leds = min(n_leds, len(LED_MEANINGS))
        # The pins as ports (simulation; unused when a platform provides them).
        self.clk = Signal()
        self.button_in = Signal(name="button")
        self.uart_rx = Signal(init=1)
        self.uart_tx = Signal(init=1)
        self.leds = Signal(self.n_leds)

    def ports(self):
        return [self.clk, self.button_in, self.uart_rx, self.uart_tx, self.leds]

    def _pins(self, m, platform):
        """``(clk, button, uart_rx, uart_tx, leds)`` values: the platform's pins through I/O
        buffers, or the ports."""
        if platform is None:
            return self.clk, self.button_in, self.uart_rx, self.uart_tx, self.leds

        def buffer(name, direction, port):
            m.submodules[name] = buf = io.Buffer(direction, port)
            return buf.i if direction == "i" else buf.o
        if getattr(self.pll, "takes_pad", False):
            self.pll.pad = platform.request(self.clock, 0, dir="-")
            clk = Signal()            # unused: the PLL reads the pin itself
        else:
            clk = buffer("clk_buf", "i", platform.request(self.clock, 0, dir="-"))
        button = buffer("button_buf", "i", platform.request(self.button, 0, dir="-"))
        uart = platform.request("uart", 0, dir="-")
        rx, tx = buffer("rx_buf", "i", uart.rx), buffer("tx_buf", "o", uart.tx)
        leds = Signal(self.n_leds)
        for k in range(self.n_leds):
            m.d.comb += buffer(f"led{k}_buf", "o", platform.request("led", k, dir="-")).eq(leds[k])
        return clk, button, rx, tx, leds

    def elaborate(self, platform):
        m = Module()
        clk, button, rx, tx, leds = self._pins(m, platform)
        m.submodules.pll = pll = self.pll
        m.d.comb += pll.clk_in.eq(clk)
        m.domains.sync = sync = ClockDomain("sync")
        m.d.comb += sync.clk.eq(pll.clk_out)
        m.submodules.reset_sync = ResetSynchronizer(~pll.locked | button, domain="sync")

        if self.mem_bytes is not None:
            from sparsa.hw.cnn.link_soc import CNNLinkSoC
            m.submodules.soc = soc = CNNLinkSoC(self.cfg, self.divisor, self.mem_bytes)
        else:
            m.submodules.soc = soc = LinkSoC(self.cfg, self.divisor, self.mm)
        heartbeat = Signal(25)
        m.d.sync += heartbeat.eq(heartbeat + 1)
        m.d.comb += [soc.uart_rx.eq(rx), tx.eq(soc.uart_tx),
                     leds.eq(Cat(soc.leds, heartbeat[-1])[:self.n_leds])]
        return m
