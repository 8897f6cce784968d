"""Write another pack's weights into a finished bitstream, without re-synthesis.

``sparsa swap-weights BITSTREAM PACKDIR -o NEW`` takes a bitstream from ``sparsa build PACK
--board icebreaker|ulx3s-85f --swappable -o OUT`` (``OUT/top.bin``, ``OUT/top.bit``) and writes
PACKDIR's memory images -- sparse-matrix, pointer and bias memories of every PE, and the boot
ROM holding the layer table and codebooks -- into the block RAMs the build recorded in
``OUT/bram_map.json`` (found next to BITSTREAM, or given with ``--map``). Everything else in
the bitstream stays as it was: swapping the original pack back gives the original bitstream
byte for byte. A pack that does not fit what was built (PE count, layer count, vector length,
memory depths) is refused with a one-line error and nothing is written. iCE40 and ECP5.
"""

from pathlib import Path

from sparsa.boards.swap import MAP_NAME, swap_weights

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("bitstream", metavar="BITSTREAM",
                   help="bitstream from sparsa build --swappable (top.bin, top.bit)")
    p.add_argument("pack", metavar="PACKDIR", help="pack directory to write into it (from sparsa pack)")
    p.add_argument("-o", "--out", required=True, metavar="NEW", help="bitstream to write")
    p.add_argument("--map", default=None, metavar="MAP",
                   help=f"block RAM map (default: {MAP_NAME} next to BITSTREAM)")


def run(args):
    m = swap_weights(args.bitstream, args.pack, args.out, map_path=args.map)
    mems = m["memories"]
    print(f"wrote {args.out}: {args.pack} in {len(mems)} memories ({len(m['tiles'])} block RAM tiles) of "
          f"{Path(args.bitstream).name} ({m['board']}, {m['config']['pes']} PEs)")
    return 0
