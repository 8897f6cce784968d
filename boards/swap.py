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

iCE40 tiles (SB_RAM40_4K, 4096 bits): yosys's ``$__ICE40_RAM4K_`` mapping keeps a logical
bit vector ``INIT[A * w + j]`` (word ``A`` of width ``w`` in 2, 4, 8, 16; bit ``j``) and
stores logical bit ``L`` in word ``L >> 4`` of the primitive at lane ``bitrev4(L & 15)``;
the ``.asc`` file's ``.ram_data X Y`` block holds the primitive's 256 words as 16 lines of
64 hex digits (line ``i`` = words ``16 i .. 16 i + 15``, the last word first).

ECP5 tiles (DP16KD, 18432 bits): the Trellis text configuration (``ecpunpack``) holds each used
block RAM as ``.bram_init N`` followed by 2048 9-bit words (3 hex digits, 8 a line). Tile bit
``p`` is bit ``p % 9`` of word ``p // 9`` (nextpnr packs yosys's ``INITVAL_xx`` 18-bit words
as two 9-bit halves, low half first). A port of width ``w`` in 9, 18, 36 reads word ``A`` bit
``j`` from tile bit ``A * w + j``; widths 1, 2, 4 skip the ninth (parity) bit of every 9-bit
word: bit ``A * w + j`` of the 16384 data bits, ``8`` a word (Trellis's ``ecpbram`` uses the
same layout).
"""

import hashlib
import json
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from sparsa.sw.errors import UserError, user_error

__all__ = ["MAP_NAME", "BOOT_FIELDS", "FAMILIES", "memory_shapes", "memory_images", "boot_image",
           "placeholder_images", "placeholder_memory_map", "images_to_memory_map", "mark_block_ram", "check_fits",
           "AscRam", "EcpRam", "locate", "finish", "swap_weights", "read_back",
           "locate_ice40", "finish_ice40", "swap_ice40", "read_back_ice40"]

MAP_NAME = "bram_map.json"
MAP_FORMAT = "sparsa-bram-map"
BOOT_FIELDS = 24           # per layer: 8 layer-table fields, then 16 codebook entries
BOOT_WIDTH = 16
MODEL_MEMORIES = ("spm", "ptr_even", "ptr_odd", "bias", "peep")


#
# Memory images
#

def memory_shapes(cfg):
    """``{name: (depth, width)}`` of every swappable memory of a build with config ``cfg``."""
    from sparsa.sw.eie.format import BIAS_BITS
    shapes = {}
    for k in range(cfg.pes):
        shapes[f"spm{k}"] = (cfg.spm_words, 64)
        shapes[f"ptr_even{k}"] = (cfg.ptr_words, cfg.pointer_bits)
        shapes[f"ptr_odd{k}"] = (cfg.ptr_words, cfg.pointer_bits)
        shapes[f"bias{k}"] = (cfg.bias_words, BIAS_BITS)
        if cfg.lstm:
            shapes[f"peep{k}"] = (cfg.max_rows_pe, 16)
    shapes["boot"] = (BOOT_FIELDS * cfg.max_layers + 1, BOOT_WIDTH)
    return shapes


def _masked(values, depth, width):
    out = np.zeros(depth, dtype=np.uint64)
    v = np.asarray(values).astype(np.int64).astype(np.uint64)
    out[:v.size] = v
    return out & np.uint64((1 << width) - 1) if width < 64 else out


def boot_image(mm, cfg):
    """The boot ROM words (unsigned 16-bit) for memory map ``mm`` on hardware ``cfg``."""
    words = np.zeros(BOOT_FIELDS * cfg.max_layers + 1, dtype=np.int64)
    for li, layer in enumerate(mm.layers):
        words[li * BOOT_FIELDS:li * BOOT_FIELDS + 8] = layer.field_values()
        words[li * BOOT_FIELDS + 8:(li + 1) * BOOT_FIELDS] = np.asarray(layer.codebook, dtype=np.int64)
    words[-1] = len(mm.layers)
    return words & 0xFFFF


def memory_images(mm, cfg):
    """``{name: uint64 array}``: the contents of every swappable memory for ``mm``."""
    shapes = memory_shapes(cfg)
    img = {}
    for k in range(cfg.pes):
        img[f"spm{k}"] = mm.spm[k].astype(np.uint64)
        img[f"ptr_even{k}"] = mm.ptr_even[k]
        img[f"ptr_odd{k}"] = mm.ptr_odd[k]
        img[f"bias{k}"] = mm.bias[k]
        if cfg.lstm:
            img[f"peep{k}"] = mm.peep[k] if mm.peep is not None else np.zeros(0, np.int64)
    img["boot"] = boot_image(mm, cfg)
    return {name: _masked(img[name], *shapes[name]) for name in shapes}


def placeholder_images(cfg, seed=0x5BA55A):
    """Seeded random contents for every memory (see the module docstring)."""
    rng = np.random.default_rng(seed)
    out = {}
    for name, (depth, width) in memory_shapes(cfg).items():
        v = rng.integers(0, 1 << 63, depth, dtype=np.uint64) * np.uint64(2) + rng.integers(0, 2, depth, dtype=np.uint64)
        out[name] = v & np.uint64((1 << width) - 1) if width < 64 else v
    return out


def _signed(v, width):
    v = np.asarray(v, dtype=np.uint64)
    if width >= 64:
        return v.astype(np.int64)
    s = v.astype(np.int64)
    return np.where(s >= (1 << (width - 1)), s - (1 << width), s)


def images_to_memory_map(images, cfg):
    """A :class:`~sparsa.sw.eie.memmap.MemoryMap` from memory images (inverse of :func:`memory_images`).

    The layers come from the boot ROM (its last word is the layer count); every memory keeps
    the hardware depth.
    """
    from sparsa.sw.eie.format import BIAS_BITS
    from sparsa.sw.eie.memmap import LAYER_FIELDS, LayerEntry, MemoryMap
    boot = images["boot"].astype(np.int64)
    n_layers = int(boot[-1])
    layers = []
    for li in range(n_layers):
        f = boot[li * BOOT_FIELDS:li * BOOT_FIELDS + 8]
        cb = _signed(boot[li * BOOT_FIELDS + 8:(li + 1) * BOOT_FIELDS], 16).astype(np.int16)
        layers.append(LayerEntry(**{name: int(f[i]) for i, name in enumerate(LAYER_FIELDS)}, codebook=cb))
    n = cfg.pes
    return MemoryMap(
        pes=n, layers=layers,
        spm=[images[f"spm{k}"].astype(np.uint64) for k in range(n)],
        ptr_even=[images[f"ptr_even{k}"].astype(np.int64) for k in range(n)],
        ptr_odd=[images[f"ptr_odd{k}"].astype(np.int64) for k in range(n)],
        bias=[_signed(images[f"bias{k}"], BIAS_BITS) for k in range(n)],
        peep=[_signed(images[f"peep{k}"], 16) for k in range(n)] if cfg.lstm else None)


def placeholder_memory_map(cfg, images):
    """The memory map the build synthesises: placeholder memories, an all-zero layer table.

    The layer table and codebook registers power up as zero (their values arrive from the
    boot ROM), so the logic around them does not depend on the model either.
    """
    from sparsa.sw.eie.memmap import LayerEntry
    mm = images_to_memory_map({**images, "boot": np.zeros_like(images["boot"])}, cfg)
    mm.layers = [LayerEntry(0, 0, 0, 0, 0, 0, 0, codebook=np.zeros(16, np.int16)) for _ in range(cfg.max_layers)]
    return mm


def mark_block_ram(verilog_text, names=MODEL_MEMORIES):
    """Ask yosys to put the memories ``names`` (default: every model memory) in block RAM,
    however small they are."""
    from sparsa.boards.memplan import mark_ram_style
    return mark_ram_style(verilog_text, dict.fromkeys(names, "block"))


#
# Fit check
#

def check_fits(mm, cfg, where):
    """Refuse (one-line :class:`UserError`) a memory map that does not fit the built hardware."""
    from sparsa.sw.eie.format import BIAS_BITS
    checks = [
        ("pes", mm.pes, cfg.pes, "=="),
        ("layers", len(mm.layers), cfg.max_layers, "<="),
        ("vector length (max cols/rows)", mm.max_cols, cfg.max_cols, "<="),
        ("local rows per PE", mm.max_rows_pe, cfg.max_rows_pe, "<="),
        ("sparse-matrix words per PE", mm.spm_words, cfg.spm_words, "<="),
        ("pointer words per bank", mm.ptr_words, cfg.ptr_words, "<="),
        ("bias words per PE", mm.bias_words, cfg.bias_words, "<="),
        ("activation words per PE", mm.act_words, cfg.act_depth, "<="),
        ("pointer_bits", mm.pointer_bits, cfg.pointer_bits, "<="),
        ("lstm (peephole memory)", int(mm.peep is not None), int(cfg.lstm), "=="),
    ]
    for name, have, cap, op in checks:
        if (have != cap) if op == "==" else (have > cap):
            limit = f"{cap} (as built)" if op == "==" else f"at most {cap} (as built)"
            raise user_error(where, name, limit, have)
    for li, layer in enumerate(mm.layers):
        if not 0 <= layer.shift < 64:
            raise user_error(where, f"layer {li} shift", "0..63", layer.shift)
    limit = 1 << BIAS_BITS - 1
    for k, b in enumerate(mm.bias):
        if b.size and (b.min() < -limit or b.max() >= limit):
            raise user_error(where, f"bias (PE {k})", f"{BIAS_BITS}-bit values", int(np.abs(b).max()))


#
# Block RAM tiles in the unpacked bitstream text
#
# Both containers give a tile as a flat uint8 bit vector (``read``/``write``) and, per port
# width ``w`` in ``WIDTHS``, ``index(w)``: the (words, w) matrix of the tile bit indices that
# word ``A`` bit ``j`` of a port of that width reads.

def _key(tile):
    return tuple(int(v) for v in tile) if isinstance(tile, (list, tuple)) else int(tile)


def _bitrev4(x):
    return ((x & 1) << 3) | ((x & 2) << 1) | ((x & 4) >> 1) | ((x & 8) >> 3)


_L = np.arange(4096)
# Logical bit L -> bit index in the primitive's 256 x 16 words (word * 16 + lane).
_PHYS = ((_L >> 4) << 4) | np.array([_bitrev4(v) for v in range(16)])[_L & 15]


class AscRam:
    """The ``.ram_data`` blocks of an iCE40 ``.asc`` text, readable and writable as tiles.

    A tile is ``(x, y)``; its bits are yosys's logical ``INIT`` vector (4096 bits).
    """

    family = "ice40"
    WIDTHS = (16, 8, 4, 2)

    def __init__(self, text):
        self.lines = text.splitlines(keepends=True)
        self.blocks = {}       # (x, y) -> index of the .ram_data line
        for i, line in enumerate(self.lines):
            if line.startswith(".ram_data "):
                _, x, y = line.split()
                self.blocks[(int(x), int(y))] = i
        self.tiles = set(self.blocks)
        for i, line in enumerate(self.lines):
            if line.startswith(".ramb_tile "):
                _, x, y = line.split()
                self.tiles.add((int(x), int(y)))

    @staticmethod
    def index(w):
        return np.arange(4096).reshape(4096 // w, w)

    def text(self):
        return "".join(self.lines)

    def read(self, tile):
        """The tile's 4096 logical bits (uint8); zeros for a tile without a data block."""
        words = np.zeros(256, dtype=np.uint16)
        i = self.blocks.get(_key(tile))
        if i is not None:
            for row in range(16):
                h = self.lines[i + 1 + row].strip()
                for c in range(16):      # the last word first
                    words[row * 16 + c] = int(h[(15 - c) * 4:(16 - c) * 4], 16)
        phys = ((words[:, None] >> np.arange(16, dtype=np.uint16)) & 1).astype(np.uint8).reshape(-1)
        return phys[_PHYS]

    def write(self, tile, bits):
        phys = np.zeros(4096, dtype=np.uint8)
        phys[_PHYS] = bits
        words = (phys.reshape(256, 16).astype(np.uint32) << np.arange(16, dtype=np.uint32)).sum(axis=1)
        rows = ["".join(f"{int(words[row * 16 + c]):04x}" for c in range(15, -1, -1)) + "\n" for row in range(16)]
        tile = _key(tile)
        i = self.blocks.get(tile)
        if i is None:
            # icepack leaves all-zero tiles out of the text; add the block at the end.
            if self.lines and not self.lines[-1].endswith("\n"):
                self.lines[-1] += "\n"
            self.blocks[tile] = len(self.lines)
            self.lines += [f".ram_data {tile[0]} {tile[1]}\n"] + rows
        else:
            self.lines[i + 1:i + 17] = rows

    def design_hash(self, tiles):
        """sha256 of everything but the data of ``tiles`` (identifies the placed design)."""
        skip = set()
        for t in tiles:
            i = self.blocks.get(_key(t))
            if i is not None:
                skip.update(range(i, i + 17))
        h = hashlib.sha256()
        for i, line in enumerate(self.lines):
            if i not in skip:
                h.update(line.encode())
        return h.hexdigest()


