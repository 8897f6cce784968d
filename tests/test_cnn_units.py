"""Amaranth-level unit tests of the CNN engine's blocks: the AXI4 master engines against a
Python AXI slave with random stalls, the Winograd adder networks, the 3x3 window generator and
the window convolver's lanes against numpy."""

# amaranth: UnusedElaboratable=no

import random

import numpy as np
import pytest
from amaranth import Elaboratable, Module, Shape, Signal, signed
from amaranth.sim import Simulator

from amaranth.lib.memory import Memory
from amaranth.lib.wiring import connect

from sparsa.hw.cnn.axi import AXIReader, AXIWriter
from sparsa.hw.cnn.convolver import WindowConvolver
from sparsa.hw.cnn.linebuf import WindowSweep
from sparsa.hw.cnn.winograd import input_transform, output_transform
from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.isa import WINO_AT, WINO_BT

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
            ctx.set(axi.ar.ready, rng.random() < 0.5)
            await ctx.delay(1e-9)
            if ctx.get(axi.ar.valid) and ctx.get(axi.ar.ready):
                addr, length = ctx.get(axi.ar.addr), ctx.get(axi.ar.len)
                check_burst(addr, length)
                await ctx.tick()
                ctx.set(axi.ar.ready, 0)
                for k in range(length + 1):
                    while rng.random() < 0.3:
                        await ctx.tick()
                    ctx.set(axi.r.valid, 1)
                    ctx.set(axi.r.data, int.from_bytes(mem[addr + 8 * k:addr + 8 * k + 8], "little"))
                    ctx.set(axi.r.last, k == length)
                    await ctx.tick().until(axi.r.ready)
                    ctx.set(axi.r.valid, 0)
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
            ctx.set(axi.aw.ready, rng.random() < 0.5)
            await ctx.delay(1e-9)
            if ctx.get(axi.aw.valid) and ctx.get(axi.aw.ready):
                addr, length = ctx.get(axi.aw.addr), ctx.get(axi.aw.len)
                check_burst(addr, length)
                await ctx.tick()
                ctx.set(axi.aw.ready, 0)
                for k in range(length + 1):
                    ctx.set(axi.w.ready, rng.random() < 0.7)
                    await ctx.delay(1e-9)
                    while not (ctx.get(axi.w.valid) and ctx.get(axi.w.ready)):
                        await ctx.tick()
                        ctx.set(axi.w.ready, rng.random() < 0.7)
                        await ctx.delay(1e-9)
                    assert ctx.get(axi.w.last) == (k == length)
                    data, strb = ctx.get(axi.w.data).to_bytes(8, "little"), ctx.get(axi.w.strb)
                    for j in range(8):
                        if strb >> j & 1:
                            mem[addr + 8 * k + j] = data[j]
                    await ctx.tick()
                ctx.set(axi.w.ready, 0)
                ctx.set(axi.b.valid, 1)
                await ctx.tick().until(axi.b.ready)
                ctx.set(axi.b.valid, 0)
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


#
# The 3x3 window convolver: window generator (row streams over ibuf) and lanes
#

