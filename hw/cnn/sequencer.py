"""The CNN engine's sequencer: instruction fetch, decode and dispatch, the LOAD row loop and
the queue of LOADs that run beside the next compute (flag BG).

The program is a list of 128-byte instructions in DRAM (see :mod:`sparsa.sw.cnn.isa`); only
the words holding fields (:data:`FETCH_BEATS` beats) are fetched, through the AXI reader, and
decoded into :func:`instr_layout`. The decoded instruction is held on ``instr`` until the next
fetch, for the units that execute it.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.wiring import In, Out

from sparsa.sw.cnn.isa import FIELD_BITS, FIELDS, LOAD_QUEUE, SIGNED, Op

from sparsa.hw.cnn.axi import beat_layout, cmd_layout

__all__ = ["Sequencer", "instr_layout", "load_row_layout", "load_layout", "INSTR_BYTES", "FETCH_BEATS"]

INSTR_BYTES = 128  # one instruction in DRAM (32 words) ...
FETCH_BEATS = (len(FIELDS) + 1) // 2   # ... of which only the words holding fields are fetched


def instr_layout():
    """A decoded instruction: every field of :data:`~sparsa.sw.cnn.isa.FIELDS` at its width."""
    return data.StructLayout({name: signed(FIELD_BITS[name]) if name in SIGNED else FIELD_BITS[name]
                              for name in FIELDS})


LOAD_FIELDS = ("target", "dram", "dstride", "count", "length", "buf", "bstride")


def load_layout():
    """The fields of a LOAD that its row loop needs (the running one, or one queued)."""
    return data.StructLayout({name: FIELD_BITS[name] for name in LOAD_FIELDS})


def load_row_layout():
    """One LOAD row for the load unit: its first ibuf/wbuf destination and DRAM byte lane."""
    return data.StructLayout({"dest": 20, "lo": 3})


class Sequencer(wiring.Component):
    """Fetch, decode and dispatch: one instruction at a time, in program order, except that a
    LOAD with flag BG is only queued (up to :data:`~sparsa.sw.cnn.isa.LOAD_QUEUE`) and its
    rows run beside the next compute, one queued LOAD after the other; the compute retires
    when they and it are done. Nothing else reads DRAM meanwhile: the next fetch waits.

    Ports
    -----
    start, prog_addr : In
        Run the program at DRAM byte address ``prog_addr``.
    busy, done, retire : Out(1)
        ``done`` pulses at END; ``retire`` pulses once per other finished instruction.
    instr : Out(instr_layout())
        The instruction being executed.
    rd_cmd : Out(stream.Signature(cmd_layout)), rd : In(stream.Signature(beat_layout))
        The AXI reader (fetch and LOAD share it).
    load : Out(stream.Signature(beat_layout))
        The LOAD's beats, passed through from ``rd`` (comb) while a row is being read.
    load_run, load_begin : Out(1)
        A LOAD row's beats are being read; a LOAD may begin (the load unit resets).
    load_target : Out
        The running LOAD's target.
    load_row_start, load_row : Out
        A LOAD row's read command was accepted; where its bytes go.
    load_row_done : In(1)
        The load unit has written the row's last byte.
    compute_start : Out(1), compute_busy : In(1)
        Start CONV/POOL/ADD; the compute pipeline (lanes and output stage) still holds work.
    store_start : Out(1), store_busy : In(1)
        Hand a SAVE to the store unit; the store unit is running one.

    Timing: a fetch costs :data:`FETCH_BEATS` beats plus the AXI read latency, dispatch one
    cycle, retire one cycle. A compute instruction retires the cycle after ``compute_busy``
    falls; a LOAD row costs its read command plus its beats (one a cycle within a burst).
    A SAVE costs no more than its fetch unless flag SYNC is set; END, a SAVE and flag SYNC
    wait in DISPATCH for ``store_busy`` to fall. A LOAD with flag BG costs its fetch; the
    compute it is queued for retires the cycle after both ``compute_busy`` has fallen and the
    queued LOADs' rows are done (the next queued LOAD is taken in the cycle the last one's
    rows end; one more cycle, in COMPUTE, after the last).
    """

    start: In(1)
    prog_addr: In(32)
    busy: Out(1)
    done: Out(1)
    retire: Out(1)
    instr: Out(instr_layout())
    rd_cmd: Out(stream.Signature(cmd_layout))
    rd: In(stream.Signature(beat_layout))
    load: Out(stream.Signature(beat_layout))
    load_run: Out(1)
    load_begin: Out(1)
    load_target: Out(FIELD_BITS["target"])
    load_row_start: Out(1)
    load_row: Out(load_row_layout())
    load_row_done: In(1)
    compute_start: Out(1)
    compute_busy: In(1)
    store_start: Out(1)
    store_busy: In(1)

    def elaborate(self, platform):
        m = Module()
        f = self.instr
        sync, bg = f.flags[6], f.flags[9]
        cur = Signal(load_layout())                     # the LOAD whose rows run
        queue = [Signal(load_layout(), name=f"queued{i}") for i in range(LOAD_QUEUE)]
        nq = Signal(range(LOAD_QUEUE + 1))
        beside = Signal()                               # cur runs beside a compute
        m.d.comb += self.load_target.eq(cur.target)
        pc_addr = Signal(32)
        beat_no = Signal(range(FETCH_BEATS))
        row = Signal(16)
        row_dram = Signal(32)
        row_dest = Signal(20)
        rd = self.rd
        # take the first queued LOAD into cur (the others move up)
        pop = [cur.eq(queue[0]), row.eq(0), row_dram.eq(queue[0].dram), row_dest.eq(queue[0].buf),
               nq.eq(nq - 1)] + [queue[i].eq(queue[i + 1]) for i in range(LOAD_QUEUE - 1)]

        with m.FSM() as fsm:
            m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += pc_addr.eq(self.prog_addr)
                    m.next = "FETCH_CMD"
            with m.State("FETCH_CMD"):
                m.d.comb += [self.rd_cmd.valid.eq(1), self.rd_cmd.p.addr.eq(pc_addr),
                             self.rd_cmd.p.nbytes.eq(FETCH_BEATS * 8)]
                with m.If(self.rd_cmd.ready):
                    m.d.sync += beat_no.eq(0)
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += rd.ready.eq(1)
                with m.If(rd.valid):
                    for i, name in enumerate(FIELDS):
                        with m.If(beat_no == i // 2):
                            lo = 32 * (i % 2)
                            m.d.sync += f[name].eq(rd.p.data[lo:lo + FIELD_BITS[name]])
                    m.d.sync += beat_no.eq(beat_no + 1)
                    with m.If(rd.p.last):
                        m.d.sync += pc_addr.eq(pc_addr + INSTR_BYTES)
                        m.next = "DISPATCH"
            with m.State("DISPATCH"):
                m.d.comb += self.load_begin.eq(1)
                m.d.sync += [row.eq(0), row_dram.eq(f.dram), row_dest.eq(f.buf)]
                # Wait for the store unit here on flag SYNC, END, and a SAVE (one runs at a time).
                with m.If(~self.store_busy | ~(sync | (f.op == Op.END) | (f.op == Op.SAVE))):
                    with m.Switch(f.op):
                        with m.Case(Op.END):
                            m.d.comb += self.done.eq(1)
                            m.d.sync += nq.eq(0)
                            m.next = "IDLE"
                        with m.Case(Op.LOAD):
                            with m.If(bg):
                                # the compiler queues at most LOAD_QUEUE; a further one is dropped
                                for i in range(LOAD_QUEUE):
                                    with m.If(nq == i):
                                        m.d.sync += [queue[i].eq(Cat(*(f[n] for n in LOAD_FIELDS))),
                                                     nq.eq(i + 1)]
                                m.next = "RETIRE"
                            with m.Else():
                                m.d.sync += [cur.eq(Cat(*(f[n] for n in LOAD_FIELDS))), beside.eq(0)]
                                m.next = "LOAD_CMD"
                        with m.Case(Op.SAVE):
                            m.d.comb += self.store_start.eq(1)
                            m.next = "RETIRE"
                            with m.If(sync):
                                m.next = "SAVE_SYNC"
                        with m.Case(Op.CONV, Op.POOL, Op.ADD):
                            m.d.comb += self.compute_start.eq(1)
                            m.next = "COMPUTE"
                            with m.If(nq != 0):
                                m.d.sync += beside.eq(1)
                                m.d.sync += pop
                                m.next = "LOAD_CMD"
                        with m.Default():
                            m.next = "RETIRE"
            with m.State("LOAD_CMD"):
                with m.If(row == cur.count):
                    m.next = "RETIRE"
                    with m.If(beside):
                        m.next = "COMPUTE"
                        with m.If(nq != 0):         # the next queued LOAD
                            m.d.comb += self.load_begin.eq(1)
                            m.d.sync += pop
                            m.next = "LOAD_CMD"
                with m.Else():
                    m.d.comb += [self.rd_cmd.valid.eq(1), self.rd_cmd.p.addr.eq(row_dram),
                                 self.rd_cmd.p.nbytes.eq(cur.length)]
                    with m.If(self.rd_cmd.ready):
                        m.d.comb += [self.load_row_start.eq(1), self.load_row.dest.eq(row_dest),
                                     self.load_row.lo.eq(row_dram[:3])]
                        m.next = "LOAD_DATA"
                        with m.If(cur.length == 0):
                            m.d.sync += row.eq(row + 1)
                            m.next = "LOAD_CMD"
            with m.State("LOAD_DATA"):
                m.d.comb += [self.load_run.eq(1), self.load.valid.eq(rd.valid), self.load.p.eq(rd.p),
                             rd.ready.eq(self.load.ready)]
                with m.If(self.load_row_done):
                    m.d.sync += [row.eq(row + 1), row_dram.eq(row_dram + cur.dstride),
                                 row_dest.eq(row_dest + cur.bstride)]
                    m.next = "LOAD_CMD"
            with m.State("SAVE_SYNC"):          # a SAVE with SYNC retires when it has finished
                with m.If(~self.store_busy):
                    m.next = "RETIRE"
            with m.State("COMPUTE"):
                with m.If(~self.compute_busy):
                    m.next = "RETIRE"
            with m.State("RETIRE"):
                m.d.comb += self.retire.eq(1)
                m.next = "FETCH_CMD"
        return m
