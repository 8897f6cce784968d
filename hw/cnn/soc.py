"""SoC wrapper of the CNN engine: AXI4-Lite control registers, the engine's AXI4 master, an IRQ.

A host (a Zynq PS, a soft CPU, or the cocotbext-axi testbench) writes a pack's ``dram.bin``
and the input into memory the engine can reach, writes PROG_ADDR, then CTRL.START; the engine
fetches its program and data through ``m_axi_*`` (64-bit, to a high-performance port on
Zynq) and sets STATUS.DONE at END (``irq`` while DONE and IRQ_EN). Port names are flat
(``s_axil_awvalid``, ``m_axi_arvalid``...) so cocotbext-axi binds by prefix and Vivado
infers both interfaces. DRAM_BASE places the pack's memory anywhere on the bus (a Linux
buffer's physical address). The register map is :data:`CNN_REGISTERS`, served by
:class:`sparsa.hw.axil.AXILiteRegisterFile` (shared with the EIE SoC). CTRL.ABORT stops a run
(one that hangs, a host that gave up): the engine is held in reset while
:class:`sparsa.hw.cnn.abort.AXIAbortGuard` completes the bursts it had started on the bus, then
it is idle (BUSY and DONE low) and the next START runs clean; the memory image is the host's.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import Out, connect, flipped

from sparsa.hw.axil import AXILiteRegisterFile, axil_flat, axil_ports, register_table_markdown
from sparsa.hw.cnn.abort import AXIAbortGuard
from sparsa.hw.cnn.engine import CNNEngine, _axi_ports

__all__ = ["CNNSoC", "CNN_REGISTERS", "CNN_SOC_ID", "cnn_register_map_markdown"]

CNN_SOC_ID = 0x53434E4E          # "SCNN"

# name, byte offset, access, description
CNN_REGISTERS = [
    ("ID", 0x00, "RO", "0x53434E4E ('SCNN')"),
    ("CONFIG", 0x04, "RO", "[7:0] lanes, [8] Winograd datapath generated, [9] 3x3 window convolver generated, "
                             "[10] int8 weight words, [11] paired convolver multipliers"),
    ("CTRL", 0x08, "WO", "[0] START: run the program at PROG_ADDR; [1] ABORT: stop the run (the bursts it "
                         "started on m_axi are completed, writes owed go out with no byte enabled), then idle"),
    ("STATUS", 0x0C, "RW1C", "[0] BUSY (RO; also while an ABORT completes the bus), [1] DONE (set at END; write 1 "
                             "to clear; ABORT clears it)"),
    ("PROG_ADDR", 0x10, "RW", "DRAM byte address of the program (the pack's dram.bin starts with it)"),
    ("IRQ_EN", 0x14, "RW", "[0] raise irq while DONE"),
    ("CYCLES", 0x18, "RO", "cycles of the last run (start to END)"),
    ("MAC_CYCLES", 0x1C, "RO", "cycles of the last run in which the multipliers were fed"),
    ("DRAM_BASE", 0x20, "RW", "added to every m_axi address: the bus address of the pack's dram.bin "
                              "(4 KiB aligned, [11:0] read 0); PROG_ADDR and the program's addresses are "
                              "offsets from it"),
    # The buffer sizes the engine was generated with: a program is compiled for exact sizes
    # (its buffer addresses and tiling), which CONFIG alone does not tell apart.
    ("IBUF_BYTES", 0x24, "RO", "input buffer bytes"),
    ("WBUF_WORDS", 0x28, "RO", "weight buffer words (one weight per lane each)"),
    ("OBUF_DEPTH", 0x2C, "RO", "output buffer entries"),
    ("PSUM_DEPTH", 0x30, "RO", "partial sums per lane of the window convolver"),
]


def cnn_register_map_markdown():
    return register_table_markdown(CNN_REGISTERS)


class CNNSoC(wiring.Component):
    """See the module docstring. Ports: ``s_axil_*`` (AXI4-Lite slave, 32-bit data, 8-bit
    address), ``m_axi_*`` (the engine's AXI4 master), ``irq``."""

    def __init__(self, cfg):
        self.cfg = cfg
        super().__init__({**axil_ports(8), **_axi_ports("m_axi_"), "irq": Out(1)})

    def elaborate(self, platform):
        m = Module()
        cfg = self.cfg
        m.submodules.guard = guard = AXIAbortGuard()
        abort = Signal()
        # The engine stops in the cycle of the ABORT write and stays in reset while the guard
        # completes on the bus what it had started there.
        m.submodules.engine = eng = ResetInserter(abort | guard.draining)(CNNEngine(cfg))
        m.submodules.regs = rf = AXILiteRegisterFile(CNN_REGISTERS, storage={"IRQ_EN": (1, 0)},
                                                     strobes={"DRAM_BASE": 0xFFF})   # [11:0] not stored
        # The engine's master, passed through, its addresses moved to DRAM_BASE: the program
        # is built for DRAM at 0, the host's buffer is wherever Linux allocated it. A 4 KiB
        # aligned base keeps every burst inside the 4 KiB page it was split for (AXI rule).
        base = rf.dram_base
        for name, port in _axi_ports("m_axi_").items():
            top, inner, engine_side = getattr(self, name), getattr(guard, name), getattr(guard, "e_" + name[2:])
            m.d.comb += (engine_side.eq(getattr(eng, name)) if port.flow == wiring.Out
                         else getattr(eng, name).eq(engine_side))
            if name in ("m_axi_araddr", "m_axi_awaddr"):
                m.d.comb += top.eq(inner + base)
            else:
                m.d.comb += top.eq(inner) if port.flow == wiring.Out else inner.eq(top)

        connect(m, flipped(axil_flat(self)), rf.bus)
        done = Signal()
        start = Signal()
        m.d.comb += [start.eq(rf.ctrl_w & rf.w_data[0] & ~rf.w_data[1]), abort.eq(rf.ctrl_w & rf.w_data[1]),
                     guard.abort.eq(abort)]
        with m.If((rf.status_w & rf.w_data[1]) | abort):
            m.d.sync += done.eq(0)
        config_word = cfg.config_word
        m.d.comb += [
            rf.id.eq(CNN_SOC_ID), rf.config.eq(config_word), rf.status.eq(Cat(eng.busy | guard.draining, done)),
            rf.cycles.eq(eng.cycles), rf.mac_cycles.eq(eng.mac_cycles),
            rf.ibuf_bytes.eq(cfg.ibuf_bytes), rf.wbuf_words.eq(cfg.wbuf_words), rf.obuf_depth.eq(cfg.obuf_depth),
            rf.psum_depth.eq(cfg.psum_depth),
            eng.start.eq(start & ~eng.busy & ~guard.draining), eng.prog_addr.eq(rf.prog_addr),
            self.irq.eq(done & rf.irq_en),
        ]
        with m.If(eng.done & ~abort):
            m.d.sync += done.eq(1)
        with m.Elif(start):
            m.d.sync += done.eq(0)
        return m
