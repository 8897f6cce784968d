"""8N1 UART receiver and transmitter with byte streams, for the board host link.

Both take ``divisor``, the clock cycles per bit (``clk_hz // baud``; at least 4). The receiver
samples the middle of each bit after a synchronizer; the transmitter sends one byte every
``10 * divisor + 1`` cycles while its input stream has data.
"""

from amaranth import *
from amaranth.lib import stream, wiring
from amaranth.lib.cdc import FFSynchronizer
from amaranth.lib.wiring import In, Out

__all__ = ["UARTRx", "UARTTx"]


class UARTRx(wiring.Component):
    """Receiver: ``rx`` (the pin, idle high) in, bytes out on ``o``.

    A byte is offered on ``o`` after the middle of its stop bit; a start bit that is no longer
    low in its middle (a glitch) is ignored, and a frame whose stop bit is low (a framing error,
    a break) is dropped. A byte not taken before the next one arrives is
    overwritten: the link parser always takes them. Latency: 2 cycles of synchronizer, then
    9.5 bit times from the start bit's edge.
    """

    rx: In(1, init=1)
    o: Out(stream.Signature(8))

    def __init__(self, divisor):
        if divisor < 4:
            raise ValueError(f"UARTRx: divisor: expected at least 4 cycles per bit, found {divisor}")
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        rx = Signal(init=1)
        m.submodules.sync = FFSynchronizer(self.rx, rx, init=1)
        timer = Signal(range(d + d // 2 + 1))
        bits = Signal(4)
        shift = Signal(8)
        with m.If(self.o.ready):
            m.d.sync += self.o.valid.eq(0)
        with m.FSM():
            with m.State("IDLE"):
                with m.If(~rx):
                    m.d.sync += [timer.eq(d // 2 - 1), bits.eq(0)]
                    m.next = "START"
            with m.State("START"):
                # The start bit's middle: still low, or it was a glitch on the idle line.
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Elif(~rx):
                    m.d.sync += timer.eq(d - 1)
                    m.next = "DATA"
                with m.Else():
                    m.next = "IDLE"
            with m.State("DATA"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(Cat(shift[1:], rx)), bits.eq(bits + 1), timer.eq(d - 1)]
                    with m.If(bits == 7):
                        m.next = "STOP"
            with m.State("STOP"):
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    with m.If(rx):
                        m.d.sync += [self.o.valid.eq(1), self.o.payload.eq(shift)]
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "BREAK"       # framing error: wait for the line to go idle
            with m.State("BREAK"):
                with m.If(rx):
                    m.next = "IDLE"
        return m


class UARTTx(wiring.Component):
    """Transmitter: bytes in on ``i``, ``tx`` (the pin, idle high) out. A byte is taken when
    the previous one's stop bit has been sent; one byte per 10 bit times and a cycle."""

    i: In(stream.Signature(8))
    tx: Out(1, init=1)

    def __init__(self, divisor):
        if divisor < 4:
            raise ValueError(f"UARTTx: divisor: expected at least 4 cycles per bit, found {divisor}")
        self.divisor = divisor
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        d = self.divisor
        timer = Signal(range(d))
        bits = Signal(4)
        shift = Signal(10)
        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.i.ready.eq(1)
                with m.If(self.i.valid):
                    # start bit (0), 8 data bits LSB first, stop bit (1)
                    m.d.sync += [shift.eq(Cat(C(0, 1), self.i.payload, C(1, 1))), bits.eq(0), timer.eq(d - 1)]
                    m.next = "SEND"
            with m.State("SEND"):
                m.d.comb += self.tx.eq(shift[0])
                with m.If(timer != 0):
                    m.d.sync += timer.eq(timer - 1)
                with m.Else():
                    m.d.sync += [shift.eq(shift >> 1), bits.eq(bits + 1), timer.eq(d - 1)]
                    with m.If(bits == 9):
                        m.next = "IDLE"
        return m
