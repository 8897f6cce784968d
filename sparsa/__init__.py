"""sparsa: a hardware generator for compressed neural networks on FPGAs.

Sub-packages (each a directory at the repository root):

* :mod:`sparsa.sw` -- Deep Compression, the EIE memory-image format, packing and the
  bit-exact numpy golden models of every engine.
* :mod:`sparsa.hw` -- the Amaranth generators (EIE PE array, ...).
* :mod:`sparsa.sim` -- cocotb testbenches and runners for the generated Verilog.
* :mod:`sparsa.boards` -- FPGA board and build flows.
"""

__version__ = "0.1.0"
