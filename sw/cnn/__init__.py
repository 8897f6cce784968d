"""The CNN engine's specification and software: ISA, compiler, instruction-level model, golden model.

* :mod:`.config` -- :class:`CNNConfig`, the engine's hardware parameters (shared with the hardware generator).
* :mod:`.isa` -- the instruction set.
* :mod:`.compiler` -- the CNN compiler: an int8 graph to a program of instructions and a DRAM image.
* :mod:`.executor` -- the instruction-level model (cycle counts, background SAVEs).
* :mod:`.golden` -- the bit-exact numpy golden model of a quantised CNN graph.
* :mod:`.compress` -- int8 calibration and pruning of a float CNN graph.
* :mod:`.pack` -- CNN packs (program, DRAM image, manifest).
* :mod:`.winograd` -- the F(2x2,3x3) transforms as the hardware computes them.
"""
