"""The KU060 PCIe card design: the EIE SoC behind Xilinx's DMA/Bridge Subsystem for PCIe (XDMA).

The block design (``bd.tcl``) for ESE's card class, a Kintex UltraScale KU060 on a PCIe card:

* ``pcie``: XDMA (PG195) as an 8-lane Gen3 endpoint in AXI-Stream mode with one host-to-card
  (H2C) and one card-to-host (C2H) channel, its AXI-Lite master (BAR0) on the SoC's registers
  and one user interrupt for the SoC's ``irq``. Its reference clock comes through an
  IBUFDS_GTE3 (``refclk_buf``, Utility Buffer): the O output to ``sys_clk_gt`` and the ODIV2
  output to ``sys_clk`` (PG195, "Clocking"). PERST# is ``sys_rst_n``.
* ``engine_clk``: a Clocking Wizard (PG065) makes the engine's 200 MHz from XDMA's 250 MHz
  ``axi_aclk``; a Processor System Reset (PG164) holds the engine in reset until it locks.
* The streams cross from XDMA's 256-bit, 250 MHz side to the SoC's 16-bit, 200 MHz side through
  an AXI4-Stream Clock Converter and Data Width Converter each way (PG085); the AXI-Lite BAR
  crosses through a two-clock SmartConnect (PG247).

The card's pins are not generated: the reference clock, PERST#, and the GT quad the lanes use
differ between KU060 cards. ``sparsa build --board ku060 --xdc card.xdc`` copies the card's
constraints into the tree as ``board.xdc``; without it ``build.tcl`` stops at once with a message
saying so. ``top.xdc`` holds what every KU060 design needs: CFGBVS and CONFIG_VOLTAGE.
Structurally checked only (tests/test_vivado_tcl.py): never run in Vivado or on a card.
"""

import re

__all__ = ["IRQ_SYNC_VERILOG", "check_location", "PCIE_IP_VERSIONS", "BAR_BASE", "bd_tcl_pcie", "xdc_pcie", "XDC_TEMPLATE",
           "XDC_CHECK_TCL", "PCIE_PORTS", "xdc_package_pins"]

# The versions of the Vivado 2023.x catalog, as the product guides give them (not checked here).
PCIE_IP_VERSIONS = {"xdma": "4.1", "util_ds_buf": "2.2", "clk_wiz": "6.0", "axis_clock_converter": "1.1",
                    "axis_dwidth_converter": "1.1"}
BAR_BASE = 0x0           # the SoC's registers at offset 0 of BAR0 (/dev/xdma0_user)
_XDMA_BYTES = 32         # 256-bit AXI-Stream: 8 lanes at 8 GT/s (PG195, "AXI Data Width")
_SOC_BYTES = 2           # the SoC's 16-bit streams

XDC_CHECK_TCL = """# The card's pins (reference clock, PERST#, lanes) come from the user: see board.xdc in docs/boards.md.
if {![file exists board.xdc]} {
    error "sparsa: KU060: no board.xdc: the PCIe reference clock, PERST# and lane pins differ between cards; rerun sparsa build --board ku060 --xdc <your card's constraints> (template in docs/boards.md)"
}"""

XDC_TEMPLATE = """# board.xdc for a KU060 PCIe card: fill in your card's pins (its user guide or board files).
set_property PACKAGE_PIN <refclk_p pin> [get_ports pcie_refclk_clk_p]
create_clock -period 10.000 -name pcie_refclk [get_ports pcie_refclk_clk_p]
set_property PACKAGE_PIN <PERST# pin> [get_ports pcie_perstn]
set_property IOSTANDARD LVCMOS18 [get_ports pcie_perstn]
set_property PULLUP true [get_ports pcie_perstn]
"""

# The ports whose package pins the card's board.xdc must give.
PCIE_PORTS = ("pcie_refclk_clk_p", "pcie_perstn")

