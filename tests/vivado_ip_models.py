"""The IP models of the Vivado recorder (tests/vivado_recorder.py): each IP's pins, interfaces,
clocks and address segments as configured, written from the product guides cited next to each
entry, and a module reference's pins as IP integrator infers them."""

import re

from sparsa.boards.ps7_pynq_z2 import PYNQ_Z2_PS7
from sparsa.boards.psu_te0802 import TE0802_PSU

__all__ = ["IP_TABLE", "CATALOG", "MODEL_KEYS", "RecorderError", "module_pins", "module_clock_busif",
           "address_segments"]


class RecorderError(Exception):
    """A structural fault in the sourced Tcl (carries the Tcl file and line)."""


def _on(cfg, key, default):
    """A boolean CONFIG value; ``default`` None means the table does not know Vivado's default."""
    if key not in cfg:
        return default
    return str(cfg[key]).strip() in ("1", "true", "TRUE")


#
# The IP models. Each returns (pins {name: "I"/"O"}, interfaces {name: "M"/"S"}, clocks that
# validate_bd_design requires to be driven), for a CONFIG dict.
#

def _zynq_ultra_ps_e(cfg):
    # PG201 (v3.4) ch. "Design Flow Steps", "PS-PL Configuration" and UG1085 table 35-2: the
    # PS-PL AXI ports and the PSU__USE__* switch of each; each port has its own clock input
    # (PG201 "Port Descriptions": maxihpm0_fpd_aclk, ..., saxihp0_fpd_aclk, ...).
    # Vivado's default PS enables HPM0_FPD, HPM1_FPD and HPM0_LPD (issue 24's review; not
    # checked against a Vivado here): by the strict reading an unset master port is enabled.
    pins, intfs, clocks = {}, {}, []
    masters = {"M_AXI_GP0": ("M_AXI_HPM0_FPD", "maxihpm0_fpd_aclk"),
               "M_AXI_GP1": ("M_AXI_HPM1_FPD", "maxihpm1_fpd_aclk"),
               "M_AXI_GP2": ("M_AXI_HPM0_LPD", "maxihpm0_lpd_aclk")}
    # Slave ports: off unless enabled (the default PS has no PL-to-PS slave port).
    slaves = {"S_AXI_GP0": ("S_AXI_HPC0_FPD", "saxihpc0_fpd_aclk"),
              "S_AXI_GP1": ("S_AXI_HPC1_FPD", "saxihpc1_fpd_aclk"),
              "S_AXI_GP2": ("S_AXI_HP0_FPD", "saxihp0_fpd_aclk"),
              "S_AXI_GP3": ("S_AXI_HP1_FPD", "saxihp1_fpd_aclk"),
              "S_AXI_GP4": ("S_AXI_HP2_FPD", "saxihp2_fpd_aclk"),
              "S_AXI_GP5": ("S_AXI_HP3_FPD", "saxihp3_fpd_aclk"),
              "S_AXI_GP6": ("S_AXI_LPD", "saxi_lpd_aclk")}
    for key, (port, clk) in masters.items():
        if _on(cfg, f"PSU__USE__{key}", True):
            intfs[port], pins[clk] = "M", "I"
            clocks.append(clk)
    for key, (port, clk) in slaves.items():
        if _on(cfg, f"PSU__USE__{key}", False):
            intfs[port], pins[clk] = "S", "I"
            clocks.append(clk)
    # PG201 "Programmable Logic Clocks and Interrupts" / "PS-PL Configuration > General":
    # pl_clk0 with PSU__FPGA_PL0_ENABLE (on by default), pl_resetn0 with
    # PSU__NUM_FABRIC_RESETS >= 1 (1 by default), pl_ps_irq0 only with PSU__USE__IRQ0 = 1
    # (default not taken as known: the design must set it).
    if _on(cfg, "PSU__FPGA_PL0_ENABLE", True):
        pins["pl_clk0"] = "O"
    if int(cfg.get("PSU__NUM_FABRIC_RESETS", 1)) >= 1:
        pins["pl_resetn0"] = "O"
    if _on(cfg, "PSU__USE__IRQ0", None):
        pins["pl_ps_irq0"] = "I"
    return pins, intfs, clocks


