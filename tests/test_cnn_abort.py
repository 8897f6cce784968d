"""CTRL.ABORT of the CNN SoC: the AXI guard (hw/cnn/abort.py) under a slave with random stalls,
aborted at every cycle of a stretch of traffic, checked against the AXI rules an abort could
break; and on the generated SoC, runs aborted in flight and then the jobs, bit-exact."""

import numpy as np
import pytest
from amaranth.sim import Simulator

from sparsa.hw.cnn.abort import AXIAbortGuard


async def _guard_bench(ctx, dut, rng, abort_at, log):
    """Drive the engine side as the CNN engine does (one read and one write burst at a time,
    VALID held until READY) and the bus side as a slave with random stalls; abort at cycle
    ``abort_at``, after which the engine is in reset. ``log`` gets what the bus saw."""
    e = lambda n: getattr(dut, "e_axi_" + n)
    b = lambda n: getattr(dut, "m_axi_" + n)
    engine_reset = False
    # engine state
    ar_left = aw_left = w_left = 0
    w_in_burst = 0
    rd_busy = wr_busy = False
    # slave state
    r_queue, b_queue = [], []
    w_expected = []          # beats per accepted AW, in order
    held = {}
    for cycle in range(400):
        if cycle == abort_at:
            ctx.set(dut.abort, 1)
        else:
            ctx.set(dut.abort, 0)
        engine_reset = engine_reset or cycle > abort_at
        # ---- engine (master) outputs, AXI-correct: valid held until ready
        if not engine_reset:
            if not rd_busy and rng.random() < 0.3:
                rd_busy, ar_left = True, 1
                held["ar"] = (int(rng.integers(0, 1 << 20)) * 8, int(rng.integers(0, 16)))
            if not wr_busy and rng.random() < 0.3:
                wr_busy, aw_left = True, 1
                held["aw"] = (int(rng.integers(0, 1 << 20)) * 8, int(rng.integers(0, 16)))
                w_left, w_in_burst = held["aw"][1] + 1, 0
        ctx.set(e("arvalid"), int(not engine_reset and ar_left == 1))
        if ar_left == 1:
            ctx.set(e("araddr"), held["ar"][0])
            ctx.set(e("arlen"), held["ar"][1])
        ctx.set(e("awvalid"), int(not engine_reset and aw_left == 1))
        if aw_left == 1:
            ctx.set(e("awaddr"), held["aw"][0])
            ctx.set(e("awlen"), held["aw"][1])
        w_valid = not engine_reset and wr_busy and aw_left == 0 and w_left > 0
        ctx.set(e("wvalid"), int(w_valid))
        ctx.set(e("wdata"), 0x1111 * (w_in_burst + 1))
        ctx.set(e("wstrb"), 0xFF)
        ctx.set(e("wlast"), int(w_left == 1))
        ctx.set(e("rready"), int(not engine_reset and rng.random() < 0.7))
        ctx.set(e("bready"), int(not engine_reset))
        # ---- slave outputs: random stalls
        ctx.set(b("arready"), int(rng.random() < 0.5))
        ctx.set(b("awready"), int(rng.random() < 0.5))
        ctx.set(b("wready"), int(rng.random() < 0.5))
        ctx.set(b("rvalid"), int(bool(r_queue) and rng.random() < 0.6))
        ctx.set(b("rlast"), int(bool(r_queue) and r_queue[0] == 1))
        ctx.set(b("bvalid"), int(bool(b_queue) and rng.random() < 0.6))
        await ctx.delay(1e-9)
        # ---- sample the bus
        bus = {n: ctx.get(b(n)) for n in ("arvalid", "arready", "araddr", "arlen", "awvalid", "awready", "awaddr",
                                           "awlen", "wvalid", "wready", "wdata", "wstrb", "wlast", "rvalid",
                                           "rready", "rlast", "bvalid", "bready")}
        log.append(bus)
        if bus["arvalid"] and bus["arready"]:
            r_queue.append(bus["arlen"] + 1)
        if bus["rvalid"] and bus["rready"]:
            r_queue[0] -= 1
            if r_queue[0] == 0:
                r_queue.pop(0)
        if bus["awvalid"] and bus["awready"]:
            w_expected.append(bus["awlen"] + 1)
        if bus["wvalid"] and bus["wready"]:
            assert w_expected, f"cycle {cycle}: a W beat with no burst accepted for it"
            w_expected[0] -= 1
            assert bool(bus["wlast"]) == (w_expected[0] == 0), f"cycle {cycle}: WLAST on the wrong beat"
            if w_expected[0] == 0:
                w_expected.pop(0)
                b_queue.append(1)
        if bus["bvalid"] and bus["bready"]:
            b_queue.pop(0)
        # ---- engine bookkeeping from what it saw
        if not engine_reset:
            if ar_left == 1 and ctx.get(e("arready")):
                ar_left = 0
                held["r_beats"] = held["ar"][1] + 1
            if ctx.get(e("rvalid")) and ctx.get(e("rready")):
                held["r_beats"] -= 1
                if ctx.get(e("rlast")):
                    rd_busy = False
            if aw_left == 1 and ctx.get(e("awready")):
                aw_left = 0
            if w_valid and ctx.get(e("wready")):
                w_left -= 1
                w_in_burst += 1
            if ctx.get(e("bvalid")):
                wr_busy = False
        await ctx.tick()
        if cycle > abort_at and not ctx.get(dut.draining):
            return cycle, r_queue, w_expected, b_queue
    raise AssertionError(f"the abort at cycle {abort_at} did not finish in 400 cycles")