# Evaluating an XDC file as Tcl, as Vivado reads a constraints file (UG903, "XDC syntax": of
# Tcl only set, list and expr): in a safe child interpreter with every other Tcl command
# hidden and a limit on commands run, so that a file can neither reach the machine (exec,
# open, source...) nor loop. get_ports returns its port names, set_property records each
# (property, value, port), Tcl's own other commands (if, foreach, proc...) are refused, and
# every other command (create_clock, set_false_path, get_pins, current_instance...) does nothing.
_XDC_RECORDER = r"""
set ::sparsa_props {}
proc sparsa_get_ports {args} {
    set names {}
    foreach a $args { if {![string match -* $a]} { foreach n $a { lappend names "port:$n" } } }
    return $names
}
proc sparsa_set_property {args} {
    set args [lsearch -all -inline -not -regexp $args {^-(quiet|verbose)$}]
    if {[lindex $args 0] eq "-dict"} {
        set pairs [lindex $args 1]; set objs [lindex $args 2]
    } else {
        set pairs [lrange $args 0 1]; set objs [lindex $args 2]
    }
    foreach o $objs { foreach {k v} $pairs { lappend ::sparsa_props [list [string toupper $k] $v $o] } }
    return ""
}
proc sparsa_unknown {name args} {
    if {$name in $::sparsa_tcl} { error "$name: an XDC file may use only set, list and expr of Tcl's commands" }
    return ""
}
interp create -safe xdc
set ::sparsa_tcl [concat [xdc eval {info commands}] [interp hidden xdc]]
foreach c [xdc eval {info commands}] { if {$c ni {set list expr}} { interp hide xdc $c } }
interp alias xdc get_ports {} sparsa_get_ports
interp alias xdc set_property {} sparsa_set_property
interp alias xdc unknown {} sparsa_unknown
interp limit xdc commands -value 1000000
"""


def xdc_package_pins(text):
    """``{port: pin}``: the PACKAGE_PIN (or LOC) each port gets when ``text`` is evaluated as
    Vivado reads an XDC (see above). Raises ``ValueError`` with Tcl's message if it is not such
    Tcl, or says that Python's tkinter (which embeds Tcl) is missing."""
    try:
        import _tkinter
    except ImportError:
        raise ValueError("reading it needs Python's tkinter (Debian: apt install python3-tk)") from None
    # A bare interpreter: tkinter.Tcl() would also run the user's ~/.Tk.py profile files.
    tcl = _tkinter.create(None, "sparsa", "Tk", False, False, False, False, None)
    tcl.eval(_XDC_RECORDER)
    try:
        tcl.call("xdc", "eval", text)
    except _tkinter.TclError as e:
        raise ValueError((str(e).splitlines() or ["(no message)"])[0]) from None
    pins = {}
    for rec in tcl.splitlist(tcl.eval("set ::sparsa_props")):
        key, value, obj = tcl.splitlist(rec)
        if key in ("PACKAGE_PIN", "LOC") and obj.startswith("port:"):
            pins[obj[5:]] = value
    return pins


def _ipdef(name, versions):
    return f"[sparsa_ip xilinx.com:ip:{name}:{versions[name]}]"