_ECP_WORDS, _ECP_BITS = 2048, 9
_ECP_DATA = np.arange(_ECP_WORDS * _ECP_BITS).reshape(_ECP_WORDS, _ECP_BITS)[:, :8].reshape(-1)


class EcpRam:
    """The ``.bram_init N`` blocks of an ECP5 Trellis text configuration, as tiles.

    A tile is the block RAM number ``N``; its bits are the 18432 bits of the 2048 9-bit words
    (tile bit ``p`` = bit ``p % 9`` of word ``p // 9``; see the module docstring).
    """

    family = "ecp5"
    WIDTHS = (36, 18, 9, 4, 2, 1)

    def __init__(self, text):
        self.lines = text.splitlines(keepends=True)
        self._scan()

    def _scan(self):
        self.blocks = {}       # N -> (index of the .bram_init line, index past its data)
        n = len(self.lines)
        for i, line in enumerate(self.lines):
            if line.startswith(".bram_init "):
                j = i + 1
                while j < n and not self.lines[j].startswith("."):
                    j += 1
                self.blocks[int(line.split()[1])] = (i, j)
        self.tiles = set(self.blocks)

    @staticmethod
    def index(w):
        if w >= _ECP_BITS:
            return np.arange(_ECP_WORDS * _ECP_BITS).reshape(-1, w)
        return _ECP_DATA.reshape(-1, w)

    def text(self):
        return "".join(self.lines)

    def read(self, tile):
        """The tile's 18432 bits (uint8); zeros for a block RAM without an init block."""
        words = np.zeros(_ECP_WORDS, dtype=np.uint16)
        span = self.blocks.get(_key(tile))
        if span is not None:
            vals = "".join(self.lines[span[0] + 1:span[1]]).split()
            if len(vals) != _ECP_WORDS:
                raise RuntimeError(f".bram_init {tile}: {len(vals)} words, expected {_ECP_WORDS}")
            words[:] = [int(v, 16) for v in vals]
        return ((words[:, None] >> np.arange(_ECP_BITS, dtype=np.uint16)) & 1).astype(np.uint8).reshape(-1)

    def write(self, tile, bits):
        words = (np.asarray(bits, dtype=np.uint32).reshape(_ECP_WORDS, _ECP_BITS)
                 << np.arange(_ECP_BITS, dtype=np.uint32)).sum(axis=1)
        # Trellis's own layout (ChipConfig::to_string): 8 words a line, then an empty line.
        rows = [" ".join(f"{int(v):03x}" for v in words[r:r + 8]) + "\n" for r in range(0, _ECP_WORDS, 8)] + ["\n"]
        tile = _key(tile)
        span = self.blocks.get(tile)
        if span is None:
            # Not in the text (an unused block RAM): add it before the tile groups.
            at = next((i for i, l in enumerate(self.lines) if l.startswith(".tile_group")), len(self.lines))
            if at == len(self.lines) and self.lines and not self.lines[-1].endswith("\n"):
                self.lines[-1] += "\n"
            self.lines[at:at] = [f".bram_init {tile}\n"] + rows
        else:
            self.lines[span[0] + 1:span[1]] = rows
        self._scan()

    def design_hash(self, tiles):
        """sha256 of everything but the init blocks of ``tiles`` (identifies the placed design)."""
        skip = set()
        for t in tiles:
            span = self.blocks.get(_key(t))
            if span is not None:
                skip.update(range(*span))
        h = hashlib.sha256()
        for i, line in enumerate(self.lines):
            if i not in skip:
                h.update(line.encode())
        return h.hexdigest()


