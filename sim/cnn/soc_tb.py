"""cocotb testbench of the CNN SoC wrapper (hw/cnn/soc.py): AXI4-Lite control from
cocotbext-axi's AxiLiteMaster, DRAM from its AxiRam.

Job (``SPARSA_CNN_JOB``): as for :mod:`sparsa.sim.cnn.tb`. Per input: write it into DRAM,
DRAM_BASE (``dram_base``: the image sits there on the bus), PROG_ADDR, IRQ_EN and CTRL.START over AXI4-Lite, wait for ``irq``, check STATUS (DONE, not
BUSY), read CYCLES and MAC_CYCLES, clear DONE (``irq`` must drop), read the output back.
Random pauses on every AXI and AXI4-Lite channel with ``pause``. The ID and CONFIG registers
are checked once. ``aborts`` (a list of cycle counts): before the jobs, for each, a run of the
first input is started and CTRL.ABORT written that many cycles later; BUSY must clear, DONE and
``irq`` stay low, and the bus cycles the abort took are returned as ``abort_cycles``.
"""

import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from sparsa.hw.cnn.soc import CNN_REGISTERS, CNN_SOC_ID
from sparsa.sim.cnn.tb import start_dram

REG = {name: off for name, off, _, _ in CNN_REGISTERS}


class CNNSoCTB:
    """The CNN SoC under test: the job's DRAM behind ``m_axi`` and the clock (both from
    :func:`sparsa.sim.cnn.tb.start_dram`), the ``s_axil`` master, ``reset()``, registers by name."""

    def __init__(self, dut):
        self.dut = dut
        self.axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
        a = self.axil
        self.job, self.opts, self.ram = start_dram(dut, lambda ram: (
            a.write_if.aw_channel, a.write_if.w_channel, a.write_if.b_channel,
            a.read_if.ar_channel, a.read_if.r_channel))

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def wr(self, name, value):
        await self.axil.write_dword(REG[name], int(value) & 0xFFFFFFFF)

    async def rd(self, name):
        return await self.axil.read_dword(REG[name])


@cocotb.test()
async def run_jobs(dut):
    tb = CNNSoCTB(dut)
    job, opts, ram = tb.job, tb.opts, tb.ram
    await tb.reset()

    assert await tb.rd("ID") == CNN_SOC_ID
    assert await tb.rd("CONFIG") == int(opts["config_word"])
    for name, size in opts["buffers"].items():             # the sizes the engine was generated with
        assert await tb.rd(name) == size, name
    base = int(opts.get("dram_base", 0))
    await tb.wr("DRAM_BASE", base | 0xABC)                 # the low 12 bits are not stored
    assert await tb.rd("DRAM_BASE") == base
    await tb.wr("PROG_ADDR", int(opts["prog_addr"]))
    assert await tb.rd("PROG_ADDR") == int(opts["prog_addr"])
    await tb.wr("IRQ_EN", 1)

    abort_cycles = []
    for delay in opts.get("aborts", []):
        ram.write(base + int(opts["in_addr"]), job["inputs"][0].tobytes())
        await tb.wr("CTRL", 1)
        await ClockCycles(dut.clk, int(delay))
        assert await tb.rd("STATUS") & 1, "the run to abort had finished already"
        await tb.wr("CTRL", 2)
        n = 0
        while await tb.rd("STATUS") & 1:
            n += 1
            assert n < 1000, "ABORT: BUSY did not clear"
        abort_cycles.append(n)
        assert await tb.rd("STATUS") == 0 and dut.irq.value == 0      # neither BUSY nor DONE
    outs, cycles, macs = [], [], []
    for x in job["inputs"]:
        ram.write(base + int(opts["in_addr"]), x.tobytes())
        await tb.wr("CTRL", 1)
        if dut.irq.value != 1:
            await RisingEdge(dut.irq)
        assert await tb.rd("STATUS") == 0b10          # DONE, not BUSY
        cycles.append(await tb.rd("CYCLES"))
        macs.append(await tb.rd("MAC_CYCLES"))
        await tb.wr("STATUS", 0b10)                   # clear DONE
        await RisingEdge(dut.clk)
        assert dut.irq.value == 0
        outs.append(np.frombuffer(ram.read(base + int(opts["out_addr"]), int(opts["out_bytes"])), dtype=np.uint8))
    np.savez(os.environ["SPARSA_CNN_RESULT"], y=np.stack(outs), cycles=np.array(cycles),
             mac_cycles=np.array(macs), abort_polls=np.array(abort_cycles, dtype=np.int64))
