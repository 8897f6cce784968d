"""AXI4 master read and write engines (64-bit data): byte ranges in, bursts out.

Both split a command ``(addr, nbytes)`` into INCR bursts of at most 16 beats that never cross
a 4 KiB boundary (AXI4 rule). The writer has one burst in flight at a time; the reader
requests up to two ahead of its data, so that a long read streams a beat a cycle.

* :class:`AXIReader` turns R beats into a stream of :data:`beat_layout` items: the beat's data
  plus ``lo``/``hi``, the first and last byte lanes that belong to the command, and ``last``
  on the command's final beat.
* :class:`AXIWriter` writes DRAM-aligned beats with byte strobes from ``data`` to consecutive
  addresses; ``done`` pulses after the last B.

The bus is :class:`AXI4Signature`: the five channels (:class:`AddressChannel` for AR and AW,
:class:`RChannel`, :class:`WChannel`, :class:`BChannel`), each a signature seen from the
channel's source, so that a master is ``Out(AXI4Signature())`` and a slave ``In(...)``.
Nested members would become Verilog ports ``m_axi__ar__valid``; cocotbext-axi and Vivado want
``m_axi_arvalid``, so a top level declares :func:`axi4_flat_members` (``prefix`` + channel +
member, the AXI names) and joins them to a nested interface with :func:`axi4_flat_view`
and ``connect``.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXIReader", "AXIWriter", "AddressChannel", "RChannel", "WChannel", "BChannel",
           "AXI4Signature", "axi4_flat_members", "axi4_flat_view", "beat_layout", "cmd_layout"]

BEAT = 8             # bytes per beat
MAX_BURST = 16       # beats
PAGE_BEATS = 4096 // BEAT
ADDR_BITS, DATA_BITS, ID_BITS = 32, 64, 4

beat_layout = data.StructLayout({"data": 64, "lo": 3, "hi": 3, "last": 1})
cmd_layout = data.StructLayout({"addr": 32, "nbytes": 20})


class AddressChannel(wiring.Signature):
    """AR or AW, from the master's side: ``addr len size burst valid`` out, ``ready`` in."""

    def __init__(self):
        super().__init__({
            "addr": Out(ADDR_BITS), "len": Out(8), "size": Out(3), "burst": Out(2), "valid": Out(1),
            "ready": In(1), "id": Out(ID_BITS), "prot": Out(3), "cache": Out(4), "lock": Out(1),
        })


class RChannel(wiring.Signature):
    """R, from the slave's side (a master has ``In(RChannel())``)."""

    def __init__(self):
        super().__init__({"data": Out(DATA_BITS), "resp": Out(2), "last": Out(1), "valid": Out(1),
                          "ready": In(1), "id": Out(ID_BITS)})


