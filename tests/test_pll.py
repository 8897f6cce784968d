"""PLL settings for the open-flow boards (boards/pll.py): every answer is inside the vendor's
ranges and makes the frequency it claims; the boards' link clocks come out exact; settings that
Trellis's ecppll and IceStorm's icepll wrote for the same requests (in public designs) make the
same frequency."""

import pytest

from sparsa.boards.systems import SYSTEMS
from sparsa.boards.pll import ecp5_pll, ice40_pll


@pytest.mark.parametrize("f_in,f_want", [(25, 75), (25, 60), (12, 16), (25, 120), (25, 50), (25, 133.3)])
def test_ecp5_settings_are_in_range_and_make_what_they_say(f_in, f_want):
    p = ecp5_pll(f_in, f_want)
    assert 3.125 <= f_in / p.clki_div <= 400 and 400 <= p.f_vco_mhz <= 800 and 10 <= p.f_out_mhz <= 400
    assert p.f_out_mhz == pytest.approx(f_in * p.clkfb_div / p.clki_div)
    assert p.f_vco_mhz == pytest.approx(p.f_out_mhz * p.clkop_div)
    assert p.clkop_cphase == (p.clkop_div - 1) // 2


@pytest.mark.parametrize("f_in,f_want", [(12, 24), (12, 36), (12, 48), (12, 30), (12, 16)])
def test_ice40_settings_are_in_range_and_make_what_they_say(f_in, f_want):
    p = ice40_pll(f_in, f_want)
    pfd = f_in / (p.divr + 1)
    assert 10 <= pfd <= 133 and 533 <= p.f_vco_mhz <= 1066 and 16 <= p.f_out_mhz <= 275
    assert p.f_out_mhz == pytest.approx(f_in * (p.divf + 1) / ((p.divr + 1) * 2 ** p.divq))
    assert p.filter_range == 1                  # a 12 MHz PFD (< 17 MHz in icepll's table)


def test_the_boards_link_clocks_are_exact():
    # The link's bit time is a whole number of cycles only at these exact clocks.
    ice, ulx = SYSTEMS["icebreaker"].default_mhz, SYSTEMS["ulx3s-85f"].default_mhz
    assert ice40_pll(12, ice).f_out_mhz == ice and (ice * 1e6) % 3_000_000 == 0
    assert ecp5_pll(25, ulx).f_out_mhz == ulx and (ulx * 1e6) % 3_000_000 == 0


def test_settings_from_the_vendors_tools_make_the_same_frequency():
    # ecppll -i 12 -o 16 wrote CLKI_DIV 3, CLKFB_DIV 4, CLKOP_DIV 37 (olofk/serv); 25 -> 120 MHz
    # with CLKI_DIV 5, CLKFB_DIV 24, CLKOP_DIV 5 (a public ULX3S design). Ours need not be the
    # same dividers, but the same output.
    assert ecp5_pll(12, 16).f_out_mhz == pytest.approx(12 * 4 / 3)
    assert ecp5_pll(25, 120).f_out_mhz == pytest.approx(25 * 24 / 5)


def test_out_of_range_requests_get_the_closest_and_impossible_inputs_say_so():
    assert ecp5_pll(25, 900).f_out_mhz == 400 and ice40_pll(12, 5).f_out_mhz == 12 * 86 / 64   # the lowest
    with pytest.raises(ValueError, match="no setting makes 50 MHz from 2 MHz"):
        ecp5_pll(2, 50)                     # no divider brings the PFD up to 3.125 MHz
    with pytest.raises(ValueError, match="no setting makes 24 MHz from 5 MHz"):
        ice40_pll(5, 24)                    # the PFD is below 10 MHz whatever DIVR is
