"""Software side of sparsa: each engine's specification, compression, packing and golden models.

* :mod:`.errors`, :mod:`.fileio`, :mod:`.progress`, :mod:`.fixedpoint`, :mod:`.images` -- the core:
  user errors, atomic file I/O, progress, fixed-point rounding, memory-image formats.
* :mod:`.compress` -- Deep Compression (pruning, weight sharing, retraining, Huffman).
* :mod:`.model` -- models as they come in (graph format, ONNX import, float models, digits data).
* :mod:`.eie` -- the EIE engine: format, configuration, memory map, packer, golden model, and
  the LSTM mode of the array (cell arithmetic, step scheduler).
* :mod:`.lstm` -- the ESE LSTM front-end: float model, compression and packing.
* :mod:`.cnn` -- the CNN engine: ISA, compiler, instruction-level model, golden model, packs.
"""
