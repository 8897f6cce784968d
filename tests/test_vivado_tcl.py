"""Structural check of the Vivado trees (issue 24): every generated ``.tcl`` is sourced in a real
Tcl interpreter with the Vivado commands defined as recorders (tests/vivado_recorder.py).

This is a structural check, not a Vivado run. It proves that the scripts parse and run as Tcl,
call only commands the recorder models, name only pins and interfaces that exist on each IP as
configured (against tables written from PG082, PG201, PG021, PG247 and PG164), drive every clock
input of an enabled AXI port, pin every IP version with a clear error when it is missing, and
stop on a failed run. Timing, DRCs, IP parameter ranges and Vivado's real defaults are left to
Vivado itself.
"""

import json
import tkinter

import numpy as np
import pytest

from sparsa.boards.vivado import IP_VERSIONS, XILINX_BOARDS, write_tree
from sparsa.cli import main
from sparsa.sw.errors import UserError
from vivado_recorder import CATALOG, IP_TABLE, Recorder, RecorderError


@pytest.fixture(scope="module")
def packs(tmp_path_factory):
    from cnn_cases import random_graph
    from sparsa.sw.model.graph import save_graph
    d = tmp_path_factory.mktemp("packs")
    rng = np.random.default_rng(77)
    print("seed=77")
    w = ((rng.random((24, 20)) < 0.3) * rng.choice([-9, -3, 2, 5, 11], (24, 20))).astype(np.int16)
    np.save(d / "w.npy", w)
    assert main(["pack", str(d / "w.npy"), "--pes", "1", "--shift", "2", "-o", str(d / "eie")]) == 0
    graph, _ = random_graph(0)
    save_graph(d / "g.npz", graph)
    assert main(["pack", str(d / "g.npz"), "-o", str(d / "cnn"), "--lanes", "4"]) == 0
    return d


# A KU060 card's pins, as a user's --xdc would give them (the pin names are placeholders).
CARD_XDC = """set_property PACKAGE_PIN AB6 [get_ports pcie_refclk_clk_p]
create_clock -period 10.000 -name pcie_refclk [get_ports pcie_refclk_clk_p]
set_property PACKAGE_PIN AK22 [get_ports pcie_perstn]
set_property IOSTANDARD LVCMOS18 [get_ports pcie_perstn]
"""


@pytest.fixture(scope="module")
def trees(packs):
    out = {}
    (packs / "card.xdc").write_text(CARD_XDC)
    for engine in ("eie", "cnn"):
        for board in XILINX_BOARDS:
            out[engine, board] = packs / f"{engine}-{board}"
            xdc = packs / "card.xdc" if board == "ku060" else None
            write_tree(packs / engine, board, out[engine, board], estimate=False, xdc=xdc)
    return out


def test_the_recorder_pins_the_versions_the_trees_pin():
    assert {n: v[0] for n, v in IP_TABLE.items()} == IP_VERSIONS


@pytest.mark.parametrize("engine", ["eie", "cnn"])
@pytest.mark.parametrize("board", list(XILINX_BOARDS))
def test_every_script_sources_and_connects_only_existing_pins(trees, engine, board):
    tree = trees[engine, board]
    if (engine, board) == ("cnn", "ku060"):
        rec = Recorder(tree)
        with pytest.raises(tkinter.TclError, match="the CNN engine on the KU060 card needs the card's DDR4"):
            rec.source("build.tcl")
        assert not rec.calls                      # it stops before anything
        return
    rec = Recorder(tree).source("build.tcl")
    names = [c[0] for c in rec.calls]
    assert names.count("wait_on_run") == 2 and rec.runs == {"synth_1": "done", "impl_1": "done"}
    if XILINX_BOARDS[board]["ps"]:
        assert rec.validated and "make_wrapper" in names
        ps = rec.cells["/ps"]["kind"]
        irq = {"zynq_ultra_ps_e": "/ps/pl_ps_irq0", "processing_system7": "/ps/IRQ_F2P"}[ps]
        irq_net = next(n for n in rec.nets if irq in n)
        # the engine's interrupt reaches the PS (directly, or through the Concat with the DMA's)
        assert "/accel/irq" in irq_net or any("/accel/irq" in n and "/irqs/In0" in n for n in rec.nets)
        assert (tree / "sparsa.hwh").exists() and "write_hw_platform" in names
    else:                                          # the KU060 PCIe card
        assert rec.validated and ("add_files", ("-fileset", "constrs_1", "board.xdc")) in [c[:2] for c in rec.calls]
    assert ("write_bitstream", ("-force", "sparsa.bit")) in [c[:2] for c in rec.calls]