def _bits(values, width):
    """(depth, width) uint8 bit matrix of unsigned words."""
    v = np.asarray(values, dtype=np.uint64)
    return ((v[:, None] >> np.arange(width, dtype=np.uint64)) & np.uint64(1)).astype(np.uint8)


def locate(ram, images, shapes):
    """Find every memory of ``images`` (placeholders) in the tiles of ``ram`` (:class:`AscRam`, :class:`EcpRam`).

    Returns ``{name: [slice, ...]}`` with slice = ``{"tile": .., "w": .., "a0": .., "b0": ..,
    "na": .., "nb": ..}``: word ``A < na`` bit ``j < nb`` of the tile read as ``w`` bits wide
    holds memory word ``a0 + A`` bit ``b0 + j``. Raises RuntimeError when a memory bit is not
    found (e.g. folded into logic) or a tile matches more than one slice.
    """
    bits = {name: _bits(v, shapes[name][1]) for name, v in images.items()}
    found = {name: [] for name in images}
    covered = {name: np.zeros(b.shape, dtype=np.int32) for name, b in bits.items()}
    for tile in sorted(ram.blocks):
        t = ram.read(tile)
        if not t.any():
            continue
        matches = []
        for w in ram.WIDTHS:
            idx = ram.index(w)
            words = t[idx]
            depth_w = idx.shape[0]
            for name, b in bits.items():
                d, width = b.shape
                for b0 in range(0, width, w):
                    nb = min(w, width - b0)
                    for a0 in range(0, d, depth_w):
                        na = min(depth_w, d - a0)
                        if not np.array_equal(words[:na, :nb], b[a0:a0 + na, b0:b0 + nb]):
                            continue
                        rest = t.copy()
                        rest[idx[:na, :nb]] = 0
                        if not rest.any():
                            matches.append({"name": name, "tile": list(tile) if isinstance(tile, tuple) else tile,
                                            "w": w, "a0": a0, "b0": b0, "na": na, "nb": nb})
        if len(matches) > 1:
            raise RuntimeError(f"block RAM tile {tile} matches {len(matches)} memory slices "
                               f"({', '.join(m['name'] for m in matches)}): placeholder contents too small to tell")
        for m in matches:
            name = m.pop("name")
            found[name].append(m)
            covered[name][m["a0"]:m["a0"] + m["na"], m["b0"]:m["b0"] + m["nb"]] += 1
    missing = [f"{name} ({int((c == 0).sum())} of {c.size} bits)" for name, c in covered.items() if (c == 0).any()]
    if missing:
        raise RuntimeError("memories not found in block RAM (folded into logic?): " + ", ".join(missing))
    return found


