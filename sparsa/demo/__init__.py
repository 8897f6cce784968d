"""The end-to-end demos behind ``sparsa demo`` / ``make demo``.

* :mod:`.mlp` -- the digits MLP: train, deep-compress, pack, golden model and generated Verilog.
* :mod:`.cnn` -- the digits CNN in int8 on the CNN engine.
"""
