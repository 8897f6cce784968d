"""AXILiteDecoder (hw/axil.py): one AXI4-Lite master onto two register files by address bit 7,
in Amaranth's simulator. A seeded random master offers W with its AW or up to three cycles after
it (the decoder's contract) and takes B and R late; every register is checked against a dict."""

import numpy as np
from amaranth import Elaboratable, Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator
from bench_helpers import until

from sparsa.hw.axil import AXILiteDecoder, AXILiteRegisterFile

LO = [("A", 0x00, "RW", ""), ("B", 0x04, "RW", "")]
HI = [("C", 0x80, "RW", ""), ("D", 0x84, "RW", "")]


class _Pair(Elaboratable):
    def __init__(self):
        self.dec = AXILiteDecoder(8, select_bit=7)
        self.lo, self.hi = AXILiteRegisterFile(LO), AXILiteRegisterFile(HI)

    def elaborate(self, platform):
        m = Module()
        m.submodules.dec, m.submodules.lo, m.submodules.hi = self.dec, self.lo, self.hi
        connect(m, self.dec.lo, self.lo.bus)
        connect(m, self.dec.hi, self.hi.bus)
        return m


def test_writes_and_reads_reach_the_slave_their_address_selects():
    seed = 17
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    dut = _Pair()
    bus = dut.dec.bus
    sim = Simulator(dut)
    sim.add_clock(1e-6)
    offsets = [o for _, o, _, _ in LO + HI]
    model = dict.fromkeys(offsets, 0)

    async def bench(ctx):
        for _ in range(120):
            off = int(rng.choice(offsets))
            if rng.random() < 0.5:
                value = int(rng.integers(0, 1 << 32))
                lag = int(rng.integers(0, 4))          # W with AW, or this many cycles after it
                ctx.set(bus.awaddr, off)
                ctx.set(bus.awvalid, 1)
                ctx.set(bus.wdata, value)
                ctx.set(bus.wstrb, 0xF)
                ctx.set(bus.wvalid, int(lag == 0))
                aw_done = w_done = False
                cycles = 0
                while not (aw_done and w_done):
                    assert cycles < 50, f"write {off:#x}: AW or W never taken"
                    if cycles >= lag and not w_done:
                        ctx.set(bus.wvalid, 1)
                    aw_now = ctx.get(bus.awvalid) and ctx.get(bus.awready)
                    w_now = ctx.get(bus.wvalid) and ctx.get(bus.wready)
                    await ctx.tick()
                    cycles += 1
                    if aw_now:
                        aw_done = True
                        ctx.set(bus.awvalid, 0)
                        ctx.set(bus.awaddr, 0)        # the master may change it after the handshake
                    if w_now:
                        w_done = True
                        ctx.set(bus.wvalid, 0)
                while rng.random() < 0.5:
                    await ctx.tick()
                ctx.set(bus.bready, 1)
                await until(ctx, bus.bvalid, 50)
                await ctx.tick()
                ctx.set(bus.bready, 0)
                model[off] = value
            else:
                ctx.set(bus.araddr, off)
                ctx.set(bus.arvalid, 1)
                await until(ctx, bus.arready, 50)
                await ctx.tick()
                ctx.set(bus.arvalid, 0)
                ctx.set(bus.araddr, 0)
                while rng.random() < 0.5:
                    await ctx.tick()
                ctx.set(bus.rready, 1)
                await until(ctx, bus.rvalid, 50)
                assert ctx.get(bus.rdata) == model[off], f"read {off:#x}"
                await ctx.tick()
                ctx.set(bus.rready, 0)
        for name, off, _, _ in LO + HI:
            rf = dut.lo if off < 0x80 else dut.hi
            assert ctx.get(getattr(rf, name.lower())) == model[off], name
    sim.add_testbench(bench)
    sim.run()
