"""The EIE sparse matrix x sparse vector PE array (Han et al., ISCA'16), as an Amaranth generator.

Where things are:

* :mod:`.config` -- :class:`EIEConfig`, the one frozen parameter set (generator, runner, tests).
* :mod:`.lnzd` -- leading-non-zero detection: the 4-ary LNZD tree.
* :mod:`.scanner` -- the activation scanner: reads N activations a cycle, broadcasts the nonzeros.
* :mod:`.act_queue` -- the per-PE activation queue.
* :mod:`.pe` -- one processing element, built from
  :mod:`.pointer` (even/odd pointer banks), :mod:`.spm_reader` (64-bit words, padding skipped) or
  :mod:`.spm_reader_serial` (EIE's one entry a cycle, for small FPGAs; ``cfg.reader``)
  and :mod:`.arith` (codebook, multiply, accumulate with bypass, output stage).
* :mod:`.top` -- :class:`EIEArray`: central control (input load, layer sequencing, output
  stream), the layer table and N PEs, with the host ports.
* :mod:`.verilog` -- Verilog generation.
"""
