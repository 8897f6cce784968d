"""SoC wrapper of the CNN engine: AXI4-Lite control registers, the engine's AXI4 master, an IRQ.

A host (a Zynq PS, a soft CPU, or the cocotbext-axi testbench) writes a pack's ``dram.bin``
and the input into memory the engine can reach, writes PROG_ADDR, then CTRL.START; the engine
fetches its program and data through ``m_axi_*`` (64-bit, to a high-performance port on
Zynq) and sets STATUS.DONE at END (``irq`` while DONE and IRQ_EN). Port names are flat
(``s_axil_awvalid``, ``m_axi_arvalid``...) so cocotbext-axi binds by prefix and Vivado
infers both interfaces. The register map is :data:`CNN_REGISTERS`.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.wiring import Out

from sparsa.hw.axil import axil_ports, axil_read, axil_write, register_table_markdown
from sparsa.hw.cnn.engine import CNNEngine, _axi_ports

__all__ = ["CNNSoC", "CNN_REGISTERS", "CNN_SOC_ID", "cnn_register_map_markdown"]

CNN_SOC_ID = 0x53434E4E          # "SCNN"

# name, byte offset, access, description
CNN_REGISTERS = [
    ("ID", 0x00, "RO", "0x53434E4E ('SCNN')"),
    ("CONFIG", 0x04, "RO", "[7:0] lanes, [8] Winograd datapath generated, [9] 3x3 window convolver generated"),
    ("CTRL", 0x08, "WO", "[0] START: run the program at PROG_ADDR"),
    ("STATUS", 0x0C, "RW1C", "[0] BUSY (RO), [1] DONE (set at END; write 1 to clear)"),
    ("PROG_ADDR", 0x10, "RW", "DRAM byte address of the program (the pack's dram.bin starts with it)"),
    ("IRQ_EN", 0x14, "RW", "[0] raise irq while DONE"),
    ("CYCLES", 0x18, "RO", "cycles of the last run (start to END)"),
    ("MAC_CYCLES", 0x1C, "RO", "cycles of the last run in which the multipliers were fed"),
]
_OFF = {name: off for name, off, _, _ in CNN_REGISTERS}


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
        m.submodules.engine = eng = CNNEngine(cfg)
        for name, port in _axi_ports("m_axi_").items():      # the engine's master, passed through
            top, inner = getattr(self, name), getattr(eng, name)
            m.d.comb += top.eq(inner) if port.flow == wiring.Out else inner.eq(top)

        prog_addr = Signal(32)
        done = Signal()
        irq_en = Signal()
        start = Signal()
        write, aw_addr, w_data = axil_write(m, self)
        with m.If(write):
            with m.Switch(aw_addr[2:]):
                with m.Case(_OFF["CTRL"] >> 2):
                    m.d.comb += start.eq(w_data[0])
                with m.Case(_OFF["STATUS"] >> 2):
                    with m.If(w_data[1]):
                        m.d.sync += done.eq(0)
                with m.Case(_OFF["PROG_ADDR"] >> 2):
                    m.d.sync += prog_addr.eq(w_data)
                with m.Case(_OFF["IRQ_EN"] >> 2):
                    m.d.sync += irq_en.eq(w_data[0])
        config_word = cfg.lanes | (int(cfg.winograd) << 8) | (int(cfg.convolver) << 9)
        axil_read(m, self, {
            _OFF["ID"]: C(CNN_SOC_ID, 32), _OFF["CONFIG"]: C(config_word, 32),
            _OFF["STATUS"]: Cat(eng.busy, done), _OFF["PROG_ADDR"]: prog_addr, _OFF["IRQ_EN"]: irq_en,
            _OFF["CYCLES"]: eng.cycles, _OFF["MAC_CYCLES"]: eng.mac_cycles,
        })
        m.d.comb += [eng.start.eq(start & ~eng.busy), eng.prog_addr.eq(prog_addr), self.irq.eq(done & irq_en)]
        with m.If(eng.done):
            m.d.sync += done.eq(1)
        with m.Elif(start):
            m.d.sync += done.eq(0)
        return m