def bd_tcl_pcie(ip_proc, versions, ipdef_smartconnect, location=None):
    """The block design (see the module docstring). ``ip_proc``: the Tcl of the pinned-version
    check; ``versions``: every IP's pinned version; ``ipdef_smartconnect``: its VLNV expression;
    ``location``: ``{"pcie_blk_locn": "X0Y0", "select_quad": "GTH_Quad_225"}`` where the card's
    lanes are (PG195, "Basic Tab": PCIe block location, GT quad), or None for XDMA's defaults."""
    ip = lambda name: _ipdef(name, versions)                                  # noqa: E731
    where = "".join(f" CONFIG.{k} {{{v}}}" for k, v in (location or {}).items())
    return f"""# Block design: XDMA PCIe endpoint + sparsa SoC wrapper (generated by sparsa build).
{ip_proc}create_bd_design sparsa_bd
create_bd_cell -type module -reference sparsa_soc accel
# PCIe: 8-lane Gen3 endpoint, AXI-Stream H2C/C2H, AXI-Lite master on BAR0, one user interrupt (PG195).
create_bd_cell -type ip -vlnv {ip('xdma')} pcie
set_property -dict [list CONFIG.mode_selection {{Advanced}} CONFIG.pl_link_cap_max_link_width {{X8}} \\
    CONFIG.pl_link_cap_max_link_speed {{8.0_GT/s}} CONFIG.axi_data_width {{256_bit}} CONFIG.axisten_freq {{250}} \\
    CONFIG.xdma_axi_intf_mm {{AXI_Stream}} CONFIG.xdma_rnum_chnl {{1}} CONFIG.xdma_wnum_chnl {{1}} \\
    CONFIG.axilite_master_en {{true}} CONFIG.axilite_master_size {{1}} CONFIG.axilite_master_scale {{Megabytes}} \\
    CONFIG.xdma_num_usr_irq {{1}} CONFIG.pf0_device_id {{8038}}{where}] [get_bd_cells pcie]
create_bd_cell -type ip -vlnv {ip('util_ds_buf')} refclk_buf
set_property CONFIG.C_BUF_TYPE {{IBUFDSGTE}} [get_bd_cells refclk_buf]
create_bd_intf_port -mode Slave -vlnv xilinx.com:interface:diff_clock_rtl:1.0 pcie_refclk
create_bd_intf_port -mode Master -vlnv xilinx.com:interface:pcie_7x_mgt_rtl:1.0 pcie_mgt
create_bd_port -dir I -type rst pcie_perstn
# PERST# is active low; the reference clock is PCIe's 100 MHz (PG195 "Clocking").
set_property CONFIG.POLARITY {{ACTIVE_LOW}} [get_bd_ports pcie_perstn]
set_property CONFIG.FREQ_HZ {{100000000}} [get_bd_intf_ports pcie_refclk]
connect_bd_intf_net [get_bd_intf_ports pcie_refclk] [get_bd_intf_pins refclk_buf/CLK_IN_D]
connect_bd_intf_net [get_bd_intf_pins pcie/pcie_mgt] [get_bd_intf_ports pcie_mgt]
connect_bd_net [get_bd_pins refclk_buf/IBUF_OUT] [get_bd_pins pcie/sys_clk_gt]
connect_bd_net [get_bd_pins refclk_buf/IBUF_DS_ODIV2] [get_bd_pins pcie/sys_clk]
connect_bd_net [get_bd_ports pcie_perstn] [get_bd_pins pcie/sys_rst_n]
# The engine's clock: 200 MHz from XDMA's 250 MHz user clock (PG065); its reset waits for lock (PG164).
# The wizard is held in reset with XDMA's user reset: axi_aclk stops while PERST# or a link reset
# holds the core, and the MMCM must be reset once its input clock is back to lock again.
create_bd_cell -type ip -vlnv {ip('clk_wiz')} engine_clk
set_property -dict [list CONFIG.PRIM_IN_FREQ {{250.000}} CONFIG.PRIM_SOURCE {{No_buffer}} \\
    CONFIG.CLKOUT1_REQUESTED_OUT_FREQ {{200.000}} CONFIG.USE_RESET {{true}} CONFIG.RESET_TYPE {{ACTIVE_LOW}} \\
    CONFIG.RESET_PORT {{resetn}}] \\
    [get_bd_cells engine_clk]
create_bd_cell -type ip -vlnv {ip('proc_sys_reset')} rst
connect_bd_net [get_bd_pins pcie/axi_aclk] [get_bd_pins engine_clk/clk_in1]
connect_bd_net [get_bd_pins engine_clk/clk_out1] [get_bd_pins accel/clk] [get_bd_pins rst/slowest_sync_clk]
connect_bd_net [get_bd_pins engine_clk/locked] [get_bd_pins rst/dcm_locked]
connect_bd_net [get_bd_pins pcie/axi_aresetn] [get_bd_pins rst/ext_reset_in] [get_bd_pins engine_clk/resetn]
connect_bd_net [get_bd_pins rst/peripheral_reset] [get_bd_pins accel/rst]
# Registers: BAR0 (250 MHz) -> the SoC (200 MHz) through a two-clock SmartConnect (PG247).
create_bd_cell -type ip -vlnv {ipdef_smartconnect} ctrl_ic
set_property -dict [list CONFIG.NUM_SI {{1}} CONFIG.NUM_MI {{1}} CONFIG.NUM_CLKS {{2}}] [get_bd_cells ctrl_ic]
connect_bd_intf_net [get_bd_intf_pins pcie/M_AXI_LITE] [get_bd_intf_pins ctrl_ic/S00_AXI]
connect_bd_intf_net [get_bd_intf_pins ctrl_ic/M00_AXI] [get_bd_intf_pins accel/s_axil]
connect_bd_net [get_bd_pins pcie/axi_aclk] [get_bd_pins ctrl_ic/aclk]
connect_bd_net [get_bd_pins engine_clk/clk_out1] [get_bd_pins ctrl_ic/aclk1]
connect_bd_net [get_bd_pins pcie/axi_aresetn] [get_bd_pins ctrl_ic/aresetn]
# Streams (PG085): H2C 32 bytes at 250 MHz -> clock converter -> width converter -> s_axis (2 bytes,
# 200 MHz); m_axis -> width converter -> clock converter -> C2H. tlast ends each C2H packet.
{_stream_cells(ip)}# The SoC's interrupt is XDMA's user interrupt 0 (MSI to the host).
# through a two-flop synchronizer into XDMA's clock (the SoC runs on the wizard's 200 MHz).
create_bd_cell -type module -reference sparsa_irq_sync irq_sync
connect_bd_net [get_bd_pins pcie/axi_aclk] [get_bd_pins irq_sync/clk]
connect_bd_net [get_bd_pins accel/irq] [get_bd_pins irq_sync/d]
connect_bd_net [get_bd_pins irq_sync/q] [get_bd_pins pcie/usr_irq_req]
# The SoC's registers at BAR0 offset 0 (address_map.json).
assign_bd_address -offset {BAR_BASE:#010x} -range 64K [get_bd_addr_segs accel/s_axil/reg0]
validate_bd_design
save_bd_design
make_wrapper -files [get_files sparsa_bd.bd] -top -import
set_property top sparsa_bd_wrapper [current_fileset]
"""