class WChannel(wiring.Signature):
    """W, from the master's side."""

    def __init__(self):
        super().__init__({"data": Out(DATA_BITS), "strb": Out(DATA_BITS // 8), "last": Out(1),
                          "valid": Out(1), "ready": In(1)})


class BChannel(wiring.Signature):
    """B, from the slave's side."""

    def __init__(self):
        super().__init__({"resp": Out(2), "valid": Out(1), "ready": In(1), "id": Out(ID_BITS)})


class AXI4Signature(wiring.Signature):
    """A 64-bit AXI4 bus from the master's side: ``ar``, ``r`` (with ``read``) and ``aw``,
    ``w``, ``b`` (with ``write``)."""

    def __init__(self, *, read=True, write=True):
        members = {}
        if read:
            members.update(ar=Out(AddressChannel()), r=In(RChannel()))
        if write:
            members.update(aw=Out(AddressChannel()), w=Out(WChannel()), b=In(BChannel()))
        super().__init__(members)


def axi4_flat_members(prefix, signature=None):
    """The ports of ``signature`` (default: a whole AXI4 master) as flat members named
    ``prefix + channel + member`` (``m_axi_arvalid``), for a top level's signature."""
    signature = AXI4Signature() if signature is None else signature
    return {prefix + "".join(path): wiring.Member(member.flow, member.shape, init=member.init)
            for path, member in signature.members.flatten() if member.is_port}


class _FlatView:
    def __init__(self, signature, obj, prefix):
        self.signature = signature
        for name, member in signature.members.items():
            if member.is_port:
                setattr(self, name, getattr(obj, prefix + name))
            else:
                setattr(self, name, _FlatView(member.signature, obj, prefix + name))


def axi4_flat_view(obj, prefix, signature=None):
    """An interface with ``signature`` whose signals are ``obj``'s flat ports (see
    :func:`axi4_flat_members`): ``connect(m, flipped(axi4_flat_view(self, "m_axi_")), inner.axi)``
    forwards a component's flat AXI ports to an inner nested bus."""
    return _FlatView(AXI4Signature() if signature is None else signature, obj, prefix)


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

    The address side runs ahead of the data: up to ``max_bursts`` bursts are requested before
    the first one's data has come back (``max_bursts`` 1: one at a time), so that with a
    slave that pipelines reads a command streams a beat a cycle across its bursts instead of
    paying the slave's AR-to-R latency once per 16 beats. The next command is taken when the
    last beat of this one has left. ``arid`` is the ID on every AR (R beats are expected with
    it: a reader that shares the bus with another routes R by ID). ``axi`` is the AR/R half
    of the master.
    """

    cmd: In(stream.Signature(cmd_layout))
    o: Out(stream.Signature(beat_layout))
    axi: Out(AXI4Signature(write=False))

    def __init__(self, *, max_bursts=2, arid=0):
        self.max_bursts = max_bursts
        self.arid = arid
        super().__init__()

    def elaborate(self, platform):
        m = Module()
        axi = self.axi
        m.d.comb += [axi.ar.size.eq(3), axi.ar.burst.eq(1), axi.ar.cache.eq(0b0011), axi.ar.id.eq(self.arid)]

        # Address side: the next burst's byte address (beat-aligned after the first) and the
        # bytes from it to the end; `inflight` bursts are requested and not yet finished.
        ar_addr = Signal(32)
        ar_left = Signal(21)
        inflight = Signal(range(self.max_bursts + 1))
        n = _burst_beats(m, ar_addr, ar_left)
        # Data side: the byte address of the next beat's first byte and the bytes still due.
        addr = Signal(32)
        remaining = Signal(20)
        lo = addr[:3]
        take = Signal(4)
        m.d.comb += take.eq(Mux(remaining < BEAT - lo, remaining, BEAT - lo))

        m.d.comb += self.cmd.ready.eq((remaining == 0) & (ar_left == 0))
        with m.If(self.cmd.valid & self.cmd.ready):
            m.d.sync += [addr.eq(self.cmd.p.addr), remaining.eq(self.cmd.p.nbytes),
                         ar_addr.eq(self.cmd.p.addr), ar_left.eq(self.cmd.p.nbytes)]

        issue = Signal()
        m.d.comb += [axi.ar.valid.eq((ar_left != 0) & (inflight != self.max_bursts)),
                     axi.ar.addr.eq(Cat(C(0, 3), ar_addr[3:])), axi.ar.len.eq(n - 1),
                     issue.eq(axi.ar.valid & axi.ar.ready)]
        with m.If(issue):
            covered = Signal(21)           # bytes this burst covers: to its last beat's end
            m.d.comb += covered.eq((n << 3) - ar_addr[:3])
            m.d.sync += [ar_addr.eq(Cat(C(0, 3), ar_addr[3:] + n)),
                         ar_left.eq(Mux(ar_left > covered, ar_left - covered, 0))]

        m.d.comb += [
            self.o.valid.eq(axi.r.valid & (remaining != 0)),
            self.o.p.data.eq(axi.r.data),
            self.o.p.lo.eq(lo),
            self.o.p.hi.eq(lo + take - 1),
            self.o.p.last.eq(remaining == take),
            axi.r.ready.eq(self.o.ready & (remaining != 0)),
        ]
        done = Signal()
        m.d.comb += done.eq(axi.r.valid & axi.r.ready & axi.r.last)
        with m.If(axi.r.valid & axi.r.ready):
            m.d.sync += [addr.eq(addr + take), remaining.eq(remaining - take)]
        m.d.sync += inflight.eq(inflight + issue - done)
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
    axi: Out(AXI4Signature(read=False))

    def elaborate(self, platform):
        m = Module()
        addr = Signal(32)           # byte address of the next burst (beat-aligned after the first)
        remaining = Signal(21)      # bytes from addr to the end
        beats_left = Signal(range(MAX_BURST + 1))
        n = _burst_beats(m, addr, remaining)
        axi = self.axi
        m.d.comb += [axi.aw.size.eq(3), axi.aw.burst.eq(1), axi.aw.cache.eq(0b0011),
                     axi.w.data.eq(self.data.p.data), axi.w.strb.eq(self.data.p.strb),
                     axi.w.last.eq(beats_left == 1)]

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
                m.d.comb += [axi.aw.valid.eq(1), axi.aw.addr.eq(Cat(C(0, 3), addr[3:])), axi.aw.len.eq(n - 1)]
                with m.If(axi.aw.ready):
                    # bytes this burst covers: from addr to the end of its last beat (or the end)
                    covered = Signal(21)
                    m.d.comb += covered.eq((n << 3) - addr[:3])
                    m.d.sync += [beats_left.eq(n), addr.eq(Cat(C(0, 3), addr[3:] + n)),
                                 remaining.eq(Mux(remaining > covered, remaining - covered, 0))]
                    m.next = "W"
            with m.State("W"):
                m.d.comb += [axi.w.valid.eq(self.data.valid), self.data.ready.eq(axi.w.ready)]
                with m.If(self.data.valid & axi.w.ready):
                    m.d.sync += beats_left.eq(beats_left - 1)
                    with m.If(beats_left == 1):
                        m.next = "B"
            with m.State("B"):
                m.d.comb += axi.b.ready.eq(1)
                with m.If(axi.b.valid):
                    with m.If(remaining == 0):
                        m.d.comb += self.done.eq(1)
                        m.next = "IDLE"
                    with m.Else():
                        m.next = "AW"
        return m
