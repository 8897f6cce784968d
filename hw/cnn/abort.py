"""Abort for an AXI4 master: stop the engine without breaking the bus.

An AXI master cannot just stop: an address it has put on AR or AW must stay until the slave
takes it, a write burst the slave has accepted is owed all its W beats, and every burst is
owed its R beats or B response (AMBA AXI4, A3.2.1 and A3.3). :class:`AXIAbortGuard` sits
between the CNN engine's master and the bus. It passes everything through until ``abort``;
from the next cycle on (the engine held in reset meanwhile) it finishes what the engine had
started and nothing more:

* an AR or AW the slave had not yet taken stays on the bus, as it was, until taken;
* a W beat the slave had not yet taken stays as it was; the beats a write burst is still owed
  go out with every byte strobe low (the slave writes nothing) and WLAST on the last;
* R beats and B responses still due are taken and dropped.

``draining`` is high until then. It takes as many cycles as the slave needs for at most two read
bursts and one write burst (what the engine has in flight at most), usually tens of cycles; a
slave that never answers keeps it high, which the host sees as BUSY that does not clear.

Both sides use the flat AXI names (:func:`~.axi.axi4_flat_members`): ``e_axi_*`` towards the
engine, ``m_axi_*`` towards the bus.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sparsa.hw.cnn.axi import MAX_BURST, axi4_flat_members

__all__ = ["AXIAbortGuard"]

_AR = ("addr", "len", "size", "burst", "id", "prot", "cache", "lock")
_W = ("data", "strb", "last")


class AXIAbortGuard(wiring.Component):
    """See the module docstring. Latency: none while passing through (wires only)."""

    def __init__(self):
        bus = axi4_flat_members("m_axi_")
        engine = {"e_axi_" + name[len("m_axi_"):]: member.flip() for name, member in bus.items()}
        super().__init__({"abort": In(1), "draining": Out(1), **bus, **engine})

    def _port(self, side, channel, name):
        return getattr(self, f"{side}_axi_{channel}{name}")

    def elaborate(self, platform):
        m = Module()
        bus = lambda ch, n: self._port("m", ch, n)
        draining = Signal()
        m.d.comb += self.draining.eq(draining)

        # What the engine has started: an address or a W beat on the bus but not yet taken
        # (registered with its payload every cycle, so that the cycle of `abort` counts), and
        # the counts of bursts and beats still owed.
        held = {}
        for ch, fields in (("ar", _AR), ("aw", _AR), ("w", _W)):
            pend = Signal(name=f"{ch}_pending")
            copy = {f: Signal.like(bus(ch, f), name=f"{ch}_{f}_held") for f in fields}
            held[ch] = (pend, copy)
            with m.If(~draining):
                m.d.sync += [pend.eq(bus(ch, "valid") & ~bus(ch, "ready")),
                             *[copy[f].eq(bus(ch, f)) for f in fields]]
            with m.Elif(bus(ch, "ready")):
                m.d.sync += pend.eq(0)
        ar_go = bus("ar", "valid") & bus("ar", "ready")
        aw_go = bus("aw", "valid") & bus("aw", "ready")
        w_go = bus("w", "valid") & bus("w", "ready")
        r_end = bus("r", "valid") & bus("r", "ready") & bus("r", "last")
        b_go = bus("b", "valid") & bus("b", "ready")
        reads = Signal(range(4))           # read bursts whose last R beat is still due
        writes = Signal(range(4))          # write bursts whose B response is still due
        w_owed = Signal(range(4 * MAX_BURST + 1))
        m.d.sync += [reads.eq(reads + ar_go - r_end), writes.eq(writes + aw_go - b_go),
                     w_owed.eq(w_owed + Mux(aw_go, bus("aw", "len") + 1, 0) - w_go)]

        with m.If(~draining):
            # Pass through: every master output to the bus, every slave output to the engine.
            for name, member in axi4_flat_members("m_axi_").items():
                inner = getattr(self, "e_axi_" + name[len("m_axi_"):])
                m.d.comb += getattr(self, name).eq(inner) if member.flow == Out else inner.eq(getattr(self, name))
            with m.If(self.abort):
                m.d.sync += draining.eq(1)
        with m.Else():
            for ch in ("ar", "aw"):
                pend, copy = held[ch]
                m.d.comb += [bus(ch, "valid").eq(pend), *[bus(ch, f).eq(copy[f]) for f in _AR]]
            pend, copy = held["w"]
            with m.If(pend):
                m.d.comb += [bus("w", "valid").eq(1), *[bus("w", f).eq(copy[f]) for f in _W]]
            with m.Elif(w_owed != 0):
                m.d.comb += [bus("w", "valid").eq(1), bus("w", "strb").eq(0), bus("w", "last").eq(w_owed == 1)]
            m.d.comb += [bus("r", "ready").eq(1), bus("b", "ready").eq(1)]
            done = ~held["ar"][0] & ~held["aw"][0] & ~pend & (w_owed == 0) & (reads == 0) & (writes == 0)
            with m.If(done):
                m.d.sync += draining.eq(0)
        return m
