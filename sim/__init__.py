"""cocotb testbenches and simulator runners for the generated Verilog."""
