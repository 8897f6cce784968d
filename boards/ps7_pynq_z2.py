"""PS7 (Zynq-7000 processing system) configuration of the TUL PYNQ-Z2 board: data, not code.

These are configuration facts of the board, copied from a public board design; nothing here
is computed. Source: GitHub repository Xilinx/PYNQ, file ``boards/Pynq-Z2/base/base.tcl``
at commit 087098891e36967b75ba53378e5780464c3839f2 ("add pynqz2 board files", 2017-11-01;
the PYNQ-Z2 base overlay's block design, written by Vivado 2017.2's write_bd_tcl). There the
``processing_system7`` cell ``ps7_0`` gets one ``set_property -dict [ list CONFIG.PCW_... ]``
of 857 entries; :data:`PYNQ_Z2_PS7` keeps the board-level ones, key without ``CONFIG.``,
value the exact text between the braces.

Kept: DDR3 part/geometry/timing/training/trace delays (``PCW_UIPARAM_DDR_*``, ``PCW_DDR_*``,
``PCW_PACKAGE_DDR_*``), crystal/CPU/PLL/DCI clocks, MIO bank voltages and the per-pin
``PCW_MIO_<n>_*`` settings with the MIO tree, and the MIO peripherals the design enables
(QSPI, UART0, ENET0, USB0, SD0, I2C0) with their pins, clocks and reset options, plus the
enable flags of PS peripherals it leaves off. Left out: everything about the fabric (FCLKs,
``PCW_FPGA*``, AXI ports, fabric interrupts, resets to the PL, EMIO GPIO/I2C1), TTC/WDT/trace,
the derived ``PCW_EN_*`` mirrors and ``PCW_ACT_*`` read-backs, and fixed silicon address
constants (``*_BASEADDR``/``*_HIGHADDR``); the sparsa generator sets or ignores those.

Notes: the source names the DDR part ``Custom`` (a 4 Gbit x16 DDR3 device on a 16-bit bus,
DDR3_1066F speed bin, 512 MiB). The newest revision of the same file (Vivado 2024.1, commit
fdd219ef4e71) lists only non-default values; where both list a key they agree, except
``PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_2/3`` (``0.000`` there; byte lanes 2 and 3 are unused on
the 16-bit bus) and MIO 5's signal name ``qspi0_io[3]/HOLD_B`` in ``PCW_MIO_TREE_SIGNALS``;
it also adds ``PCW_SINGLE_QSPI_DATA_MODE`` ``x4``.

Of the 414 entries copied, 60 have the value ``<Select>``: Vivado's placeholder for a choice
nobody made (the DDR port priorities; the pin options of MIO 0, 7, 9-13, 46, 48 and 49, which
the board leaves unassigned; and unused pin-group and reset-pin selections).
:data:`PYNQ_Z2_PS7` leaves them out, so that the IP keeps its defaults there rather than be
handed a placeholder that a newer Vivado may refuse: 354 settings.
"""

