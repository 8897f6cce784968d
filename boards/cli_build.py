"""Build a bitstream for a board through the open flow (YoWASP yosys + nextpnr).

``sparsa build PACKDIR --board icebreaker|ulx3s-85f -o OUT`` generates the EIE array with
the pack's weights as memory contents, wraps it in a small board harness and runs synthesis,
place and route and packing; ``OUT/report.json`` holds ``fmax_mhz``, ``luts``, ``ffs``,
``dsps``, ``brams`` and the target clock. ``--no-build`` writes the sources, constraints and
``build.sh`` only.
"""

import sys

from .openflow import BOARDS, build

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("pack", metavar="PACKDIR", help="pack directory (from sparsa pack)")
    p.add_argument("--board", required=True, choices=sorted(BOARDS), help="target board")
    p.add_argument("-o", "--out", required=True, metavar="OUT", help="build directory")
    p.add_argument("--no-build", action="store_true", help="write sources and build.sh only")


def run(args):
    say = lambda msg: print(f"[build] {msg}", file=sys.stderr, flush=True)
    rep = build(args.pack, args.board, args.out, do_build=not args.no_build, progress=say)
    if rep["built"]:
        print(f"{args.board}: Fmax {rep['fmax_mhz']} MHz (target {rep['target_clock_mhz']} MHz), "
              f"{rep['luts']} LUTs, {rep['ffs']} FFs, {rep['dsps']} DSPs, {rep['brams']} BRAMs "
              f"-> {rep['bitstream']}")
    else:
        print(f"wrote the {args.board} build tree to {args.out} (run build.sh there)")
    return 0