def _stream_cells(ip):
    tcl = []
    for name, s_bytes, m_bytes in (("h2c_cc", _XDMA_BYTES, _XDMA_BYTES), ("c2h_cc", _XDMA_BYTES, _XDMA_BYTES)):
        tcl.append(f"create_bd_cell -type ip -vlnv {ip('axis_clock_converter')} {name}\n"
                   f"set_property CONFIG.TDATA_NUM_BYTES {{{s_bytes}}} [get_bd_cells {name}]")
    for name, s_bytes, m_bytes in (("h2c_dw", _XDMA_BYTES, _SOC_BYTES), ("c2h_dw", _SOC_BYTES, _XDMA_BYTES)):
        tcl.append(f"create_bd_cell -type ip -vlnv {ip('axis_dwidth_converter')} {name}\n"
                   f"set_property -dict [list CONFIG.S_TDATA_NUM_BYTES {{{s_bytes}}} CONFIG.M_TDATA_NUM_BYTES "
                   f"{{{m_bytes}}} CONFIG.HAS_TLAST {{1}} CONFIG.HAS_TKEEP {{1}}] [get_bd_cells {name}]")
    tcl.append("""connect_bd_intf_net [get_bd_intf_pins pcie/M_AXIS_H2C_0] [get_bd_intf_pins h2c_cc/S_AXIS]
connect_bd_intf_net [get_bd_intf_pins h2c_cc/M_AXIS] [get_bd_intf_pins h2c_dw/S_AXIS]
connect_bd_intf_net [get_bd_intf_pins h2c_dw/M_AXIS] [get_bd_intf_pins accel/s_axis]
connect_bd_intf_net [get_bd_intf_pins accel/m_axis] [get_bd_intf_pins c2h_dw/S_AXIS]
connect_bd_intf_net [get_bd_intf_pins c2h_dw/M_AXIS] [get_bd_intf_pins c2h_cc/S_AXIS]
connect_bd_intf_net [get_bd_intf_pins c2h_cc/M_AXIS] [get_bd_intf_pins pcie/S_AXIS_C2H_0]
connect_bd_net [get_bd_pins pcie/axi_aclk] [get_bd_pins h2c_cc/s_axis_aclk] [get_bd_pins c2h_cc/m_axis_aclk]
connect_bd_net [get_bd_pins pcie/axi_aresetn] [get_bd_pins h2c_cc/s_axis_aresetn] [get_bd_pins c2h_cc/m_axis_aresetn]
connect_bd_net [get_bd_pins engine_clk/clk_out1] [get_bd_pins h2c_cc/m_axis_aclk] [get_bd_pins c2h_cc/s_axis_aclk] \\
    [get_bd_pins h2c_dw/aclk] [get_bd_pins c2h_dw/aclk]
# The 200 MHz side resets come from the SoC: low during its reset and for 16 cycles after
# CTRL.ABORT (PG085 "Resets": at least 16 cycles), so that an aborted transfer leaves no partial
# beat in the converters to start the next packet. Registered in the SoC's clock domain, as PG085
# asks of a reset on that side; the 250 MHz sides stay on XDMA's reset.
connect_bd_net [get_bd_pins accel/axis_resetn] [get_bd_pins h2c_cc/m_axis_aresetn] \\
    [get_bd_pins c2h_cc/s_axis_aresetn] [get_bd_pins h2c_dw/aresetn] [get_bd_pins c2h_dw/aresetn]
""")
    return "\n".join(tcl)


