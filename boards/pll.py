"""PLL settings for the open-flow boards' clock plan: the divider values of the ECP5 ``EHXPLLL``
and the iCE40 ``SB_PLL40_*`` that make a wanted frequency from the board's oscillator.

Both searches keep to the ranges the vendors' tools enforce (the same limits as Project
Trellis's ``ecppll`` and Project IceStorm's ``icepll``) and return the closest frequency they can
make, with the exact value it gives, so that a report states the clock the board really gets.

* ECP5 (Lattice TN1263, "ECP5 and ECP5-5G sysCLOCK PLL/DLL Design and User Guide"), feedback
  from CLKOP: ``f_out = f_in * CLKFB_DIV / CLKI_DIV``, ``f_vco = f_out * CLKOP_DIV``; PFD
  (``f_in / CLKI_DIV``) 3.125 to 400 MHz, VCO 400 to 800 MHz, output 10 to 400 MHz; dividers 1 to
  128. CLKOP_CPHASE is ``(CLKOP_DIV - 1) // 2``, as ``ecppll`` writes it.
* iCE40 (Lattice TN1251, "iCE40 sysCLOCK PLL Design and Usage Guide"), SIMPLE feedback:
  ``f_out = f_in * (DIVF + 1) / ((DIVR + 1) * 2**DIVQ)``; PFD 10 to 133 MHz, VCO 533 to 1066 MHz,
  output 16 to 275 MHz; DIVR 0 to 15, DIVF 0 to 127, DIVQ 1 to 6; FILTER_RANGE from the PFD.
"""

from typing import NamedTuple

__all__ = ["Ecp5Pll", "Ice40Pll", "ecp5_pll", "ice40_pll"]


class Ecp5Pll(NamedTuple):
    clki_div: int
    clkfb_div: int
    clkop_div: int
    clkop_cphase: int
    f_out_mhz: float
    f_vco_mhz: float


class Ice40Pll(NamedTuple):
    divr: int
    divf: int
    divq: int
    filter_range: int
    f_out_mhz: float
    f_vco_mhz: float


def ecp5_pll(f_in_mhz, f_want_mhz):
    """The EHXPLLL setting whose output is closest to ``f_want_mhz`` (ties: the lower VCO
    frequency, then the larger phase-detector frequency). ValueError if none is in range."""
    best = None
    for clki in range(1, 129):
        pfd = f_in_mhz / clki
        if not 3.125 <= pfd <= 400:
            continue
        for fb in range(1, 81):
            f_out = pfd * fb
            if not 10 <= f_out <= 400:
                continue
            for op in range(1, 129):
                vco = f_out * op
                if not 400 <= vco <= 800:
                    continue
                key = (abs(f_out - f_want_mhz), vco, -pfd)
                if best is None or key < best[0]:
                    best = (key, Ecp5Pll(clki, fb, op, (op - 1) // 2, f_out, vco))
    if best is None:
        raise ValueError(f"ECP5 PLL: no setting makes {f_want_mhz} MHz from {f_in_mhz} MHz")
    return best[1]


def _ice40_filter(pfd):
    # icepll's table of FILTER_RANGE by phase-detector frequency (TN1251's loop filter settings).
    for limit, value in ((17, 1), (26, 2), (44, 3), (66, 4), (101, 5)):
        if pfd < limit:
            return value
    return 6


def ice40_pll(f_in_mhz, f_want_mhz):
    """The SB_PLL40 setting (SIMPLE feedback) whose output is closest to ``f_want_mhz`` (ties:
    the lower VCO frequency). ValueError if none is in range."""
    best = None
    for divr in range(16):
        pfd = f_in_mhz / (divr + 1)
        if not 10 <= pfd <= 133:
            continue
        for divf in range(128):
            vco = pfd * (divf + 1)
            if not 533 <= vco <= 1066:
                continue
            for divq in range(1, 7):
                f_out = vco / 2 ** divq
                if not 16 <= f_out <= 275:
                    continue
                key = (abs(f_out - f_want_mhz), vco)
                if best is None or key < best[0]:
                    best = (key, Ice40Pll(divr, divf, divq, _ice40_filter(pfd), f_out, vco))
    if best is None:
        raise ValueError(f"iCE40 PLL: no setting makes {f_want_mhz} MHz from {f_in_mhz} MHz")
    return best[1]
