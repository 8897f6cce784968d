"""The array's codebook stores (:mod:`sparsa.hw.eie.codebooks`): both take the load port's
CODEBOOK writes and give the current layer's entries; the memory store after its fetch, whose
cost is counted here cycle by cycle. And whole multi-layer runs of the array with the codebooks
in a memory, against the golden model rebuilt from dense matrices."""

import numpy as np
import pytest
from amaranth.sim import Simulator
from eie_cases import hw_config, independent_golden, random_input, random_pack

from sparsa.hw.eie.codebooks import CodebookMemory, CodebookRegisters
from sparsa.hw.eie.top import EIEArray
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.eie.protocol import CODEBOOK_STRIDE

LAYERS = 3


def _simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


@pytest.mark.parametrize("store", [CodebookRegisters, CodebookMemory])
def test_loaded_codebooks_reach_the_pes_layer_by_layer(store):
    seed = 61
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    books = rng.integers(-32768, 32768, (LAYERS, 16)).tolist()
    dut = store(LAYERS)
    seen = {}

    async def bench(ctx):
        # The load port's order is not the layers' order: write them shuffled; then addresses
        # past the last layer, which must change nothing: 48, and 69, whose low 6 bits (the
        # memory's address width) are layer 0's entry 5.
        writes = [(li * CODEBOOK_STRIDE + e, books[li][e]) for li in range(LAYERS) for e in range(16)]
        for k in rng.permutation(len(writes)):
            ctx.set(dut.ld_en, 1)
            ctx.set(dut.ld_addr, writes[k][0])
            ctx.set(dut.ld_data, writes[k][1])
            await ctx.tick()
        for addr in (LAYERS * CODEBOOK_STRIDE, 64 + 5):
            ctx.set(dut.ld_addr, addr)
            ctx.set(dut.ld_data, 12345)
            await ctx.tick()
        ctx.set(dut.ld_en, 0)
        for li in (2, 0, 1):
            ctx.set(dut.layer, li)
            ctx.set(dut.fetch, 1)
            await ctx.tick()
            ctx.set(dut.fetch, 0)
            waited = 1                      # cycles since the fetch cycle
            while not ctx.get(dut.ready):
                await ctx.tick()
                waited += 1
            seen[li] = (waited, [ctx.get(dut.current[e]) for e in range(16)])

    _simulate(dut, bench)
    # The registers answer in the cycle after the fetch (they need none); the memory 18 cycles
    # after it: 16 reads, a cycle of read latency, a cycle to hand over.
    wait = 1 if store is CodebookRegisters else 18
    assert store.FETCH_CYCLES == (0 if store is CodebookRegisters else 18)
    assert seen == {li: (wait, books[li]) for li in range(LAYERS)}


def _run_array(cfg, mm, x, n_layers):
    dut = EIEArray(cfg, mm)
    out = {"y": [], "cycles": None}

    async def bench(ctx):
        for v in x:
            ctx.set(dut.x_in.payload, int(v))
            ctx.set(dut.x_in.valid, 1)
            await ctx.tick()
        ctx.set(dut.x_in.valid, 0)
        ctx.set(dut.n_layers, n_layers)
        ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.y_out.ready, 1)
        for _ in range(20000):
            if ctx.get(dut.done):
                out["cycles"] = ctx.get(dut.cycles)
            if ctx.get(dut.y_out.valid):
                out["y"].append(ctx.get(dut.y_out.payload))
            await ctx.tick()
            if len(out["y"]) == mm.layers[-1].rows:
                break

    _simulate(dut, bench)
    return np.array(out["y"]), out["cycles"]


@pytest.mark.parametrize("seed", [0, 1])
def test_a_multi_layer_run_with_codebooks_in_memory_matches_the_golden_model(seed):
    """Three layers, each with its own codebook: a stale or misaligned copy would multiply by
    another layer's entries. The memory store costs exactly 18 cycles a layer more than the
    registers, nothing else."""
    print(f"seed={seed}")
    rng = np.random.default_rng(100 + seed)
    pes = [2, 3][seed]
    rows = [int(rng.integers(5, 30)) for _ in range(LAYERS)]
    cols0 = int(rng.integers(5, 30))
    shapes = [(rows[0], cols0), (rows[1], rows[0]), (rows[2], rows[1])]
    pack = random_pack(shapes, pes, 0.4, rng, shift=7)
    assert len({tuple(l.codebook) for l in pack.layers}) == LAYERS       # three different codebooks
    x = random_input(cols0, rng, batch=1)[0]
    want = independent_golden(pack, x)
    mm = build_memory_map(pack)
    # Seed 0: the iCEBreaker's PE (serial reader, one multiplier); seed 1: the default PE.
    base = hw_config(pes, max_layers=LAYERS)
    base = base.replace(macs=1, reader="serial") if seed == 0 else base
    y_reg, cycles_reg = _run_array(base, mm, x, LAYERS)
    y_mem, cycles_mem = _run_array(base.replace(codebooks="memory"), mm, x, LAYERS)
    np.testing.assert_array_equal(y_reg, want)
    np.testing.assert_array_equal(y_mem, want)
    assert cycles_mem == cycles_reg + 18 * LAYERS
