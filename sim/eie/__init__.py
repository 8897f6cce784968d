"""Simulation of the EIE array's generated Verilog: runner and cocotb testbenches.

* :mod:`.runner` -- build (cached) and run a pack on Verilator or Icarus.
* :mod:`.tb` -- the cocotb testbench of the bare array.
* :mod:`.soc_runner`, :mod:`.soc_tb` -- the same through the AXI4-Lite SoC wrapper.
"""
