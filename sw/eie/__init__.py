"""The EIE engine's specification and software: format, configuration, memory map, packer, golden model.

* :mod:`.format` -- the bit layout of pointer, sparse-matrix and codebook words (one source of truth).
* :mod:`.config` -- :class:`EIEConfig`, the one hardware configuration of a PE array.
* :mod:`.memmap` -- a pack flattened to the per-PE memory images and the layer table the hardware loads.
* :mod:`.pack` -- the EIE packer: a compressed model to a pack directory (images + manifest).
* :mod:`.golden` -- the bit-exact numpy golden model of the PE array.
* :mod:`.work` -- per-PE work and ideal cycles of a layer (load balance, predicted cycles).
"""
