"""Simulation of the CNN engine's generated Verilog: runner and cocotb testbenches.

* :mod:`.runner` -- build (cached) and run a program on Verilator or Icarus.
* :mod:`.tb` -- the cocotb testbench of the engine with an AXI RAM model.
* :mod:`.soc_tb` -- the same through the AXI4-Lite SoC wrapper.
"""
