"""Zynq UltraScale+ PS (zynq_ultra_ps_e) configuration of the Trenz Electronic TE0802: data, not code.

The TE0802 (TE0802-02-2AEU2-A, PCB revision 02) is a 10 x 10 cm development board with the
xczu2cg-sbva484-1-e, the exact part of sparsa's ``zu2cg`` target, 1 GB of LPDDR4 on a 32-bit
bus, QSPI flash, SD card, Gigabit Ethernet, USB 2/3, DisplayPort and a PCIe x1 root port.
It is the board whose public board files give the PS settings for that part: of the ZU2CG
boards in Xilinx's board store it is the only one with the SBVA484 package (the TE0803,
TE0813, TE0820 and TE0821 modules, which need a carrier, and iWave's iW-G36S-2CG1 single-board
computer carry the SFVC784 package).

These are configuration facts of the board, copied, not computed. Source: GitHub repository
Xilinx/XilinxBoardStore at commit 20bbb1210350982586fc3e42e9a15ee531417fea, file
``boards/Trenz_Electronic/TE0802_2CG_1E/2.0/preset.xml`` (last changed in commit be1118091f34,
2020-12-16; Trenz's file version 1.0, "TE Last Modification: 2020.08.04"). Its single
``zynq_ultra_ps_e_preset`` gives 98 ``CONFIG.`` parameters (97 distinct: it lists
``PSU_MIO_22_PULLUPDOWN`` twice, both ``disable``); :data:`TE0802_PSU` keeps 88 of them, key
without ``CONFIG.``, value exactly as written, in the source's order within each group.

Left out (9), because the sparsa generator sets the fabric side itself: ``PSU__PRESET_APPLIED``
(a marker for Vivado's GUI), the fabric clocks ``PSU__FPGA_PL1_ENABLE``,
``PSU__CRL_APB__PL0/PL1_REF_CTRL__FREQMHZ`` (100 and 65 MHz there; sparsa asks for pl_clk0 at its
own clock and does not use pl_clk1) and ``PSU__CRL_APB__PL0..3_REF_CTRL__SRCSEL``, and
``PSU__USE__AUDIO`` (the DisplayPort audio stream to and from the fabric, which sparsa does not
connect). Everything not listed keeps the IP's default, as on the board's own designs.
"""

