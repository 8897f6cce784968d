"""Benchmarks behind ``sparsa bench`` / ``make bench``: each writes JSON and a table.

* :mod:`.pack` -- packer speed and sizes.
* :mod:`.eie` -- the EIE paper's layers on the PE array (cycles against EIE's).
* :mod:`.ese` -- the ESE-size LSTM (cycles a step against ESE's, on-chip memory, ECP5 plan).
* :mod:`.ese_overlap` -- layer overlap in the LSTM step.
* :mod:`.cnn` -- the CNN engine on VGG16 layers and the digits CNN (against Angel-Eye).
* :mod:`.boards` -- open-flow builds: Fmax and resources per board.
"""
