"""The CNN engine: the composition of the sequencer, the load unit, the compute lanes (with
the 3x3 window convolver and the Winograd F(2x2,3x3) path, pooling and element-wise add), the
output stage, the store unit, the on-chip buffers and the AXI4 master.

Start it with ``start`` and the program's DRAM address in ``prog_addr``; it fetches 128-byte
instructions (see :mod:`sparsa.sw.cnn.isa`) through the AXI4 master and runs them in order
until END, then raises ``done`` for one cycle. Everything lives in the one DRAM: program,
weights and activations.

Datapath (``lanes`` = P output channels in parallel):

* CONV direct: the window walker (:mod:`.window`) reads one input byte a cycle; it is
  broadcast to P lanes, each multiplying it by its weight from the same wbuf word and
  accumulating. One MAC per lane per cycle, no bubbles inside an instruction.
* CONV with flag LB (3x3, stride 1 or 2): the window convolver (``cfg.convolver``). The
  window generator (:mod:`.linebuf`) streams the tile's three input rows from ibuf (ports a,
  b and a third port c) and emits one 3x3 window a cycle; each lane multiplies it by its 9
  weights and sums them in an adder tree into its partial-sum bank (:mod:`.convolver`):
  9 MACs per lane per cycle, results through the output stage after the last channel.
* CONV Winograd: the walker reads a 4x4 tile per input channel (16 cycles); the tile is
  transformed (``V = B^T d B``, adders only) and each lane does 16 multiplies
  ``U[e] * V[e]`` into 16 accumulators while the next tile is read. After the last channel,
  ``Y = A^T M A / 4`` gives a 2x2 output tile: 16 multiplies per lane instead of 36.
* POOL: max or rounded average over the window, one input a cycle.
* ADD: two ibuf reads a cycle, one output a cycle.
* Every result goes through the output stage: + bias, rounding shift, saturate, ReLU.

Latency: an instruction costs its fetch (``FETCH_BEATS`` beats plus the slave's latency),
then its data movement (LOAD: one 64-bit beat a cycle within a burst) or compute (one input
element, or one 3x3 window on the convolver, a cycle) until the last result is written to
obuf: the engine tracks every pipeline stage's valid bit, so it retires a compute
instruction as soon as it drains.

A SAVE costs only its fetch: the **store unit** takes a copy of its fields and moves obuf to
DRAM (a beat a cycle, on the AXI write channel, which nothing else uses) while the sequencer
goes on. The compiler puts successive outputs in alternate halves of obuf (field ``obase``)
and sets flag SYNC on an instruction that must wait for the running SAVE (see
:mod:`sparsa.sw.cnn.isa`); a SAVE waits for the one before, END for the last.

Components (each a ``wiring.Component``; its docstring gives latency and throughput):

* :class:`~.sequencer.Sequencer` -- fetch, decode, dispatch, the LOAD row loop, retire.
* :class:`~.load.LoadUnit` -- LOAD beats into ibuf, wbuf or the bias registers.
* :class:`~.lanes.Lanes` -- operand fetch and the MAC lanes (walker, convolver, Winograd,
  POOL, ADD), results as an always-ready stream.
* :class:`~.output.OutputStage` -- bias, shift, saturate, ReLU into the obuf banks.
* :class:`~.store.StoreUnit` -- SAVE in the background, with the AXI writer.

The buffers are ``lib.memory.Memory`` instances owned here; every unit declares the ports it
drives as flipped memory-port signatures, joined to the memories' ports with ``connect``.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect, flipped

from sparsa.hw.cnn.axi import AXI4Signature, AXIReader, axi4_flat_members, axi4_flat_view
from sparsa.hw.cnn.lanes import Lanes
from sparsa.hw.cnn.load import LoadUnit
from sparsa.hw.cnn.output import ACC_BITS, OutputStage
from sparsa.hw.cnn.sequencer import FETCH_BEATS, INSTR_BYTES, Sequencer
from sparsa.hw.cnn.store import StoreUnit

__all__ = ["CNNEngine", "ACC_BITS", "FETCH_BEATS", "INSTR_BYTES"]


def _axi_ports(prefix):
    """The flat AXI4 master ports (``m_axi_arvalid``...): kept for :mod:`.soc`."""
    return axi4_flat_members(prefix)


class CNNEngine(wiring.Component):
    """See the module docstring. Ports: ``start``, ``prog_addr``, ``busy``, ``done``,
    ``cycles`` (of the current/last run), ``mac_cycles`` (cycles the multipliers were fed),
    ``retire``/``retire_layer`` (one pulse per finished instruction, for per-layer timing) and
    the AXI4 master ``m_axi_*`` (64-bit data, 32-bit address; flat names, see
    :func:`~.axi.axi4_flat_members`)."""

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({
            "start": In(1), "prog_addr": In(32), "busy": Out(1), "done": Out(1),
            "cycles": Out(32), "mac_cycles": Out(32), "retire": Out(1), "retire_layer": Out(8),
            **_axi_ports("m_axi_"),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        P = cfg.lanes

        m.submodules.seq = seq = Sequencer()
        m.submodules.load = load = LoadUnit(cfg)
        m.submodules.lanes = lanes = Lanes(cfg)
        m.submodules.out = out = OutputStage(cfg)
        m.submodules.store = store = StoreUnit(cfg)
        m.submodules.rd = rd = AXIReader()

        # Control: the sequencer's view of the program; host ports
        m.d.comb += [seq.start.eq(self.start), seq.prog_addr.eq(self.prog_addr), self.busy.eq(seq.busy),
                     self.done.eq(seq.done), self.retire.eq(seq.retire), self.retire_layer.eq(seq.instr.layer)]
        m.d.comb += [unit.instr.eq(seq.instr) for unit in (lanes, out, store)]

        # AXI: fetch and LOAD read through the reader, SAVE writes through the store unit;
        # both halves joined to the flat top-level ports
        connect(m, seq.rd_cmd, rd.cmd)
        connect(m, rd.o, seq.rd)
        connect(m, flipped(axi4_flat_view(self, "m_axi_", AXI4Signature(write=False))), rd.axi)
        connect(m, flipped(axi4_flat_view(self, "m_axi_", AXI4Signature(read=False))), store.axi)

        # LOAD
        connect(m, seq.load, load.i)
        m.d.comb += [load.begin.eq(seq.load_begin), load.target.eq(seq.load_target),
                     load.load_run.eq(seq.load_run), load.load_row_start.eq(seq.load_row_start),
                     load.load_row.eq(seq.load_row), seq.load_row_done.eq(load.load_row_done)]

        # Compute: lanes -> output stage; the instruction retires once both have drained
        m.d.comb += [lanes.start.eq(seq.compute_start), out.bias.eq(load.bias),
                     seq.compute_busy.eq(lanes.busy | out.busy)]
        connect(m, lanes.o, out.i)

        # SAVE
        m.d.comb += [store.start.eq(seq.store_start), seq.store_busy.eq(store.busy)]

        # Buffers. ibuf: 64-bit words (LOAD writes a beat a cycle with byte enables; compute
        # reads bytes through ports a and b, the window convolver's third row through c).
        # Read ports are synchronous and not transparent (the default): a LOAD beside a compute
        # (flag BG) writes only what that compute does not read, and a background SAVE reads
        # the obuf half the compiler keeps apart from the one being written (flag SYNC).
        m.submodules.ibuf = ibuf = Memory(shape=64, depth=cfg.ibuf_bytes // 8, init=[])
        connect(m, load.ibuf, ibuf.write_port(granularity=8))
        connect(m, lanes.ibuf_a, ibuf.read_port())
        connect(m, lanes.ibuf_b, ibuf.read_port())
        if cfg.convolver:
            connect(m, lanes.ibuf_c, ibuf.read_port())
        m.submodules.wbuf = wbuf = Memory(shape=cfg.weight_bits * P, depth=cfg.wbuf_words, init=[])
        connect(m, load.wbuf, wbuf.write_port())
        connect(m, lanes.wbuf, wbuf.read_port())
        # obuf banks are 64 bits wide (byte writes, 8-byte reads) so that SAVE moves a beat a cycle
        for lane in range(P):
            m.submodules[f"obuf{lane}"] = mem = Memory(shape=64, depth=cfg.obuf_depth // 8, init=[])
            connect(m, out.obuf[lane], mem.write_port(granularity=8))
            connect(m, store.obuf[lane], mem.read_port())

        # Counters visible to the host
        with m.If(self.start & ~self.busy):
            m.d.sync += [self.cycles.eq(0), self.mac_cycles.eq(0)]
        with m.Elif(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)
        with m.If(lanes.mac):
            m.d.sync += self.mac_cycles.eq(self.mac_cycles + 1)
        return m
