"""The EIE engine's specification and software: format, configuration, memory map, packer, golden model.

* :mod:`.format` -- the bit layout of pointer, sparse-matrix and codebook words (one source of truth).
* :mod:`.config` -- :class:`EIEConfig`, the one hardware configuration of a PE array.
* :mod:`.memmap` -- a pack flattened to the per-PE memory images and the layer table the hardware loads.
* :mod:`.pack` -- the EIE packer: a compressed model to a pack directory (images + manifest).
* :mod:`.golden` -- the bit-exact numpy golden model of the PE array.
* :mod:`.lstm_cell` -- the bit-exact LSTM cell arithmetic of the element-wise unit (ESE).
* :mod:`.lstm_step` -- the LSTM step scheduler: gate row order, one step as two layers, golden model.
* :mod:`.work` -- per-PE work and ideal cycles of a layer (load balance, predicted cycles).
"""
