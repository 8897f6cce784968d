"""The link system's clock when the user names none: the fastest that nextpnr confirms.

A first build runs at the board's default clock (60 MHz on the ULX3S, 24 MHz on the
iCEBreaker). nextpnr's Fmax for it, less :data:`~sparsa.boards.systems.MARGIN` (10%), gives the
fastest clock the PLL makes exactly and the UART divides exactly
(:func:`~sparsa.boards.systems.fastest_clock`). If that differs from the default (higher, or
lower when the default missed timing), a second build places and routes at it, and is kept
when nextpnr meets timing there. The report's ``clock.search`` lists both tries. Two builds
take twice the time: ``--clock-mhz`` skips the search.
"""

import shutil
from pathlib import Path

from sparsa.sw.fileio import write_json

from sparsa.boards.systems import fastest_clock

__all__ = ["build_at_fastest_clock"]

_TRY = "faster-clock"          # the second build's directory inside the first's, while it runs


def _try(rep):
    c = rep["clock"]
    return {"pll_mhz": c["pll_mhz"], "achieved_mhz": c["achieved_mhz"], "timing_met": c["timing_met"]}


def build_at_fastest_clock(build, pack_dir, board, out, *, say=lambda msg: None, **options):
    """``build`` (:func:`sparsa.boards.openflow.build`) of the link system into ``out`` at the
    fastest clock nextpnr confirms (module docstring); returns the kept build's report."""
    out = Path(out)
    first = build(pack_dir, board, out, top="link", clock_mhz=None, progress=say, **options)
    clock = first["clock"]
    tries = [_try(first)]
    want = fastest_clock(board, clock["achieved_mhz"] or 0)
    kept = first
    if want is not None and want != clock["pll_mhz"] and (want > clock["pll_mhz"] or not clock["timing_met"]):
        say(f"nextpnr reached {clock['achieved_mhz']} MHz at {clock['pll_mhz']:g} MHz: building again at "
            f"{want:g} MHz (the fastest with 10% margin that the PLL makes and the UART divides)")
        other = out / _TRY
        try:
            second = build(pack_dir, board, other, top="link", clock_mhz=want, progress=say, **options)
        except RuntimeError as e:               # place and route failed at the faster clock
            tries.append({"pll_mhz": want, "error": str(e).strip().splitlines()[0]})
            second = None
        if second is not None:
            tries.append(_try(second))
        if second is not None and second["clock"]["timing_met"]:
            for p in out.iterdir():
                if p.name != _TRY:
                    shutil.rmtree(p) if p.is_dir() else p.unlink()
            for p in other.iterdir():
                p.rename(out / p.name)
            kept = {k: (str(out) + v[len(str(other)):] if isinstance(v, str) and v.startswith(str(other)) else v)
                    for k, v in second.items()}
        shutil.rmtree(other, ignore_errors=True)
        say(f"kept {kept['clock']['pll_mhz']:g} MHz" + ("" if kept is first else
                                                       f" (timing met at {kept['clock']['achieved_mhz']} MHz)"))
    kept["clock"]["search"] = tries
    write_json(out / "report.json", kept)
    return kept
