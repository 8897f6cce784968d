"""sparsa: a hardware generator for compressed neural networks on FPGAs.

Sub-packages (hw, sw, sim and boards are directories at the repository root):

* :mod:`sparsa.sw` -- each engine's specification (formats, configuration), Deep Compression,
  packing and the bit-exact numpy golden models.
* :mod:`sparsa.hw` -- the Amaranth generators (EIE PE array, CNN engine, SoC wrappers).
* :mod:`sparsa.sim` -- cocotb testbenches and runners for the generated Verilog.
* :mod:`sparsa.boards` -- FPGA board and build flows.
* :mod:`sparsa.runtime`, :mod:`sparsa.report` -- the host runtime and the HTML report.
* :mod:`sparsa.demo`, :mod:`sparsa.bench` -- the end-to-end demos and the benchmarks.
* :mod:`sparsa.cli` -- the ``sparsa`` command line, one module per sub-command.
"""

__version__ = "0.1.0"