locate_ice40 = locate


def _write_slices(ram, images, shapes, slices):
    """Write every memory image into its tiles (tile bits outside the slices are kept)."""
    tiles = {}
    for name, sl in slices.items():
        depth, width = shapes[name]
        b = _bits(images[name], width)
        for s in sl:
            key = _key(s["tile"])
            if key not in tiles:
                tiles[key] = ram.read(key)
            idx = ram.index(s["w"])
            tiles[key][idx[:s["na"], :s["nb"]]] = b[s["a0"]:s["a0"] + s["na"], s["b0"]:s["b0"] + s["nb"]]
    for key, t in tiles.items():
        ram.write(key, t)


def _read_slices(ram, shapes, slices):
    out = {}
    cache = {}
    for name, sl in slices.items():
        depth, width = shapes[name]
        b = np.zeros((depth, width), dtype=np.uint64)
        for s in sl:
            key = _key(s["tile"])
            if key not in cache:
                cache[key] = ram.read(key)
            idx = ram.index(s["w"])
            b[s["a0"]:s["a0"] + s["na"], s["b0"]:s["b0"] + s["nb"]] = cache[key][idx[:s["na"], :s["nb"]]]
        out[name] = (b << np.arange(width, dtype=np.uint64)).sum(axis=1, dtype=np.uint64)
    return out