TE0802_PSU = {
    # --- MIO bank voltages and the PS reference clock (5) ---
    "PSU_BANK_0_IO_STANDARD": "LVCMOS33", "PSU_BANK_1_IO_STANDARD": "LVCMOS33",
    "PSU_BANK_2_IO_STANDARD": "LVCMOS18", "PSU_BANK_3_IO_STANDARD": "LVCMOS33",
    "PSU__PSS_REF_CLK__FREQMHZ": "33.3333333",
    # --- LPDDR4 memory: type, geometry, speed, timing (9) ---
    "PSU__DDRC__BUS_WIDTH": "32 Bit", "PSU__DDRC__DEVICE_CAPACITY": "8192 MBits",
    "PSU__DDRC__MEMORY_TYPE": "LPDDR 4", "PSU__DDRC__ROW_ADDR_COUNT": "15",
    "PSU__DDRC__SPEED_BIN": "LPDDR4_1066", "PSU__DDRC__T_RCD": "18",
    "PSU__CRF_APB__DDR_CTRL__FREQMHZ": "350", "PSU__DDRC__DM_DBI": "DM_NO_DBI",
    "PSU__DDRC__LPDDR4_T_REF_RANGE": "High (95 Max)",
    # --- clock sources of the PS's own clocks (PLL per clock) (12) ---
    "PSU__CRF_APB__DP_VIDEO_REF_CTRL__SRCSEL": "VPLL", "PSU__CRF_APB__DP_AUDIO_REF_CTRL__SRCSEL": "RPLL",
    "PSU__CRF_APB__DP_STC_REF_CTRL__SRCSEL": "RPLL", "PSU__CRF_APB__TOPSW_MAIN_CTRL__SRCSEL": "APLL",
    "PSU__CRL_APB__CPU_R5_CTRL__SRCSEL": "IOPLL", "PSU__CRL_APB__SDIO0_REF_CTRL__SRCSEL": "IOPLL",
    "PSU__CRL_APB__SDIO1_REF_CTRL__SRCSEL": "IOPLL", "PSU__CRL_APB__ADMA_REF_CTRL__SRCSEL": "IOPLL",
    "PSU__CRL_APB__IOU_SWITCH_CTRL__SRCSEL": "IOPLL", "PSU__CRL_APB__LPD_SWITCH_CTRL__SRCSEL": "IOPLL",
    "PSU__CRF_APB__GDMA_REF_CTRL__SRCSEL": "APLL", "PSU__CRF_APB__DPDMA_REF_CTRL__SRCSEL": "APLL",
    # --- peripherals: MIO pins, pin options, GT lanes and their reference clocks (62) ---
    "PSU__QSPI__PERIPHERAL__ENABLE": "1", "PSU__QSPI__PERIPHERAL__MODE": "Single",
    "PSU__QSPI__PERIPHERAL__DATA_MODE": "x4", "PSU__QSPI__GRP_FBCLK__ENABLE": "1",
    "PSU__TTC0__PERIPHERAL__ENABLE": "1", "PSU__TTC1__PERIPHERAL__ENABLE": "1",
    "PSU__TTC2__PERIPHERAL__ENABLE": "1", "PSU__TTC3__PERIPHERAL__ENABLE": "1",
    "PSU__SWDT0__PERIPHERAL__ENABLE": "1", "PSU__SWDT1__PERIPHERAL__ENABLE": "1",
    "PSU__UART0__PERIPHERAL__ENABLE": "1", "PSU__UART0__PERIPHERAL__IO": "MIO 10 .. 11",
    "PSU__SD0__PERIPHERAL__ENABLE": "1", "PSU__SD0__SLOT_TYPE": "SD 2.0",
    "PSU__SD0__PERIPHERAL__IO": "MIO 13 .. 16 21 22", "PSU__SD0__GRP_CD__ENABLE": "1",
    "PSU__SD0__GRP_CD__IO": "MIO 24", "PSU_MIO_13_PULLUPDOWN": "disable", "PSU_MIO_13_INPUT_TYPE": "cmos",
    "PSU_MIO_14_PULLUPDOWN": "disable", "PSU_MIO_14_INPUT_TYPE": "cmos", "PSU_MIO_15_PULLUPDOWN": "disable",
    "PSU_MIO_15_INPUT_TYPE": "cmos", "PSU_MIO_16_PULLUPDOWN": "disable", "PSU_MIO_16_INPUT_TYPE": "cmos",
    "PSU_MIO_21_PULLUPDOWN": "disable", "PSU_MIO_21_INPUT_TYPE": "cmos", "PSU_MIO_22_PULLUPDOWN": "disable",
    "PSU_MIO_22_INPUT_TYPE": "cmos", "PSU_MIO_24_PULLUPDOWN": "disable", "PSU_MIO_24_INPUT_TYPE": "cmos",
    "PSU__I2C0__PERIPHERAL__ENABLE": "1", "PSU__I2C0__PERIPHERAL__IO": "MIO 18 .. 19",
    "PSU__I2C1__PERIPHERAL__ENABLE": "1", "PSU__I2C1__PERIPHERAL__IO": "MIO 8 .. 9",
    "PSU__ENET3__PERIPHERAL__ENABLE": "1", "PSU__ENET3__PERIPHERAL__IO": "MIO 64 .. 75",
    "PSU__ENET3__GRP_MDIO__ENABLE": "1", "PSU__ENET3__GRP_MDIO__IO": "MIO 76 .. 77",
    "PSU__USB0__PERIPHERAL__ENABLE": "1", "PSU__USB0__PERIPHERAL__IO": "MIO 52 .. 63",
    "PSU__USB3_0__PERIPHERAL__ENABLE": "1", "PSU__USB3_0__PERIPHERAL__IO": "GT Lane1",
    "PSU__PCIE__PERIPHERAL__ENABLE": "1", "PSU__PCIE__PERIPHERAL__ENDPOINT_IO": "MIO 31",
    "PSU__PCIE__PERIPHERAL__ROOTPORT_IO": "MIO 31", "PSU__PCIE__MAXIMUM_LINK_WIDTH": "x1",
    "PSU__PCIE__LANE0__IO": "GT Lane0", "PSU__PCIE__DEVICE_PORT_TYPE": "Root Port",
    "PSU__PCIE__DEVICE_ID": "0xD021", "PSU__PCIE__CLASS_CODE_SUB": "0x04",
    "PSU__DPAUX__PERIPHERAL__IO": "MIO 27 .. 30", "PSU__DP__LANE_SEL": "Dual Higher",
    "PSU__DISPLAYPORT__PERIPHERAL__ENABLE": "1", "PSU__USB0__REF_CLK_SEL": "Ref Clk0",
    "PSU__USB0__REF_CLK_FREQ": "100", "PSU__DP__REF_CLK_SEL": "Ref Clk2",
    "PSU__SATA__REF_CLK_SEL": "Ref Clk0", "PSU__PCIE__REF_CLK_SEL": "Ref Clk0",
    "PSU__GPIO0_MIO__PERIPHERAL__ENABLE": "1", "PSU__GPIO1_MIO__PERIPHERAL__ENABLE": "1",
    "PSU__GPIO2_MIO__PERIPHERAL__ENABLE": "1",
}

__all__ = ["TE0802_PSU"]