def _ibuf_image(rng, c, h, w, buf, gap):
    """ibuf bytes with channel ch's (h, w) rows at ``buf + ch*bstride`` (bstride = h*w + gap)."""
    bstride = h * w + gap
    img = rng.integers(-128, 128, (c, h, w))
    size = -(-(buf + c * bstride + 16) // 8) * 8
    mem = rng.integers(-128, 128, size)            # garbage around and between the channels
    for ch in range(c):
        mem[buf + ch * bstride:buf + ch * bstride + h * w] = img[ch].reshape(-1)
    words = [int.from_bytes(mem[8 * i:8 * i + 8].astype(np.int8).tobytes(), "little") for i in range(size // 8)]
    return img, bstride, words


def _windows(img, rows, r0, s, pad, wo_out):
    """numpy windows in sweep order: (c, py, px) -> 9 values, 0 outside the image."""
    c, h, w = img.shape
    xp = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
    out = []
    for ch in range(c):
        for py in range(rows):
            for px in range(wo_out):
                y, x = (r0 + py) * s, px * s
                out.append(xp[ch, y:y + 3, x:x + 3].reshape(-1).tolist())
    return out


class _SweepHarness(Elaboratable):
    def __init__(self, words, convolver=None, wwords=None):
        self.words = words
        self.sweep = WindowSweep()
        self.conv = convolver
        self.wwords = wwords

    def elaborate(self, platform):
        m = Module()
        m.submodules.sweep = sweep = self.sweep
        m.submodules.ibuf = ibuf = Memory(shape=64, depth=len(self.words), init=self.words)
        for r in range(3):
            port = ibuf.read_port()
            m.d.comb += [port.addr.eq(getattr(sweep, f"rd{r}_addr")), getattr(sweep, f"rd{r}_data").eq(port.data)]
        if self.conv is not None:
            m.submodules.conv = conv = self.conv
            m.submodules.wbuf = wbuf = Memory(shape=len(conv.wb_data), depth=len(self.wwords), init=self.wwords)
            port = wbuf.read_port()
            m.d.comb += [port.addr.eq(conv.wb_addr), conv.wb_data.eq(port.data), conv.start.eq(sweep.start)]
            connect(m, sweep.o, conv.i)
        return m


# (C, H, W, stride, pad, first output row of the tile, output rows); W = 3 and 5 are narrower
# than one ibuf word, 3x3 with pad 0 is a single window, 1-row tiles at the padded edges
SWEEP_CASES = [(1, 3, 3, 1, 0, 0, 1), (2, 4, 4, 1, 1, 0, 4), (3, 7, 5, 1, 1, 2, 3), (2, 9, 11, 2, 1, 0, 5),
               (1, 6, 19, 1, 0, 1, 3), (2, 5, 3, 1, 1, 4, 1), (3, 8, 10, 2, 0, 1, 2), (1, 2, 17, 1, 1, 0, 2)]


def _sweep_params(case, bstride, buf):
    c, h, w, s, pad, oy0, rows = case
    wo = (w + 2 * pad - 3) // s + 1
    y0 = oy0 * s - pad
    r0 = max(0, y0)
    # the tile's rows start at buf (as the compiler loads them): shift the image base back
    base = buf - r0 * w
    return dict(count=c, step=s, gh=rows, gw=wo, y0=y0, x0=-pad, row0=r0, H=h, W=w, buf=base % (1 << 20),
                bstride=bstride, wo=wo), wo


@pytest.mark.parametrize("case", SWEEP_CASES)
def test_window_sweep_emits_every_3x3_window_with_generated_padding(case):
    """The window generator against numpy: every window in (c, py, px) order, padding zeros,
    unaligned rows narrower or wider than a word, stride 2, random back-pressure."""
    seed = SWEEP_CASES.index(case)
    print("seed", seed)
    rng = np.random.default_rng(seed)
    c, h, w, s, pad, oy0, rows = case
    rng.integers(0, 24)  # keeps the seeded sequence of earlier runs
    # rows r0.. of every channel are stored from buf (the ibuf image holds the whole map, so
    # shift each channel so that row r0 lands on buf + ch*bstride)
    img, bstride, words = _ibuf_image(rng, c, h, w, 0, int(rng.integers(0, 11)))
    params, wo = _sweep_params(case, bstride, 0)
    params["buf"] = 0
    params["row0"] = 0
    want = _windows(img, rows, oy0, s, pad, wo)
    dut = _SweepHarness(words)
    got = []

    async def bench(ctx):
        sw = dut.sweep
        for k, v in params.items():
            ctx.set(getattr(sw.params, k), v)
        ctx.set(sw.start, 1)
        await ctx.tick()
        ctx.set(sw.start, 0)
        for _ in range(20 * len(want) + 50):
            ready = rng.random() < 0.8
            ctx.set(sw.o.ready, ready)
            await ctx.delay(1e-9)
            if ready and ctx.get(sw.o.valid):
                p = ctx.get(sw.o.p)
                got.append([int(v) for v in p.x])
            if not ctx.get(sw.busy):
                break
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert len(got) == len(want)
    for i, (g, e) in enumerate(zip(got, want)):
        assert g == e, (i, g, e)


def test_window_sweep_streams_one_window_a_cycle():
    """Throughput: with ready held high, a 2-channel 6x14 map is swept at one window a cycle
    apart from the first fill (no bubble at row or channel boundaries)."""
    rng = np.random.default_rng(8)
    img, bstride, words = _ibuf_image(rng, 2, 6, 14, 0, 3)
    params, wo = _sweep_params((2, 6, 14, 1, 1, 0, 6), bstride, 0)
    dut = _SweepHarness(words)
    cycles = []

    async def bench(ctx):
        sw = dut.sweep
        for k, v in params.items():
            ctx.set(getattr(sw.params, k), v)
        ctx.set(sw.o.ready, 1)
        ctx.set(sw.start, 1)
        await ctx.tick()
        ctx.set(sw.start, 0)
        n = 0
        while ctx.get(sw.busy):
            n += 1
            await ctx.tick()
        cycles.append(n)

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    windows = 2 * 6 * wo
    assert windows <= cycles[0] <= windows + 4, (cycles[0], windows)


@pytest.mark.parametrize("pair", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_window_convolver_lanes_sum_9_products_per_lane_exactly(seed, pair):
    """Sweep + lanes (9 multipliers and the adder tree per lane, or per pair of lanes with
    ``pair_multipliers``; psum read-modify-write over the channels): every output pixel's sum
    equals numpy's, extreme int8 weights included. The weights are the low bytes of 16-bit
    words whose high bytes are random (the convolver must ignore them)."""
    print("seed", seed)
    rng = np.random.default_rng(seed)
    cfg = CNNConfig(lanes=4, psum_depth=64, pair_multipliers=pair)
    c, h, w, s, pad = (3, 5, 6, 1, 1) if seed == 0 else (2, 7, 9, 2, 0)
    img, bstride, words = _ibuf_image(rng, c, h, w, 0, 5)
    params, wo = _sweep_params((c, h, w, s, pad, 0, (h + 2 * pad - 3) // s + 1), bstride, 0)
    params["buf"], params["row0"] = 0, 0
    ho = params["gh"]
    wt = rng.integers(-128, 128, (4, c, 3, 3))
    wt[0] = -128                                    # the extreme products of one lane ...
    wt[1, :, 1] = 127                               # ... and of its pair partner
    high = rng.integers(0, 256, (4, c * 9))
    wwords = [sum(((int(wt[l].reshape(-1)[j]) & 0xFF) | int(high[l, j]) << 8) << (16 * l) for l in range(4))
              for j in range(c * 9)]
    xp = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
    want = np.zeros((4, ho, wo), np.int64)
    for py in range(ho):
        for px in range(wo):
            win = xp[:, py * s:py * s + 3, px * s:px * s + 3]
            want[:, py, px] = np.einsum("lcij,cij->l", wt, win)
    dut = _SweepHarness(words, WindowConvolver(cfg, 40), wwords)
    got = {}

    async def bench(ctx):
        sw, cv = dut.sweep, dut.conv
        for k, v in params.items():
            ctx.set(getattr(sw.params, k), v)
        ctx.set(sw.start, 1)
        await ctx.tick()
        ctx.set(sw.start, 0)
        for _ in range(40 * c * ho * wo + 100):
            if ctx.get(cv.o_valid):
                got[ctx.get(cv.o_addr)] = [int(v) for v in ctx.get(cv.o_vals)]
            if not (ctx.get(sw.busy) or ctx.get(cv.busy)):
                break
            await ctx.tick()

    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()
    assert sorted(got) == list(range(ho * wo))
    for q, vals in got.items():
        assert vals == want[:, q // wo, q % wo].tolist(), q


def test_engine_axi_ports_keep_the_flat_names_cocotbext_axi_binds():
    """The nested AXI4 signature is flattened at the engine's top to ``m_axi_<channel><signal>``
    with the AXI directions of a master (cocotbext-axi's ``AxiBus.from_prefix(dut, "m_axi")``)."""
    from amaranth.lib.wiring import In, Out

    from sparsa.hw.cnn.engine import CNNEngine
    outs = ("araddr arlen arsize arburst arvalid arid arprot arcache arlock rready "
            "awaddr awlen awsize awburst awvalid awid awprot awcache awlock wdata wstrb wlast wvalid bready").split()
    ins = "arready rdata rresp rlast rvalid rid awready wready bresp bvalid bid".split()
    members = {name: m for name, m in CNNEngine(CNNConfig(lanes=4)).signature.members.items()
               if name.startswith("m_axi_")}
    assert set(members) == {"m_axi_" + n for n in outs + ins}
    assert all(members["m_axi_" + n].flow == Out for n in outs)
    assert all(members["m_axi_" + n].flow == In for n in ins)
    assert Shape.cast(members["m_axi_rdata"].shape).width == 64
    assert Shape.cast(members["m_axi_araddr"].shape).width == 32
