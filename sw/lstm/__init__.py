"""The ESE sparse LSTM on the EIE array: fixed-point cell arithmetic, float model, packer and step schedule.

* :mod:`.fixed` -- the bit-exact LSTM cell arithmetic (sigmoid/tanh tables, peepholes, saturation).
* :mod:`.model` -- the float LSTM (the reference) and its loading.
* :mod:`.pack` -- the LSTM packer and its step scheduler: each time step as EIE layers (gates, projection).
"""