def _valid_held(log, channel, fields):
    """AXI: once VALID is high, it and the payload stay until READY."""
    for t in range(1, len(log)):
        prev, now = log[t - 1], log[t]
        if prev[channel + "valid"] and not prev[channel + "ready"]:
            assert now[channel + "valid"], f"cycle {t}: {channel.upper()}VALID dropped before READY"
            for f in fields:
                assert now[channel + f] == prev[channel + f], f"cycle {t}: {channel.upper()}{f} changed before READY"


@pytest.mark.parametrize("seed", range(4))
def test_an_abort_completes_every_started_burst_and_starts_none(seed):
    print(f"seed={seed}")
    for abort_at in range(20, 60):
        rng = np.random.default_rng(seed * 1000 + abort_at)
        dut = AXIAbortGuard()
        log = []
        out = {}

        async def bench(ctx):
            out["end"] = await _guard_bench(ctx, dut, rng, abort_at, log)

        sim = Simulator(dut)
        sim.add_clock(1e-8)
        sim.add_testbench(bench)
        sim.run()
        end, r_queue, w_expected, b_queue = out["end"]
        # Every burst the bus accepted got all its R beats, W beats and B response.
        assert r_queue == [] and w_expected == [] and b_queue == [], (abort_at, r_queue, w_expected, b_queue)
        _valid_held(log, "ar", ("addr", "len"))
        _valid_held(log, "aw", ("addr", "len"))
        _valid_held(log, "w", ("data", "strb", "last"))
        # After the abort cycle no new address goes out: only one held from before.
        new_ar = [t for t in range(abort_at + 1, len(log)) if log[t]["arvalid"] and not (log[t - 1]["arvalid"]
                                                                                     and not log[t - 1]["arready"])]
        new_aw = [t for t in range(abort_at + 1, len(log)) if log[t]["awvalid"] and not (log[t - 1]["awvalid"]
                                                                                     and not log[t - 1]["awready"])]
        assert new_ar == [] and new_aw == [], (abort_at, new_ar, new_aw)
        # The beats owed after the abort write nothing: strobes low, except a beat that was
        # already on the bus (held, with its own data).
        for t in range(abort_at + 1, len(log)):
            if log[t]["wvalid"] and log[t]["wstrb"]:
                assert log[t - 1]["wvalid"] and not log[t - 1]["wready"], f"abort {abort_at}: a new W beat at {t}"
