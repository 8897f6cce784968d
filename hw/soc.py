"""SoC wrapper: the EIE array behind an AXI4-Lite register file and an AXI-Stream pair.

A host (a Zynq PS, a soft CPU, or the cocotbext-axi testbench) controls the array through
32-bit registers and moves activations through two 16-bit AXI-Streams: ``s_axis`` into
``x_in`` (the first layer's input, j = 0, 1, ...) and ``m_axis`` out of ``y_out`` (the last
layer's rows, ``tlast`` on the last one). Port names are flat (``s_axil_awvalid``,
``m_axis_tdata``, ...) so that cocotbext-axi binds by prefix and Vivado infers the interfaces.

The register map is :data:`REGISTERS` (generated documentation: ``sparsa.hw.soc.register_map_markdown``).
Weights come from the memory contents (bitstream) or through the LD_* registers, which drive
the array's load port one 64-bit word at a time. ``irq`` is high while DONE is set and
IRQ_EN bit 0 is set.

Latency: a register write completes in 2 cycles after both AW and W are seen; a read in 1.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import In, Out

from sparsa.hw.axil import axil_ports, axil_read, axil_write, register_table_markdown
from sparsa.hw.eie.pe import COUNTERS
from sparsa.hw.eie.top import EIEArray

__all__ = ["EIESoC", "REGISTERS", "SOC_ID", "register_map_markdown"]

SOC_ID = 0x53505253          # "SPRS"

# name, byte offset, access, description
REGISTERS = [
    ("ID", 0x00, "RO", "0x53505253 ('SPRS')"),
    ("CONFIG", 0x04, "RO", "[15:0] PEs, [17:16] MACs per PE, [18] LSTM unit, [31:24] layer-table entries"),
    ("CTRL", 0x08, "RW", "[0] START (write 1: start a run; reads 0), [1] LSTM_CLEAR (c = 0 in this run), "
                         "[2] Y_SKIP (leave the result on chip)"),
    ("STATUS", 0x0C, "RW1C", "[0] BUSY (RO), [1] DONE (set at the end of a run; write 1 to clear)"),
    ("N_LAYERS", 0x10, "RW", "layers to run (1..)"),
    ("IRQ_EN", 0x14, "RW", "[0] raise irq while DONE"),
    ("CYCLES", 0x18, "RO", "cycles of the last run (start to done)"),
    ("STAT_SEL", 0x1C, "RW", "counter index: PE k, counter c at k * 5 + c (busy, starved, stalled, pad, macs)"),
    ("STAT", 0x20, "RO", "the selected performance counter"),
    ("LD_KIND", 0x24, "RW", "load target (LoadKind: 0 SPM, 1 PTR_EVEN, 2 PTR_ODD, 3 BIAS, 4 CODEBOOK, "
                            "5 LAYER, 6 ACT, 7 PEEP)"),
    ("LD_ADDR", 0x28, "RW", "load address"),
    ("LD_PE", 0x2C, "RW", "PE to write (0xFFFFFFFF: all PEs)"),
    ("LD_DATA_LO", 0x30, "RW", "load data [31:0]"),
    ("LD_DATA_HI", 0x34, "RW", "load data [63:32]"),
    ("LD_GO", 0x38, "WO", "write: one load-port write of LD_DATA to LD_ADDR (array idle only)"),
    ("Y_COUNT", 0x3C, "RW", "rows of the last layer (m_axis tlast on the last one)"),
]
_OFF = {name: off for name, off, _, _ in REGISTERS}


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
            "irq": Out(1),
        })

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        n = cfg.pes
        m.submodules.array = arr = EIEArray(cfg, self.mm, shared_pe=self.mm is None)

        # ---- registers ----------------------------------------------------------------------
        n_layers = Signal(7, init=1)
        ctrl = Signal(3)            # [1] LSTM_CLEAR, [2] Y_SKIP (bit 0 is the START strobe)
        done = Signal()
        irq_en = Signal()
        stat_sel = Signal(16)
        ld_kind = Signal(3)
        ld_addr = Signal(32)
        ld_pe = Signal(32)
        ld_data = Signal(64)
        y_count = Signal(24)
        start = Signal()
        ld_go = Signal()

        # ---- AXI4-Lite write: take AW and W in any order, answer B, one at a time ---------------
        write, aw_addr, w_data = axil_write(m, self)
        with m.If(write):
            with m.Switch(aw_addr[2:]):
                with m.Case(_OFF["CTRL"] >> 2):
                    m.d.sync += ctrl.eq(w_data[:3])
                    m.d.comb += start.eq(w_data[0])
                with m.Case(_OFF["STATUS"] >> 2):
                    with m.If(w_data[1]):
                        m.d.sync += done.eq(0)
                with m.Case(_OFF["N_LAYERS"] >> 2):
                    m.d.sync += n_layers.eq(w_data)
                with m.Case(_OFF["IRQ_EN"] >> 2):
                    m.d.sync += irq_en.eq(w_data[0])
                with m.Case(_OFF["STAT_SEL"] >> 2):
                    m.d.sync += stat_sel.eq(w_data)
                with m.Case(_OFF["LD_KIND"] >> 2):
                    m.d.sync += ld_kind.eq(w_data)
                with m.Case(_OFF["LD_ADDR"] >> 2):
                    m.d.sync += ld_addr.eq(w_data)
                with m.Case(_OFF["LD_PE"] >> 2):
                    m.d.sync += ld_pe.eq(w_data)
                with m.Case(_OFF["LD_DATA_LO"] >> 2):
                    m.d.sync += ld_data[:32].eq(w_data)
                with m.Case(_OFF["LD_DATA_HI"] >> 2):
                    m.d.sync += ld_data[32:].eq(w_data)
                with m.Case(_OFF["LD_GO"] >> 2):
                    m.d.comb += ld_go.eq(1)
                with m.Case(_OFF["Y_COUNT"] >> 2):
                    m.d.sync += y_count.eq(w_data)

        # ---- AXI4-Lite read -----------------------------------------------------------------
        stat_words = len(COUNTERS) * n
        stat_val = Signal(32)
        m.d.comb += stat_val.eq(arr.stat.word_select(stat_sel[:max(1, (stat_words - 1).bit_length())], 32))
        config_word = n | (cfg.macs << 16) | (int(cfg.lstm) << 18) | (cfg.max_layers << 24)
        regs = {
            "ID": C(SOC_ID, 32), "CONFIG": C(config_word, 32), "CTRL": ctrl & 0b110,
            "STATUS": Cat(arr.busy, done), "N_LAYERS": n_layers, "IRQ_EN": irq_en,
            "CYCLES": arr.cycles, "STAT_SEL": stat_sel, "STAT": stat_val, "LD_KIND": ld_kind,
            "LD_ADDR": ld_addr, "LD_PE": ld_pe, "LD_DATA_LO": ld_data[:32], "LD_DATA_HI": ld_data[32:],
            "LD_GO": C(0, 32), "Y_COUNT": y_count,
        }
        axil_read(m, self, {_OFF[name]: val for name, val in regs.items()})

        # ---- the array ------------------------------------------------------------------------
        all_pes = ld_pe == 0xFFFFFFFF
        m.d.comb += [
            arr.start.eq(start), arr.n_layers.eq(n_layers), arr.y_skip.eq(ctrl[2]), arr.lstm_clear.eq(ctrl[1]),
            arr.ld_valid.eq(ld_go), arr.ld_kind.eq(ld_kind), arr.ld_addr.eq(ld_addr),
            arr.ld_mask.eq(Mux(all_pes, (1 << n) - 1, C(1, n) << ld_pe[:max(1, (n - 1).bit_length())])),
            arr.ld_data.eq(Cat(*[ld_data] * n)),
            arr.rb_addr.eq(0),
            # Activations in and out.
            arr.x_in.payload.eq(self.s_axis_tdata), arr.x_in.valid.eq(self.s_axis_tvalid),
            self.s_axis_tready.eq(arr.x_in.ready),
            self.m_axis_tdata.eq(arr.y_out.payload), self.m_axis_tvalid.eq(arr.y_out.valid),
            arr.y_out.ready.eq(self.m_axis_tready),
            self.irq.eq(done & irq_en),
        ]
        with m.If(arr.done):
            m.d.sync += done.eq(1)
        with m.Elif(start):
            m.d.sync += done.eq(0)
        beats = Signal(24)
        m.d.comb += self.m_axis_tlast.eq(beats == y_count - 1)
        with m.If(start):
            m.d.sync += beats.eq(0)
        with m.Elif(self.m_axis_tvalid & self.m_axis_tready):
            m.d.sync += beats.eq(Mux(self.m_axis_tlast, 0, beats + 1))
        return m