def _processing_system7(cfg):
    # PG082 (v5.5) ch. "Port Descriptions" and "PS-PL Configuration"; UG585 ch. 5 (AXI ports).
    # M_AXI_GP0 is on by default (PCW_USE_M_AXI_GP0 = 1), the other AXI ports off; each
    # enabled port has an <PORT>_ACLK input that must be driven.
    pins, intfs, clocks = {}, {"DDR": "M", "FIXED_IO": "M"}, []     # PG082: always present
    for port, mode, default in (("M_AXI_GP0", "M", True), ("M_AXI_GP1", "M", False),
                                ("S_AXI_GP0", "S", False), ("S_AXI_GP1", "S", False),
                                ("S_AXI_ACP", "S", False), ("S_AXI_HP0", "S", False),
                                ("S_AXI_HP1", "S", False), ("S_AXI_HP2", "S", False),
                                ("S_AXI_HP3", "S", False)):
        if _on(cfg, f"PCW_USE_{port}", default):
            intfs[port], pins[f"{port}_ACLK"] = mode, "I"
            clocks.append(f"{port}_ACLK")
    # PG082 "Clocks and resets": FCLK_CLK0 / FCLK_RESET0_N are on by default
    # (PCW_EN_CLK0_PORT, PCW_EN_RST0_PORT); IRQ_F2P needs PCW_USE_FABRIC_INTERRUPT = 1 and
    # PCW_IRQ_F2P_INTR = 1 (PG082 "Interrupts").
    if _on(cfg, "PCW_EN_CLK0_PORT", True):
        pins["FCLK_CLK0"] = "O"
    if _on(cfg, "PCW_EN_RST0_PORT", True):
        pins["FCLK_RESET0_N"] = "O"
    if _on(cfg, "PCW_USE_FABRIC_INTERRUPT", None) and _on(cfg, "PCW_IRQ_F2P_INTR", None):
        pins["IRQ_F2P"] = "I"
    return pins, intfs, clocks


def _axi_dma(cfg):
    # PG021 (v7.1) ch. "Port Descriptions": S_AXI_LITE with s_axi_lite_aclk and axi_resetn
    # always; the scatter-gather engine (c_include_sg, on by default) adds M_AXI_SG and
    # m_axi_sg_aclk; each channel (c_include_mm2s / c_include_s2mm, on by default) adds its
    # memory-map master, its stream, its clock, its interrupt and its reset-out.
    pins = {"s_axi_lite_aclk": "I", "axi_resetn": "I"}
    intfs, clocks = {"S_AXI_LITE": "S"}, ["s_axi_lite_aclk"]
    if _on(cfg, "c_include_sg", True):
        intfs["M_AXI_SG"], pins["m_axi_sg_aclk"] = "M", "I"
        clocks.append("m_axi_sg_aclk")
    if _on(cfg, "c_include_mm2s", True):
        intfs.update(M_AXI_MM2S="M", M_AXIS_MM2S="M")
        pins.update(m_axi_mm2s_aclk="I", mm2s_introut="O", mm2s_prmry_reset_out_n="O")
        clocks.append("m_axi_mm2s_aclk")
    if _on(cfg, "c_include_s2mm", True):
        intfs.update(M_AXI_S2MM="M", S_AXIS_S2MM="S")
        pins.update(m_axi_s2mm_aclk="I", s2mm_introut="O", s2mm_prmry_reset_out_n="O")
        clocks.append("m_axi_s2mm_aclk")
    return pins, intfs, clocks


def _need(cfg, key):
    if key not in cfg:
        raise RecorderError(f"CONFIG.{key} is not set and the recorder's table has no default for it")
    return int(cfg[key])


def _smartconnect(cfg):
    # PG247 (v1.0) ch. "Port Descriptions": S00_AXI..S<NUM_SI-1>_AXI, M00_AXI..M<NUM_MI-1>_AXI,
    # aclk, and aclk1..aclk<NUM_CLKS-1> (NUM_CLKS defaults to 1), aresetn. Defaults of NUM_SI /
    # NUM_MI are not in the table: the design must set both.
    intfs = {f"S{i:02d}_AXI": "S" for i in range(_need(cfg, "NUM_SI"))}
    intfs.update({f"M{i:02d}_AXI": "M" for i in range(_need(cfg, "NUM_MI"))})
    clocks = ["aclk"] + [f"aclk{i}" for i in range(1, int(cfg.get("NUM_CLKS", 1)))]
    return {**{c: "I" for c in clocks}, "aresetn": "I"}, intfs, clocks