def test_zu2cg_enables_the_interrupt_and_disables_the_unused_masters(trees):
    rec = Recorder(trees["eie", "zu2cg"]).source("build.tcl")
    cfg = rec.cells["/ps"]["cfg"]
    assert cfg["PSU__USE__IRQ0"] == "1" and cfg["PSU__USE__M_AXI_GP1"] == "0" and cfg["PSU__USE__M_AXI_GP2"] == "0"


@pytest.mark.parametrize("engine", ["eie", "cnn"])
def test_zu2cg_is_the_te0802_with_its_lpddr4_clocks_and_mio(trees, engine):
    # Every PS fact of the TE0802's board preset reaches the PS cell unchanged, and the design's
    # fabric settings (HPM0 on, HPM1/LPD off, IRQ0, pl_clk0 at 100 MHz) still follow them.
    from sparsa.boards.psu_te0802 import TE0802_PSU
    rec = Recorder(trees[engine, "zu2cg"]).source("build.tcl")
    cfg = rec.cells["/ps"]["cfg"]
    assert {k: cfg[k] for k in TE0802_PSU} == TE0802_PSU
    assert cfg["PSU__DDRC__MEMORY_TYPE"] == "LPDDR 4" and cfg["PSU__UART0__PERIPHERAL__IO"] == "MIO 10 .. 11"
    assert cfg["PSU__USE__IRQ0"] == "1" and cfg["PSU__USE__M_AXI_GP1"] == "0"
    assert cfg["PSU__CRL_APB__PL0_REF_CTRL__FREQMHZ"] == "100"
    assert XILINX_BOARDS["zu2cg"]["board"] == "Trenz Electronic TE0802"
    assert XILINX_BOARDS["zu2cg"]["part"] == "xczu2cg-sbva484-1-e"


@pytest.mark.parametrize("engine", ["eie", "cnn"])
def test_zynq7020_is_the_pynq_z2_with_its_ddr_clocks_and_mio(trees, engine):
    # Every PS7 fact of the PYNQ-Z2 board design reaches the PS cell unchanged (values with
    # spaces and '#' survive Tcl quoting), and the fabric settings still follow them.
    from sparsa.boards.ps7_pynq_z2 import PYNQ_Z2_PS7
    rec = Recorder(trees[engine, "zynq7020"]).source("build.tcl")
    cfg = rec.cells["/ps"]["cfg"]
    assert {k: cfg[k] for k in PYNQ_Z2_PS7} == PYNQ_Z2_PS7
    assert cfg["PCW_UIPARAM_DDR_BUS_WIDTH"] == "16 Bit" and cfg["PCW_UART0_UART0_IO"] == "MIO 14 .. 15"
    assert cfg["PCW_USE_S_AXI_HP0"] == "1" and cfg["PCW_FPGA0_PERIPHERAL_FREQMHZ"] == "100"
    assert XILINX_BOARDS["zynq7020"]["board"] == "TUL PYNQ-Z2"


def test_the_ku060_clock_wizard_resets_with_xdma_and_the_ports_say_polarity_and_frequency(trees):
    # XDMA's user clock stops under PERST# or a link reset: the MMCM is reset with it so that it
    # locks again. PERST# is active low; the PCIe reference clock is 100 MHz.
    rec = Recorder(trees["eie", "ku060"]).source("build.tcl")
    assert any({"/pcie/axi_aresetn", "/engine_clk/resetn", "/rst/ext_reset_in"} <= n for n in rec.nets)
    assert rec.port_props["/pcie_perstn"] == {"CONFIG.POLARITY": "ACTIVE_LOW"}
    assert rec.port_props["/pcie_refclk"] == {"CONFIG.FREQ_HZ": "100000000"}