IRQ_SYNC_VERILOG = """
// The engine's level interrupt into XDMA's clock domain (usr_irq_req): two flops, ASYNC_REG so
// that Vivado places them together; top.xdc cuts the timing path into the first.
module sparsa_irq_sync(clk, d, q);
  input clk;
  input d;
  output q;
  (* ASYNC_REG = "TRUE" *) reg meta = 1'b0;
  (* ASYNC_REG = "TRUE" *) reg sync = 1'b0;
  always @(posedge clk) begin
    meta <= d;
    sync <= meta;
  end
  assign q = sync;
endmodule
"""


def check_location(block, quad):
    """``--pcie-block`` / ``--gt-quad`` as bd.tcl's XDMA settings, or a one-line UserError."""
    from sparsa.sw.errors import user_error
    location = {}
    if block is not None:
        if not re.fullmatch(r"X\dY\d", block):
            raise user_error(None, "--pcie-block", "a PCIe block location like X0Y0 (PG195)", repr(block))
        location["pcie_blk_locn"] = block
    if quad is not None:
        if not re.fullmatch(r"GT[HY]_Quad_\d{3}", quad):
            raise user_error(None, "--gt-quad", "a GT quad like GTH_Quad_225 (PG195)", repr(quad))
        location["select_quad"] = quad
    return location or None


def xdc_pcie():
    """``top.xdc`` of the KU060 card design: what does not depend on the card."""
    return """# KU060 (UltraScale) on a card whose configuration bank 0 is at 1.8 V: CFGBVS to GND (UG570,
# "CFGBVS"). A card that powers bank 0 at 2.5 or 3.3 V sets CFGBVS VCCO and CONFIG_VOLTAGE in its
# board.xdc, which build.tcl reads after this file.
set_property CFGBVS GND [current_design]
set_property CONFIG_VOLTAGE 1.8 [current_design]
set_property BITSTREAM.GENERAL.COMPRESS TRUE [current_design]
# The engine's 200 MHz clock is derived from XDMA's by the clocking wizard: Vivado propagates it.
# The engine's interrupt crosses into XDMA's clock through sparsa_irq_sync (a level, two flops).
set_false_path -to [get_pins -hier -filter {NAME =~ *irq_sync*/meta_reg/D}]
# The card's pins (reference clock, PERST#) are in board.xdc (sparsa build --xdc).
"""
