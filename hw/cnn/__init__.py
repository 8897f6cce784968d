"""The CNN engine (Aristotle / Angel-Eye style): an instruction-driven convolver with a Winograd
F(2x2,3x3) datapath, pooling and element-wise units, and an AXI4 master to external memory.

Where things are:

* :mod:`sparsa.sw.cnn.isa` -- the instruction set and :class:`CNNConfig` (shared with the compiler).
* :mod:`.axi` -- AXI4 master read and write engines (64-bit, INCR bursts).
* :mod:`.window` -- the window walker: CONV/POOL address generation.
* :mod:`.winograd` -- the F(2x2,3x3) input and output transforms (adders only).
* :mod:`.engine` -- :class:`CNNEngine`: fetch, buffers, lanes, pooling, add, output stage.
"""