def test_the_ku060_stream_converters_reset_with_the_socs_abort(trees):
    rec = Recorder(trees["eie", "ku060"]).source("build.tcl")
    pins = {"/accel/axis_resetn", "/h2c_cc/m_axis_aresetn", "/c2h_cc/s_axis_aresetn", "/h2c_dw/aresetn",
            "/c2h_dw/aresetn"}
    assert any(pins <= n for n in rec.nets)
    v = (trees["eie", "ku060"] / "sparsa_soc.v").read_text()
    assert '(* X_INTERFACE_INFO = "xilinx.com:signal:reset:1.0 axis_resetn RST" *)' in v
    assert '(* X_INTERFACE_PARAMETER = "POLARITY ACTIVE_LOW" *)\n  output axis_resetn;' in v


def test_the_dma_interrupts_reach_the_ps(trees):
    for board in ("zynq7020", "zu2cg"):
        rec = Recorder(trees["eie", board]).source("build.tcl")
        for pin in ("/dma/mm2s_introut", "/dma/s2mm_introut", "/accel/irq"):
            assert any(pin in n and any(p.startswith("/irqs/In") for p in n) for n in rec.nets), (board, pin)


def test_the_ku060_card_reaches_the_soc_over_pcie(trees):
    tree = trees["eie", "ku060"]
    rec = Recorder(tree).source("build.tcl")
    nets = rec.intf_nets
    # BAR0 -> SmartConnect -> registers; H2C -> clock -> width -> s_axis; m_axis -> width -> clock -> C2H.
    assert nets["/pcie/M_AXI_LITE"] == "/ctrl_ic/S00_AXI" and nets["/ctrl_ic/M00_AXI"] == "/accel/s_axil"
    assert [nets[a] for a in ("/pcie/M_AXIS_H2C_0", "/h2c_cc/M_AXIS", "/h2c_dw/M_AXIS")] == \
        ["/h2c_cc/S_AXIS", "/h2c_dw/S_AXIS", "/accel/s_axis"]
    assert [nets[a] for a in ("/accel/m_axis", "/c2h_dw/M_AXIS", "/c2h_cc/M_AXIS")] == \
        ["/c2h_dw/S_AXIS", "/c2h_cc/S_AXIS", "/pcie/S_AXIS_C2H_0"]
    assert rec.cells["/h2c_dw"]["cfg"]["M_TDATA_NUM_BYTES"] == "2" and rec.cells["/c2h_dw"]["cfg"]["S_TDATA_NUM_BYTES"] == "2"
    # The interrupt crosses into XDMA's clock through the two-flop synchronizer, whose first flop
    # top.xdc exempts from timing.
    assert any({"/accel/irq", "/irq_sync/d"} <= n for n in rec.nets)
    assert any({"/irq_sync/q", "/pcie/usr_irq_req"} <= n for n in rec.nets)
    assert any({"/pcie/axi_aclk", "/irq_sync/clk"} <= n for n in rec.nets)
    assert "set_false_path -to [get_pins -hier -filter {NAME =~ *irq_sync*/meta_reg/D}]" in (tree / "top.xdc").read_text()
    assert any({"/pcie_perstn", "/pcie/sys_rst_n"} <= n for n in rec.nets)
    # The engine runs on the clocking wizard's 200 MHz, the AXI-Lite master side on XDMA's clock.
    assert any({"/engine_clk/clk_out1", "/accel/clk", "/ctrl_ic/aclk1"} <= n for n in rec.nets)
    assert rec.cells["/engine_clk"]["cfg"]["CLKOUT1_REQUESTED_OUT_FREQ"] == "200.000"
    amap = json.loads((tree / "address_map.json").read_text())
    assert rec.addresses == {"/accel": (amap["cells"]["accel"]["base"], 65536)} and amap["host"] == "pcie-xdma"
    xdc = (tree / "top.xdc").read_text()
    assert "CFGBVS GND" in xdc and "CONFIG_VOLTAGE 1.8" in xdc and (tree / "board.xdc").read_text() == CARD_XDC


