"""The CNN engine (Aristotle / Angel-Eye style): an instruction-driven convolver with a Winograd
F(2x2,3x3) datapath, pooling and element-wise units, and an AXI4 master to external memory.

Where things are:

* :mod:`sparsa.sw.cnn.isa` -- the instruction set and :class:`CNNConfig` (shared with the compiler).
* :mod:`.axi` -- AXI4 channel signatures and the master read and write engines (64-bit, INCR bursts).
* :mod:`.window` -- the window walker: CONV/POOL address generation.
* :mod:`.winograd` -- the F(2x2,3x3) input and output transforms (adders only).
* :mod:`.sequencer`, :mod:`.load`, :mod:`.lanes`, :mod:`.output`, :mod:`.store` -- the units:
  fetch/decode/dispatch, LOAD, the compute lanes, the output stage, the background SAVE.
* :mod:`.engine` -- :class:`CNNEngine`: the composition (units, buffers, counters, AXI ports).
"""
