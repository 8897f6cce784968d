"""Amaranth-level unit tests of the CNN engine's blocks: the AXI4 master engines against a
Python AXI slave with random stalls, and the Winograd adder networks against numpy."""

# amaranth: UnusedElaboratable=no

import random

import numpy as np
import pytest
from amaranth import Elaboratable, Module, Signal, signed
from amaranth.sim import Simulator

from sparsa.hw.cnn.axi import AXIReader, AXIWriter
from sparsa.hw.cnn.winograd import input_transform, output_transform
from sparsa.sw.cnn_isa import WINO_AT, WINO_BT

MEM = 3 * 4096


def simulate(dut, *benches):
    """Run a combinational ``dut`` (no clock) with the given testbenches."""
    sim = Simulator(dut)
    for b in benches:
        sim.add_testbench(b)
    sim.run()


def check_burst(addr, length):
    """AXI4 rules for an INCR burst of 64-bit beats: aligned, <= 16 beats, inside one 4 KiB page."""
    assert addr % 8 == 0
    assert 0 <= length <= 15
    assert addr // 4096 == (addr + 8 * (length + 1) - 1) // 4096, (addr, length)


def commands(rng, n):
    """Random byte ranges, plus the named edge cases: one byte, a page boundary, 16-beat bursts."""
    cmds = [(4096 - 3, 7), (4095, 1), (8, 128), (8 * 16 * 3 + 5, 8 * 33)]
    while len(cmds) < n:
        a = rng.randrange(0, MEM - 1200)
        cmds.append((a, rng.randrange(1, 1100)))
    return cmds


@pytest.mark.parametrize("seed", [0, 1])
def test_axi_reader_bursts_and_byte_ranges(seed):
    print("seed", seed)
    rng = random.Random(seed)
    mem = bytes(rng.randrange(256) for _ in range(MEM))
    cmds = commands(rng, 10)
    dut = AXIReader()
    got = []

    async def host(ctx):
        for addr, n in cmds:
            ctx.set(dut.cmd.valid, 1)
            ctx.set(dut.cmd.p.addr, addr)
            ctx.set(dut.cmd.p.nbytes, n)
            await ctx.tick().until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)
            data = bytearray()
            while True:
                ready = rng.random() < 0.7
                ctx.set(dut.o.ready, ready)
                await ctx.delay(1e-9)
                if ready and ctx.get(dut.o.valid):
                    beat = ctx.get(dut.o.p.data).to_bytes(8, "little")
                    lo, hi, last = ctx.get(dut.o.p.lo), ctx.get(dut.o.p.hi), ctx.get(dut.o.p.last)
                    data += beat[lo:hi + 1]
                    await ctx.tick()
                    if last:
                        break
                else:
                    await ctx.tick()
            ctx.set(dut.o.ready, 0)
            got.append(bytes(data))

    async def slave(ctx):
        axi = dut.axi
        while True:
            ctx.set(axi.arready, rng.random() < 0.5)
            await ctx.delay(1e-9)
            if ctx.get(axi.arvalid) and ctx.get(axi.arready):
                addr, length = ctx.get(axi.araddr), ctx.get(axi.arlen)
                check_burst(addr, length)
                await ctx.tick()
                ctx.set(axi.arready, 0)
                for k in range(length + 1):
                    while rng.random() < 0.3:
                        await ctx.tick()
                    ctx.set(axi.rvalid, 1)
                    ctx.set(axi.rdata, int.from_bytes(mem[addr + 8 * k:addr + 8 * k + 8], "little"))
                    ctx.set(axi.rlast, k == length)
                    await ctx.tick().until(axi.rready)
                    ctx.set(axi.rvalid, 0)
            else:
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(slave, background=True)
    sim.run()
    assert got == [mem[a:a + n] for a, n in cmds]


