"""cocotb testbench for the generated EIE PE array Verilog.

The test reads a *job* (``.npz`` named by ``SPARSA_EIE_JOB``): the memory map to load (unless
the Verilog was built with it as initial contents), the input vectors, and options. It writes
the outputs and the counters to ``SPARSA_EIE_RESULT``. :mod:`sparsa.sim.eie.runner` builds the
Verilog, writes jobs and reads results; pytest tests and ``sparsa run`` go through it.

Structure as in STYLE.md: a ``TB`` class owning the clock, ``reset()``, the load-port driver,
the input-stream source and the output-stream sink.
"""

import itertools
import json
import os
from pathlib import Path

import cocotb

import numpy as np
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, ReadOnly, RisingEdge

from sparsa.sw.eie.protocol import COUNTERS, input_loads, load_sequence, memory_map_from_arrays

COUNTER_MASK = (1 << 32) - 1


class StreamSource:
    """Drives an Amaranth stream port (``<prefix>__valid``, ``__ready``, ``__payload``).

    Handshakes are sampled in the ReadOnly phase before an edge: valid & ready there means the
    beat transfers at that edge. ``idle``: the probability of holding valid low for a cycle
    before a beat (draws from ``rng``)."""

    def __init__(self, dut, prefix, clk, *, idle=0.0, rng=None, width=16):
        self.valid, self.ready, self.payload = (getattr(dut, f"{prefix}__{n}") for n in ("valid", "ready", "payload"))
        self.clk, self.idle, self.rng, self.width = clk, idle, rng, width
        self.valid.value = 0

    async def send(self, values):
        for v in values:
            while self.idle and self.rng.random() < self.idle:
                self.valid.value = 0
                await RisingEdge(self.clk)
            self.valid.value = 1
            self.payload.value = int(v) & ((1 << self.width) - 1)
            while True:
                await ReadOnly()
                taken = bool(self.ready.value)
                await RisingEdge(self.clk)
                if taken:
                    break
        self.valid.value = 0


class StreamSink:
    """Takes beats from an Amaranth stream port; ``backpressure``: the probability of holding
    ready low for a cycle (draws from ``rng``)."""

    def __init__(self, dut, prefix, clk, *, backpressure=0.0, rng=None):
        self.valid, self.ready, self.payload = (getattr(dut, f"{prefix}__{n}") for n in ("valid", "ready", "payload"))
        self.clk, self.backpressure, self.rng = clk, backpressure, rng
        self.ready.value = 0

    async def recv(self, count, on_first_valid=None):
        """``count`` signed beats; ``on_first_valid()`` runs (in ReadOnly) when valid first shows."""
        y, first = [], True
        while len(y) < count:
            self.ready.value = int(not (self.backpressure and self.rng.random() < self.backpressure))
            await ReadOnly()
            if first and self.valid.value:
                first = False
                if on_first_valid is not None:
                    on_first_valid()
            if self.valid.value and self.ready.value:
                y.append(self.payload.value.to_signed())
            await RisingEdge(self.clk)
        self.ready.value = 0
        return y


class LoadPort:
    """Drives the array's wide load port (``<prefix>valid``, ``kind``, ``addr``, ``mask``, ``data``)
    with :class:`~sparsa.sw.eie.protocol.Load` writes."""

    def __init__(self, dut, prefix, clk, pes):
        self.valid, self.kind, self.addr, self.mask, self.data = (
            getattr(dut, prefix + n) for n in ("valid", "kind", "addr", "mask", "data"))
        self.clk, self.pes = clk, pes
        self.valid.value = 0

    async def write(self, loads):
        """One cycle for each run of equal (kind, address): the PEs of a run are written
        together (``mask``); a load to every PE (``pe`` None) puts its word in every lane."""
        full = (1 << self.pes) - 1
        for (kind, addr), run in itertools.groupby(loads, key=lambda ld: (ld.kind, ld.addr)):
            mask, data = 0, 0
            for ld in run:
                for k in (range(self.pes) if ld.pe is None else (ld.pe,)):
                    mask |= 1 << k
                    data |= ld.word << (64 * k)
            self.kind.value = kind.value
            self.valid.value = 1
            self.addr.value = addr
            self.mask.value = mask & full
            self.data.value = data
            await RisingEdge(self.clk)
        self.valid.value = 0


