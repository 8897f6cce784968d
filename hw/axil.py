"""AXI4-Lite register file shared by the SoC wrappers (32-bit data, one transaction at a time).

:class:`AXILiteRegisterFile` is the slave both SoCs (``hw/soc.py``, ``hw/cnn/soc.py``) build
from their register tables (``(name, offset, access, description)`` rows): it stores the RW
registers, answers reads, and gives the SoC a write strobe per writable register for side
effects (START, LD_GO, write-1-to-clear). :func:`axil_ports` gives a SoC's flat top-level port
names (``s_axil_awvalid``...), which cocotbext-axi binds by prefix and Vivado infers as an
interface; :func:`axil_flat` views those ports as one :class:`AXILiteSignature` interface so
that ``connect`` wires them to the register file.

Latency: a write completes 2 cycles after both AW and W are seen (AW and W in any order; the
register changes and the strobe fires in the first of them); a read in 1.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

__all__ = ["AXILiteSignature", "AXILiteRegisterFile", "AXILiteDecoder", "axil_ports", "axil_flat", "register_table_markdown"]


class AXILiteSignature(wiring.Signature):
    """AXI4-Lite, from the master's side (32-bit data, ``addr_bits`` of byte address)."""

    def __init__(self, addr_bits=8):
        super().__init__({
            "awaddr": Out(addr_bits), "awvalid": Out(1), "awready": In(1),
            "wdata": Out(32), "wstrb": Out(4), "wvalid": Out(1), "wready": In(1),
            "bresp": In(2), "bvalid": In(1), "bready": Out(1),
            "araddr": Out(addr_bits), "arvalid": Out(1), "arready": In(1),
            "rdata": In(32), "rresp": In(2), "rvalid": In(1), "rready": Out(1),
        })


def axil_ports(addr_bits=8, prefix="s_axil_"):
    """A slave's flat members ``{prefix + name: member}`` for a component's signature dict."""
    return {prefix + name: member for name, member in AXILiteSignature(addr_bits).flip().members.items()}


class _FlatView:
    def __init__(self, obj, prefix, signature):
        self.signature = signature
        for name in signature.members:
            setattr(self, name, getattr(obj, prefix + name))


def axil_flat(obj, addr_bits=8, prefix="s_axil_"):
    """The :func:`axil_ports` members of ``obj`` as one interface with the slave's signature
    (``flipped(...)`` of it forwards them to an inner slave)."""
    return _FlatView(obj, prefix, AXILiteSignature(addr_bits).flip())


class AXILiteRegisterFile(wiring.Component):
    """An AXI4-Lite slave over a register table.

    Parameters
    ----------
    registers : iterable of (name, offset, access, description)
        ``access``: ``RO`` (value from the SoC), ``RW`` (stored here), ``WO`` (reads 0),
        ``RW1C`` (value from the SoC; the SoC clears bits on the write strobe).
    storage : dict, optional
        ``{name: (width, init)}`` of RW registers (default 32 bits, 0).
    strobes : dict, optional
        ``{name: mask}``: bits of an RW register that are commands, not state: not stored
        (they read 0); the SoC acts on them with ``<name>_w`` and ``w_data``.
    held : iterable of str, optional
        RW registers the SoC stores itself (for example in a flip-flop that no reset clears):
        here an ``In(32)`` as for RO, with the ``<name>_w`` strobe and ``w_data`` to store.
    addr_bits : int

    Members
    -------
    bus : In(AXILiteSignature(addr_bits))
    w_data : Out(32)
        The data of the write being strobed.
    <name> : In(32) for RO and RW1C registers (the value a read returns); Out(width) for RW
        registers (the stored value). Names are the register names in lower case.
    <name>_w : Out(1) for RW, WO and RW1C registers
        High for the one cycle in which a write to the register completes.
    """

    def __init__(self, registers, *, storage=None, strobes=None, held=(), addr_bits=8):
        self._regs = [(name, offset, access) for name, offset, access, _ in registers]
        self._storage = dict(storage or {})
        self._strobes = dict(strobes or {})
        self._held = set(held)
        members = {"bus": In(AXILiteSignature(addr_bits)), "w_data": Out(32)}
        for name, _, access in self._regs:
            key = name.lower()
            if access in ("RO", "RW1C") or name in self._held:
                members[key] = In(32)
            elif access == "RW":
                width, init = self._storage.get(name, (32, 0))
                members[key] = Out(width, init=init)
            elif access != "WO":
                raise ValueError(f"register {name}: access {access!r} is not RO, RW, WO or RW1C")
            if access != "RO":
                members[key + "_w"] = Out(1)
        super().__init__(members)

    def elaborate(self, platform):
        m = Module()
        bus = self.bus

        # ---- write: take AW and W in any order, answer B, one at a time ----------------------
        aw_ok, w_ok = Signal(), Signal()
        aw_addr = Signal.like(bus.awaddr)
        m.d.comb += [
            bus.awready.eq(~aw_ok & ~bus.bvalid),
            bus.wready.eq(~w_ok & ~bus.bvalid),
            bus.bresp.eq(0),
        ]
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += [aw_ok.eq(1), aw_addr.eq(bus.awaddr)]
        with m.If(bus.wvalid & bus.wready):
            m.d.sync += [w_ok.eq(1), self.w_data.eq(bus.wdata)]
        with m.If(bus.bvalid & bus.bready):
            m.d.sync += bus.bvalid.eq(0)
        write = Signal()
        m.d.comb += write.eq(aw_ok & w_ok & ~bus.bvalid)
        with m.If(write):
            m.d.sync += [aw_ok.eq(0), w_ok.eq(0), bus.bvalid.eq(1)]
            with m.Switch(aw_addr[2:]):
                for name, offset, access in self._regs:
                    if access == "RO":
                        continue
                    with m.Case(offset >> 2):
                        m.d.comb += getattr(self, name.lower() + "_w").eq(1)
                        if access == "RW" and name not in self._held:
                            reg = getattr(self, name.lower())
                            keep = ~self._strobes.get(name, 0) & ((1 << len(reg)) - 1)
                            m.d.sync += reg.eq(self.w_data[:len(reg)] & keep)

        # ---- read ------------------------------------------------------------------------------
        m.d.comb += [bus.arready.eq(~bus.rvalid), bus.rresp.eq(0)]
        with m.If(bus.rvalid & bus.rready):
            m.d.sync += bus.rvalid.eq(0)
        with m.If(bus.arvalid & bus.arready):
            m.d.sync += bus.rvalid.eq(1)
            with m.Switch(bus.araddr[2:]):
                for name, offset, access in self._regs:
                    if access != "WO":
                        with m.Case(offset >> 2):
                            m.d.sync += bus.rdata.eq(getattr(self, name.lower()))
                with m.Default():
                    m.d.sync += bus.rdata.eq(0)
        return m