def test_the_ku060_tree_without_the_cards_pins_stops_and_says_so(packs, tmp_path):
    write_tree(packs / "eie", "ku060", tmp_path / "t", estimate=False)
    rec = Recorder(tmp_path / "t")
    with pytest.raises(tkinter.TclError, match=r"KU060: no board.xdc: .* --xdc"):
        rec.source("build.tcl")
    assert not any(c[0] == "create_project" for c in rec.calls)


@pytest.mark.parametrize("text,found", [
    ("# set_property PACKAGE_PIN AB6 [get_ports pcie_refclk_clk_p]\n" + CARD_XDC.split("\n", 2)[2], "none"),
    # the ports named, but no pin given: only a clock and an I/O standard
    ("create_clock -period 10.000 [get_ports pcie_refclk_clk_p]\n"
     "set_property IOSTANDARD LVCMOS18 [get_ports pcie_perstn]\n", "none"),
    # Tcl beyond set/list/expr (UG903): a branch, a loop, or a command that reaches the machine
    # is refused, and never run
    ("if {1} {\n" + CARD_XDC + "}\n", "if: an XDC file may use only set, list and expr"),
    ("foreach {p n} {AB6 pcie_refclk_clk_p AK22 pcie_perstn} {set_property PACKAGE_PIN $p [get_ports $n]}\n",
     "foreach: an XDC file may use only set, list and expr"),
    ("exec touch XDC_RAN\n" + CARD_XDC, "exec: an XDC file may use only set, list and expr"),
    ("while 1 {}\n", "while: an XDC file"),
    ("set_property PACKAGE_PIN AB6 [get_ports pcie_refclk_clk_p\n", "missing close-bracket"),
    (None, "a directory"),
])
def test_an_xdc_that_only_mentions_the_pins_or_is_a_directory_is_refused(packs, tmp_path, monkeypatch, text, found):
    monkeypatch.chdir(tmp_path)
    xdc = tmp_path / "card.xdc"
    if text is None:
        xdc.mkdir()
    else:
        xdc.write_text(text)
    with pytest.raises(UserError, match=rf"card.xdc: --xdc: expected .*, found {found}"):
        write_tree(packs / "eie", "ku060", tmp_path / "t", estimate=False, xdc=xdc)
    assert not (tmp_path / "XDC_RAN").exists()


def test_an_xdc_without_tkinter_is_a_one_line_error(packs, tmp_path, monkeypatch):
    import sys
    monkeypatch.setitem(sys.modules, "_tkinter", None)          # import _tkinter now fails
    (tmp_path / "card.xdc").write_text(CARD_XDC)
    with pytest.raises(UserError, match=r"card.xdc: --xdc: expected .*, found reading it needs Python's tkinter "
                                        r"\(Debian: apt install python3-tk\)"):
        write_tree(packs / "eie", "ku060", tmp_path / "t", estimate=False, xdc=tmp_path / "card.xdc")


def test_an_xdc_is_read_as_tcl_and_copied_byte_for_byte(packs, tmp_path):
    # Quoted and braced port names count; '#' inside a command (a pin named PERST#) is not a
    # comment; bytes that are not UTF-8 reach board.xdc unchanged.
    # set_property -dict, -quiet, LOC, a variable, CRLF line ends, a byte-order mark and Vivado's
    # other commands count as Vivado reads them.
    text = (b'\xef\xbb\xbfset_property PACKAGE_PIN AB6 [get_ports "pcie_refclk_clk_p"]  ;# the card\xb5s refclk\r\n'
            b"set perst AK22\r\ncreate_clock -period 10.000 [get_ports pcie_refclk_clk_p]\r\n"
            b"set_property -dict [list LOC $perst IOSTANDARD LVCMOS18] [get_ports -quiet {pcie_perstn}] ;# PERST# pin\n"
            b"set_false_path -from [get_ports pcie_perstn]\n")
    (tmp_path / "card.xdc").write_bytes(text)
    write_tree(packs / "eie", "ku060", tmp_path / "t", estimate=False, xdc=tmp_path / "card.xdc")
    assert (tmp_path / "t" / "board.xdc").read_bytes() == text