#
# Tools (YoWASP tools cannot open absolute /tmp paths: stdin/stdout, or relative names in a
# private directory)
#

def _tool(cmd, data, cwd=None):
    res = subprocess.run(cmd, input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
    if res.returncode != 0:
        err = res.stderr.decode(errors="replace").strip().splitlines() or ["no message"]
        raise RuntimeError(f"{cmd[0]} failed (exit {res.returncode}): {err[-1]}")
    return res.stdout


def iceunpack(bitstream_bytes):
    return _tool(["yowasp-iceunpack"], bitstream_bytes).decode()


def icepack(asc_text):
    return _tool(["yowasp-icepack"], asc_text.encode())


def _tool_files(cmd, src_name, data, dst_name):
    with tempfile.TemporaryDirectory(prefix="sparsa-swap-") as d:
        (Path(d) / src_name).write_bytes(data)
        _tool(cmd, None, cwd=d)
        return (Path(d) / dst_name).read_bytes()


def ecpunpack(bitstream_bytes):
    return _tool_files(["yowasp-ecpunpack", "in.bit", "out.config"], "in.bit", bitstream_bytes,
                       "out.config").decode()


def ecppack(config_text):
    return _tool_files(["yowasp-ecppack", "in.config", "out.bit"], "in.config", config_text.encode(), "out.bit")


FAMILIES = {
    "ice40": {"ram": AscRam, "unpack": iceunpack, "pack": icepack, "what": "an iCE40 bitstream"},
    "ecp5": {"ram": EcpRam, "unpack": ecpunpack, "pack": ecppack, "what": "an ECP5 bitstream"},
}


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
    tiles = sorted({_key(s["tile"]) for sl in slices.values() for s in sl})
    bram_map = {
        "format": MAP_FORMAT, "version": 1, "family": family, "board": board,
        "config": asdict(cfg),
        "design_sha256": ram.design_hash(tiles),
        "tiles": [list(t) if isinstance(t, tuple) else t for t in tiles],
        "memories": {name: {"depth": shapes[name][0], "width": shapes[name][1], "slices": slices[name]}
                     for name in shapes},
    }
    _write_slices(ram, images_real, shapes, slices)
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
    try:
        m = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise user_error(path, "block RAM map", "JSON written by sparsa build", type(e).__name__) from None
    if not isinstance(m, dict) or m.get("format") != MAP_FORMAT:
        raise user_error(path, "format", repr(MAP_FORMAT), repr(m.get("format") if isinstance(m, dict) else m))
    if m.get("family") not in FAMILIES:
        raise user_error(path, "family", " or ".join(FAMILIES), repr(m.get("family")))
    return m


def _map_config(m):
    from sparsa.sw.eie.config import EIEConfig
    return EIEConfig(**m["config"])


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
    check_fits(mm, cfg, where=str(pack_dir))
    return mm, memory_images(mm, cfg)


def swap_weights(bitstream, pack_dir, out, map_path=None):
    """Write ``pack_dir``'s images into ``bitstream`` (iCE40 or ECP5, as the map says); the
    result goes (atomically) to ``out``. Returns the map."""
    from sparsa.sw.fileio import atomic_file
    m = load_map(map_path or Path(bitstream).parent / MAP_NAME, bitstream)
    _, images = memory_map_for(pack_dir, m)
    ram = _open_bitstream(bitstream, m)
    shapes, slices = _slices(m)
    _write_slices(ram, images, shapes, slices)
    data = FAMILIES[m["family"]]["pack"](ram.text())
    with atomic_file(out) as tmp:
        tmp.write_bytes(data)
    return m


def read_back(bitstream, map_path=None):
    """The memory images held by ``bitstream`` (``{name: uint64 array}``) and the build config."""
    m = load_map(map_path or Path(bitstream).parent / MAP_NAME, bitstream)
    ram = _open_bitstream(bitstream, m)
    shapes, slices = _slices(m)
    return _read_slices(ram, shapes, slices), _map_config(m)


swap_ice40 = swap_weights
read_back_ice40 = read_back
