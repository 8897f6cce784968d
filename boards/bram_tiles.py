"""Block RAM tiles in an unpacked bitstream, per FPGA family: read, write, locate memories in them.

Used by :mod:`sparsa.boards.swap` (weight swap without re-synthesis).

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
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from sparsa.boards.tools import tool_cmd

__all__ = ["AscRam", "EcpRam", "FAMILIES", "locate", "locate_ice40", "write_slices", "read_slices", "tile_key",
           "iceunpack", "icepack", "ecpunpack", "ecppack"]


# Block RAM tiles in the unpacked bitstream text
#
# Both containers give a tile as a flat uint8 bit vector (``read``/``write``) and, per port
# width ``w`` in ``WIDTHS``, ``index(w)``: the (words, w) matrix of the tile bit indices that
# word ``A`` bit ``j`` of a port of that width reads.

def tile_key(tile):
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
        i = self.blocks.get(tile_key(tile))
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
        tile = tile_key(tile)
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
            i = self.blocks.get(tile_key(t))
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
        span = self.blocks.get(tile_key(tile))
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
        tile = tile_key(tile)
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
            span = self.blocks.get(tile_key(t))
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


def write_slices(ram, images, shapes, slices):
    """Write every memory image into its tiles (tile bits outside the slices are kept)."""
    tiles = {}
    for name, sl in slices.items():
        depth, width = shapes[name]
        b = _bits(images[name], width)
        for s in sl:
            key = tile_key(s["tile"])
            if key not in tiles:
                tiles[key] = ram.read(key)
            idx = ram.index(s["w"])
            tiles[key][idx[:s["na"], :s["nb"]]] = b[s["a0"]:s["a0"] + s["na"], s["b0"]:s["b0"] + s["nb"]]
    for key, t in tiles.items():
        ram.write(key, t)


def read_slices(ram, shapes, slices):
    out = {}
    cache = {}
    for name, sl in slices.items():
        depth, width = shapes[name]
        b = np.zeros((depth, width), dtype=np.uint64)
        for s in sl:
            key = tile_key(s["tile"])
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
    res = subprocess.run(tool_cmd(cmd), input=data, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=cwd)
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