def test_an_xdc_without_the_pcie_pins_is_refused(packs, tmp_path):
    (tmp_path / "bad.xdc").write_text("set_property PACKAGE_PIN AB6 [get_ports pcie_refclk_clk_p]\n")
    with pytest.raises(UserError, match=r"bad.xdc: --xdc: expected a PACKAGE_PIN for port pcie_perstn, the card's pin"):
        write_tree(packs / "eie", "ku060", tmp_path / "t", estimate=False, xdc=tmp_path / "bad.xdc")


@pytest.mark.parametrize("engine", ["eie", "cnn"])
@pytest.mark.parametrize("board", ["zynq7020", "zu2cg"])
def test_the_register_addresses_are_where_address_map_json_says(trees, engine, board):
    tree = trees[engine, board]
    rec = Recorder(tree).source("build.tcl")
    amap = json.loads((tree / "address_map.json").read_text())
    assert {f"/{c}": (v["base"], v["range"]) for c, v in amap["cells"].items()} == rec.addresses
    # The general-purpose master windows: UG585 (Zynq-7000 GP0 0x4000_0000-0x7FFF_FFFF),
    # UG1085 (ZU+ HPM0_FPD 0xA000_0000-0xAFFF_FFFF).
    lo, hi = {"zynq7020": (0x40000000, 0x80000000), "zu2cg": (0xA0000000, 0xB0000000)}[board]
    assert all(lo <= base and base + size <= hi for base, size in rec.addresses.values())
    assert set(amap["cells"]) == ({"accel", "dma"} if engine == "eie" else {"accel"})
    assert amap["cells"]["accel"]["id"] == {"eie": 0x53505253, "cnn": 0x53434E4E}[engine]


@pytest.mark.parametrize("board", ["zynq7020", "zu2cg"])
def test_a_missing_pinned_ip_stops_with_a_clear_error(trees, board):
    ps = XILINX_BOARDS[board]["ps"]
    vlnv = f"xilinx.com:ip:{ps}:{IP_VERSIONS[ps]}"
    other = f"xilinx.com:ip:{ps}:9.9"
    rec = Recorder(trees["eie", board], catalog=(CATALOG - {vlnv}) | {other})
    with pytest.raises(tkinter.TclError, match=f"this Vivado has no IP {vlnv} \\(it has: {other}\\)"):
        rec.source("build.tcl")
    assert not any(c[0] == "create_bd_cell" for c in rec.calls)


@pytest.mark.parametrize("run", ["synth_1", "impl_1"])
def test_a_failed_run_stops_the_build_with_its_status(trees, run):
    rec = Recorder(trees["eie", "ku060"], failing_runs={run})
    with pytest.raises(tkinter.TclError, match=f"sparsa: {run} failed"):
        rec.source("build.tcl")
    assert not any(c[0] in ("open_run", "report_utilization") for c in rec.calls)
    if run == "synth_1":
        assert "impl_1" not in rec.runs


@pytest.mark.parametrize("board", list(XILINX_BOARDS))
def test_a_design_that_misses_its_clock_writes_no_bitstream(trees, board):
    rec = Recorder(trees["eie", board], wns="-0.412")
    mhz = XILINX_BOARDS[board]["clock_mhz"]
    with pytest.raises(tkinter.TclError, match=rf"sparsa: timing not met: worst setup slack -0.412 ns \(the fabric "
                                               rf"clock is {mhz} MHz; timing.rpt has the paths\); no sparsa.bit"):
        rec.source("build.tcl")
    assert ("report_timing_summary", ("-file", "timing.rpt")) in [c[:2] for c in rec.calls]
    assert not any(c[0] in ("write_bitstream", "write_hw_platform") for c in rec.calls)


