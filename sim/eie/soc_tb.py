"""cocotb testbench of the SoC wrapper (hw/soc.py) with cocotbext-axi.

Job (``SPARSA_SOC_JOB``, an .npz from :mod:`sparsa.sim.eie.soc_runner`): the memory map to load
through the LD_* registers, the inputs, the expected outputs (golden model) and options:
random pauses on every AXI channel (``pause``), a reset in the middle of a transfer
(``reset_mid``), an abort of a run in flight through CTRL.ABORT (``abort_mid``). Each input is one job: stream x in, START, wait for the interrupt, read
y (ending in tlast) and CYCLES. Results go to ``SPARSA_SOC_RESULT``.
"""

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster, AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource

from sparsa.hw.soc import STREAM_RESET_CYCLES
from sparsa.sw.eie.protocol import (CTRL_ABORT, CTRL_START, REG, SOC_ID, STATUS_BUSY, load_sequence,
                                   lstm_step_ctrl, lstm_step_writes, memory_map_from_arrays, register_writes)


async def _low_cycles(sig, clk):
    """Cycles from ``sig`` going low until it is high again."""
    while sig.value:
        await RisingEdge(clk)
    n = 0
    while not sig.value:
        await RisingEdge(clk)
        n += 1
    return n


def _pauses(rng, p):
    while True:
        yield rng.random() < p


class SoCTB:
    """The SoC under test: clock, ``reset()``, prefix-bound cocotbext-axi drivers (``s_axil``
    master, ``s_axis`` source, ``m_axis`` sink) with ``pause``-probability pause generators,
    register access by name and the protocol's load sequence."""

    def __init__(self, dut, pause, seed):
        self.dut = dut
        Clock(dut.clk, 10, unit="ns").start()      # cocotb 2: start() runs the clock as a task
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        self.src = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst)
        self.sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst)
        if pause:
            rng = random.Random(seed)
            for ch in (self.axil.write_if.aw_channel, self.axil.write_if.w_channel, self.axil.write_if.b_channel,
                       self.axil.read_if.ar_channel, self.axil.read_if.r_channel, self.src, self.sink):
                ch.set_pause_generator(_pauses(rng, pause))

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def reset_streams(self):
        """What the host's abort does to its DMA (a soft reset of both channels): the input
        frame in flight is dropped and the output side forgets what it received."""
        for ch in (self.src, self.sink):
            ch.clear()
            ch._handle_reset(1)        # cocotbext-axi's reset handling, without the dut's rst
        await RisingEdge(self.dut.clk)
        for ch in (self.src, self.sink):
            ch._handle_reset(0)
        await ClockCycles(self.dut.clk, 5)
        self.sink.clear()

    async def wr(self, name, value):
        await self.axil.write_dword(REG[name], int(value) & 0xFFFFFFFF)

    async def rd(self, name):
        return await self.axil.read_dword(REG[name])

    async def load_model(self, job):
        """The job's memory map through the LD_* registers (the protocol's load sequence)."""
        for load in load_sequence(memory_map_from_arrays(job)):
            for name, value in register_writes(load):
                await self.wr(name, value)

    async def lstm_step(self, x, t, lstm, rows):
        """LSTM step ``t`` as the Linux runtime runs it: the protocol's register writes
        (x_t through LD_*), START (LSTM_CLEAR on step 0), y_t from the stream."""
        for name, value in lstm_step_writes(x, t, int(lstm["x_base"]), int(lstm["pes"]), rows):
            await self.wr(name, value)
        await self.wr("CTRL", lstm_step_ctrl(t))
        return await self._result()

    async def run_one(self, x, rows):
        # 16-bit tdata = two byte lanes: frames are little-endian int16 bytes.
        # The host's protocol: send, then START once X_COUNT says the whole input has arrived.
        assert await self.rd("X_COUNT") == 0, "X_COUNT: input values counted before this input was sent"
        await self.src.send(AxiStreamFrame(np.asarray(x, dtype="<i2").tobytes()))
        while (got := await self.rd("X_COUNT")) < len(x):
            pass
        assert got == len(x), f"X_COUNT: expected {len(x)} input values, found {got}"
        await self.wr("Y_COUNT", rows)
        await self.wr("CTRL", 1)
        assert await self.rd("X_COUNT") == 0, "X_COUNT: not cleared by START"
        return await self._result()

    async def _result(self):
        """The run's output frame and CYCLES, once irq (DONE) is up; DONE cleared."""
        frame = await self.sink.recv()
        while not self.dut.irq.value:
            await RisingEdge(self.dut.clk)
        status = await self.rd("STATUS")
        assert status & 2, f"DONE not set after a run (STATUS {status:#x})"
        cycles = await self.rd("CYCLES")
        await self.wr("STATUS", 2)                  # clear DONE: irq falls
        assert not (await self.rd("STATUS")) & 2
        return np.frombuffer(bytes(frame.tdata), dtype="<i2").astype(np.int16), cycles


