"""AXI4 master read and write engines (64-bit data): byte ranges in, bursts out.

Both split a command ``(addr, nbytes)`` into INCR bursts of at most 16 beats that never cross
a 4 KiB boundary (AXI4 rule), with one burst in flight at a time. That costs the slave's
latency once per 16 beats, which is small next to the compute it feeds.

* :class:`AXIReader` turns R beats into a stream of :data:`beat_layout` items: the beat's data
  plus ``lo``/``hi``, the first and last byte lanes that belong to the command, and ``last``
  on the command's final beat.
* :class:`AXIWriter` writes DRAM-aligned beats with byte strobes from ``data`` to consecutive
  addresses; ``done`` pulses after the last B.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXIReader", "AXIWriter", "beat_layout", "read_signature", "write_signature"]

BEAT = 8             # bytes per beat
MAX_BURST = 16       # beats
PAGE_BEATS = 4096 // BEAT

beat_layout = data.StructLayout({"data": 64, "lo": 3, "hi": 3, "last": 1})
cmd_layout = data.StructLayout({"addr": 32, "nbytes": 20})


def read_signature():
    """The AR and R channels of a 64-bit AXI4 master (flat names after the prefix)."""
    return {
        "araddr": Out(32), "arlen": Out(8), "arsize": Out(3), "arburst": Out(2), "arvalid": Out(1),
        "arready": In(1), "arid": Out(4), "arprot": Out(3), "arcache": Out(4), "arlock": Out(1),
        "rdata": In(64), "rresp": In(2), "rlast": In(1), "rvalid": In(1), "rready": Out(1), "rid": In(4),
    }


def write_signature():
    """The AW, W and B channels of a 64-bit AXI4 master."""
    return {
        "awaddr": Out(32), "awlen": Out(8), "awsize": Out(3), "awburst": Out(2), "awvalid": Out(1),
        "awready": In(1), "awid": Out(4), "awprot": Out(3), "awcache": Out(4), "awlock": Out(1),
        "wdata": Out(64), "wstrb": Out(8), "wlast": Out(1), "wvalid": Out(1), "wready": In(1),
        "bresp": In(2), "bvalid": In(1), "bready": Out(1), "bid": In(4),
    }


def _burst_beats(m, addr, remaining):
    """Beats of the next burst from byte ``addr`` with ``remaining`` bytes left (comb)."""
    beat = addr[3:32]
    end_beat = Signal(29)
    m.d.comb += end_beat.eq((addr + remaining - 1)[3:32])
    need = Signal(30)
    to_page = Signal(10)
    m.d.comb += [need.eq(end_beat - beat + 1), to_page.eq(PAGE_BEATS - beat[:9])]
    n = Signal(range(MAX_BURST + 1))
    with m.If((need <= MAX_BURST) & (need <= to_page)):
        m.d.comb += n.eq(need)
    with m.Elif(to_page <= MAX_BURST):
        m.d.comb += n.eq(to_page)
    with m.Else():
        m.d.comb += n.eq(MAX_BURST)
    return n


class AXIReader(wiring.Component):
    """Read ``cmd.nbytes`` bytes from ``cmd.addr``; beats come out of ``o`` in order.

    Throughput: one beat a cycle within a burst; a burst costs the slave's AR-to-R latency.
    ``axi`` is the AR/R half of the master (flat names ``m_axi_ar*``/``m_axi_r*`` at the top).
    """

    cmd: In(stream.Signature(cmd_layout))
    o: Out(stream.Signature(beat_layout))
    axi: Out(wiring.Signature(read_signature()))

    def elaborate(self, platform):
        m = Module()
        addr = Signal(32)
        remaining = Signal(20)
        beats_left = Signal(range(MAX_BURST + 1))
        n = _burst_beats(m, addr, remaining)
        axi = self.axi
        m.d.comb += [axi.arsize.eq(3), axi.arburst.eq(1), axi.arcache.eq(0b0011)]

        lo = addr[:3]
        take = Signal(4)
        m.d.comb += take.eq(Mux(remaining < BEAT - lo, remaining, BEAT - lo))

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid & (self.cmd.p.nbytes != 0)):
                    m.d.sync += [addr.eq(self.cmd.p.addr), remaining.eq(self.cmd.p.nbytes)]
                    m.next = "AR"
            with m.State("AR"):
                m.d.comb += [axi.arvalid.eq(1), axi.araddr.eq(Cat(C(0, 3), addr[3:])), axi.arlen.eq(n - 1)]
                with m.If(axi.arready):
                    m.d.sync += beats_left.eq(n)
                    m.next = "R"
            with m.State("R"):
                m.d.comb += [
                    self.o.valid.eq(axi.rvalid),
                    self.o.p.data.eq(axi.rdata),
                    self.o.p.lo.eq(lo),
                    self.o.p.hi.eq(lo + take - 1),
                    self.o.p.last.eq(remaining == take),
                    axi.rready.eq(self.o.ready),
                ]
                with m.If(axi.rvalid & self.o.ready):
                    m.d.sync += [addr.eq(addr + take), remaining.eq(remaining - take),
                                 beats_left.eq(beats_left - 1)]
                    with m.If(beats_left == 1):
                        m.next = "NEXT"
            with m.State("NEXT"):
                m.next = "AR"
                with m.If(remaining == 0):
                    m.next = "IDLE"
        return m


class AXIWriter(wiring.Component):
    """Write ``cmd.nbytes`` bytes to ``cmd.addr`` onwards from beats on ``data``.

    The beats are DRAM-aligned: ``ceil(((addr & 7) + nbytes) / 8)`` of them, each with its
    byte strobes (the caller masks the bytes before ``addr`` and after the end). ``done``
    pulses once the last burst's write response has arrived. Throughput one beat a cycle
    within a burst. ``axi`` is the AW/W/B half of the master.
    """

    cmd: In(stream.Signature(cmd_layout))
    data: In(stream.Signature(data.StructLayout({"data": 64, "strb": 8})))
    done: Out(1)
    axi: Out(wiring.Signature(write_signature()))

    def elaborate(self, platform):
        m = Module()
        addr = Signal(32)           # byte address of the next burst (beat-aligned after the first)
        remaining = Signal(21)      # bytes from addr to the end
        beats_left = Signal(range(MAX_BURST + 1))
        n = _burst_beats(m, addr, remaining)
        axi = self.axi
        m.d.comb += [axi.awsize.eq(3), axi.awburst.eq(1), axi.awcache.eq(0b0011),
                     axi.wdata.eq(self.data.p.data), axi.wstrb.eq(self.data.p.strb),
                     axi.wlast.eq(beats_left == 1)]

        with m.FSM():
            with m.State("IDLE"):
                m.d.comb += self.cmd.ready.eq(1)
                with m.If(self.cmd.valid):
                    m.d.sync += [addr.eq(self.cmd.p.addr), remaining.eq(self.cmd.p.nbytes)]
                    with m.If(self.cmd.p.nbytes == 0):
                        m.d.comb += self.done.eq(1)
                    with m.Else():
                        m.next = "AW"
            with m.State("AW"):
                m.d.comb += [axi.awvalid.eq(1), axi.awaddr.eq(Cat(C(0, 3), addr[3:])), axi.awlen.eq(n - 1)]
                with m.If(axi.awready):
                    # bytes this burst covers: from addr to the end of its last beat (or the end)
                    covered = Signal(21)
                    m.d.comb += covered.eq((n << 3) - addr[:3])
                    m.d.sync += [beats_left.eq(n), addr.eq(Cat(C(0, 3), addr[3:] + n)),
                                 remaining.eq(Mux(remaining > covered, remaining - covered, 0))]
                    m.next = "W"
            with m.State("W"):
                m.d.comb += [axi.wvalid.eq(self.data.valid), self.data.ready.eq(axi.wready)]
                with m.If(self.data.valid & axi.wready):
                    m.d.sync += beats_left.eq(beats_left - 1)
                    with m.If(beats_left == 1):
                        m.next = "B"
            with m.State("B"):
                m.d.comb += axi.bready.eq(1)
                with m.If(axi.bvalid):
                    with m.If(remaining == 0):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "AW"
        return m
