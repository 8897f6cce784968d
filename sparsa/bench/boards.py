"""`sparsa bench boards`: open-flow builds, Fmax and utilisation.

* ULX3S-85F (ECP5): the 16-PE EIE array on a 256 x 256 layer at 10% density (the issue's Fmax
  configuration; target >= 100 MHz, goal 150 MHz), with the options of the best build so far:
  sparse-matrix memories in block RAM, the multipliers in MULT18X18D blocks with their own
  registers (``--multiplier ecp5``, the default on ECP5), placed and routed for 110 MHz,
  nextpnr seed 5 (router1 does not converge on every placement of this design; see the README);
* iCEBreaker (UP5K): 1, 2 and 4 PEs on a 64 x 64 layer, to find the largest array that fits,
  on the board's own PE (one multiplier, serial reader), sparse-matrix memories in block RAM,
  five nextpnr seeds each (about 15 s a seed): the table gives the best and the median.

Each build is a real bitstream (YoWASP yosys + nextpnr); results in ``boards.json`` / ``boards.md``.
"""

import json
import os
import statistics
from pathlib import Path

import numpy as np

__all__ = ["run_bench", "markdown_table"]

ULX3S_OPTIONS = {"memories": "block", "pnr_mhz": 110, "seed": 5}
ICE40_OPTIONS = {"memories": "block", "seeds": 5}
CASES = [("ulx3s-85f", 16, 256, ULX3S_OPTIONS),
         ("icebreaker", 1, 64, ICE40_OPTIONS), ("icebreaker", 2, 64, ICE40_OPTIONS), ("icebreaker", 4, 64, ICE40_OPTIONS)]


def _pack(out, pes, size, seed):
    from sparsa.sw.eie.pack import pack_matrix
    from sparsa.sw.eie.pack_dir import write_pack
    rng = np.random.default_rng(seed)
    values = np.array([-90, -31, -9, -3, 2, 5, 11, 40, 77])
    w = ((rng.random((size, size)) < 0.1) * rng.choice(values, (size, size))).astype(np.int16)
    write_pack(pack_matrix(w, pes, shift=6), out)


def run_bench(out_dir, args):
    from sparsa.boards.openflow import build
    out = Path(out_dir).resolve()
    work = out / "boards"
    work.mkdir(parents=True, exist_ok=True)
    quick = bool(getattr(args, "quick", False))
    cases = CASES[1:3] if quick else CASES
    rows = []
    cwd = os.getcwd()
    os.chdir(work)                  # YoWASP tools: relative paths only
    try:
        for board, pes, size, options in cases:
            name = f"{board}-{pes}pe"
            _pack(f"{name}-pack", pes, size, seed=pes)
            print(f"[bench boards] {name}: {size}x{size} layer ...", flush=True)
            try:
                rep = build(f"{name}-pack", board, name, **options)
                row = {k: rep.get(k) for k in ("board", "pes", "fmax_mhz", "target_clock_mhz", "pnr_target_mhz",
                                               "memories", "multiplier", "router", "seed", "luts", "ffs", "dsps", "brams", "fits", "times_s",
                                               "fmax_mhz_by_seed")}
                row["layer"] = f"{size}x{size}, 10%"
            except RuntimeError as e:        # does not fit / does not route: say so, go on
                row = {"board": board, "pes": pes, "layer": f"{size}x{size}, 10%", "fits": False,
                       "error": str(e).splitlines()[0]}
            rows.append(row)
            print(f"[bench boards] {name}: {row}", flush=True)
    finally:
        os.chdir(cwd)
    result = {"builds": rows, "fmax_target_mhz": 100, "fmax_goal_mhz": 150}
    (out / "boards.json").write_text(json.dumps(result, indent=2) + "\n")
    md = markdown_table(rows)
    (out / "boards.md").write_text(md)
    print(md)
    return result


def markdown_table(rows):
    """``boards.md``: one line per build; the first line of each failed build's error below."""
    lines = ["# sparsa open-flow builds (YoWASP yosys + nextpnr)", "",
             "| board | PEs | layer | multipliers | nextpnr | P&R target MHz | Fmax MHz | median of the seeds | LUTs | FFs | DSPs | BRAMs | fits |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        by = [e["fmax_mhz"] for e in r.get("fmax_mhz_by_seed") or () if e.get("fmax_mhz") is not None]
        pnr = "-"
        if r.get("router"):
            pnr = f"{r['router']}, seed {r['seed']}" + (f" (best of {len(r['fmax_mhz_by_seed'])})" if len(by) > 1 else "")
        median = f"{statistics.median(by):.2f}" if len(by) > 1 else "-"
        lines.append(f"| {r['board']} | {r['pes']} | {r['layer']} | {r.get('multiplier') or '-'} | {pnr} | {r.get('pnr_target_mhz', '-')} | "
                     f"{r.get('fmax_mhz', '-')} | {median} | {r.get('luts', '-')} | "
                     f"{r.get('ffs', '-')} | {r.get('dsps', '-')} | {r.get('brams', '-')} | {'yes' if r['fits'] else 'no'} |")
    errors = [f"- {r['board']}, {r['pes']} PEs: {r['error']}" for r in rows if r.get("error")]
    return "\n".join(lines + ([""] + errors if errors else [])) + "\n"
