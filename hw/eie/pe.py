"""One EIE processing element.

Dataflow (each arrow a stream)::

    broadcast (j, x_j) -> activation queue -> PointerUnit -> job FIFO -> SparseMatrixReader (or,
        with ``cfg.reader == "serial"``, SerialSparseMatrixReader)
        -> ArithmeticUnit (codebook x x_j, accumulate) ;  output stage -> destination file

The PE also holds its two activation files (ping-pong): during layer L the source file is
read by the central control's scanner and the destination file is written by the output
stage; the roles swap every layer. Loads of x into file A and of every memory come in over
the load port while the array is idle.

Throughput: one column per cycle through the pointer unit (empty columns cost nothing
further) and up to ``cfg.macs`` real entries per cycle through the arithmetic unit.

Counters (32-bit, cleared at the start of a run, counted only while a layer computes):
``busy`` (cycles in which at least one real entry was issued), ``starved`` (cycles with an
empty queue and no work in flight), ``stalled`` (cycles this PE's full queue held up the
broadcast), ``pad`` (padding entries consumed), ``macs`` (real entries multiplied).
"""

from amaranth import *
from amaranth.lib import wiring, stream
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect, flipped

from sparsa.hw.eie.act_queue import ActivationQueue
from sparsa.hw.eie.arith import ArithmeticUnit
from sparsa.hw.eie.layouts import (ACT, activation_layout, drain_signature, layer_signature, load_signature,
                                   row_bits)
from sparsa.hw.eie.pointer import PointerUnit
from sparsa.hw.eie.spm_reader import SparseMatrixReader
from sparsa.hw.eie.spm_reader_serial import SerialSparseMatrixReader
from sparsa.sw.eie.protocol import COUNTERS, LoadKind

# LoadKind and COUNTERS are the host protocol's (sparsa.sw.eie.protocol), re-exported here.
__all__ = ["ProcessingElement", "LoadKind", "COUNTERS"]


