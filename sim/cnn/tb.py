"""cocotb testbench of the CNN engine (hw/cnn) with cocotbext-axi's AXI RAM as DRAM.

Job (``SPARSA_CNN_JOB``, an .npz from :mod:`sparsa.sim.cnn.runner`): the initial DRAM image,
the program address, one input image per run (written at ``in_addr`` before each run) and
the output range to read back after ``done``. Options: random pauses on every AXI channel
(``pause``, seeded). Per run the testbench records the ``cycles`` and ``mac_cycles`` counters
and, from the ``retire`` pulses, the cycle at which each instruction finished and its layer.
Results go to ``SPARSA_CNN_RESULT``.
"""

import json
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiRam


def _pauses(rng, p):
    while True:
        yield rng.random() < p


def start_dram(dut, extra_channels=lambda ram: ()):
    """Load the job, start the clock and the AXI RAM holding its DRAM image; with ``pause`` in
    the options, random pauses on the RAM's channels and on ``extra_channels(ram)``.
    Returns ``(job, opts, ram)``."""
    job = np.load(os.environ["SPARSA_CNN_JOB"])
    opts = json.loads(str(job["options"]))
    dram = job["dram"]
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    size = 1 << max(12, (int(dram.size) - 1).bit_length())
    ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=size)
    if opts.get("pause"):
        rng = random.Random(opts.get("seed", 0))
        for ch in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
                   ram.read_if.ar_channel, ram.read_if.r_channel, *extra_channels(ram)):
            ch.set_pause_generator(_pauses(rng, opts["pause"]))
    ram.write(0, dram.tobytes())
    return job, opts, ram


@cocotb.test()
async def run_jobs(dut):
    job, opts, ram = start_dram(dut)
    dut.start.value = 0
    dut.prog_addr.value = int(opts["prog_addr"])
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    dut.rst.value = 0
    await ClockCycles(dut.clk, 2)

    outs, cycles, macs, retired = [], [], [], []
    progress = opts.get("progress_file")
    for n, x in enumerate(job["inputs"]):
        ram.write(int(opts["in_addr"]), x.tobytes())
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        events = []
        while True:
            await First(RisingEdge(dut.retire), RisingEdge(dut.done))
            await ReadOnly()          # let every signal of this time step settle
            if dut.done.value == 1:
                break
            events.append((int(dut.retire_layer.value), int(dut.cycles.value)))
        await RisingEdge(dut.clk)
        cycles.append(int(dut.cycles.value))
        macs.append(int(dut.mac_cycles.value))
        outs.append(np.frombuffer(ram.read(int(opts["out_addr"]), int(opts["out_bytes"])), dtype=np.uint8))
        retired.append(np.array(events, dtype=np.int64).reshape(-1, 2))
        if progress:
            with open(progress, "w") as f:
                f.write(f"{n + 1}\n")
    np.savez(os.environ["SPARSA_CNN_RESULT"], y=np.stack(outs), cycles=np.array(cycles),
             mac_cycles=np.array(macs), **{f"retired{i}": r for i, r in enumerate(retired)})