@pytest.mark.parametrize("seed", [0, 1])
def test_axi_writer_bursts_and_strobes(seed):
    """Beats with strobes in, the right bytes land in memory and nothing else changes."""
    print("seed", seed)
    rng = random.Random(seed)
    cmds = commands(rng, 8)
    want = bytearray(MEM)
    mem = bytearray(MEM)
    dut = AXIWriter()
    payloads = [bytes(rng.randrange(1, 256) for _ in range(n)) for _, n in cmds]

    async def host(ctx):
        for (addr, n), payload in zip(cmds, payloads):
            want[addr:addr + n] = payload
            ctx.set(dut.cmd.valid, 1)
            ctx.set(dut.cmd.p.addr, addr)
            ctx.set(dut.cmd.p.nbytes, n)
            await ctx.tick().until(dut.cmd.ready)
            ctx.set(dut.cmd.valid, 0)
            base = addr - addr % 8
            nbeats = (addr % 8 + n + 7) // 8
            for k in range(nbeats):
                beat = bytearray(8)
                strb = 0
                for j in range(8):
                    a = base + 8 * k + j
                    if addr <= a < addr + n:
                        beat[j] = payload[a - addr]
                        strb |= 1 << j
                while rng.random() < 0.3:
                    await ctx.tick()
                ctx.set(dut.data.valid, 1)
                ctx.set(dut.data.p.data, int.from_bytes(beat, "little"))
                ctx.set(dut.data.p.strb, strb)
                await ctx.tick().until(dut.data.ready)
                ctx.set(dut.data.valid, 0)
            # after the last beat the writer waits for B, then returns to idle (cmd.ready)
            for _ in range(200):
                await ctx.delay(2e-9)
                if ctx.get(dut.cmd.ready):
                    break
                await ctx.tick()
            assert ctx.get(dut.cmd.ready)
            assert mem[addr:addr + n] == payload

    async def slave(ctx):
        axi = dut.axi
        while True:
            ctx.set(axi.awready, rng.random() < 0.5)
            await ctx.delay(1e-9)
            if ctx.get(axi.awvalid) and ctx.get(axi.awready):
                addr, length = ctx.get(axi.awaddr), ctx.get(axi.awlen)
                check_burst(addr, length)
                await ctx.tick()
                ctx.set(axi.awready, 0)
                for k in range(length + 1):
                    ctx.set(axi.wready, rng.random() < 0.7)
                    await ctx.delay(1e-9)
                    while not (ctx.get(axi.wvalid) and ctx.get(axi.wready)):
                        await ctx.tick()
                        ctx.set(axi.wready, rng.random() < 0.7)
                        await ctx.delay(1e-9)
                    assert ctx.get(axi.wlast) == (k == length)
                    data, strb = ctx.get(axi.wdata).to_bytes(8, "little"), ctx.get(axi.wstrb)
                    for j in range(8):
                        if strb >> j & 1:
                            mem[addr + 8 * k + j] = data[j]
                    await ctx.tick()
                ctx.set(axi.wready, 0)
                ctx.set(axi.bvalid, 1)
                await ctx.tick().until(axi.bready)
                ctx.set(axi.bvalid, 0)
            else:
                await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(host)
    sim.add_testbench(slave, background=True)
    sim.run()
    assert mem == want


class _Transforms(Elaboratable):
    def __init__(self):
        self.d = [Signal(signed(8), name=f"d{i}") for i in range(16)]
        self.m = [Signal(signed(40), name=f"m{i}") for i in range(16)]
        self.v = [Signal(signed(12), name=f"v{i}") for i in range(16)]
        self.y = [Signal(signed(44), name=f"y{i}") for i in range(4)]

    def elaborate(self, platform):
        m = Module()
        m.d.comb += [v.eq(e) for v, e in zip(self.v, input_transform(self.d))]
        m.d.comb += [y.eq(e) for y, e in zip(self.y, output_transform(self.m))]
        return m


def test_winograd_adder_networks_match_numpy():
    """V = B^T d B on random and extreme int8 tiles; Y = A^T M A on wide accumulators."""
    rng = np.random.default_rng(3)
    print("seed", 3)
    tiles = [rng.integers(-128, 128, (4, 4)) for _ in range(40)]
    sign = np.sign(WINO_BT.T @ np.ones((4, 4), np.int64) @ WINO_BT)
    tiles += [np.full((4, 4), -128), np.full((4, 4), 127), np.where(sign >= 0, 127, -128)]
    ms = [rng.integers(-(1 << 35), 1 << 35, (4, 4)) for _ in range(40)]
    dut = _Transforms()

    async def bench(ctx):
        for d, mm in zip(tiles, ms + ms[:len(tiles) - len(ms)]):
            for s, v in zip(dut.d, d.reshape(-1)):
                ctx.set(s, int(v))
            for s, v in zip(dut.m, mm.reshape(-1)):
                ctx.set(s, int(v))
            await ctx.delay(1e-9)
            assert [ctx.get(v) for v in dut.v] == (WINO_BT @ d @ WINO_BT.T).reshape(-1).tolist()
            assert [ctx.get(y) for y in dut.y] == (WINO_AT @ mm @ WINO_AT.T).reshape(-1).tolist()

    simulate(dut, bench)
