"""Trenz TE0802 PS board facts (boards/psu_te0802.py): the extraction from the board store's
preset.xml kept the board-level settings, left the fabric ones to the generator, and copied
values exactly. The expected values below are the board's published facts (Trenz's TE0802
description: 1 GB LPDDR4 on 32 bits, UART on MIO 10/11, SD card, Gigabit Ethernet on GEM3,
USB 2 and 3, DisplayPort, PCIe x1 root port), written out here, not read from the module."""

import re

from sparsa.boards.psu_te0802 import TE0802_PSU as PSU

# Settings that would reach into the fabric: the generator owns them.
FABRIC = ("PL0_REF", "PL1_REF", "PL2_REF", "PL3_REF", "FPGA_PL", "USE__", "IRQ", "FABRIC", "PRESET_APPLIED",
          "M_AXI", "S_AXI", "EMIO")


def test_keys_are_bare_psu_names_and_values_are_strings():
    assert len(PSU) == 88
    for k, v in PSU.items():
        assert re.fullmatch(r"PSU_{1,2}[A-Z0-9_]+", k), k        # no "CONFIG." prefix
        assert isinstance(v, str) and v == v.strip() and v, (k, v)
        assert "{" not in v and "}" not in v and "[" not in v, (k, v)


def test_no_fabric_settings():
    for k in PSU:
        assert not any(f in k for f in FABRIC), k


def test_lpddr4_is_one_gigabyte_on_32_bits():
    assert PSU["PSU__DDRC__MEMORY_TYPE"] == "LPDDR 4"
    assert PSU["PSU__DDRC__BUS_WIDTH"] == "32 Bit"
    assert PSU["PSU__DDRC__SPEED_BIN"] == "LPDDR4_1066"
    # 8 Gbit of LPDDR4 x32 (the board's IS43LQ32256A) is the board's 1 GB
    assert int(PSU["PSU__DDRC__DEVICE_CAPACITY"].split()[0]) * 2**20 // 8 == 2**30
    assert PSU["PSU__DDRC__ROW_ADDR_COUNT"] == "15"


def test_reference_clock_and_bank_voltages():
    assert float(PSU["PSU__PSS_REF_CLK__FREQMHZ"]) == 33.3333333
    assert [PSU[f"PSU_BANK_{i}_IO_STANDARD"] for i in range(4)] == ["LVCMOS33", "LVCMOS33", "LVCMOS18", "LVCMOS33"]


def test_mio_peripherals_and_their_pins():
    pins = {"UART0": "MIO 10 .. 11", "SD0": "MIO 13 .. 16 21 22", "I2C0": "MIO 18 .. 19", "I2C1": "MIO 8 .. 9",
            "ENET3": "MIO 64 .. 75", "USB0": "MIO 52 .. 63", "USB3_0": "GT Lane1"}
    for p, io in pins.items():
        assert PSU[f"PSU__{p}__PERIPHERAL__ENABLE"] == "1", p
        assert PSU[f"PSU__{p}__PERIPHERAL__IO"] == io, p
    assert PSU["PSU__QSPI__PERIPHERAL__ENABLE"] == "1" and PSU["PSU__QSPI__PERIPHERAL__DATA_MODE"] == "x4"
    assert PSU["PSU__SD0__GRP_CD__IO"] == "MIO 24"
    # every SD0 pin is listed with its pull and input type
    for n in (13, 14, 15, 16, 21, 22, 24):
        assert (PSU[f"PSU_MIO_{n}_PULLUPDOWN"], PSU[f"PSU_MIO_{n}_INPUT_TYPE"]) == ("disable", "cmos"), n


def test_gt_lanes_pcie_root_port_and_displayport():
    assert PSU["PSU__PCIE__DEVICE_PORT_TYPE"] == "Root Port"
    assert (PSU["PSU__PCIE__MAXIMUM_LINK_WIDTH"], PSU["PSU__PCIE__LANE0__IO"]) == ("x1", "GT Lane0")
    assert PSU["PSU__DISPLAYPORT__PERIPHERAL__ENABLE"] == "1" and PSU["PSU__DP__LANE_SEL"] == "Dual Higher"
    # the four GT lanes are used once each: PCIe on 0, USB3 on 1, DisplayPort on 2 and 3 ("Dual Higher")
    assert sorted(v for v in PSU.values() if v.startswith("GT Lane")) == ["GT Lane0", "GT Lane1"]