def _xdma(cfg):
    # PG195 (v4.1) ch. "Port Descriptions", UltraScale devices: the serial lanes as interface
    # pcie_mgt; sys_clk (the reference clock's IBUFDS_GTE3 ODIV2 output) and sys_clk_gt (its O
    # output, UltraScale only); sys_rst_n (PERST#); axi_aclk / axi_aresetn (outputs: the user
    # clock and reset); user_lnk_up. The DMA interface (xdma_axi_intf_mm, default
    # AXI_Memory_Mapped: M_AXI) in AXI_Stream mode: M_AXIS_H2C_<n> per read channel
    # (xdma_rnum_chnl, default 1) and S_AXIS_C2H_<n> per write channel (xdma_wnum_chnl, default 1).
    # axilite_master_en (default false) adds M_AXI_LITE; xdma_num_usr_irq (default 1) gives
    # usr_irq_req / usr_irq_ack.
    pins = {"sys_clk": "I", "sys_clk_gt": "I", "sys_rst_n": "I", "axi_aclk": "O", "axi_aresetn": "O",
            "user_lnk_up": "O"}
    intfs = {"pcie_mgt": "M"}
    if cfg.get("xdma_axi_intf_mm", "AXI_Memory_Mapped") == "AXI_Stream":
        intfs.update({f"M_AXIS_H2C_{i}": "M" for i in range(int(cfg.get("xdma_rnum_chnl", 1)))})
        intfs.update({f"S_AXIS_C2H_{i}": "S" for i in range(int(cfg.get("xdma_wnum_chnl", 1)))})
    else:
        intfs["M_AXI"] = "M"
    if _on(cfg, "axilite_master_en", False):
        intfs["M_AXI_LITE"] = "M"
    if int(cfg.get("xdma_num_usr_irq", 1)) > 0:
        pins.update(usr_irq_req="I", usr_irq_ack="O")
    return pins, intfs, ["sys_clk", "sys_clk_gt"]


def _util_ds_buf(cfg):
    # Utility Buffer v2.2 (Vivado IP catalog, "Utility Buffer" product guide): C_BUF_TYPE IBUFDS
    # (default): CLK_IN_D (differential clock interface), IBUF_OUT; IBUFDSGTE adds IBUF_DS_ODIV2.
    pins = {"IBUF_OUT": "O"}
    if cfg.get("C_BUF_TYPE", "IBUFDS") == "IBUFDSGTE":
        pins["IBUF_DS_ODIV2"] = "O"
    return pins, {"CLK_IN_D": "S"}, []


def _clk_wiz(cfg):
    # PG065 (v6.0) ch. "Port Descriptions": clk_in1, clk_out1, reset (USE_RESET, default true;
    # named resetn when RESET_TYPE is ACTIVE_LOW, default ACTIVE_HIGH), locked (USE_LOCKED,
    # default true).
    pins = {"clk_in1": "I", "clk_out1": "O"}
    if _on(cfg, "USE_RESET", True):
        name = "resetn" if cfg.get("RESET_TYPE", "ACTIVE_HIGH") == "ACTIVE_LOW" else "reset"
        if cfg.get("RESET_PORT", name) != name:        # the port name must agree with the polarity
            raise ValueError(f"clk_wiz RESET_PORT {cfg['RESET_PORT']} with RESET_TYPE {cfg.get('RESET_TYPE')}")
        pins[name] = "I"
    if _on(cfg, "USE_LOCKED", True):
        pins["locked"] = "O"
    return pins, {}, ["clk_in1"]


def _axis_clock_converter(cfg):
    # PG085 (AXI4-Stream Infrastructure IP Suite) "AXI4-Stream Clock Converter": S_AXIS, M_AXIS,
    # s_axis_aclk/aresetn, m_axis_aclk/aresetn.
    pins = {"s_axis_aclk": "I", "s_axis_aresetn": "I", "m_axis_aclk": "I", "m_axis_aresetn": "I"}
    return pins, {"S_AXIS": "S", "M_AXIS": "M"}, ["s_axis_aclk", "m_axis_aclk"]


