"""Weight swap without re-synthesis: the model's memory images in a finished bitstream's block RAMs.

Every model-dependent bit of an open-flow build lives in block RAM:

``spm<k>``, ``ptr_even<k>``, ``ptr_odd<k>``, ``bias<k>`` (and ``peep<k>`` for LSTM packs)
    PE ``k``'s memories, exactly the arrays of :mod:`sparsa.sw.eie.memmap`, zero-padded to
    the depths the hardware was built with.
``boot``
    The board harness's boot ROM (:func:`boot_image`): per layer the 8 layer-table fields
    and the 16 codebook entries, then the number of layers. At reset the harness replays it
    through the array's load port, so the layer table and codebooks are swappable too.

How a build finds its memories (``sparsa build``, iCE40): the design is synthesised and
placed with a seeded random *placeholder* image in every memory. Random contents cannot be
folded into logic, and they identify the memories: :func:`locate_ice40` matches each block
RAM tile of the placed design against the placeholder images and records which tile holds
which slice (addresses ``a0 ..``, bits ``b0 ..``) of which memory. ``bram_map.json`` keeps
that map, the hardware configuration and a hash of the rest of the configuration; the
finished bitstream is the placeholder bitstream with the real images written in. Swapping
writes any fitting pack the same way, so swapping the original pack back reproduces the
original bitstream byte for byte.
The memory images are :mod:`sparsa.boards.bram_images`; the block RAM tiles of each family's
bitstream (iCE40 ``.asc``, ECP5 Trellis text) and the search for the placeholder memories in
them are :mod:`sparsa.boards.bram_tiles`. This module writes and reads ``bram_map.json``.
"""

from pathlib import Path

from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import read_json

from sparsa.boards.bram_images import (BOOT_FIELDS, boot_image, images_to_memory_map,
                                       mark_block_ram, memory_images, memory_shapes, placeholder_images,
                                       placeholder_memory_map)
from sparsa.boards.bram_tiles import (FAMILIES, AscRam, EcpRam, locate, locate_ice40, read_slices, tile_key,
                                      write_slices)

__all__ = ["MAP_NAME", "BOOT_FIELDS", "FAMILIES", "memory_shapes", "memory_images", "boot_image",
           "placeholder_images", "placeholder_memory_map", "images_to_memory_map", "mark_block_ram",
           "AscRam", "EcpRam", "locate", "finish", "swap_weights", "read_back",
           "locate_ice40", "finish_ice40", "swap_ice40", "read_back_ice40"]

MAP_NAME = "bram_map.json"
MAP_FORMAT = "sparsa-bram-map"


#
# Build side: locate, write the map, finish the bitstream
#

def finish(family, placeholder_bit, images_ph, images_real, cfg, board, out_bit, map_path):
    """Locate the placeholder memories in ``placeholder_bit``, save the map, write ``out_bit``.

    Returns the map dict.
    """
    from dataclasses import asdict
    from sparsa.sw.fileio import atomic_file, write_json
    fam = FAMILIES[family]
    shapes = memory_shapes(cfg)
    ram = fam["ram"](fam["unpack"](Path(placeholder_bit).read_bytes()))
    slices = locate(ram, images_ph, shapes)
    tiles = sorted({tile_key(s["tile"]) for sl in slices.values() for s in sl})
    bram_map = {
        "format": MAP_FORMAT, "version": 1, "family": family, "board": board,
        "config": asdict(cfg),
        "design_sha256": ram.design_hash(tiles),
        "tiles": [list(t) if isinstance(t, tuple) else t for t in tiles],
        "memories": {name: {"depth": shapes[name][0], "width": shapes[name][1], "slices": slices[name]}
                     for name in shapes},
    }
    write_slices(ram, images_real, shapes, slices)
    data = fam["pack"](ram.text())
    with atomic_file(out_bit) as tmp:
        tmp.write_bytes(data)
    write_json(map_path, bram_map)
    return bram_map


def finish_ice40(placeholder_bin, images_ph, images_real, cfg, board, out_bin, map_path):
    return finish("ice40", placeholder_bin, images_ph, images_real, cfg, board, out_bin, map_path)


#
# Swap side
#