_BASE_TCL = {
    # --- DDR3 memory: part, geometry, timing, training, board trace lengths/delays ---
    "PCW_UIPARAM_DDR_ADV_ENABLE": "0", "PCW_UIPARAM_DDR_AL": "0", "PCW_UIPARAM_DDR_BANK_ADDR_COUNT": "3",
    "PCW_UIPARAM_DDR_BL": "8", "PCW_UIPARAM_DDR_BOARD_DELAY0": "0.223",
    "PCW_UIPARAM_DDR_BOARD_DELAY1": "0.212", "PCW_UIPARAM_DDR_BOARD_DELAY2": "0.085",
    "PCW_UIPARAM_DDR_BOARD_DELAY3": "0.092", "PCW_UIPARAM_DDR_BUS_WIDTH": "16 Bit", "PCW_UIPARAM_DDR_CL": "7",
    "PCW_UIPARAM_DDR_CLOCK_0_LENGTH_MM": "25.8", "PCW_UIPARAM_DDR_CLOCK_0_PACKAGE_LENGTH": "80.4535",
    "PCW_UIPARAM_DDR_CLOCK_0_PROPOGATION_DELAY": "160", "PCW_UIPARAM_DDR_CLOCK_1_LENGTH_MM": "25.8",
    "PCW_UIPARAM_DDR_CLOCK_1_PACKAGE_LENGTH": "80.4535", "PCW_UIPARAM_DDR_CLOCK_1_PROPOGATION_DELAY": "160",
    "PCW_UIPARAM_DDR_CLOCK_2_LENGTH_MM": "0", "PCW_UIPARAM_DDR_CLOCK_2_PACKAGE_LENGTH": "80.4535",
    "PCW_UIPARAM_DDR_CLOCK_2_PROPOGATION_DELAY": "160", "PCW_UIPARAM_DDR_CLOCK_3_LENGTH_MM": "0",
    "PCW_UIPARAM_DDR_CLOCK_3_PACKAGE_LENGTH": "80.4535", "PCW_UIPARAM_DDR_CLOCK_3_PROPOGATION_DELAY": "160",
    "PCW_UIPARAM_DDR_CLOCK_STOP_EN": "0", "PCW_UIPARAM_DDR_COL_ADDR_COUNT": "10", "PCW_UIPARAM_DDR_CWL": "6",
    "PCW_UIPARAM_DDR_DEVICE_CAPACITY": "4096 MBits", "PCW_UIPARAM_DDR_DQS_0_LENGTH_MM": "15.6",
    "PCW_UIPARAM_DDR_DQS_0_PACKAGE_LENGTH": "105.056", "PCW_UIPARAM_DDR_DQS_0_PROPOGATION_DELAY": "160",
    "PCW_UIPARAM_DDR_DQS_1_LENGTH_MM": "18.8", "PCW_UIPARAM_DDR_DQS_1_PACKAGE_LENGTH": "66.904",
    "PCW_UIPARAM_DDR_DQS_1_PROPOGATION_DELAY": "160", "PCW_UIPARAM_DDR_DQS_2_LENGTH_MM": "0",
    "PCW_UIPARAM_DDR_DQS_2_PACKAGE_LENGTH": "89.1715", "PCW_UIPARAM_DDR_DQS_2_PROPOGATION_DELAY": "160",
    "PCW_UIPARAM_DDR_DQS_3_LENGTH_MM": "0", "PCW_UIPARAM_DDR_DQS_3_PACKAGE_LENGTH": "113.63",
    "PCW_UIPARAM_DDR_DQS_3_PROPOGATION_DELAY": "160", "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_0": "0.040",
    "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_1": "0.058", "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_2": "-0.009",
    "PCW_UIPARAM_DDR_DQS_TO_CLK_DELAY_3": "-0.033", "PCW_UIPARAM_DDR_DQ_0_LENGTH_MM": "16.5",
    "PCW_UIPARAM_DDR_DQ_0_PACKAGE_LENGTH": "98.503", "PCW_UIPARAM_DDR_DQ_0_PROPOGATION_DELAY": "160",
    "PCW_UIPARAM_DDR_DQ_1_LENGTH_MM": "18", "PCW_UIPARAM_DDR_DQ_1_PACKAGE_LENGTH": "68.5855",
    "PCW_UIPARAM_DDR_DQ_1_PROPOGATION_DELAY": "160", "PCW_UIPARAM_DDR_DQ_2_LENGTH_MM": "0",
    "PCW_UIPARAM_DDR_DQ_2_PACKAGE_LENGTH": "90.295", "PCW_UIPARAM_DDR_DQ_2_PROPOGATION_DELAY": "160",
    "PCW_UIPARAM_DDR_DQ_3_LENGTH_MM": "0", "PCW_UIPARAM_DDR_DQ_3_PACKAGE_LENGTH": "103.977",
    "PCW_UIPARAM_DDR_DQ_3_PROPOGATION_DELAY": "160", "PCW_UIPARAM_DDR_DRAM_WIDTH": "16 Bits",
    "PCW_UIPARAM_DDR_ECC": "Disabled", "PCW_UIPARAM_DDR_ENABLE": "1", "PCW_UIPARAM_DDR_FREQ_MHZ": "525",
    "PCW_UIPARAM_DDR_HIGH_TEMP": "Normal (0-85)", "PCW_UIPARAM_DDR_MEMORY_TYPE": "DDR 3",
    "PCW_UIPARAM_DDR_PARTNO": "Custom", "PCW_UIPARAM_DDR_ROW_ADDR_COUNT": "15",
    "PCW_UIPARAM_DDR_SPEED_BIN": "DDR3_1066F", "PCW_UIPARAM_DDR_TRAIN_DATA_EYE": "1",
    "PCW_UIPARAM_DDR_TRAIN_READ_GATE": "1", "PCW_UIPARAM_DDR_TRAIN_WRITE_LEVEL": "1",
    "PCW_UIPARAM_DDR_T_FAW": "40.0", "PCW_UIPARAM_DDR_T_RAS_MIN": "35.0", "PCW_UIPARAM_DDR_T_RC": "50.625",
    "PCW_UIPARAM_DDR_T_RCD": "13.125", "PCW_UIPARAM_DDR_T_RP": "13.125",
    "PCW_UIPARAM_DDR_USE_INTERNAL_VREF": "0",
    # --- DDR controller: clock source, PLL, port priorities, address range (512 MiB) ---
    "PCW_DDR_DDR_PLL_FREQMHZ": "1050.000", "PCW_DDR_HPRLPR_QUEUE_PARTITION": "HPR(0)/LPR(32)",
    "PCW_DDR_HPR_TO_CRITICAL_PRIORITY_LEVEL": "15", "PCW_DDR_LPR_TO_CRITICAL_PRIORITY_LEVEL": "2",
    "PCW_DDR_PERIPHERAL_CLKSRC": "DDR PLL", "PCW_DDR_PERIPHERAL_DIVISOR0": "2",
    "PCW_DDR_PORT0_HPR_ENABLE": "0", "PCW_DDR_PORT1_HPR_ENABLE": "0", "PCW_DDR_PORT2_HPR_ENABLE": "0",
    "PCW_DDR_PORT3_HPR_ENABLE": "0", "PCW_DDR_PRIORITY_READPORT_0": "<Select>",
    "PCW_DDR_PRIORITY_READPORT_1": "<Select>", "PCW_DDR_PRIORITY_READPORT_2": "<Select>",
    "PCW_DDR_PRIORITY_READPORT_3": "<Select>", "PCW_DDR_PRIORITY_WRITEPORT_0": "<Select>",
    "PCW_DDR_PRIORITY_WRITEPORT_1": "<Select>", "PCW_DDR_PRIORITY_WRITEPORT_2": "<Select>",
    "PCW_DDR_PRIORITY_WRITEPORT_3": "<Select>", "PCW_DDR_RAM_BASEADDR": "0x00100000",
    "PCW_DDR_RAM_HIGHADDR": "0x1FFFFFFF", "PCW_DDR_WRITE_TO_CRITICAL_PRIORITY_LEVEL": "2",
    # --- DDR package delays (PS package side) ---
    "PCW_PACKAGE_DDR_BOARD_DELAY0": "0.223", "PCW_PACKAGE_DDR_BOARD_DELAY1": "0.212",
    "PCW_PACKAGE_DDR_BOARD_DELAY2": "0.085", "PCW_PACKAGE_DDR_BOARD_DELAY3": "0.092",
    "PCW_PACKAGE_DDR_DQS_TO_CLK_DELAY_0": "0.040", "PCW_PACKAGE_DDR_DQS_TO_CLK_DELAY_1": "0.058",
    "PCW_PACKAGE_DDR_DQS_TO_CLK_DELAY_2": "-0.009", "PCW_PACKAGE_DDR_DQS_TO_CLK_DELAY_3": "-0.033",
    # --- Clocks: 50 MHz crystal, CPU (ARM PLL), IO PLL, DDR DCI ---
    "PCW_APU_CLK_RATIO_ENABLE": "6:2:1", "PCW_APU_PERIPHERAL_FREQMHZ": "650", "PCW_ARMPLL_CTRL_FBDIV": "26",
    "PCW_CPU_CPU_6X4X_MAX_RANGE": "667", "PCW_CPU_CPU_PLL_FREQMHZ": "1300.000",
    "PCW_CPU_PERIPHERAL_CLKSRC": "ARM PLL", "PCW_CPU_PERIPHERAL_DIVISOR0": "2",
    "PCW_CRYSTAL_PERIPHERAL_FREQMHZ": "50", "PCW_DCI_PERIPHERAL_CLKSRC": "DDR PLL",
    "PCW_DCI_PERIPHERAL_DIVISOR0": "52", "PCW_DCI_PERIPHERAL_DIVISOR1": "2",
    "PCW_DCI_PERIPHERAL_FREQMHZ": "10.159", "PCW_DDRPLL_CTRL_FBDIV": "21", "PCW_IOPLL_CTRL_FBDIV": "20",
    "PCW_IO_IO_PLL_FREQMHZ": "1000.000", "PCW_OVERRIDE_BASIC_CLOCK": "0", "PCW_PLL_BYPASSMODE_ENABLE": "0",
    # --- MIO voltage banks (bank 0: MIO 0..15, bank 1: MIO 16..53) and pin map ---
    "PCW_MIO_PRIMITIVE": "54",
    "PCW_MIO_TREE_PERIPHERALS": (
        "unassigned#Quad SPI Flash#Quad SPI Flash#Quad SPI Flash#Quad SPI Flash#Quad SPI Flash#"
        "Quad SPI Flash#unassigned#Quad SPI Flash#unassigned#unassigned#unassigned#unassigned#"
        "unassigned#UART 0#UART 0#Enet 0#Enet 0#Enet 0#Enet 0#Enet 0#Enet 0#Enet 0#Enet 0#Enet 0#"
        "Enet 0#Enet 0#Enet 0#USB 0#USB 0#USB 0#USB 0#USB 0#USB 0#USB 0#USB 0#USB 0#USB 0#USB 0#"
        "USB 0#SD 0#SD 0#SD 0#SD 0#SD 0#SD 0#unassigned#SD 0#unassigned#unassigned#I2C 0#I2C 0#"
        "Enet 0#Enet 0"
    ),
    "PCW_MIO_TREE_SIGNALS": (
        "unassigned#qspi0_ss_b#qspi0_io[0]#qspi0_io[1]#qspi0_io[2]#qspi0_io[3]#qspi0_sclk#"
        "unassigned#qspi_fbclk#unassigned#unassigned#unassigned#unassigned#unassigned#rx#tx#tx_clk#"
        "txd[0]#txd[1]#txd[2]#txd[3]#tx_ctl#rx_clk#rxd[0]#rxd[1]#rxd[2]#rxd[3]#rx_ctl#data[4]#dir#"
        "stp#nxt#data[0]#data[1]#data[2]#data[3]#clk#data[5]#data[6]#data[7]#clk#cmd#data[0]#"
        "data[1]#data[2]#data[3]#unassigned#cd#unassigned#unassigned#scl#sda#mdc#mdio"
    ),
    "PCW_PRESET_BANK0_VOLTAGE": "LVCMOS 3.3V", "PCW_PRESET_BANK1_VOLTAGE": "LVCMOS 1.8V",
    # --- MIO pins 0..53: direction, IO type, pull-up, slew ---
    "PCW_MIO_0_DIRECTION": "<Select>", "PCW_MIO_0_IOTYPE": "<Select>", "PCW_MIO_0_PULLUP": "<Select>", "PCW_MIO_0_SLEW": "<Select>",
    "PCW_MIO_1_DIRECTION": "out", "PCW_MIO_1_IOTYPE": "LVCMOS 3.3V", "PCW_MIO_1_PULLUP": "enabled", "PCW_MIO_1_SLEW": "slow",
    "PCW_MIO_2_DIRECTION": "inout", "PCW_MIO_2_IOTYPE": "LVCMOS 3.3V", "PCW_MIO_2_PULLUP": "disabled", "PCW_MIO_2_SLEW": "slow",
    "PCW_MIO_3_DIRECTION": "inout", "PCW_MIO_3_IOTYPE": "LVCMOS 3.3V", "PCW_MIO_3_PULLUP": "disabled", "PCW_MIO_3_SLEW": "slow",
    "PCW_MIO_4_DIRECTION": "inout", "PCW_MIO_4_IOTYPE": "LVCMOS 3.3V", "PCW_MIO_4_PULLUP": "disabled", "PCW_MIO_4_SLEW": "slow",
    "PCW_MIO_5_DIRECTION": "inout", "PCW_MIO_5_IOTYPE": "LVCMOS 3.3V", "PCW_MIO_5_PULLUP": "disabled", "PCW_MIO_5_SLEW": "slow",
    "PCW_MIO_6_DIRECTION": "out", "PCW_MIO_6_IOTYPE": "LVCMOS 3.3V", "PCW_MIO_6_PULLUP": "disabled", "PCW_MIO_6_SLEW": "slow",
    "PCW_MIO_7_DIRECTION": "<Select>", "PCW_MIO_7_IOTYPE": "<Select>", "PCW_MIO_7_PULLUP": "<Select>", "PCW_MIO_7_SLEW": "<Select>",
    "PCW_MIO_8_DIRECTION": "out", "PCW_MIO_8_IOTYPE": "LVCMOS 3.3V", "PCW_MIO_8_PULLUP": "disabled", "PCW_MIO_8_SLEW": "slow",
    "PCW_MIO_9_DIRECTION": "<Select>", "PCW_MIO_9_IOTYPE": "<Select>", "PCW_MIO_9_PULLUP": "<Select>", "PCW_MIO_9_SLEW": "<Select>",
    "PCW_MIO_10_DIRECTION": "<Select>", "PCW_MIO_10_IOTYPE": "<Select>", "PCW_MIO_10_PULLUP": "<Select>", "PCW_MIO_10_SLEW": "<Select>",
    "PCW_MIO_11_DIRECTION": "<Select>", "PCW_MIO_11_IOTYPE": "<Select>", "PCW_MIO_11_PULLUP": "<Select>", "PCW_MIO_11_SLEW": "<Select>",
    "PCW_MIO_12_DIRECTION": "<Select>", "PCW_MIO_12_IOTYPE": "<Select>", "PCW_MIO_12_PULLUP": "<Select>", "PCW_MIO_12_SLEW": "<Select>",
    "PCW_MIO_13_DIRECTION": "<Select>", "PCW_MIO_13_IOTYPE": "<Select>", "PCW_MIO_13_PULLUP": "<Select>", "PCW_MIO_13_SLEW": "<Select>",
    "PCW_MIO_14_DIRECTION": "in", "PCW_MIO_14_IOTYPE": "LVCMOS 3.3V", "PCW_MIO_14_PULLUP": "enabled", "PCW_MIO_14_SLEW": "slow",
    "PCW_MIO_15_DIRECTION": "out", "PCW_MIO_15_IOTYPE": "LVCMOS 3.3V", "PCW_MIO_15_PULLUP": "enabled", "PCW_MIO_15_SLEW": "slow",
    "PCW_MIO_16_DIRECTION": "out", "PCW_MIO_16_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_16_PULLUP": "enabled", "PCW_MIO_16_SLEW": "slow",
    "PCW_MIO_17_DIRECTION": "out", "PCW_MIO_17_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_17_PULLUP": "enabled", "PCW_MIO_17_SLEW": "slow",
    "PCW_MIO_18_DIRECTION": "out", "PCW_MIO_18_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_18_PULLUP": "enabled", "PCW_MIO_18_SLEW": "slow",
    "PCW_MIO_19_DIRECTION": "out", "PCW_MIO_19_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_19_PULLUP": "enabled", "PCW_MIO_19_SLEW": "slow",
    "PCW_MIO_20_DIRECTION": "out", "PCW_MIO_20_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_20_PULLUP": "enabled", "PCW_MIO_20_SLEW": "slow",
    "PCW_MIO_21_DIRECTION": "out", "PCW_MIO_21_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_21_PULLUP": "enabled", "PCW_MIO_21_SLEW": "slow",
    "PCW_MIO_22_DIRECTION": "in", "PCW_MIO_22_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_22_PULLUP": "enabled", "PCW_MIO_22_SLEW": "slow",
    "PCW_MIO_23_DIRECTION": "in", "PCW_MIO_23_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_23_PULLUP": "enabled", "PCW_MIO_23_SLEW": "slow",
    "PCW_MIO_24_DIRECTION": "in", "PCW_MIO_24_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_24_PULLUP": "enabled", "PCW_MIO_24_SLEW": "slow",
    "PCW_MIO_25_DIRECTION": "in", "PCW_MIO_25_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_25_PULLUP": "enabled", "PCW_MIO_25_SLEW": "slow",
    "PCW_MIO_26_DIRECTION": "in", "PCW_MIO_26_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_26_PULLUP": "enabled", "PCW_MIO_26_SLEW": "slow",
    "PCW_MIO_27_DIRECTION": "in", "PCW_MIO_27_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_27_PULLUP": "enabled", "PCW_MIO_27_SLEW": "slow",
    "PCW_MIO_28_DIRECTION": "inout", "PCW_MIO_28_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_28_PULLUP": "enabled", "PCW_MIO_28_SLEW": "slow",
    "PCW_MIO_29_DIRECTION": "in", "PCW_MIO_29_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_29_PULLUP": "enabled", "PCW_MIO_29_SLEW": "slow",
    "PCW_MIO_30_DIRECTION": "out", "PCW_MIO_30_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_30_PULLUP": "enabled", "PCW_MIO_30_SLEW": "slow",
    "PCW_MIO_31_DIRECTION": "in", "PCW_MIO_31_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_31_PULLUP": "enabled", "PCW_MIO_31_SLEW": "slow",
    "PCW_MIO_32_DIRECTION": "inout", "PCW_MIO_32_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_32_PULLUP": "enabled", "PCW_MIO_32_SLEW": "slow",
    "PCW_MIO_33_DIRECTION": "inout", "PCW_MIO_33_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_33_PULLUP": "enabled", "PCW_MIO_33_SLEW": "slow",
    "PCW_MIO_34_DIRECTION": "inout", "PCW_MIO_34_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_34_PULLUP": "enabled", "PCW_MIO_34_SLEW": "slow",
    "PCW_MIO_35_DIRECTION": "inout", "PCW_MIO_35_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_35_PULLUP": "enabled", "PCW_MIO_35_SLEW": "slow",
    "PCW_MIO_36_DIRECTION": "in", "PCW_MIO_36_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_36_PULLUP": "enabled", "PCW_MIO_36_SLEW": "slow",
    "PCW_MIO_37_DIRECTION": "inout", "PCW_MIO_37_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_37_PULLUP": "enabled", "PCW_MIO_37_SLEW": "slow",
    "PCW_MIO_38_DIRECTION": "inout", "PCW_MIO_38_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_38_PULLUP": "enabled", "PCW_MIO_38_SLEW": "slow",
    "PCW_MIO_39_DIRECTION": "inout", "PCW_MIO_39_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_39_PULLUP": "enabled", "PCW_MIO_39_SLEW": "slow",
    "PCW_MIO_40_DIRECTION": "inout", "PCW_MIO_40_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_40_PULLUP": "enabled", "PCW_MIO_40_SLEW": "slow",
    "PCW_MIO_41_DIRECTION": "inout", "PCW_MIO_41_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_41_PULLUP": "enabled", "PCW_MIO_41_SLEW": "slow",
    "PCW_MIO_42_DIRECTION": "inout", "PCW_MIO_42_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_42_PULLUP": "enabled", "PCW_MIO_42_SLEW": "slow",
    "PCW_MIO_43_DIRECTION": "inout", "PCW_MIO_43_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_43_PULLUP": "enabled", "PCW_MIO_43_SLEW": "slow",
    "PCW_MIO_44_DIRECTION": "inout", "PCW_MIO_44_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_44_PULLUP": "enabled", "PCW_MIO_44_SLEW": "slow",
    "PCW_MIO_45_DIRECTION": "inout", "PCW_MIO_45_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_45_PULLUP": "enabled", "PCW_MIO_45_SLEW": "slow",
    "PCW_MIO_46_DIRECTION": "<Select>", "PCW_MIO_46_IOTYPE": "<Select>", "PCW_MIO_46_PULLUP": "<Select>", "PCW_MIO_46_SLEW": "<Select>",
    "PCW_MIO_47_DIRECTION": "in", "PCW_MIO_47_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_47_PULLUP": "enabled", "PCW_MIO_47_SLEW": "slow",
    "PCW_MIO_48_DIRECTION": "<Select>", "PCW_MIO_48_IOTYPE": "<Select>", "PCW_MIO_48_PULLUP": "<Select>", "PCW_MIO_48_SLEW": "<Select>",
    "PCW_MIO_49_DIRECTION": "<Select>", "PCW_MIO_49_IOTYPE": "<Select>", "PCW_MIO_49_PULLUP": "<Select>", "PCW_MIO_49_SLEW": "<Select>",
    "PCW_MIO_50_DIRECTION": "inout", "PCW_MIO_50_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_50_PULLUP": "enabled", "PCW_MIO_50_SLEW": "slow",
    "PCW_MIO_51_DIRECTION": "inout", "PCW_MIO_51_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_51_PULLUP": "enabled", "PCW_MIO_51_SLEW": "slow",
    "PCW_MIO_52_DIRECTION": "out", "PCW_MIO_52_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_52_PULLUP": "enabled", "PCW_MIO_52_SLEW": "slow",
    "PCW_MIO_53_DIRECTION": "inout", "PCW_MIO_53_IOTYPE": "LVCMOS 1.8V", "PCW_MIO_53_PULLUP": "enabled", "PCW_MIO_53_SLEW": "slow",
    # --- Quad SPI flash (MIO 1..6, feedback clock MIO 8) ---
    "PCW_QSPI_GRP_FBCLK_ENABLE": "1", "PCW_QSPI_GRP_FBCLK_IO": "MIO 8", "PCW_QSPI_GRP_IO1_ENABLE": "0",
    "PCW_QSPI_GRP_IO1_IO": "<Select>", "PCW_QSPI_GRP_SINGLE_SS_ENABLE": "1",
    "PCW_QSPI_GRP_SINGLE_SS_IO": "MIO 1 .. 6", "PCW_QSPI_GRP_SS1_ENABLE": "0",
    "PCW_QSPI_GRP_SS1_IO": "<Select>", "PCW_QSPI_PERIPHERAL_CLKSRC": "IO PLL",
    "PCW_QSPI_PERIPHERAL_DIVISOR0": "5", "PCW_QSPI_PERIPHERAL_ENABLE": "1",
    "PCW_QSPI_PERIPHERAL_FREQMHZ": "200", "PCW_QSPI_QSPI_IO": "MIO 1 .. 6",
    # --- UART0 (MIO 14..15), 115200 baud; UART reference clock ---
    "PCW_UART0_BAUD_RATE": "115200", "PCW_UART0_GRP_FULL_ENABLE": "0", "PCW_UART0_GRP_FULL_IO": "<Select>",
    "PCW_UART0_PERIPHERAL_ENABLE": "1", "PCW_UART0_UART0_IO": "MIO 14 .. 15",
    "PCW_UART_PERIPHERAL_CLKSRC": "IO PLL", "PCW_UART_PERIPHERAL_DIVISOR0": "10",
    "PCW_UART_PERIPHERAL_FREQMHZ": "100", "PCW_UART_PERIPHERAL_VALID": "1",
    # --- Ethernet 0, RGMII (MIO 16..27), MDIO (MIO 52..53) ---
    "PCW_ENET0_ENET0_IO": "MIO 16 .. 27", "PCW_ENET0_GRP_MDIO_ENABLE": "1",
    "PCW_ENET0_GRP_MDIO_IO": "MIO 52 .. 53", "PCW_ENET0_PERIPHERAL_CLKSRC": "IO PLL",
    "PCW_ENET0_PERIPHERAL_DIVISOR0": "8", "PCW_ENET0_PERIPHERAL_DIVISOR1": "1",
    "PCW_ENET0_PERIPHERAL_ENABLE": "1", "PCW_ENET0_PERIPHERAL_FREQMHZ": "1000 Mbps",
    "PCW_ENET0_RESET_ENABLE": "0", "PCW_ENET0_RESET_IO": "<Select>", "PCW_ENET_RESET_ENABLE": "0",
    "PCW_ENET_RESET_POLARITY": "Active Low", "PCW_ENET_RESET_SELECT": "<Select>",
    # --- USB 0, ULPI (MIO 28..39) ---
    "PCW_USB0_PERIPHERAL_ENABLE": "1", "PCW_USB0_PERIPHERAL_FREQMHZ": "60", "PCW_USB0_RESET_ENABLE": "0",
    "PCW_USB0_RESET_IO": "<Select>", "PCW_USB0_USB0_IO": "MIO 28 .. 39", "PCW_USB_RESET_ENABLE": "0",
    "PCW_USB_RESET_POLARITY": "Active Low", "PCW_USB_RESET_SELECT": "<Select>",
    # --- SD 0 (MIO 40..45, card detect MIO 47); SDIO reference clock ---
    "PCW_SD0_GRP_CD_ENABLE": "1", "PCW_SD0_GRP_CD_IO": "MIO 47", "PCW_SD0_GRP_POW_ENABLE": "0",
    "PCW_SD0_GRP_POW_IO": "<Select>", "PCW_SD0_GRP_WP_ENABLE": "0", "PCW_SD0_GRP_WP_IO": "<Select>",
    "PCW_SD0_PERIPHERAL_ENABLE": "1", "PCW_SD0_SD0_IO": "MIO 40 .. 45",
    "PCW_SDIO_PERIPHERAL_CLKSRC": "IO PLL", "PCW_SDIO_PERIPHERAL_DIVISOR0": "20",
    "PCW_SDIO_PERIPHERAL_FREQMHZ": "50", "PCW_SDIO_PERIPHERAL_VALID": "1",
    # --- I2C 0 (MIO 50..51) ---
    "PCW_I2C0_I2C0_IO": "MIO 50 .. 51", "PCW_I2C0_PERIPHERAL_ENABLE": "1", "PCW_I2C0_RESET_ENABLE": "0",
    "PCW_I2C0_RESET_IO": "<Select>", "PCW_I2C_PERIPHERAL_FREQMHZ": "108.333336", "PCW_I2C_RESET_ENABLE": "0",
    "PCW_I2C_RESET_POLARITY": "Active Low", "PCW_I2C_RESET_SELECT": "<Select>",
    # --- GPIO on MIO: disabled in the source ---
    "PCW_GPIO_MIO_GPIO_ENABLE": "0", "PCW_GPIO_MIO_GPIO_IO": "<Select>",
    # --- PS peripherals disabled in the source (no MIO pins) ---
    "PCW_CAN0_PERIPHERAL_ENABLE": "0", "PCW_CAN1_PERIPHERAL_ENABLE": "0", "PCW_ENET1_PERIPHERAL_ENABLE": "0",
    "PCW_NAND_PERIPHERAL_ENABLE": "0", "PCW_NOR_PERIPHERAL_ENABLE": "0", "PCW_SD1_PERIPHERAL_ENABLE": "0",
    "PCW_SPI0_PERIPHERAL_ENABLE": "0", "PCW_SPI1_PERIPHERAL_ENABLE": "0", "PCW_UART1_PERIPHERAL_ENABLE": "0",
    "PCW_USB1_PERIPHERAL_ENABLE": "0",
}

PYNQ_Z2_PS7 = {k: v for k, v in _BASE_TCL.items() if v != "<Select>"}

__all__ = ["PYNQ_Z2_PS7"]