def _axis_dwidth_converter(cfg):
    # PG085 "AXI4-Stream Data Width Converter": S_AXIS, M_AXIS, aclk, aresetn; both widths must
    # be set (the table has no default for them).
    _need(cfg, "S_TDATA_NUM_BYTES"), _need(cfg, "M_TDATA_NUM_BYTES")
    return {"aclk": "I", "aresetn": "I"}, {"S_AXIS": "S", "M_AXIS": "M"}, ["aclk"]


def _proc_sys_reset(cfg):
    # PG164 (v5.0) ch. "Port Descriptions".
    pins = {"slowest_sync_clk": "I", "ext_reset_in": "I", "aux_reset_in": "I", "mb_debug_sys_rst": "I",
            "dcm_locked": "I", "mb_reset": "O", "bus_struct_reset": "O", "peripheral_reset": "O",
            "interconnect_aresetn": "O", "peripheral_aresetn": "O"}
    return pins, {}, ["slowest_sync_clk"]


def _xlconcat(cfg):
    # The Concat IP (xlconcat, Vivado IP catalog; PG201 "Programmable Logic Clocks and
    # Interrupts" recommends it for several PL-to-PS interrupts): In0..In<NUM_PORTS-1>, dout.
    # NUM_PORTS defaults to 2.
    pins = {f"In{i}": "I" for i in range(int(cfg.get("NUM_PORTS", 2)))}
    pins["dout"] = "O"
    return pins, {}, []


# name -> (pinned version, model, CONFIG keys the design may set that do not change the pins)
IP_TABLE = {
    # The board-level keys are the Trenz TE0802's board preset (Xilinx/XilinxBoardStore
    # boards/Trenz_Electronic/TE0802_2CG_1E/2.0/preset.xml), kept in sparsa/boards/psu_te0802.py:
    # DDR, MIO, GT lanes and PS clocks; none adds a PL-side input or interface (the DisplayPort's
    # PL audio/video streams need PSU__USE__AUDIO/VIDEO, which sparsa leaves unset).
    "zynq_ultra_ps_e": ("3.5", _zynq_ultra_ps_e, {"PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"} | set(TE0802_PSU)),
    # The board-level keys are the PYNQ-Z2 board design's (Vivado's own write_bd_tcl output for
    # this IP, Xilinx/PYNQ boards/Pynq-Z2/base/base.tcl), kept in sparsa/boards/ps7_pynq_z2.py.
    "processing_system7": ("5.5", _processing_system7, {"PCW_FPGA0_PERIPHERAL_FREQMHZ"} | set(PYNQ_Z2_PS7)),
    # PG021 "Customizing and Generating the Core": widths, burst sizes, buffer length register.
    "axi_dma": ("7.1", _axi_dma, {"c_sg_length_width", "c_m_axis_mm2s_tdata_width",
                                  "c_s_axis_s2mm_tdata_width", "c_mm2s_burst_size", "c_s2mm_burst_size"}),
    "smartconnect": ("1.0", _smartconnect, set()),
    "proc_sys_reset": ("5.0", _proc_sys_reset, set()),
    "xlconcat": ("2.1", _xlconcat, set()),
    # PG195 "Customizing and Generating the Core": link, widths, BAR size, device ID.
    "xdma": ("4.1", _xdma, {"mode_selection", "pl_link_cap_max_link_width", "pl_link_cap_max_link_speed",
                            "axi_data_width", "axisten_freq", "axilite_master_size", "axilite_master_scale",
                            "pf0_device_id",
                            # PG195 "Basic Tab" (UltraScale): the PCIe block and GT quad of the lanes.
                            "pcie_blk_locn", "select_quad"}),
    "util_ds_buf": ("2.2", _util_ds_buf, set()),
    "clk_wiz": ("6.0", _clk_wiz, {"PRIM_IN_FREQ", "PRIM_SOURCE", "CLKOUT1_REQUESTED_OUT_FREQ"}),
    "axis_clock_converter": ("1.1", _axis_clock_converter, {"TDATA_NUM_BYTES", "IS_ACLK_ASYNC"}),
    "axis_dwidth_converter": ("1.1", _axis_dwidth_converter, {"HAS_TLAST", "HAS_TKEEP"}),
}
# Keys the models read (so a misspelt key, e.g. PSU__USE_IRQ0, is refused rather than ignored).
MODEL_KEYS = {
    "zynq_ultra_ps_e": {f"PSU__USE__{k}" for k in ("M_AXI_GP0", "M_AXI_GP1", "M_AXI_GP2", "IRQ0")}
    | {f"PSU__USE__S_AXI_GP{i}" for i in range(7)} | {"PSU__FPGA_PL0_ENABLE", "PSU__NUM_FABRIC_RESETS"},
    "processing_system7": {f"PCW_USE_{p}" for p in ("M_AXI_GP0", "M_AXI_GP1", "S_AXI_GP0", "S_AXI_GP1",
                                                     "S_AXI_ACP", "S_AXI_HP0", "S_AXI_HP1", "S_AXI_HP2",
                                                     "S_AXI_HP3", "FABRIC_INTERRUPT")}
    | {"PCW_EN_CLK0_PORT", "PCW_EN_RST0_PORT", "PCW_IRQ_F2P_INTR"},
    "axi_dma": {"c_include_sg", "c_include_mm2s", "c_include_s2mm"},
    "smartconnect": {"NUM_SI", "NUM_MI", "NUM_CLKS"},
    "xdma": {"xdma_axi_intf_mm", "xdma_rnum_chnl", "xdma_wnum_chnl", "axilite_master_en", "xdma_num_usr_irq"},
    "util_ds_buf": {"C_BUF_TYPE"},
    "clk_wiz": {"USE_RESET", "USE_LOCKED", "RESET_TYPE", "RESET_PORT"},
    "axis_clock_converter": set(),
    "axis_dwidth_converter": {"S_TDATA_NUM_BYTES", "M_TDATA_NUM_BYTES"},
    "proc_sys_reset": set(),
    "xlconcat": {"NUM_PORTS"},
}
CATALOG = {f"xilinx.com:ip:{n}:{v[0]}" for n, v in IP_TABLE.items()}


