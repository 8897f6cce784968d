"""The CNN board system's on-chip DRAM (hw/cnn/block_ram.py) in Amaranth's simulator: seeded
random read and write bursts from an AXI master with random stalls on every channel, byte
strobes, bursts that run past the memory's end, and host-port reads and writes in between,
against a byte array."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from bench_helpers import until

from sparsa.hw.cnn.block_ram import AXIBlockRAM

DEPTH = 64                      # words: 512 bytes; the bench addresses up to twice that


async def _bench(ctx, ram, rng, model, ops):
    axi, host = ram.axi, ram.host
    size = DEPTH * 8
    for _ in range(ops):
        kind = rng.choice(["read", "write", "host_read", "host_write"])
        # The engine comes first: a host request made with a burst waits until it is over.
        waiting = kind in ("read", "write") and rng.random() < 0.3
        if waiting:
            host_word = int(rng.integers(0, DEPTH))
            ctx.set(host.addr, host_word)
            ctx.set(host.write, 0)
            ctx.set(host.valid, 1)
        if kind in ("read", "write"):
            word, n, ident = int(rng.integers(0, 2 * DEPTH)), int(rng.integers(1, 17)), int(rng.integers(0, 16))
            ch = axi.ar if kind == "read" else axi.aw
            ctx.set(ch.addr, word * 8)
            ctx.set(ch.len, n - 1)
            ctx.set(ch.id, ident)
            ctx.set(ch.valid, 1)
            await until(ctx, ch.ready)
            assert not ctx.get(host.ready), "the host was served before the engine's burst"
            await ctx.tick()
            ctx.set(ch.valid, 0)
        if kind == "read":
            got = []
            held = None                     # a beat offered and not taken must stay as it was
            while len(got) < n:
                assert not (waiting and ctx.get(host.ready)), "the host was served during a burst"
                valid = ctx.get(axi.r.valid)
                beat = (ctx.get(axi.r.data), ctx.get(axi.r.last), ctx.get(axi.r.id))
                if held is not None:
                    assert valid and beat == held, f"R changed while RREADY was low: {held} -> {beat}"
                ready = int(rng.random() < 0.6)
                ctx.set(axi.r.ready, ready)
                if valid:
                    assert beat[2] == ident, "RID is not the ARID"
                    if ready:
                        got.append(beat[:2])
                held = beat if valid and not ready else None
                await ctx.tick()
            ctx.set(axi.r.ready, 0)
            for k, (data, last) in enumerate(got):
                a = (word + k) * 8
                want = int.from_bytes(model[a:a + 8], "little") if a < size else 0
                assert data == want, f"read beat {k} of {n} at byte {a:#x}: {data:#x} != {want:#x}"
                assert last == (k == n - 1)
        elif kind == "write":
            for k in range(n):
                while rng.random() < 0.3:           # the master pauses between beats
                    await ctx.tick()
                data, strb = int(rng.integers(0, 1 << 63)) * 2 + 1, int(rng.integers(0, 256))
                ctx.set(axi.w.data, data)
                ctx.set(axi.w.strb, strb)
                ctx.set(axi.w.last, int(k == n - 1))
                ctx.set(axi.w.valid, 1)
                assert not (waiting and ctx.get(host.ready)), "the host was served during a burst"
                await until(ctx, axi.w.ready)
                await ctx.tick()
                ctx.set(axi.w.valid, 0)
                a = (word + k) * 8
                if a < size:
                    for byte in range(8):
                        if strb >> byte & 1:
                            model[a + byte] = data >> (8 * byte) & 0xFF
            while rng.random() < 0.5:               # B not taken at once
                await ctx.tick()
            ctx.set(axi.b.ready, 1)
            await until(ctx, axi.b.valid)
            assert ctx.get(axi.b.id) == ident, "BID is not the AWID"
            await ctx.tick()
            ctx.set(axi.b.ready, 0)
        if waiting:
            await until(ctx, host.ready)
            await ctx.tick()
            ctx.set(host.valid, 0)
            assert ctx.get(host.rdata) == int.from_bytes(model[host_word * 8:host_word * 8 + 8], "little")
        elif kind not in ("read", "write"):
            word = int(rng.integers(0, DEPTH))
            data, mask = int(rng.integers(0, 1 << 63)), int(rng.integers(0, 256))
            ctx.set(host.addr, word)
            ctx.set(host.write, int(kind == "host_write"))
            ctx.set(host.wdata, data)
            ctx.set(host.wmask, mask)
            ctx.set(host.valid, 1)
            await until(ctx, host.ready)
            await ctx.tick()
            ctx.set(host.valid, 0)
            a = word * 8
            if kind == "host_write":
                for byte in range(8):
                    if mask >> byte & 1:
                        model[a + byte] = data >> (8 * byte) & 0xFF
            else:
                assert ctx.get(host.rdata) == int.from_bytes(model[a:a + 8], "little"), f"host read at {a:#x}"


@pytest.mark.parametrize("seed", [5, 6])
def test_block_ram_bursts_stalls_strobes_and_host_against_a_byte_array(seed):
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    ram = AXIBlockRAM(DEPTH)
    model = bytearray(DEPTH * 8)
    sim = Simulator(ram)
    sim.add_clock(1e-6)

    async def bench(ctx):
        await _bench(ctx, ram, rng, model, 250)
    sim.add_testbench(bench)
    sim.run()