class TB:
    """The array under test: clock, ``reset()``, the load port, the ``x_in`` source, the
    ``y_out`` sink, and the model-level steps (load a memory map, infer, LSTM step)."""

    def __init__(self, dut, pes, *, idle=0.0, backpressure=0.0, seed=0):
        self.dut = dut
        self.pes = pes
        self.log = dut._log
        Clock(dut.clk, 10, unit="ns").start(start_high=False)
        # Random pauses on the host streams (STYLE: idle / backpressure generators), one
        # generator for both.
        rng = np.random.default_rng(seed)
        self.load_port = LoadPort(dut, "ld_", dut.clk, pes)
        self.source = StreamSource(dut, "x_in", dut.clk, idle=idle, rng=rng)
        self.sink = StreamSink(dut, "y_out", dut.clk, backpressure=backpressure, rng=rng)
        dut.start.value = 0
        dut.n_layers.value = 0
        dut.y_skip.value = 0
        dut.rb_addr.value = 0
        dut.lstm_clear.value = 0

    async def reset(self):
        self.dut.rst.value = 1
        await ClockCycles(self.dut.clk, 2)
        self.dut.rst.value = 0
        await ClockCycles(self.dut.clk, 2)

    async def write_loads(self, loads):
        await self.load_port.write(loads)

    async def load_memory_map(self, job):
        """Everything a model needs (the protocol's load sequence): PE memories, the layer
        table and the codebooks."""
        await self.write_loads(load_sequence(memory_map_from_arrays(job)))

    def read_stat(self):
        v = self.dut.stat.value.to_unsigned()
        return np.array([[(v >> ((len(COUNTERS) * k + c) * 32)) & COUNTER_MASK
                          for c in range(len(COUNTERS))] for k in range(self.pes)], dtype=np.int64)

    async def send_input(self, x):
        """Stream x into ``x_in`` (the array takes input only when idle)."""
        await self.source.send(x)

    async def load_input(self, x, base=0):
        """Write x into the PEs' input files N activations a cycle (load kind ACT): x_j goes
        to PE j % N at local address base + j // N."""
        await self.write_loads(input_loads(x, self.pes, base))

    async def read_result(self, count):
        """Read the last result back N rows a cycle (rb_addr/rb_data, latency 1)."""
        dut, n = self.dut, self.pes
        y = []
        for a in range(-(-count // n)):
            dut.rb_addr.value = a
            await RisingEdge(dut.clk)
            await ReadOnly()
            v = dut.rb_data.value.to_unsigned()
            y += [((v >> (16 * k)) & 0xFFFF) for k in range(n)]
            await RisingEdge(dut.clk)       # leave ReadOnly before driving the next address
        y = np.array(y[:count], dtype=np.int64)
        return np.where(y >= 1 << 15, y - (1 << 16), y).astype(np.int16)

    async def recv_output(self, count):
        """Collect ``count`` beats from ``y_out``; also returns ``cycles`` at the first beat."""
        total = []
        y = await self.sink.recv(count, lambda: total.append(int(self.dut.cycles.value.to_unsigned())))
        return y, (total[0] if total else None)     # cycles is frozen after `done`

    async def wait_idle(self):
        while True:
            await ReadOnly()
            if not self.dut.busy.value:
                break
            await RisingEdge(self.dut.clk)
        await RisingEdge(self.dut.clk)

    async def lstm_step(self, x, t, lstm):
        """One LSTM step: x_t into the x slots (step 0: the whole vector, y_{-1} = 0 and c = 0),
        a two-layer run, y_t read back. Returns (y, layer snapshots, cycles)."""
        dut = self.dut
        await self.wait_idle()
        if t == 0:
            await self.load_input(np.concatenate([np.zeros(lstm["x_base"] * self.pes, np.int64), x]))
        else:
            await self.load_input(x, base=lstm["x_base"])
        dut.lstm_clear.value = int(t == 0)
        dut.n_layers.value = 2
        dut.y_skip.value = 1
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        snaps = []
        for _ in range(2):
            await RisingEdge(dut.layer_done)
            await ReadOnly()
            snaps.append((int(dut.cycles.value.to_unsigned()), self.read_stat()))
            await RisingEdge(dut.clk)
        await self.wait_idle()
        total = int(dut.cycles.value.to_unsigned())
        y = await self.read_result(lstm["y_rows"])
        return y, snaps, total

    async def infer(self, x, n_layers, rows_out, stream_io=True):
        """One input vector through ``n_layers`` layers; returns (y, layer snapshots, cycles).

        ``stream_io``: x over the ``x_in`` stream and y over ``y_out`` (the host interface);
        otherwise through the wide load/read-back ports (N values a cycle: big layers).
        """
        dut = self.dut
        if stream_io:
            await self.send_input(x)
        else:
            await self.wait_idle()
            await self.load_input(x)
        dut.n_layers.value = n_layers
        dut.y_skip.value = 0 if stream_io else 1
        await self.wait_idle()
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        snaps = []
        for _ in range(n_layers):
            await RisingEdge(dut.layer_done)
            await ReadOnly()
            snaps.append((int(dut.cycles.value.to_unsigned()), self.read_stat()))
            await RisingEdge(dut.clk)
        if stream_io:
            # `done` is a one-cycle pulse; the output stream starting is the level to wait for.
            y, total = await self.recv_output(rows_out)
        else:
            await self.wait_idle()
            total = int(dut.cycles.value.to_unsigned())
            y = await self.read_result(rows_out)
        return np.array(y, dtype=np.int16), snaps, total


@cocotb.test()
async def run_job(dut):
    job = dict(np.load(os.environ["SPARSA_EIE_JOB"], allow_pickle=False))
    opts = json.loads(str(job["options"]))
    pes = int(opts["pes"])
    tb = TB(dut, pes, idle=float(opts.get("idle", 0)), backpressure=float(opts.get("backpressure", 0)),
            seed=int(opts.get("seed", 0)))
    await tb.reset()
    if opts["load"]:
        await tb.load_memory_map(job)
        tb.log.info("model loaded")
    n_layers = int(opts["n_layers"])
    rows_out = int(opts["rows_out"])
    if opts.get("reset_mid_run"):
        # Start a run, reset in the middle of it, then carry on with the real job.
        x0 = job["x"][0]
        await tb.send_input(x0)
        dut.n_layers.value = n_layers
        dut.start.value = 1
        await RisingEdge(dut.clk)
        dut.start.value = 0
        await ClockCycles(dut.clk, int(opts["reset_mid_run"]))
        assert dut.busy.value, "the run under test finished before the mid-run reset"
        await tb.reset()
    ys, cycles, layer_cycles, stats = [], [], [], []
    for t, x in enumerate(job["x"]):
        if opts.get("lstm"):
            y, snaps, total = await tb.lstm_step(x, t, opts["lstm"])
        else:
            y, snaps, total = await tb.infer(x, n_layers, rows_out, stream_io=opts.get("stream_io", True))
        ys.append(y)
        cycles.append(total)
        prev_c, prev_s = 0, np.zeros((pes, len(COUNTERS)), dtype=np.int64)
        lc, ls = [], []
        for c, s in snaps:
            lc.append(c - prev_c)
            ls.append(s - prev_s)
            prev_c, prev_s = c, s
        layer_cycles.append(lc)
        stats.append(ls)
        if os.environ.get("SPARSA_EIE_PROGRESS"):
            # Inputs finished so far, for the parent's progress bar.
            Path(os.environ["SPARSA_EIE_PROGRESS"]).write_text(str(len(ys)))
    np.savez(os.environ["SPARSA_EIE_RESULT"], y=np.array(ys, dtype=np.int16),
             cycles=np.array(cycles, dtype=np.int64),
             layer_cycles=np.array(layer_cycles, dtype=np.int64),
             layer_stats=np.array(stats, dtype=np.int64))