def module_pins(verilog_text, name):
    """Pins and inferred interfaces of a module reference, as IP integrator infers them from
    port-name prefixes (UG994 "Referencing RTL Modules": AXI signals grouped by prefix)."""
    body = re.search(rf"^module {name}\(.*?^endmodule", verilog_text, re.S | re.M)
    if body is None:
        raise RecorderError(f"module {name} not found in the module reference's source")
    pins = dict((n, "I" if d == "input" else "O")
                for d, n in re.findall(r"^\s*(input|output)\s+(?:\[[^\]]+\]\s*)?(\w+)\s*;", body.group(0), re.M))
    intfs = {}
    for p, d in pins.items():
        m = re.fullmatch(r"(\w+)_(awvalid|arvalid|tvalid)", p)
        if m:
            intfs[m.group(1)] = "S" if d == "I" else "M"
    return pins, intfs, [p for p in ("clk", "aclk") if pins.get(p) == "I"]


# Address segments an assign_bd_address may name, per IP (slave interface -> segment).
# PG021 "Register Space": the AXI DMA's S_AXI_LITE block is "Reg"; UG994 "Referencing RTL
# Modules": IP integrator gives an inferred AXI slave of a module reference one block, "reg0".
_SEGMENTS = {"axi_dma": {"S_AXI_LITE": "Reg"}}


def address_segments(kind, intfs):
    """``{"<interface>/<segment>"}`` of a cell of ``kind`` with interfaces ``intfs``."""
    if kind.startswith("module:"):
        return {f"{i}/reg0" for i, mode in intfs.items() if mode == "S"}
    return {f"{i}/{seg}" for i, seg in _SEGMENTS.get(kind, {}).items() if i in intfs}


def module_clock_busif(verilog_text, name, clock="clk"):
    """The interfaces a module reference's clock is associated with: the ASSOCIATED_BUSIF of the
    X_INTERFACE_PARAMETER attribute on its clock port (UG994 "Inferring Interfaces in RTL");
    empty without one (IP integrator then cannot tell which clock an interface runs on)."""
    body = re.search(rf"^module {name}\(.*?^endmodule", verilog_text, re.S | re.M)
    m = body and re.search(r'\(\* X_INTERFACE_PARAMETER = "([^"]*)" \*\)\s*input ' + clock + ";", body.group(0))
    if not m:
        return set()
    busif = re.search(r"ASSOCIATED_BUSIF ([\w:]+)", m.group(1))
    return set(busif.group(1).split(":")) if busif else set()
