"""Amaranth simulation helpers for the unit tests of stream blocks (async testbenches)."""

from amaranth.sim import Simulator

__all__ = ["simulate", "pump", "run_array"]


def simulate(dut, bench):
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    sim.add_testbench(bench)
    sim.run()


async def pump(ctx, dut, inputs, set_input, read_output, count, rng, *, p_valid=1.0, p_ready=1.0,
               each_cycle=None, max_cycles=100_000):
    """Feed ``inputs`` into stream ``dut.i`` and collect beats from ``dut.o``.

    ``count`` is the number of beats to collect, or a predicate on the beats collected so far.
    A unit that has not produced them in ``max_cycles`` fails the test (a lost beat must not
    hang the suite).

    Random pauses: ``valid`` is offered with probability ``p_valid``, ``ready`` with
    ``p_ready`` (the rng is only drawn for probabilities below 1). A beat moves when valid and
    ready are both high before the clock edge.
    """
    got, k = [], 0
    enough = count if callable(count) else (lambda beats: len(beats) >= count)
    for _ in range(max_cycles):
        if enough(got):
            break
        ctx.set(dut.o.ready, rng.random() < p_ready)
        if k < len(inputs):
            set_input(inputs[k])
            ctx.set(dut.i.valid, p_valid >= 1 or rng.random() < p_valid)
        else:
            ctx.set(dut.i.valid, 0)
        took = ctx.get(dut.i.valid) and ctx.get(dut.i.ready)
        if ctx.get(dut.o.valid) and ctx.get(dut.o.ready):
            got.append(read_output())
        if each_cycle:
            each_cycle()
        await ctx.tick()
        k += took
    assert enough(got), f"{len(got)} beats after {max_cycles} cycles, {k} of {len(inputs)} inputs taken"
    return got


def run_array(dut, x, n_layers, n_outputs, max_cycles=20_000):
    """Run an :class:`~sparsa.hw.eie.top.EIEArray` on one input: load ``x``, start ``n_layers``
    layers, collect ``n_outputs`` outputs. Returns (outputs, cycles from start to the last
    output); a missing output stops after ``max_cycles``."""
    got, last = [], [0]

    async def bench(ctx):
        for v in x:
            ctx.set(dut.x_in.payload, int(v)); ctx.set(dut.x_in.valid, 1)
            await ctx.tick()
        ctx.set(dut.x_in.valid, 0)
        ctx.set(dut.n_layers, n_layers); ctx.set(dut.start, 1)
        await ctx.tick()
        ctx.set(dut.start, 0)
        ctx.set(dut.y_out.ready, 1)
        for cycle in range(max_cycles):
            if ctx.get(dut.y_out.valid):
                got.append(ctx.get(dut.y_out.payload))
                last[0] = cycle
            await ctx.tick()
            if len(got) == n_outputs:
                break
    simulate(dut, bench)
    return got, last[0]
