"""PYNQ-Z2 PS7 board facts (boards/ps7_pynq_z2.py): the extraction from Xilinx/PYNQ base.tcl
kept the board-level settings, left the fabric ones to the generator, and copied values exactly."""

import re

from sparsa.boards.ps7_pynq_z2 import PYNQ_Z2_PS7 as PS7

FABRIC = ("FPGA", "FCLK", "M_AXI", "S_AXI", "IRQ_F2P", "EN_CLK", "EN_RST", "FABRIC_INTERRUPT",
          "TTC", "P2F_", "CLK0_FREQ", "EMIO")


def test_keys_are_bare_pcw_names_and_values_are_strings():
    assert len(PS7) == 354
    for k, v in PS7.items():
        assert v != "<Select>", k                          # Vivado's "not chosen" placeholder
        assert re.fullmatch(r"PCW_[A-Z0-9_]+", k), k        # no "CONFIG." prefix, no stray text
        assert isinstance(v, str) and v == v.strip() and v, (k, v)
        assert "{" not in v and "}" not in v, (k, v)        # Tcl braces stripped


def test_no_fabric_or_derived_settings():
    for k in PS7:
        assert not any(f in k for f in FABRIC), k
        assert not k.startswith(("PCW_ACT_", "PCW_EN_")), k
        assert not k.endswith(("_BASEADDR", "_HIGHADDR")) or k.startswith("PCW_DDR_RAM_"), k


def test_ddr3_part_geometry_and_timing():
    assert PS7["PCW_UIPARAM_DDR_PARTNO"] == "Custom"
    assert PS7["PCW_UIPARAM_DDR_MEMORY_TYPE"] == "DDR 3"
    assert PS7["PCW_UIPARAM_DDR_BUS_WIDTH"] == "16 Bit"
    assert PS7["PCW_UIPARAM_DDR_DRAM_WIDTH"] == "16 Bits"
    assert PS7["PCW_UIPARAM_DDR_DEVICE_CAPACITY"] == "4096 MBits"
    assert PS7["PCW_UIPARAM_DDR_SPEED_BIN"] == "DDR3_1066F"
    assert (PS7["PCW_UIPARAM_DDR_CL"], PS7["PCW_UIPARAM_DDR_CWL"]) == ("7", "6")
    assert (PS7["PCW_UIPARAM_DDR_ROW_ADDR_COUNT"], PS7["PCW_UIPARAM_DDR_COL_ADDR_COUNT"],
            PS7["PCW_UIPARAM_DDR_BANK_ADDR_COUNT"]) == ("15", "10", "3")
    assert PS7["PCW_UIPARAM_DDR_T_RC"] == "50.625" and PS7["PCW_UIPARAM_DDR_T_RCD"] == "13.125"
    assert PS7["PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_3"] == "-0.033"   # the 2017.2 script's value
    # 4 Gbit x16 on a 16-bit bus is 512 MiB, the DDR range the PS reports (base skips the OCM)
    assert int(PS7["PCW_DDR_RAM_HIGHADDR"], 16) + 1 == 4096 * 2**20 // 8
    assert PS7["PCW_DDR_RAM_BASEADDR"] == "0x00100000"


def test_clocks():
    assert PS7["PCW_CRYSTAL_PERIPHERAL_FREQMHZ"] == "50"
    assert PS7["PCW_APU_PERIPHERAL_FREQMHZ"] == "650"
    assert PS7["PCW_UIPARAM_DDR_FREQ_MHZ"] == "525"
    assert float(PS7["PCW_DDR_DDR_PLL_FREQMHZ"]) / int(PS7["PCW_DDR_PERIPHERAL_DIVISOR0"]) == 525
    assert float(PS7["PCW_CPU_CPU_PLL_FREQMHZ"]) / int(PS7["PCW_CPU_PERIPHERAL_DIVISOR0"]) == 650
    assert 50 * int(PS7["PCW_ARMPLL_CTRL_FBDIV"]) == 1300 and 50 * int(PS7["PCW_DDRPLL_CTRL_FBDIV"]) == 1050


def test_mio_banks_and_peripheral_pins():
    assert PS7["PCW_PRESET_BANK0_VOLTAGE"] == "LVCMOS 3.3V"
    assert PS7["PCW_PRESET_BANK1_VOLTAGE"] == "LVCMOS 1.8V"
    enabled = {"UART0": "PCW_UART0_UART0_IO", "ENET0": "PCW_ENET0_ENET0_IO", "USB0": "PCW_USB0_USB0_IO",
               "SD0": "PCW_SD0_SD0_IO", "QSPI": "PCW_QSPI_QSPI_IO", "I2C0": "PCW_I2C0_I2C0_IO"}
    for p in enabled:
        assert PS7[f"PCW_{p}_PERIPHERAL_ENABLE"] == "1", p
    assert {p: PS7[k] for p, k in enabled.items()} == {
        "UART0": "MIO 14 .. 15", "ENET0": "MIO 16 .. 27", "USB0": "MIO 28 .. 39",
        "SD0": "MIO 40 .. 45", "QSPI": "MIO 1 .. 6", "I2C0": "MIO 50 .. 51"}
    assert PS7["PCW_UART0_BAUD_RATE"] == "115200"
    assert PS7["PCW_ENET0_GRP_MDIO_IO"] == "MIO 52 .. 53" and PS7["PCW_SD0_GRP_CD_IO"] == "MIO 47"
    assert PS7["PCW_QSPI_GRP_FBCLK_IO"] == "MIO 8"
    for p in ("UART1", "ENET1", "USB1", "SD1", "CAN0", "CAN1", "SPI0", "SPI1"):
        assert PS7[f"PCW_{p}_PERIPHERAL_ENABLE"] == "0", p
    assert PS7["PCW_GPIO_MIO_GPIO_ENABLE"] == "0"


def test_mio_tree_agrees_with_per_pin_settings():
    periph = PS7["PCW_MIO_TREE_PERIPHERALS"].split("#")
    signals = PS7["PCW_MIO_TREE_SIGNALS"].split("#")
    assert len(periph) == len(signals) == int(PS7["PCW_MIO_PRIMITIVE"]) == 54
    assert periph[14:16] == ["UART 0", "UART 0"] and signals[14:16] == ["rx", "tx"]
    assert set(periph[16:28]) == {"Enet 0"} and set(periph[28:40]) == {"USB 0"}
    for pin in range(54):
        keys = [f"PCW_MIO_{pin}_{a}" for a in ("DIRECTION", "IOTYPE", "PULLUP", "SLEW")]
        if periph[pin] == "unassigned":     # left at the IP's defaults (the source's "<Select>")
            assert not any(k in PS7 for k in keys), pin
        else:   # an assigned pin has all four; its IO standard is its bank's voltage
            attrs = {k.rsplit("_", 1)[1]: PS7[k] for k in keys}
            bank = "PCW_PRESET_BANK0_VOLTAGE" if pin < 16 else "PCW_PRESET_BANK1_VOLTAGE"
            assert attrs["IOTYPE"] == PS7[bank], pin
    assert PS7["PCW_MIO_14_DIRECTION"] == "in" and PS7["PCW_MIO_15_DIRECTION"] == "out"
