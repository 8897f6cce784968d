"""The CNN engine: instruction fetch and sequencing, on-chip buffers, the one-multiplier lanes,
the 3x3 window convolver, the Winograd F(2x2,3x3) path, pooling, element-wise add, and the
AXI4 master.

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
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.fifo import SyncFIFO
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out, connect, flipped

from sparsa.sw.cnn.isa import FIELD_BITS, FIELDS, SIGNED, Flag, Op, Target

from sparsa.hw.cnn.axi import AXI4Signature, AXIReader, AXIWriter, axi4_flat_members, axi4_flat_view
from sparsa.hw.cnn.convolver import WindowConvolver
from sparsa.hw.cnn.linebuf import WindowSweep
from sparsa.hw.cnn.window import WindowWalker, walk_layout
from sparsa.hw.cnn.winograd import input_transform, output_transform

__all__ = ["CNNEngine", "ACC_BITS"]

ACC_BITS = 40      # accumulators: bias (32 bits) + up to 2^17 int8 products, Winograd Y with margin
INSTR_BYTES = 128  # one instruction in DRAM (32 words) ...
FETCH_BEATS = (len(FIELDS) + 1) // 2   # ... of which only the words holding fields are fetched


def _axi_ports(prefix):
    """The flat AXI4 master ports (``m_axi_arvalid``...): kept for :mod:`.soc`."""
    return axi4_flat_members(prefix)


class CNNEngine(wiring.Component):
    """See the module docstring. Ports: ``start``, ``prog_addr``, ``busy``, ``done``,
    ``cycles`` (of the current/last run), ``mac_cycles`` (cycles the multipliers were fed),
    ``retire``/``retire_layer`` (one pulse per finished instruction, for per-layer timing) and
    the AXI4 master ``m_axi_*`` (64-bit data, 32-bit address)."""

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

        # AXI engines, joined to the flat top-level ports
        m.submodules.rd = rd = AXIReader()
        m.submodules.wr = wr = AXIWriter()
        connect(m, flipped(axi4_flat_view(self, "m_axi_", AXI4Signature(write=False))), rd.axi)
        connect(m, flipped(axi4_flat_view(self, "m_axi_", AXI4Signature(read=False))), wr.axi)

        # Buffers
        m.submodules.ibuf = ibuf = Memory(shape=64, depth=cfg.ibuf_bytes // 8, init=[])
        # ibuf is 64 bits wide: LOAD writes a beat a cycle (byte enables), compute reads bytes
        ib_w = ibuf.write_port(granularity=8)
        ib_a = ibuf.read_port()
        ib_b = ibuf.read_port()
        # the window convolver's three row streams use ports a, b and c (c only exists for it)
        ib_c = ibuf.read_port() if cfg.convolver else None
        ia_addr, ib_addr = Signal(20), Signal(20)          # byte addresses of the two reads
        ia_lo, ib_lo = Signal(3), Signal(3)
        m.d.comb += [ib_a.addr.eq(ia_addr[3:]), ib_b.addr.eq(ib_addr[3:])]
        m.d.sync += [ia_lo.eq(ia_addr[:3]), ib_lo.eq(ib_addr[:3])]
        ia_byte, ib_byte = ib_a.data.word_select(ia_lo, 8), ib_b.data.word_select(ib_lo, 8)
        m.submodules.wbuf = wbuf = Memory(shape=16 * P, depth=cfg.wbuf_words, init=[])
        wb_w = wbuf.write_port()
        wb_r = wbuf.read_port()
        # obuf banks are 64 bits wide (byte writes, 8-byte reads) so that SAVE moves a beat a cycle
        ob_w, ob_r = [], []
        for lane in range(P):
            mem = Memory(shape=64, depth=cfg.obuf_depth // 8, init=[])
            m.submodules[f"obuf{lane}"] = mem
            ob_w.append(mem.write_port(granularity=8))
            ob_r.append(mem.read_port())
        bias = Signal(32 * P)

        # Decoded instruction fields
        f = {name: Signal(signed(FIELD_BITS[name]) if name in SIGNED else FIELD_BITS[name], name=f"i_{name}")
             for name in FIELDS}
        relu = f["flags"][0]
        sync = f["flags"][6]
        # Without the Winograd datapath (cfg.winograd False) the flag reads as 0 and the
        # tile, sequencer and output-transform logic below is not generated.
        wino = f["flags"][1] if cfg.winograd else C(0, 1)
        n_acc = 16 if cfg.winograd else 1
        avg = f["flags"][2]
        # Without the window convolver (cfg.convolver False) LB reads as 0 and it is not generated.
        lb = f["flags"][3] if cfg.convolver else C(0, 1)

        # Counters visible to the host
        with m.If(self.start & ~self.busy):
            m.d.sync += [self.cycles.eq(0), self.mac_cycles.eq(0)]
        with m.Elif(self.busy):
            m.d.sync += self.cycles.eq(self.cycles + 1)

        pc_addr = Signal(32)
        beat_no = Signal(range(FETCH_BEATS))
        row = Signal(16)
        row_dram = Signal(32)
        row_dest = Signal(20)
        dest = Signal(20)
        pipe_busy = Signal()       # some compute pipeline stage holds a result in flight

        # LOAD to ibuf: each DRAM beat is rotated onto ibuf words; the part that spills into the
        # next word waits in `carry` and is merged with the next beat (one word written a cycle)
        ld_word = Signal(17)
        ld_rot = Signal(3)
        carry = Signal(64)
        carry_en = Signal(8)
        ld_flush = Signal()
        # LOAD to wbuf / bias: beats shifted into a word
        w_word = Signal(16 * P)
        w_cnt = Signal(range(max(2, 2 * P // 8)))
        load_row_done = Signal()

        # SAVE (the store unit: its own copy of the instruction's fields, so that it can run
        # while the next instructions are fetched and executed)
        st_start, st_busy = Signal(), Signal()
        st_count, st_length = Signal(FIELD_BITS["count"]), Signal(FIELD_BITS["length"])
        st_dstride, st_ostride = Signal(FIELD_BITS["dstride"]), Signal(FIELD_BITS["ostride"])
        sv_c = Signal(16)
        sv_dram = Signal(32)
        sv_gbase = Signal(20)
        sv_bank = Signal(range(P))
        sv_bank_d = Signal(range(P))
        sv_word = Signal(17)            # next obuf word to read
        sv_words = Signal(18)           # words still to read (beats + 1)
        sv_rot = Signal(3)              # byte rotation from obuf words to DRAM beats
        sv_beat = Signal(18)            # beats sent
        sv_nbeats = Signal(18)
        sv_first_strb, sv_last_strb = Signal(8), Signal(8)
        sv_prev = Signal(64)
        sv_have_prev = Signal()
        sv_inflight = Signal()
        m.submodules.sv_fifo = sv_fifo = SyncFIFO(width=64, depth=4)

        # Compute units
        m.submodules.walker = walker = WindowWalker(cfg)
        add_run = Signal()
        compute_start = Signal()

        with m.FSM() as fsm:
            m.d.comb += self.busy.eq(~fsm.ongoing("IDLE"))
            with m.State("IDLE"):
                with m.If(self.start):
                    m.d.sync += pc_addr.eq(self.prog_addr)
                    m.next = "FETCH_CMD"
            with m.State("FETCH_CMD"):
                m.d.comb += [rd.cmd.valid.eq(1), rd.cmd.p.addr.eq(pc_addr), rd.cmd.p.nbytes.eq(FETCH_BEATS * 8)]
                with m.If(rd.cmd.ready):
                    m.d.sync += beat_no.eq(0)
                    m.next = "FETCH"
            with m.State("FETCH"):
                m.d.comb += rd.o.ready.eq(1)
                with m.If(rd.o.valid):
                    for i, name in enumerate(FIELDS):
                        with m.If(beat_no == i // 2):
                            lo = 32 * (i % 2)
                            m.d.sync += f[name].eq(rd.o.p.data[lo:lo + FIELD_BITS[name]])
                    m.d.sync += beat_no.eq(beat_no + 1)
                    with m.If(rd.o.p.last):
                        m.d.sync += pc_addr.eq(pc_addr + INSTR_BYTES)
                        m.next = "DISPATCH"
            with m.State("DISPATCH"):
                m.d.sync += [row.eq(0), row_dram.eq(f["dram"]), row_dest.eq(f["buf"]), dest.eq(f["buf"]),
                             w_cnt.eq(0), ld_flush.eq(0), carry_en.eq(0)]
                # Wait for the store unit here on flag SYNC, END, and a SAVE (one runs at a time).
                with m.If(~st_busy | ~(sync | (f["op"] == Op.END) | (f["op"] == Op.SAVE))):
                    with m.Switch(f["op"]):
                        with m.Case(Op.END):
                            m.d.comb += self.done.eq(1)
                            m.next = "IDLE"
                        with m.Case(Op.LOAD):
                            m.next = "LOAD_CMD"
                        with m.Case(Op.SAVE):
                            m.d.comb += st_start.eq(1)
                            m.next = "RETIRE"
                            with m.If(sync):
                                m.next = "SAVE_SYNC"
                        with m.Case(Op.CONV, Op.POOL):
                            m.d.comb += compute_start.eq(1)
                            m.next = "COMPUTE"
                        with m.Case(Op.ADD):
                            m.d.comb += compute_start.eq(1)
                            m.next = "COMPUTE"
                        with m.Default():
                            m.next = "RETIRE"
            with m.State("LOAD_CMD"):
                with m.If(row == f["count"]):
                    m.next = "RETIRE"
                with m.Else():
                    m.d.comb += [rd.cmd.valid.eq(1), rd.cmd.p.addr.eq(row_dram), rd.cmd.p.nbytes.eq(f["length"])]
                    with m.If(rd.cmd.ready):
                        # DRAM lane j of beat k goes to ibuf byte s + 8k + j, s = dest - (dram & 7)
                        ld_start = Signal(signed(22))
                        m.d.comb += ld_start.eq(row_dest - row_dram[:3])
                        m.d.sync += [dest.eq(row_dest), ld_word.eq(ld_start >> 3), ld_rot.eq(ld_start[:3]),
                                     carry.eq(0), carry_en.eq(0), ld_flush.eq(0)]
                        m.next = "LOAD_DATA"
                        with m.If(f["length"] == 0):
                            m.d.sync += row.eq(row + 1)
                            m.next = "LOAD_CMD"
            with m.State("LOAD_DATA"):
                with m.If(load_row_done):
                    m.d.sync += [row.eq(row + 1), row_dram.eq(row_dram + f["dstride"]),
                                 row_dest.eq(row_dest + f["bstride"])]
                    m.next = "LOAD_CMD"
            with m.State("SAVE_SYNC"):          # a SAVE with SYNC retires when it has finished
                with m.If(~st_busy):
                    m.next = "RETIRE"
            with m.State("COMPUTE"):
                with m.If(~walker.busy & ~add_run & ~compute_start & ~pipe_busy):
                    m.next = "RETIRE"
            with m.State("RETIRE"):
                m.d.comb += self.retire.eq(1)
                m.next = "FETCH_CMD"

        # The store unit: runs one SAVE at a time, in the background of the main sequencer.
        with m.FSM(name="store") as store:
            m.d.comb += st_busy.eq(~store.ongoing("S_IDLE"))
            with m.State("S_IDLE"):
                with m.If(st_start):
                    m.d.sync += [sv_c.eq(0), sv_dram.eq(f["dram"]), sv_gbase.eq(f["buf"]), sv_bank.eq(0),
                                 st_count.eq(f["count"]), st_length.eq(f["length"]),
                                 st_dstride.eq(f["dstride"]), st_ostride.eq(f["ostride"])]
                    m.next = "S_CMD"
            with m.State("S_CMD"):
                with m.If(sv_c == st_count):
                    m.next = "S_IDLE"
                with m.Else():
                    m.d.comb += [wr.cmd.valid.eq(1), wr.cmd.p.addr.eq(sv_dram), wr.cmd.p.nbytes.eq(st_length)]
                    # DRAM beat k holds bank bytes s + 8k .. s + 8k + 7, s = bank start - (dram & 7)
                    d7 = sv_dram[:3]
                    start = Signal(signed(22))
                    nbeats = Signal(18)
                    m.d.comb += [start.eq(sv_gbase - d7), nbeats.eq((d7 + st_length + 7) >> 3)]
                    with m.If(wr.cmd.ready):
                        m.d.sync += [sv_word.eq(start >> 3), sv_rot.eq(start[:3]), sv_words.eq(nbeats + 1),
                                     sv_nbeats.eq(nbeats), sv_beat.eq(0), sv_have_prev.eq(0),
                                     sv_first_strb.eq(C(0xFF, 8) << d7),
                                     sv_last_strb.eq(C(0xFF, 8) >> ~(d7 + st_length - 1)[:3])]  # 7 - last lane
                        m.next = "S_DATA"
                        with m.If(st_length == 0):
                            m.next = "S_NEXT"
            with m.State("S_DATA"):
                with m.If(wr.done):
                    m.next = "S_NEXT"
            with m.State("S_NEXT"):
                m.d.sync += [sv_c.eq(sv_c + 1), sv_dram.eq(sv_dram + st_dstride), sv_bank.eq(sv_bank + 1)]
                with m.If(sv_bank == P - 1):
                    m.d.sync += [sv_bank.eq(0), sv_gbase.eq(sv_gbase + st_ostride)]
                m.next = "S_CMD"

        in_load = fsm.ongoing("LOAD_DATA")
        m.d.comb += self.retire_layer.eq(f["layer"])

        #
        # LOAD data paths
        #
        tgt = f["target"]
        with m.If(in_load & (tgt == Target.IBUF)):
            with m.If(ld_flush):
                m.d.comb += [ib_w.addr.eq(ld_word), ib_w.data.eq(carry), ib_w.en.eq(carry_en), load_row_done.eq(1)]
                m.d.sync += [ld_flush.eq(0), carry_en.eq(0)]
            with m.Else():
                m.d.comb += rd.o.ready.eq(1)
                lanes = Signal(8)
                rot_d, rot_en = Signal(128), Signal(16)
                m.d.comb += [
                    lanes.eq((C(0xFF, 8) << rd.o.p.lo)[:8] & (C(0xFF, 8) >> ~rd.o.p.hi)),
                    rot_d.eq(Cat(rd.o.p.data, C(0, 64)) << (ld_rot * 8)),
                    rot_en.eq(Cat(lanes, C(0, 8)) << ld_rot),
                ]
                with m.If(rd.o.valid):
                    m.d.comb += [ib_w.addr.eq(ld_word), ib_w.data.eq(rot_d[:64] | carry),
                                 ib_w.en.eq(rot_en[:8] | carry_en)]
                    m.d.sync += [ld_word.eq(ld_word + 1), carry.eq(rot_d[64:]), carry_en.eq(rot_en[8:])]
                    with m.If(rd.o.p.last):
                        with m.If(rot_en[8:] != 0):
                            m.d.sync += ld_flush.eq(1)
                        with m.Else():
                            m.d.comb += load_row_done.eq(1)
        with m.If(in_load & (tgt == Target.WBUF)):
            m.d.comb += rd.o.ready.eq(1)
            with m.If(rd.o.valid):
                word = Cat(w_word[64:], rd.o.p.data)
                m.d.sync += [w_word.eq(word), w_cnt.eq(w_cnt + 1)]
                with m.If(w_cnt == 2 * P // 8 - 1):
                    m.d.comb += [wb_w.addr.eq(dest), wb_w.data.eq(word), wb_w.en.eq(1)]
                    m.d.sync += [dest.eq(dest + 1), w_cnt.eq(0)]
                m.d.comb += load_row_done.eq(rd.o.p.last)
        with m.If(in_load & (tgt == Target.BIAS)):
            m.d.comb += rd.o.ready.eq(1)
            with m.If(rd.o.valid):
                m.d.sync += bias.eq(Cat(bias[64:], rd.o.p.data))
                m.d.comb += load_row_done.eq(rd.o.p.last)

        #
        # SAVE data path: obuf word reads -> 4-entry FIFO -> pairs of words rotated into
        # DRAM-aligned beats with strobes -> AXI writer (one beat a cycle)
        #
        in_save = store.ongoing("S_DATA")
        room = sv_fifo.level + sv_inflight < 3
        issue = in_save & (sv_words != 0) & room
        for lane in range(P):
            m.d.comb += [ob_r[lane].addr.eq(sv_word), ob_r[lane].en.eq(issue)]
        m.d.sync += [sv_inflight.eq(issue), sv_bank_d.eq(sv_bank)]
        with m.If(issue):
            m.d.sync += [sv_word.eq(sv_word + 1), sv_words.eq(sv_words - 1)]
        m.d.comb += [sv_fifo.w_en.eq(sv_inflight), sv_fifo.w_data.eq(Array(r.data for r in ob_r)[sv_bank_d])]
        pair = Cat(sv_prev, sv_fifo.r_data)
        strb = Signal(8)
        m.d.comb += strb.eq(Mux(sv_beat == 0, sv_first_strb, 0xFF) & Mux(sv_beat == sv_nbeats - 1, sv_last_strb, 0xFF))
        m.d.comb += [wr.data.valid.eq(in_save & sv_have_prev & sv_fifo.r_rdy),
                     # bytes outside the strobes are zeroed: they may never have been written (X in simulation)
                     wr.data.p.data.eq(pair.bit_select(sv_rot * 8, 64) & Cat(*[strb[i].replicate(8) for i in range(8)])),
                     wr.data.p.strb.eq(strb)]
        with m.If(in_save & sv_fifo.r_rdy & (~sv_have_prev | wr.data.ready)):
            m.d.comb += sv_fifo.r_en.eq(1)
            m.d.sync += [sv_prev.eq(sv_fifo.r_data), sv_have_prev.eq(1)]
            with m.If(sv_have_prev):
                m.d.sync += sv_beat.eq(sv_beat + 1)

        #
        # Compute: walker tokens (CONV, POOL) or the ADD counters
        #
        is_conv = f["op"] == Op.CONV
        is_pool = f["op"] == Op.POOL
        wp = walker.params
        m.d.comb += [
            walker.start.eq(compute_start & ((is_conv & ~lb) | is_pool)),
            wp.pool.eq(is_pool), wp.wino.eq(is_conv & wino), wp.count.eq(f["count"]), wp.k.eq(f["k"]),
            wp.step.eq(f["step"]), wp.gh.eq(f["gh"]), wp.gw.eq(f["gw"]), wp.y0.eq(f["y0"]), wp.x0.eq(f["x0"]),
            wp.row0.eq(f["row0"]), wp.H.eq(f["H"]), wp.W.eq(f["W"]), wp.buf.eq(f["buf"]),
            wp.bstride.eq(f["bstride"]), wp.ostride.eq(f["ostride"]), wp.wo.eq(f["wo"]),
            wp.out_rows.eq(f["out_rows"]),
        ]
        tok = walker.tok

        # ADD counters (channel c, element i)
        a_c, a_i = Signal(16), Signal(20)
        a_base = Signal(20)            # c * bstride
        a_bank = Signal(range(P))
        a_obase = Signal(20)
        with m.If(compute_start & (f["op"] == Op.ADD)):
            m.d.sync += [add_run.eq((f["count"] != 0) & (f["length"] != 0)), a_c.eq(0), a_i.eq(0),
                         a_base.eq(0), a_bank.eq(0), a_obase.eq(0)]
        with m.Elif(add_run):
            m.d.sync += a_i.eq(a_i + 1)
            with m.If(a_i == f["length"] - 1):
                m.d.sync += [a_i.eq(0), a_c.eq(a_c + 1), a_base.eq(a_base + f["bstride"]), a_bank.eq(a_bank + 1)]
                with m.If(a_bank == P - 1):
                    m.d.sync += [a_bank.eq(0), a_obase.eq(a_obase + f["ostride"])]
                with m.If(a_c == f["count"] - 1):
                    m.d.sync += add_run.eq(0)

        # ibuf/wbuf read addresses (T0 -> data at T1)
        seq_run = Signal()
        seq_e = Signal(4)
        seq_base = Signal(16)
        with m.If(add_run):
            m.d.comb += [ia_addr.eq(f["buf"] + a_base + a_i), ib_addr.eq(f["b"] + a_base + a_i)]
        with m.Else():
            m.d.comb += ia_addr.eq(tok.addr)
        m.d.comb += wb_r.addr.eq(Mux(wino, seq_base + seq_e, tok.widx))

        # 3x3 window convolver: the sweep's row streams read ibuf words, the lanes read wbuf
        cv_valid = C(0, 1)
        cv_busy = C(0, 1)
        cv_mac = C(0, 1)
        if cfg.convolver:
            m.submodules.sweep = sweep = WindowSweep()
            m.submodules.conv3 = conv3 = WindowConvolver(cfg, ACC_BITS)
            wiring.connect(m, sweep.o, conv3.i)
            sw = sweep.params
            m.d.comb += [
                sweep.start.eq(compute_start & is_conv & lb), conv3.start.eq(compute_start & is_conv & lb),
                conv3.acc_in.eq(f["flags"][4]), conv3.hold.eq(f["flags"][5]),
                sw.count.eq(f["count"]), sw.step.eq(f["step"]), sw.gh.eq(f["gh"]), sw.gw.eq(f["gw"]),
                sw.y0.eq(f["y0"]), sw.x0.eq(f["x0"]), sw.row0.eq(f["row0"]), sw.H.eq(f["H"]), sw.W.eq(f["W"]),
                sw.buf.eq(f["buf"]), sw.bstride.eq(f["bstride"]), sw.wo.eq(f["wo"]), sw.pbase.eq(f["b"]),
                ib_c.addr.eq(sweep.rd2_addr), sweep.rd0_data.eq(ib_a.data), sweep.rd1_data.eq(ib_b.data),
                sweep.rd2_data.eq(ib_c.data), conv3.wb_data.eq(wb_r.data),
            ]
            with m.If(is_conv & lb):
                m.d.comb += [ib_a.addr.eq(sweep.rd0_addr), ib_b.addr.eq(sweep.rd1_addr),
                             wb_r.addr.eq(conv3.wb_addr)]
            cv_valid, cv_busy, cv_mac = conv3.o_valid, sweep.busy | conv3.busy, conv3.mac

        # T1: tokens with their data
        t1 = Signal.like(tok)
        t1_valid = Signal()
        a1 = Signal()
        a1_addr = Signal(20)
        a1_bank = Signal(range(P))
        m.d.sync += [t1.eq(tok), t1_valid.eq(walker.tok_valid), a1.eq(add_run),
                     a1_addr.eq(a_obase + a_i), a1_bank.eq(a_bank)]
        x1 = Signal(signed(8))
        m.d.comb += x1.eq(Mux(t1.inb, ia_byte, 0))
        w_lane = [wb_r.data[16 * lane:16 * lane + 16].as_signed() for lane in range(P)]

        # Output-stage input (one source per instruction)
        pi_valid = Signal()
        pi_vals = [Signal(signed(ACC_BITS), name=f"pi_val{lane}") for lane in range(P)]
        pi_addr = Signal(20)
        pi_bank = Signal(range(P))
        pi_all = Signal()          # write every lane (CONV) or only pi_bank (POOL, ADD)
        pi_bias = Signal()

        # Direct convolution: T1 multiply, T2 accumulate, T3 result
        conv_direct = is_conv & ~wino
        prod = [Signal(signed(28), name=f"prod{lane}") for lane in range(P)]
        p_first, p_last, p_valid = Signal(), Signal(), Signal()
        p_e = Signal(4)
        p_addr = Signal(20)
        macc = [Array(Signal(signed(ACC_BITS), name=f"m{lane}_{e}") for e in range(n_acc)) for lane in range(P)]

        # Winograd tile assembly (T1) and the 16-step multiply sequence
        tile = Signal(128)
        td = Signal()
        td_first, td_last = Signal(), Signal()
        tile_first = Signal()
        vreg = [Signal(signed(12), name=f"v{e}") for e in range(16)]
        seq_first, seq_last = Signal(), Signal()
        seq_addr, seq_y1, seq_x1 = Signal(20), Signal(), Signal()
        td_addr, td_y1, td_x1 = Signal(20), Signal(), Signal()
        td_base = Signal(16)
        # issue stage registers (carried so that a new tile can overwrite the sequencer)
        q_valid, q_first, q_last = Signal(), Signal(), Signal()
        q_e = Signal(4)
        q_v = Signal(signed(12))
        q_addr, q_y1, q_x1 = Signal(20), Signal(), Signal()

        with m.If(t1_valid & is_conv & wino):
            m.d.sync += tile.eq(Cat(tile[8:], x1))
            with m.If(t1.widx[:4] == 0):
                m.d.sync += tile_first.eq(t1.first)
            with m.If(t1.widx[:4] == 15):
                m.d.sync += [td.eq(1), td_first.eq(tile_first), td_last.eq(t1.last), td_addr.eq(t1.opix),
                             td_y1.eq(t1.y1_ok), td_x1.eq(t1.x1_ok), td_base.eq(t1.widx - 15)]
            with m.Else():
                m.d.sync += td.eq(0)
        with m.Else():
            m.d.sync += td.eq(0)

        # td: the complete tile is in `tile`; latch V and (re)start the sequence
        tile_bytes = [tile[8 * e:8 * e + 8].as_signed() for e in range(16)]
        with m.If(td):
            m.d.sync += [v.eq(expr) for v, expr in zip(vreg, input_transform(tile_bytes))]
            m.d.sync += [seq_run.eq(1), seq_e.eq(0), seq_base.eq(td_base), seq_first.eq(td_first),
                         seq_last.eq(td_last), seq_addr.eq(td_addr), seq_y1.eq(td_y1), seq_x1.eq(td_x1)]
        with m.Elif(seq_run):
            m.d.sync += seq_e.eq(seq_e + 1)
            with m.If(seq_e == 15):
                m.d.sync += seq_run.eq(0)
        # issue: wbuf address is seq_base + seq_e this cycle; the weight arrives with q_*
        m.d.sync += [q_valid.eq(seq_run), q_e.eq(seq_e), q_v.eq(Array(vreg)[seq_e]), q_first.eq(seq_first),
                     q_last.eq(seq_last & (seq_e == 15)), q_addr.eq(seq_addr), q_y1.eq(seq_y1), q_x1.eq(seq_x1)]

        # multiply stage (shared multiplier per lane): direct from T1, Winograd from q_*
        mul_b = Signal(signed(12))
        with m.If(wino):
            m.d.comb += mul_b.eq(q_v)
            m.d.sync += [p_valid.eq(q_valid & is_conv), p_first.eq(q_first), p_last.eq(q_last), p_e.eq(q_e),
                         p_addr.eq(q_addr)]
        with m.Else():
            m.d.comb += mul_b.eq(x1)
            m.d.sync += [p_valid.eq(t1_valid & conv_direct), p_first.eq(t1.first), p_last.eq(t1.last),
                         p_e.eq(0), p_addr.eq(t1.opix)]
        for lane in range(P):
            m.d.sync += prod[lane].eq(w_lane[lane] * mul_b)
        mac_now = Mux(wino, q_valid & is_conv, t1_valid & conv_direct) | cv_mac
        with m.If(mac_now):
            m.d.sync += self.mac_cycles.eq(self.mac_cycles + 1)

        # accumulate
        fin, fin_w = Signal(), Signal()
        fin_addr = Signal(20)
        w_y1, w_x1 = Signal(), Signal()
        m.d.sync += [fin.eq(0), fin_w.eq(0)]
        with m.If(p_valid):
            for lane in range(P):
                m.d.sync += macc[lane][p_e].eq(Mux(p_first, 0, macc[lane][p_e]) + prod[lane])
            with m.If(p_last):
                m.d.sync += [fin.eq(~wino), fin_w.eq(wino), fin_addr.eq(p_addr)]
        # the seq's pixel flags ride along with p_addr via q_*; keep the last tile's
        with m.If(q_valid & q_last):
            m.d.sync += [w_y1.eq(q_y1), w_x1.eq(q_x1)]

        # Winograd output tile: Y = A^T M A, then four results over four cycles
        ytile = [[Signal(signed(ACC_BITS), name=f"y{lane}_{q}") for q in range(4)] for lane in range(P)]
        y_cnt = Signal(3)
        y_addr = Signal(20)
        y_ok = Signal(4)
        with m.If(fin_w if cfg.winograd else C(0, 1)):
            for lane in range(P) if cfg.winograd else ():
                outs = output_transform([macc[lane][e] for e in range(16)])
                m.d.sync += [ytile[lane][q].eq(outs[q]) for q in range(4)]
            m.d.sync += [y_cnt.eq(4), y_addr.eq(fin_addr), y_ok.eq(Cat(1, w_x1, w_y1, w_x1 & w_y1))]
        with m.Elif(y_cnt != 0):
            m.d.sync += y_cnt.eq(y_cnt - 1)
            for lane in range(P):
                m.d.sync += [ytile[lane][q].eq(ytile[lane][q + 1]) for q in range(3)]
            m.d.sync += y_ok.eq(y_ok >> 1)
        y_off = Array([C(0, 20), C(1, 20), f["wo"], f["wo"] + 1])[4 - y_cnt]

        # POOL reduction at T1
        pacc = Signal(signed(ACC_BITS))
        pnew = Signal(signed(ACC_BITS))
        m.d.comb += pnew.eq(Mux(t1.first, x1, Mux(avg, pacc + x1, Mux(x1 > pacc, x1, pacc))))
        with m.If(t1_valid & is_pool):
            m.d.sync += pacc.eq(pnew)

        # ADD at T1
        add_sum = Signal(signed(10))
        m.d.comb += add_sum.eq(ia_byte.as_signed() + ib_byte.as_signed())

        with m.If(cv_valid):
            if cfg.convolver:
                m.d.comb += [pi_valid.eq(1), pi_addr.eq(conv3.o_addr), pi_all.eq(1), pi_bias.eq(1)]
                m.d.comb += [pi_vals[lane].eq(conv3.o_vals[lane]) for lane in range(P)]
        with m.Elif(fin):
            m.d.comb += [pi_valid.eq(1), pi_addr.eq(fin_addr), pi_all.eq(1), pi_bias.eq(1)]
            m.d.comb += [pi_vals[lane].eq(macc[lane][0]) for lane in range(P)]
        with m.Elif(y_cnt != 0):
            m.d.comb += [pi_valid.eq(y_ok[0]), pi_addr.eq(y_addr + y_off), pi_all.eq(1), pi_bias.eq(1)]
            m.d.comb += [pi_vals[lane].eq(ytile[lane][0] >> 2) for lane in range(P)]
        with m.Elif(t1_valid & is_pool & t1.last):
            m.d.comb += [pi_valid.eq(1), pi_addr.eq(t1.opix), pi_bank.eq(t1.bank)]
            m.d.comb += [pi_vals[lane].eq(pnew) for lane in range(P)]
        with m.Elif(a1):
            m.d.comb += [pi_valid.eq(1), pi_addr.eq(a1_addr), pi_bank.eq(a1_bank)]
            m.d.comb += [pi_vals[lane].eq(add_sum) for lane in range(P)]

        #
        # Output stage: + bias, rounding shift, saturate, ReLU -> obuf (3 cycles)
        #
        shift = Mux(is_conv | (is_pool & avg), f["shift"], 0)
        do_relu = relu & (is_conv | (f["op"] == Op.ADD))
        o1_valid, o2_valid = Signal(), Signal()
        o1_addr, o2_addr = Signal(20), Signal(20)
        o1_we, o2_we = Signal(P), Signal(P)
        we = Mux(pi_all, C((1 << P) - 1, P), C(1, P) << pi_bank)
        # obuf addresses are offset by the instruction's obase (a stage of its own for the adder)
        m.d.sync += [o1_valid.eq(pi_valid), o1_addr.eq(pi_addr), o1_we.eq(we),
                     o2_valid.eq(o1_valid), o2_addr.eq(o1_addr + f["obase"]), o2_we.eq(o1_we)]
        rnd = Mux(shift == 0, 0, (C(1, 33) << shift) >> 1)
        # Every stage's valid bit: each stage sets the next one's in the same cycle it empties,
        # so this stays high without a gap until the last obuf write (o2) has happened.
        m.d.comb += pipe_busy.eq(walker.tok_valid | t1_valid | a1 | td | seq_run | q_valid | p_valid |
                                 fin | fin_w | (y_cnt != 0) | o1_valid | o2_valid | cv_busy)
        for lane in range(P):
            s1 = Signal(signed(ACC_BITS + 1), name=f"s1_{lane}")
            s2 = Signal(signed(ACC_BITS + 1), name=f"s2_{lane}")
            b = bias[32 * lane:32 * lane + 32].as_signed()
            m.d.sync += s1.eq(pi_vals[lane] + Mux(pi_bias, b, 0))
            m.d.sync += s2.eq((s1 + rnd) >> shift)
            sat = Signal(signed(8), name=f"sat{lane}")
            m.d.comb += sat.eq(Mux(s2 > 127, 127, Mux(s2 < -128, -128, s2)))
            m.d.comb += [
                ob_w[lane].addr.eq(o2_addr[3:]),
                ob_w[lane].data.eq(Cat(*[Mux(do_relu & (sat < 0), 0, sat)] * 8)),
                ob_w[lane].en.eq(Mux(o2_valid & o2_we[lane], C(1, 8) << o2_addr[:3], 0)),
            ]
        return m