#
# The recorder itself must refuse what Vivado would refuse (each case one fault).
#

_PS = "create_project p . -part x\ncreate_bd_design d\ncreate_bd_cell -type ip -vlnv xilinx.com:ip:zynq_ultra_ps_e:3.5 ps\n"


@pytest.mark.parametrize("tcl,fault", [
    (_PS + "connect_bd_net [get_bd_pins ps/pl_clk0] [get_bd_pins ps/pl_ps_irq0]",
     r"x.tcl:4: get_bd_pins ps/pl_ps_irq0: zynq_ultra_ps_e /ps has no pin pl_ps_irq0"),
    (_PS + "set_property CONFIG.PSU__USE_IRQ0 {1} [get_bd_cells ps]", "PSU__USE_IRQ0 of zynq_ultra_ps_e is not in"),
    (_PS + "validate_bd_design", "clock pin /ps/maxihpm0_fpd_aclk is not connected"),
    (_PS + "set_property -dict [list CONFIG.PSU__USE__M_AXI_GP0 {0} CONFIG.PSU__USE__M_AXI_GP2 {0}] "
     "[get_bd_cells ps]\nconnect_bd_net [get_bd_pins ps/pl_clk0] [get_bd_pins ps/maxihpm1_fpd_aclk]\n"
     "validate_bd_design", "x.tcl:6: validate_bd_design: interface /ps/M_AXI_HPM1_FPD is enabled but not connected"),
    (_PS + "open_bd_design x", "x.tcl:4: open_bd_design x: not a Tcl command"),
    # A clock pin on a reset, AXI4-Lite onto AXI-Stream, a reset left open (the review's faults).
    (_PS + "connect_bd_net [get_bd_pins ps/pl_resetn0] [get_bd_pins ps/maxihpm0_fpd_aclk]\nvalidate_bd_design",
     "clock pin /ps/maxihpm0_fpd_aclk is driven by /ps/pl_resetn0, which is not a clock"),
    ("create_project p . -part x\ncreate_bd_design d\ncreate_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 dma\n"
     "connect_bd_intf_net [get_bd_intf_pins dma/M_AXIS_MM2S] [get_bd_intf_pins dma/S_AXI_LITE]",
     "different interface types"),
    ("create_project p . -part x\ncreate_bd_design d\ncreate_bd_cell -type ip -vlnv xilinx.com:ip:proc_sys_reset:5.0 r\n"
     "create_bd_port -dir I -type clk clk_in\nconnect_bd_net [get_bd_ports clk_in] [get_bd_pins r/slowest_sync_clk]\n"
     "validate_bd_design", "reset input /r/ext_reset_in is not connected"),
    ("create_project p . -part x\ncreate_bd_design d\n"
     "create_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:* dma", "IP version not pinned"),
    ("create_project p . -part x\ncreate_bd_design d\n"
     "create_bd_cell -type ip -vlnv xilinx.com:ip:smartconnect:1.0 ic\nget_bd_intf_pins ic/S00_AXI",
     "CONFIG.NUM_SI is not set"),
    ("create_project p . -part x\nlaunch_runs synth_1\nwait_on_run synth_1\nlaunch_runs impl_1",
     "launching impl_1 without checking run synth_1's status"),
    ("create_project p . -part x\nlaunch_runs synth_1\nwait_on_run synth_1", "without checking run synth_1"),
    ("create_project p . -part x\ncreate_bd_design d\ncreate_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 dma\n"
     "assign_bd_address -offset 0x40400000 -range 64K [get_bd_addr_segs dma/S_AXI_LITE/reg0]",
     "dma has no address segment 'S_AXI_LITE/reg0'"),
    ("create_project p . -part x\ncreate_bd_design d\ncreate_bd_cell -type ip -vlnv xilinx.com:ip:axi_dma:7.1 dma\n"
     "assign_bd_address -offset 0x40408000 -range 64K [get_bd_addr_segs dma/S_AXI_LITE/Reg]",
     "0x40408000 is not aligned to its range 64K"),
])
def test_the_recorder_refuses_structural_faults(tmp_path, tcl, fault):
    (tmp_path / "x.tcl").write_text(tcl + "\n")
    with pytest.raises(RecorderError, match=fault):
        Recorder(tmp_path).source("x.tcl")