def load_map(path, bitstream):
    path = Path(path)
    if not path.is_file():
        raise user_error(bitstream, "block RAM map", f"{path.name} from `sparsa build` next to the bitstream "
                         f"(or --map)", f"no {path}")
    m = read_json(path, "block RAM map")
    if not isinstance(m, dict) or m.get("format") != MAP_FORMAT:
        raise user_error(path, "format", repr(MAP_FORMAT), repr(m.get("format") if isinstance(m, dict) else m))
    if m.get("family") not in FAMILIES:
        raise user_error(path, "family", " or ".join(FAMILIES), repr(m.get("family")))
    # The fields a swap reads, by type (a map edited by hand, or cut short, is one line, not a KeyError).
    for key, kind, what in (("config", dict, "the build's EIEConfig (an object)"),
                            ("memories", dict, "an object of memories"), ("tiles", list, "a list of tiles"),
                            ("design_sha256", str, "a hex digest"), ("board", str, "a board name")):
        if key not in m:
            raise user_error(path, key, what, "none (the field is missing)")
        if not isinstance(m[key], kind):
            raise user_error(path, key, what, f"a {type(m[key]).__name__}")
    for name, mem in m["memories"].items():
        if not (isinstance(mem, dict) and isinstance(mem.get("depth"), int) and isinstance(mem.get("width"), int)
                and isinstance(mem.get("slices"), list)):
            raise user_error(path, f"memories.{name}", "an object with integer depth and width and a slices list",
                             repr(mem)[:80])
    return m


def _map_config(m, where=MAP_NAME):
    from sparsa.sw.eie.config import EIEConfig
    try:
        return EIEConfig.from_dict(m["config"], where)
    except (TypeError, ValueError) as e:     # wrong types inside the config: its checks compare them
        raise user_error(where, "config", "EIEConfig fields of the right types", f"{type(e).__name__}: {e}") from None


def _slices(m):
    shapes = {name: (v["depth"], v["width"]) for name, v in m["memories"].items()}
    return shapes, {name: v["slices"] for name, v in m["memories"].items()}


def _open_bitstream(bitstream, m):
    bitstream = Path(bitstream)
    fam = FAMILIES[m["family"]]
    if not bitstream.is_file():
        raise UserError(f"{bitstream}: file not found")
    unpack = fam["unpack"].__name__
    try:
        ram = fam["ram"](fam["unpack"](bitstream.read_bytes()))
    except (RuntimeError, ValueError) as e:
        raise user_error(bitstream, "bitstream", fam["what"], f"one {unpack} rejects ({e})") from None
    if ram.design_hash(m["tiles"]) != m["design_sha256"]:
        raise user_error(bitstream, "placed design", "the design the block RAM map was made for",
                         "a different design (rebuild, or give the matching --map)")
    return ram


def memory_map_for(pack_dir, m):
    """Load ``pack_dir``, check it fits the build of map ``m``; returns (memory map, images)."""
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.eie.pack_dir import load_pack
    cfg = _map_config(m)
    mm = build_memory_map(load_pack(pack_dir))
    cfg.check_fits(mm, where=str(pack_dir))
    return mm, memory_images(mm, cfg)


def swap_weights(bitstream, pack_dir, out, map_path=None):
    """Write ``pack_dir``'s images into ``bitstream`` (iCE40 or ECP5, as the map says); the
    result goes (atomically) to ``out``. Returns the map."""
    from sparsa.sw.fileio import atomic_file, check_outputs
    map_path = map_path or Path(bitstream).parent / MAP_NAME
    check_outputs([("-o", out)], [("BITSTREAM", bitstream), ("PACK", pack_dir), ("--map", map_path)])
    m = load_map(map_path, bitstream)
    _, images = memory_map_for(pack_dir, m)
    ram = _open_bitstream(bitstream, m)
    shapes, slices = _slices(m)
    write_slices(ram, images, shapes, slices)
    data = FAMILIES[m["family"]]["pack"](ram.text())
    with atomic_file(out) as tmp:
        tmp.write_bytes(data)
    return m


def read_back(bitstream, map_path=None):
    """The memory images held by ``bitstream`` (``{name: uint64 array}``) and the build config."""
    m = load_map(map_path or Path(bitstream).parent / MAP_NAME, bitstream)
    ram = _open_bitstream(bitstream, m)
    shapes, slices = _slices(m)
    return read_slices(ram, shapes, slices), _map_config(m)


swap_ice40 = swap_weights
read_back_ice40 = read_back