class AXILiteDecoder(wiring.Component):
    """One AXI4-Lite master onto two slaves: ``lo`` where address bit ``select_bit`` is 0, ``hi``
    where it is 1 (both see the whole address). No latency of its own.

    For a master with one access at a time that offers W with or after its AW (as
    :class:`sparsa.hw.link.LinkBridge` does): W goes where the pending AW goes, or where the
    last one went; the one slave with an access answers B or R."""

    def __init__(self, addr_bits=8, *, select_bit):
        self.select_bit = select_bit
        super().__init__({"bus": In(AXILiteSignature(addr_bits)), "lo": Out(AXILiteSignature(addr_bits)),
                          "hi": Out(AXILiteSignature(addr_bits))})

    def elaborate(self, platform):
        m = Module()
        bus, lo, hi = self.bus, self.lo, self.hi
        bit = self.select_bit
        w_hi = Signal()                       # where the last AW went
        with m.If(bus.awvalid & bus.awready):
            m.d.sync += w_hi.eq(bus.awaddr[bit])
        aw_hi, ar_hi = bus.awaddr[bit], bus.araddr[bit]
        w_now = Mux(bus.awvalid, aw_hi, w_hi)
        for slave, here, w_here, ar_here in ((lo, ~aw_hi, ~w_now, ~ar_hi), (hi, aw_hi, w_now, ar_hi)):
            m.d.comb += [slave.awaddr.eq(bus.awaddr), slave.awvalid.eq(bus.awvalid & here),
                         slave.wdata.eq(bus.wdata), slave.wstrb.eq(bus.wstrb), slave.wvalid.eq(bus.wvalid & w_here),
                         slave.bready.eq(bus.bready), slave.araddr.eq(bus.araddr),
                         slave.arvalid.eq(bus.arvalid & ar_here), slave.rready.eq(bus.rready)]
        m.d.comb += [bus.awready.eq(Mux(aw_hi, hi.awready, lo.awready)), bus.wready.eq(Mux(w_now, hi.wready, lo.wready)),
                     bus.arready.eq(Mux(ar_hi, hi.arready, lo.arready)),
                     bus.bvalid.eq(lo.bvalid | hi.bvalid), bus.bresp.eq(Mux(hi.bvalid, hi.bresp, lo.bresp)),
                     bus.rvalid.eq(lo.rvalid | hi.rvalid), bus.rdata.eq(Mux(hi.rvalid, hi.rdata, lo.rdata)),
                     bus.rresp.eq(Mux(hi.rvalid, hi.rresp, lo.rresp))]
        return m


def register_table_markdown(registers):
    """A markdown table of ``(name, offset, access, meaning)`` rows (the docs' register maps)."""
    lines = ["| register | offset | access | meaning |", "|---|---|---|---|"]
    lines += [f"| {n} | 0x{o:02X} | {a} | {d} |" for n, o, a, d in registers]
    return "\n".join(lines) + "\n"
