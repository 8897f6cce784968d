"""FPGA boards and build flows."""
