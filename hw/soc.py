"""SoC wrapper: the EIE array behind an AXI4-Lite register file and an AXI-Stream pair.

A host (a Zynq PS, a soft CPU, or the cocotbext-axi testbench) controls the array through
32-bit registers and moves activations through two 16-bit AXI-Streams: ``s_axis`` into
``x_in`` (the first layer's input, j = 0, 1, ...) and ``m_axis`` out of ``y_out`` (the last
layer's rows, ``tlast`` on the last one). Port names are flat (``s_axil_awvalid``,
``m_axis_tdata``, ...) so that cocotbext-axi binds by prefix and Vivado infers the interfaces.

The register map is :data:`sparsa.sw.eie.protocol.REGISTERS` (generated documentation: ``sparsa.hw.soc.register_map_markdown``).
Weights come from the memory contents (bitstream) or through the LD_* registers, which drive
the array's load port one 64-bit word at a time. ``irq`` is high while DONE is set and
IRQ_EN bit 0 is set. CTRL.ABORT stops a run (a stalled stream, a host that gave up) and leaves
the engine idle with the model loaded, and holds ``axis_resetn`` low for
:data:`STREAM_RESET_CYCLES` cycles (also during reset), for the stream converters a system
puts between a DMA and the SoC (the KU060 PCIe design): a partial beat left in them by an
aborted transfer would otherwise start the next packet. X_COUNT counts the input values taken
since the last START or ABORT: a host starts a run once it equals the input length. The CAP_*
registers report what the build holds, so a host checks a pack against the bitstream before
writing anything. MODEL_ID says which model the memories hold (the host writes it around a load;
a build with the weights in its memories starts with theirs): like the memories, no reset and
no ABORT clears it, so a host skips a load the board already has.

The register file is :class:`sparsa.hw.axil.AXILiteRegisterFile` (shared with the CNN SoC):
a register write completes in 2 cycles after both AW and W are seen; a read in 1.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out, connect, flipped

from sparsa.hw.axil import AXILiteRegisterFile, axil_flat, axil_ports, register_table_markdown
from sparsa.hw.eie.top import EIEArray
from sparsa.sw.eie.protocol import (ALL_PES, COUNTERS, CTRL_ABORT, CTRL_START, REGISTERS, SOC_ID, LoadKind,
                                    capacity_words, config_word, model_id)

__all__ = ["EIESoC", "REGISTERS", "SOC_ID", "STREAM_RESET_CYCLES", "register_map_markdown"]

# PG085 (AXI4-Stream Infrastructure), "Resets": assert ARESETn for at least 16 cycles of the
# slowest clock. The SoC's clock is the slower side of the KU060 design's converters.
STREAM_RESET_CYCLES = 16

# Stored widths and reset values of the RW registers (the rest: 32 bits, 0).
_STORAGE = {"CTRL": (4, 0), "N_LAYERS": (7, 1), "IRQ_EN": (1, 0), "STAT_SEL": (16, 0), "LD_KIND": (3, 0),
            "Y_COUNT": (24, 0)}


def register_map_markdown():
    return register_table_markdown(REGISTERS)


class EIESoC(wiring.Component):
    """See the module docstring. Ports: ``s_axil_*`` (AXI4-Lite slave, 32-bit data, 8-bit
    address), ``s_axis_*`` / ``m_axis_*`` (16-bit AXI-Streams), ``irq``."""

    def __init__(self, cfg, memory_map=None):
        self.cfg = cfg
        self.mm = memory_map
        super().__init__({
            **axil_ports(8),
            "s_axis_tdata": In(16), "s_axis_tvalid": In(1), "s_axis_tready": Out(1),
            "m_axis_tdata": Out(16), "m_axis_tvalid": Out(1), "m_axis_tready": In(1), "m_axis_tlast": Out(1),
            "irq": Out(1), "axis_resetn": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.pes
        # CTRL.ABORT is the array's soft reset: control state and PEs reset, the loaded model
        # stays (the state a hard reset leaves: the reset-in-a-transfer test), registers kept.
        m.submodules.array = arr = EIEArray(cfg, self.mm, shared_pe=self.mm is None, soft_reset=True)
        abort = arr.abort

        # ---- registers (the protocol's map) ----------------------------------------------------
        m.submodules.regs = rf = AXILiteRegisterFile(REGISTERS, storage=_STORAGE, strobes={"CTRL": CTRL_START | CTRL_ABORT},
                                                     held=("MODEL_ID",))
        connect(m, flipped(axil_flat(self)), rf.bus)
        # reset_less, as the memories it describes are: a reset keeps the model and its name.
        held_model = Signal(32, init=model_id(self.mm) if self.mm is not None else 0, reset_less=True)
        # A load into the model's memories by any host (one that does not know MODEL_ID too)
        # leaves a model no digest names: 0 until a host writes the new one. ACT loads are
        # inputs, not the model.
        with m.If(rf.model_id_w):
            m.d.sync += held_model.eq(rf.w_data)
        with m.Elif(rf.ld_go_w & (rf.ld_kind != LoadKind.ACT.value)):
            m.d.sync += held_model.eq(0)
        m.d.comb += rf.model_id.eq(held_model)
        done = Signal()
        start = Signal()
        ld_data = Cat(rf.ld_data_lo, rf.ld_data_hi)
        m.d.comb += [start.eq(rf.ctrl_w & rf.w_data[0] & ~rf.w_data[3]),
                     abort.eq(rf.ctrl_w & rf.w_data[3])]
        with m.If((rf.status_w & rf.w_data[1]) | abort):
            m.d.sync += done.eq(0)
        stat_words = len(COUNTERS) * n
        m.d.comb += [
            rf.id.eq(SOC_ID), rf.config.eq(config_word(n, cfg.macs, cfg.lstm, cfg.max_layers)),
            *[getattr(rf, name.lower()).eq(value) for name, value in capacity_words(cfg).items()],
            rf.status.eq(Cat(arr.busy, done)), rf.cycles.eq(arr.cycles),
            rf.stat.eq(arr.stat.word_select(rf.stat_sel[:max(1, (stat_words - 1).bit_length())], 32)),
        ]

        # ---- the array ------------------------------------------------------------------------
        all_pes = rf.ld_pe == ALL_PES
        ctrl_now = Mux(rf.ctrl_w, rf.w_data[:4], rf.ctrl)
        m.d.comb += [
            # The array samples these with START, in the cycle of the CTRL write that starts
            # it: the stored CTRL still holds the previous write's bits then, so take the new.
            arr.start.eq(start), arr.n_layers.eq(rf.n_layers), arr.y_skip.eq(ctrl_now[2]),
            arr.lstm_clear.eq(ctrl_now[1]),
            arr.ld_valid.eq(rf.ld_go_w), arr.ld_kind.eq(rf.ld_kind), arr.ld_addr.eq(rf.ld_addr),
            arr.ld_mask.eq(Mux(all_pes, (1 << n) - 1, C(1, n) << rf.ld_pe[:max(1, (n - 1).bit_length())])),
            arr.ld_data.eq(Cat(*[ld_data] * n)),
            arr.rb_addr.eq(0),
            # Activations in and out.
            arr.x_in.payload.eq(self.s_axis_tdata), arr.x_in.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(arr.x_in.ready),
            self.m_axis_tdata.eq(arr.y_out.payload), self.m_axis_tvalid.eq(arr.y_out.valid),
            arr.y_out.ready.eq(self.m_axis_tready),
            self.irq.eq(done & rf.irq_en),
        ]
        with m.If(arr.done & ~abort):
            m.d.sync += done.eq(1)
        with m.Elif(start):
            m.d.sync += done.eq(0)
        x_count = Signal(32)
        m.d.comb += rf.x_count.eq(x_count)
        with m.If(start | abort):
            m.d.sync += x_count.eq(0)
        with m.Elif(self.s_axis_tvalid & self.s_axis_tready):
            m.d.sync += x_count.eq(x_count + 1)
        # axis_resetn: low while in reset (the counter's reset value) and for 16 cycles after
        # an ABORT; registered, so it is glitch-free for the converters' reset inputs.
        stream_rst = Signal(range(STREAM_RESET_CYCLES + 1), init=STREAM_RESET_CYCLES)
        resetn = Signal()
        m.d.sync += resetn.eq((stream_rst == 0) & ~abort)
        with m.If(abort):
            m.d.sync += stream_rst.eq(STREAM_RESET_CYCLES)
        with m.Elif(stream_rst != 0):
            m.d.sync += stream_rst.eq(stream_rst - 1)
        m.d.comb += self.axis_resetn.eq(resetn)
        beats = Signal(24)
        m.d.comb += self.m_axis_tlast.eq(beats == rf.y_count - 1)
        with m.If(start | abort):
            m.d.sync += beats.eq(0)
        with m.Elif(self.m_axis_tvalid & self.m_axis_tready):
            m.d.sync += beats.eq(Mux(self.m_axis_tlast, 0, beats + 1))
        return m