@cocotb.test()
async def run_job(dut):
    job = dict(np.load(os.environ["SPARSA_SOC_JOB"], allow_pickle=False))
    opts = json.loads(str(job["options"]))
    pes = int(opts["pes"])
    tb = SoCTB(dut, float(opts.get("pause", 0)), int(opts.get("seed", 0)))
    await tb.reset()
    # Register read-back.
    assert await tb.rd("ID") == SOC_ID
    assert (await tb.rd("CONFIG")) & 0xFFFF == pes
    for name, value in opts.get("capacity", {}).items():
        assert await tb.rd(name) == value, f"{name}: read {await tb.rd(name)}, built with {value}"
    for name, value in (("N_LAYERS", 3), ("STAT_SEL", 7), ("LD_ADDR", 0x12345678), ("Y_COUNT", 99)):
        await tb.wr(name, value)
        assert await tb.rd(name) == value, name
    await tb.load_model(job)
    await tb.wr("N_LAYERS", int(opts["n_layers"]))
    await tb.wr("IRQ_EN", 1)
    rows = int(opts["rows_out"])
    if opts.get("reset_mid"):
        # Reset in the middle of streaming an input; the model stays loaded (memories and the
        # layer table are not reset), and the next jobs must run clean.
        send = cocotb.start_soon(tb.src.send(AxiStreamFrame(np.ones(len(job["x"][0]), "<i2").tobytes())))
        await ClockCycles(dut.clk, 3)
        await tb.reset()
        await send
        tb.src.clear()
        await ClockCycles(dut.clk, 5)
        await tb.wr("N_LAYERS", int(opts["n_layers"]))
        await tb.wr("IRQ_EN", 1)
    if opts.get("abort_mid"):
        # Start a run on an input, abort it while it is busy: the engine is idle, DONE is clear,
        # nothing more comes out, and the next jobs (same model, no reload) are clean.
        tb.src.send_nowait(AxiStreamFrame(np.full(len(job["x"][0]), 3, "<i2").tobytes()))
        await tb.wr("Y_COUNT", rows)
        await tb.wr("CTRL", CTRL_START)
        await ClockCycles(dut.clk, int(opts["abort_mid"]))
        assert (await tb.rd("STATUS")) & STATUS_BUSY, "the run ended before the abort: abort earlier"
        # The host's order: stop the DMA first (or the rest of the input lands in the idle
        # engine's activation file), then ABORT.
        await tb.reset_streams()
        low = cocotb.start_soon(_low_cycles(dut.axis_resetn, dut.clk))
        await tb.wr("CTRL", CTRL_ABORT)
        assert not dut.axis_resetn.value, "axis_resetn: expected low after ABORT"
        assert await tb.rd("STATUS") == 0, "after ABORT: STATUS must be 0 (idle, no DONE)"
        assert await tb.rd("X_COUNT") == 0, "X_COUNT: not cleared by ABORT"
        assert not dut.irq.value
        await ClockCycles(dut.clk, 5)
        tb.sink.clear()
        assert await tb.rd("CTRL") == 0
        cycles_low = await low
        assert STREAM_RESET_CYCLES <= cycles_low <= STREAM_RESET_CYCLES + 2, \
            f"axis_resetn: expected low for {STREAM_RESET_CYCLES} cycles after ABORT, found {cycles_low}"
    ys, cycles = [], []
    for t, x in enumerate(job["x"]):
        if opts.get("lstm"):
            y, c = await tb.lstm_step(x, t, opts["lstm"], rows)
        else:
            y, c = await tb.run_one(x, rows)
        ys.append(y)
        cycles.append(c)
    np.savez(os.environ["SPARSA_SOC_RESULT"], y=np.array(ys, dtype=np.int16), cycles=np.array(cycles))
