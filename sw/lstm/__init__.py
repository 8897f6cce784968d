"""The ESE sparse LSTM front-end: compression and packing onto the EIE array.

* :mod:`.pack` -- load-balanced compression of an LSTM and its packing as two EIE layers a step.

The float LSTM (the reference) is :mod:`sparsa.sw.model.lstm`.

What the array runs each step, and the bit-exact arithmetic of its element-wise unit, belong to
the EIE engine: :mod:`sparsa.sw.eie.lstm_step` (the step scheduler and its golden model) and
:mod:`sparsa.sw.eie.lstm_cell` (the cell arithmetic, the specification of
:mod:`sparsa.hw.eie.lstm_ew`).
"""
