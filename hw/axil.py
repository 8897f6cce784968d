"""AXI4-Lite slave plumbing shared by the SoC wrappers (32-bit data, one transaction at a time).

:func:`axil_ports` gives the flat port names cocotbext-axi binds by prefix
(``s_axil_awvalid``...). :func:`axil_write` accepts AW and W in any order and answers B; it
returns the write strobe with the word's address and data, for the caller's register
``Switch``. :func:`axil_read` answers AR with the register at that address from a dict of
offset -> value (unknown offsets read 0). Latency: a write completes 2 cycles after both AW
and W are seen; a read in 1.
"""

from amaranth import *
from amaranth.lib.wiring import In, Out

__all__ = ["axil_ports", "axil_write", "axil_read", "register_table_markdown"]


def axil_ports(addr_bits=8, prefix="s_axil_"):
    return {prefix + k: v for k, v in {
        "awaddr": In(addr_bits), "awvalid": In(1), "awready": Out(1),
        "wdata": In(32), "wstrb": In(4), "wvalid": In(1), "wready": Out(1),
        "bresp": Out(2), "bvalid": Out(1), "bready": In(1),
        "araddr": In(addr_bits), "arvalid": In(1), "arready": Out(1),
        "rdata": Out(32), "rresp": Out(2), "rvalid": Out(1), "rready": In(1),
    }.items()}


def axil_write(m, bus, prefix="s_axil_"):
    """Returns ``(write, addr, data)``: ``write`` is high for one cycle per completed write."""
    p = lambda name: getattr(bus, prefix + name)
    aw_ok, w_ok = Signal(), Signal()
    aw_addr = Signal(len(p("awaddr")))
    w_data = Signal(32)
    m.d.comb += [
        p("awready").eq(~aw_ok & ~p("bvalid")),
        p("wready").eq(~w_ok & ~p("bvalid")),
        p("bresp").eq(0),
    ]
    with m.If(p("awvalid") & p("awready")):
        m.d.sync += [aw_ok.eq(1), aw_addr.eq(p("awaddr"))]
    with m.If(p("wvalid") & p("wready")):
        m.d.sync += [w_ok.eq(1), w_data.eq(p("wdata"))]
    with m.If(p("bvalid") & p("bready")):
        m.d.sync += p("bvalid").eq(0)
    write = Signal()
    m.d.comb += write.eq(aw_ok & w_ok & ~p("bvalid"))
    with m.If(write):
        m.d.sync += [aw_ok.eq(0), w_ok.eq(0), p("bvalid").eq(1)]
    return write, aw_addr, w_data


def axil_read(m, bus, regs, prefix="s_axil_"):
    """Answer reads from ``regs``: byte offset -> 32-bit value (expression)."""
    p = lambda name: getattr(bus, prefix + name)
    m.d.comb += [p("arready").eq(~p("rvalid")), p("rresp").eq(0)]
    with m.If(p("rvalid") & p("rready")):
        m.d.sync += p("rvalid").eq(0)
    with m.If(p("arvalid") & p("arready")):
        m.d.sync += p("rvalid").eq(1)
        with m.Switch(p("araddr")[2:]):
            for off, val in regs.items():
                with m.Case(off >> 2):
                    m.d.sync += p("rdata").eq(val)
            with m.Default():
                m.d.sync += p("rdata").eq(0)


def register_table_markdown(registers):
    """A markdown table of ``(name, offset, access, meaning)`` rows (the docs' register maps)."""
    lines = ["| register | offset | access | meaning |", "|---|---|---|---|"]
    lines += [f"| {n} | 0x{o:02X} | {a} | {d} |" for n, o, a, d in registers]
    return "\n".join(lines) + "\n"