class ProcessingElement(wiring.Component):
    """An EIE PE (see module docstring).

    Members
    -------
    bcast : In(stream.Signature(activation_layout))
        Broadcast (j, x_j); ``ready`` = the activation queue has room.
    layer : In(layer_signature(cfg))
        The current layer's pointer base, codebook, shift, ReLU, destination file, LSTM flags.
    drain : In(drain_signature(cfg))
        Output stage control from the central control (same for every PE).
    act_rd_addr, act_rd_sel : In ; act_rd_data : Out(signed(16))
        Scanner / result read port of the activation files (sync, latency 1).
    act_ld_en, act_ld_addr, act_ld_data : In
        Input loads into file A.
    ld : In(load_signature())
        Memory load port.
    counting, stall : In(1)
        A layer is computing; the broadcast has data waiting.
    count_clear : In(1)
    cnt_<name> : Out(32) for name in COUNTERS
    idle : Out(1)
        Nothing was queued or in flight in the previous cycle (registered).
    bcast_room : Out(1)
        The activation queue can take a broadcast one cycle from now (registered and ANDed
        over all PEs by the central control).
    """

    CONTROL_LATENCY = 1     # drain controls in -> output stage

    def __init__(self, cfg, *, init=None):
        self.cfg = cfg
        self._init = init or {}
        self.rb = row_bits(cfg)
        self.act_addr_bits = max(1, (cfg.act_depth - 1).bit_length())
        ports = {
            "bcast": In(stream.Signature(activation_layout(cfg))),
            "layer": In(layer_signature(cfg)),
            "drain": In(drain_signature(cfg)),
            "act_rd_addr": In(self.act_addr_bits), "act_rd_sel": In(1), "act_rd_data": Out(ACT),
            "act_ld_en": In(1), "act_ld_addr": In(self.act_addr_bits), "act_ld_data": In(ACT),
            "ld": In(load_signature()),
            "counting": In(1), "stall": In(1), "count_clear": In(1),
            "idle": Out(1), "bcast_room": Out(1),
        }
        for name in COUNTERS:
            ports[f"cnt_{name}"] = Out(32)
        super().__init__(ports)

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        init = self._init

        # ---- activation queue ------------------------------------------------------------
        # One entry of slack for the broadcast already on its way when `room` falls.
        m.submodules.queue = queue = ActivationQueue(cfg, depth=cfg.queue_depth + 1)
        connect(m, flipped(self.bcast), queue.i)

        # ---- pointer unit, job FIFO, sparse-matrix reader, arithmetic ------------------------
        m.submodules.ptr = ptr = PointerUnit(cfg, init_even=init.get("ptr_even", ()),
                                             init_odd=init.get("ptr_odd", ()))
        connect(m, queue.o, ptr.i)
        m.d.comb += [
            ptr.ptr_base.eq(self.layer.ptr_base),
        ]
        reader = SerialSparseMatrixReader if cfg.reader == "serial" else SparseMatrixReader
        m.submodules.spm = spm = reader(cfg, init=init.get("spm", ()))
        connect(m, ptr.o, spm.i)
        # The output-stage controls come from the central control to every PE: registered
        # here (CONTROL_LATENCY) so that the wires across the chip get a cycle of their own.
        drain, drain_row = Signal(), Signal.like(self.drain.row)
        drain_write, bias_addr = Signal(), Signal.like(self.drain.bias_addr)
        m.d.sync += [drain.eq(self.drain.drain), drain_row.eq(self.drain.row),
                     drain_write.eq(self.drain.write), bias_addr.eq(self.drain.bias_addr)]
        m.submodules.arith = arith = ArithmeticUnit(cfg, init_bias=init.get("bias", ()))
        connect(m, spm.o, arith.i)
        m.d.comb += [
            arith.codebook.eq(self.layer.codebook), arith.shift.eq(self.layer.shift), arith.relu.eq(self.layer.relu),
            arith.drain.eq(drain), arith.drain_row.eq(drain_row),
            arith.bias_addr.eq(bias_addr),
        ]

        # ---- loads -------------------------------------------------------------------------
        for unit in (ptr, spm, arith):
            m.d.comb += [unit.ld_addr.eq(self.ld.addr), unit.ld_data.eq(self.ld.data)]
        m.d.comb += [
            spm.ld_en.eq(self.ld.en & (self.ld.kind == LoadKind.SPM)),
            ptr.ld_even.eq(self.ld.en & (self.ld.kind == LoadKind.PTR_EVEN)),
            ptr.ld_odd.eq(self.ld.en & (self.ld.kind == LoadKind.PTR_ODD)),
            arith.ld_bias.eq(self.ld.en & (self.ld.kind == LoadKind.BIAS)),
        ]

        # ---- LSTM element-wise unit (gates layer drains into m_t) --------------------------
        ew = None
        if cfg.lstm:
            from sparsa.hw.eie.lstm_ew import LSTMElementwise
            m.submodules.ew = ew = LSTMElementwise(cfg, init_peep=init.get("peep", ()))
            # The element-wise unit reads its memories one cycle before the output stage's
            # result arrives: give it the drain request delayed to match.
            drain_d, row_d = drain, drain_row
            for k in range(ArithmeticUnit.out_latency(cfg) - 1):
                drain_q, row_q = Signal(name=f"ew_drain{k}"), Signal.like(self.drain.row, name=f"ew_row{k}")
                m.d.sync += [drain_q.eq(drain_d), row_q.eq(row_d)]
                drain_d, row_d = drain_q, row_q
            m.d.comb += [
                ew.drain.eq(drain_d), ew.drain_row.eq(row_d),
                ew.y_valid.eq(arith.y_valid & drain_write), ew.y.eq(arith.y), ew.y_row.eq(arith.y_row),
                ew.enable.eq(self.layer.ew), ew.clear.eq(self.layer.c_clear),
                ew.ld_peep.eq(self.ld.en & (self.ld.kind == LoadKind.PEEP)),
                ew.ld_addr.eq(self.ld.addr), ew.ld_data.eq(self.ld.data),
            ]

        # ---- activation files (ping-pong) ----------------------------------------------------
        files = []
        for name in ("a", "b"):
            mem = Memory(shape=ACT, depth=cfg.act_depth, init=[])
            m.submodules[f"act_{name}"] = mem
            files.append(mem)
        rd_sel = Signal()
        m.d.sync += rd_sel.eq(self.act_rd_sel)
        rdata = []
        for idx, mem in enumerate(files):
            wp = mem.write_port()
            rp = mem.read_port()   # reads and writes of one file never overlap in a layer
            m.d.comb += [rp.addr.eq(self.act_rd_addr), rp.en.eq(1)]
            rdata.append(rp.data)
            mine = self.layer.dest_sel == idx
            out_write = arith.y_valid & drain_write & mine
            result = [wp.addr.eq(arith.y_row), wp.data.eq(arith.y), wp.en.eq(out_write)]
            if ew is not None:
                # An LSTM gates layer writes m_h (one per cell), not the gate values.
                result = [wp.addr.eq(Mux(self.layer.ew, ew.m_addr, arith.y_row)),
                          wp.data.eq(Mux(self.layer.ew, ew.m, arith.y)),
                          wp.en.eq(Mux(self.layer.ew, ew.m_valid & mine, out_write))]
            if idx == 0:
                with m.If(self.act_ld_en):
                    m.d.comb += [wp.addr.eq(self.act_ld_addr), wp.data.eq(self.act_ld_data), wp.en.eq(1)]
                with m.Else():
                    m.d.comb += result
            else:
                m.d.comb += result
        m.d.comb += self.act_rd_data.eq(Mux(rd_sel, rdata[1], rdata[0]))

        # ---- status and counters -------------------------------------------------------------
        in_flight = Signal()
        m.d.comb += [
            in_flight.eq(ptr.busy | spm.busy | arith.busy),
            self.bcast_room.eq(queue.room),
        ]
        # Registered: the central control ANDs 16 of these across the chip.
        m.d.sync += self.idle.eq(~queue.o.valid & ~in_flight)

        counters = {name: getattr(self, f"cnt_{name}") for name in COUNTERS}
        incr = {
            "busy": spm.emit != 0,
            "starved": ~queue.o.valid & ~in_flight,
            "stalled": self.stall & ~queue.room,
            "pad": spm.pads,
            "macs": spm.emit,
        }
        for name, cnt in counters.items():
            with m.If(self.count_clear):
                m.d.sync += cnt.eq(0)
            with m.Elif(self.counting):
                m.d.sync += cnt.eq(cnt + incr[name])
        return m
