"""cocotb testbench of the CNN engine (hw/cnn) with cocotbext-axi's AXI RAM as DRAM.

Job (``SPARSA_CNN_JOB``, an .npz from :mod:`sparsa.sim.cnn.runner`): the initial DRAM image,
the program address, one input image per run (written at ``in_addr`` before each run) and
the output range to read back after ``done``. Options: random pauses on every AXI channel
(``pause``, seeded). Per run the testbench records the ``cycles`` and ``mac_cycles`` counters
and, from the ``retire`` pulses, the cycle at which each instruction finished and its layer.
Results go to ``SPARSA_CNN_RESULT``.
"""

import json
import logging
import os
import random

import cocotb
import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, First, ReadOnly, RisingEdge
from cocotbext.axi import AxiBus, AxiRam

__all__ = ["TB", "start_dram"]


def _pauses(rng, p):
    while True:
        yield rng.random() < p


class TB:
    """The job, the clock (10 ns) and the DRAM: an ``AxiRam`` bound to the ``m_axi`` ports,
    holding the job's DRAM image. Shared by the SoC testbench (:mod:`.soc_tb`), which adds
    its AXI4-Lite master's channels to :meth:`set_pauses`."""

    def __init__(self, dut):
        self.dut = dut
        self.log = logging.getLogger("cocotb.tb")
        self.job = np.load(os.environ["SPARSA_CNN_JOB"])
        self.opts = json.loads(str(self.job["options"]))
        dram = self.job["dram"]
        Clock(dut.clk, 10, unit="ns").start(start_high=False)
        # ``dram_base`` (the SoC's DRAM_BASE): where on the bus the image sits.
        self.base = int(self.opts.get("dram_base", 0))
        size = 1 << max(12, (self.base + int(dram.size) - 1).bit_length())
        self.ram = AxiRam(AxiBus.from_prefix(dut, "m_axi"), dut.clk, dut.rst, size=size)
        self.ram.write(self.base, dram.tobytes())

    def set_pauses(self, extra_channels=()):
        """With ``pause`` in the options: random pauses (seeded) on the RAM's five channels and
        on ``extra_channels``."""
        if self.opts.get("pause"):
            rng = random.Random(self.opts.get("seed", 0))
            ram = self.ram
            for ch in (ram.write_if.aw_channel, ram.write_if.w_channel, ram.write_if.b_channel,
                       ram.read_if.ar_channel, ram.read_if.r_channel, *extra_channels):
                ch.set_pause_generator(_pauses(rng, self.opts["pause"]))

    async def reset(self):
        """``rst`` high for 3 edges, then 2 quiet edges."""
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 3)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    def write_input(self, x):
        self.ram.write(self.base + int(self.opts["in_addr"]), x.tobytes())

    def read_output(self):
        return np.frombuffer(self.ram.read(self.base + int(self.opts["out_addr"]), int(self.opts["out_bytes"])),
                             dtype=np.uint8)

    async def run_program(self):
        """Pulse ``start`` and wait for ``done``; returns the (layer, cycle) of every retirement."""
        dut = self.dut
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        events = []
        while True:
            await First(RisingEdge(dut.retire), RisingEdge(dut.done))
            await ReadOnly()          # let every signal of this time step settle
            if dut.done.value == 1:
                break
            events.append((dut.retire_layer.value.to_unsigned(), dut.cycles.value.to_unsigned()))
        await RisingEdge(dut.clk)
        return events


def start_dram(dut, extra_channels=lambda ram: ()):
    """The job, the clock and the AXI RAM, with pauses on ``extra_channels(ram)`` too.
    Returns ``(job, opts, ram)`` (kept for :mod:`.soc_tb`)."""
    tb = TB(dut)
    tb.set_pauses(extra_channels(tb.ram))
    return tb.job, tb.opts, tb.ram


@cocotb.test()
async def run_jobs(dut):
    tb = TB(dut)
    tb.set_pauses()
    dut.start.value = 0
    dut.prog_addr.value = int(tb.opts["prog_addr"])
    await tb.reset()

    outs, cycles, macs, retired = [], [], [], []
    progress = tb.opts.get("progress_file")
    for n, x in enumerate(tb.job["inputs"]):
        tb.write_input(x)
        events = await tb.run_program()
        cycles.append(dut.cycles.value.to_unsigned())
        macs.append(dut.mac_cycles.value.to_unsigned())
        outs.append(tb.read_output())
        retired.append(np.array(events, dtype=np.int64).reshape(-1, 2))
        if progress:
            with open(progress, "w") as f:
                f.write(f"{n + 1}\n")
    np.savez(os.environ["SPARSA_CNN_RESULT"], y=np.stack(outs), cycles=np.array(cycles),
             mac_cycles=np.array(macs), **{f"retired{i}": r for i, r in enumerate(retired)})
