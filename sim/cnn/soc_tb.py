"""cocotb testbench of the CNN SoC wrapper (hw/cnn/soc.py): AXI4-Lite control from
cocotbext-axi's AxiLiteMaster, DRAM from its AxiRam.

Job (``SPARSA_CNN_JOB``): as for :mod:`sparsa.sim.cnn.tb`. Per input: write it into DRAM,
PROG_ADDR, IRQ_EN and CTRL.START over AXI4-Lite, wait for ``irq``, check STATUS (DONE, not
BUSY), read CYCLES and MAC_CYCLES, clear DONE (``irq`` must drop), read the output back.
Random pauses on every AXI and AXI4-Lite channel with ``pause``. The ID and CONFIG registers
are checked once.
"""

import os

import cocotb
import numpy as np
from cocotb.triggers import ClockCycles, RisingEdge
from cocotbext.axi import AxiLiteBus, AxiLiteMaster

from sparsa.hw.cnn.soc import CNN_REGISTERS, CNN_SOC_ID
from sparsa.sim.cnn.tb import start_dram

REG = {name: off for name, off, _, _ in CNN_REGISTERS}


@cocotb.test()
async def run_jobs(dut):
    axil = AxiLiteMaster(AxiLiteBus.from_prefix(dut, "s_axil"), dut.clk, dut.rst)
    job, opts, ram = start_dram(dut, lambda ram: (
        axil.write_if.aw_channel, axil.write_if.w_channel, axil.write_if.b_channel,
        axil.read_if.ar_channel, axil.read_if.r_channel))
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    assert await axil.read_dword(REG["ID"]) == CNN_SOC_ID
    assert await axil.read_dword(REG["CONFIG"]) == int(opts["config_word"])
    await axil.write_dword(REG["PROG_ADDR"], int(opts["prog_addr"]))
    assert await axil.read_dword(REG["PROG_ADDR"]) == int(opts["prog_addr"])
    await axil.write_dword(REG["IRQ_EN"], 1)

    outs, cycles, macs = [], [], []
    for x in job["inputs"]:
        ram.write(int(opts["in_addr"]), x.tobytes())
        await axil.write_dword(REG["CTRL"], 1)
        if dut.irq.value != 1:
            await RisingEdge(dut.irq)
        assert await axil.read_dword(REG["STATUS"]) == 0b10          # DONE, not BUSY
        cycles.append(await axil.read_dword(REG["CYCLES"]))
        macs.append(await axil.read_dword(REG["MAC_CYCLES"]))
        await axil.write_dword(REG["STATUS"], 0b10)                   # clear DONE
        await RisingEdge(dut.clk)
        assert dut.irq.value == 0
        outs.append(np.frombuffer(ram.read(int(opts["out_addr"]), int(opts["out_bytes"])), dtype=np.uint8))
    np.savez(os.environ["SPARSA_CNN_RESULT"], y=np.stack(outs), cycles=np.array(cycles),
             mac_cycles=np.array(macs))