def test_the_cards_lane_location_reaches_xdma(packs, tmp_path, capsys):
    (tmp_path / "card.xdc").write_text(CARD_XDC)
    assert main(["build", str(packs / "eie"), "--board", "ku060", "--no-build", "--xdc", str(tmp_path / "card.xdc"),
                 "--pcie-block", "X0Y1", "--gt-quad", "GTH_Quad_226", "-o", str(tmp_path / "t")]) == 0
    rec = Recorder(tmp_path / "t").source("build.tcl")
    cfg = rec.cells["/pcie"]["cfg"]
    assert (cfg["pcie_blk_locn"], cfg["select_quad"]) == ("X0Y1", "GTH_Quad_226")
    assert "no --pcie-block/--gt-quad" not in capsys.readouterr().err
    # Without them the build says that XDMA keeps its defaults, which may not be the card's lanes.
    assert main(["build", str(packs / "eie"), "--board", "ku060", "--no-build", "--xdc", str(tmp_path / "card.xdc"),
                 "-o", str(tmp_path / "t2")]) == 0
    assert "note: no --pcie-block/--gt-quad: XDMA keeps its default" in capsys.readouterr().err
    assert "pcie_blk_locn" not in Recorder(tmp_path / "t2").source("build.tcl").cells["/pcie"]["cfg"]


@pytest.mark.parametrize("args,message", [
    (["--board", "ku060", "--pcie-block", "left"], r"--pcie-block: expected a PCIe block location like X0Y0 .* found 'left'"),
    (["--board", "ku060", "--gt-quad", "Quad_1"], r"--gt-quad: expected a GT quad like GTH_Quad_225 .* found 'Quad_1'"),
    (["--board", "zynq7020", "--pcie-block", "X0Y0"], r"--pcie-block: expected --board ku060, found zynq7020"),
])
def test_a_bad_lane_location_is_one_line(packs, tmp_path, capsys, args, message):
    import re
    assert main(["build", str(packs / "eie"), "--no-build", "-o", str(tmp_path / "t"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(message, err) and len(err.splitlines()) == 1, err
    assert not (tmp_path / "t").exists()


def test_a_cnn_pack_on_the_ku060_says_its_tree_cannot_build(packs, tmp_path, capsys):
    assert main(["build", str(packs / "cnn"), "--board", "ku060", "--no-build", "-o", str(tmp_path / "t")]) == 0
    assert "a CNN pack on the KU060 card: this tree gives the utilisation estimate only" in capsys.readouterr().err


@pytest.mark.parametrize("board,family", [("zynq7020", "xc7"), ("zu2cg", "xcup"), ("ku060", "xcu")])
def test_the_yosys_estimate_of_each_tree_is_in_report_json(packs, tmp_path, board, family):
    # The real yosys synth_xilinx run for each family (about 15 s each on the small pack).
    (tmp_path / "card.xdc").write_text(CARD_XDC)
    rep = write_tree(packs / "eie", board, tmp_path / "t", estimate=True,
                     xdc=tmp_path / "card.xdc" if board == "ku060" else None)
    est = json.loads((tmp_path / "t" / "report.json").read_text())["estimate"]
    assert est == rep["estimate"] and est["source"] == f"yosys synth_xilinx -family {family} (no timing)"
    cap = XILINX_BOARDS[board]["capacity"]
    assert 0 < est["luts"] <= cap["luts"] and 0 < est["ffs"] <= cap["ffs"] and est["fits"] is True
    assert est["dsps"] >= 1                      # the PE's multiplier maps to a DSP slice
    assert est["scope"].startswith("sparsa_soc.v only")
