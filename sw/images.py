"""Memory-image files: ``.hex``, ``.mem``, ``.coe`` and ``.bin`` writers and readers.

Every image is a list of unsigned words ``bits`` wide (signed values are stored in two's
complement). The four formats hold the same words:

``.hex``
    One word per line, exactly ``ceil(bits/4)`` lower-case hex digits, for Verilog
    ``$readmemh``.
``.mem``
    An ``@0`` address line, then the ``.hex`` lines (Vivado ``updatemem`` / ``$readmemh``).
``.coe``
    Xilinx coefficient file: ``memory_initialization_radix=16;``, then
    ``memory_initialization_vector=`` and the words separated by ``,`` and newlines, the last
    followed by ``;``. COE cannot describe an empty memory, so an image of zero words is
    written as the single word ``0`` (readers take the real length from the manifest).
``.bin``
    Raw little-endian, each word in ``ceil(bits/8)`` bytes, no header.

Writers are vectorised (one ``bytes.hex()`` and a few numpy copies per image, no per-word
Python formatting); they return the bytes so the caller can hash them without re-reading
the file. The text readers are for checks and tools and favour simplicity over speed;
:func:`parse_bin` is the fast path that :func:`sparsa.sw.eie.pack.load_pack` uses.
"""

from pathlib import Path

import numpy as np

__all__ = [
    "FORMATS", "hex_digits", "byte_width", "to_unsigned", "from_unsigned",
    "render", "render_all", "render_hex", "render_mem", "render_coe", "render_bin",
    "parse", "parse_text", "parse_bin", "read_image",
]

FORMATS = ("hex", "mem", "coe", "bin")

COE_HEADER = b"memory_initialization_radix=16;\nmemory_initialization_vector=\n"
MEM_HEADER = b"@0\n"


def hex_digits(bits):
    """Hex digits per word of a ``bits``-wide image."""
    return (int(bits) + 3) // 4


def byte_width(bits):
    """Bytes per word in a ``.bin`` image."""
    return (int(bits) + 7) // 8


def to_unsigned(values, bits):
    """Two's-complement view of integer ``values`` as ``bits``-wide unsigned words (uint64)."""
    if not 1 <= bits <= 64:
        raise ValueError(f"word width {bits} outside 1..64")
    a = np.asarray(values)
    if a.dtype == np.uint64:
        u = a.copy()
    else:
        # Via int64 so negative values wrap to two's complement before masking.
        u = a.astype(np.int64).view(np.uint64)
    if bits < 64:
        u = u & np.uint64((1 << bits) - 1)
    return u.reshape(-1)


def from_unsigned(words, bits, signed):
    """Inverse of :func:`to_unsigned`: int64 values (sign-extended if ``signed``) or uint64."""
    w = np.asarray(words, dtype=np.uint64)
    if not signed:
        return w
    v = w.view(np.int64) if bits == 64 else w.astype(np.int64)
    if bits < 64:
        v = np.where(v >= (1 << (bits - 1)), v - (1 << bits), v)
    return v


def _digit_matrix(values, bits):
    """(n, digits) uint8 array of ASCII hex digits, most significant first."""
    u = to_unsigned(values, bits)
    n, d = u.size, hex_digits(bits)
    text = u.astype(">u8").tobytes().hex().encode("ascii")
    return np.frombuffer(text, dtype=np.uint8).reshape(n, 16)[:, 16 - d:]


def _lines(values, bits, suffix, digits=None):
    """Each word's digits followed by ``suffix`` (bytes), concatenated."""
    if digits is None:
        digits = _digit_matrix(values, bits)
    n, d = digits.shape
    out = np.empty((n, d + len(suffix)), dtype=np.uint8)
    out[:, :d] = digits
    out[:, d:] = np.frombuffer(suffix, dtype=np.uint8)
    return out


def render_hex(values, bits):
    return _lines(values, bits, b"\n").tobytes()


def render_mem(values, bits):
    return MEM_HEADER + render_hex(values, bits)


def render_coe(values, bits, digits=None):
    u = to_unsigned(values, bits)
    if u.size == 0:
        u, digits = np.zeros(1, dtype=np.uint64), None
    out = _lines(u, bits, b",\n", digits)
    out[-1, -2] = ord(";")
    return COE_HEADER + out.tobytes()


def render_bin(values, bits):
    u = to_unsigned(values, bits)
    nb = byte_width(bits)
    return u.astype("<u8").view(np.uint8).reshape(u.size, 8)[:, :nb].tobytes()


_RENDER = {"hex": render_hex, "mem": render_mem, "coe": render_coe, "bin": render_bin}


def render(values, bits, fmt):
    """The bytes of an image of ``values`` in format ``fmt`` (one of :data:`FORMATS`)."""
    return _RENDER[fmt](values, bits)


def render_all(values, bits, formats=FORMATS):
    """``{fmt: bytes}`` for several formats, converting the words to hex digits only once."""
    out = {}
    digits = _digit_matrix(values, bits) if set(formats) & {"hex", "mem", "coe"} else None
    if "hex" in formats or "mem" in formats:
        text = _lines(values, bits, b"\n", digits).tobytes()
        out["hex"], out["mem"] = text, MEM_HEADER + text
    if "coe" in formats:
        out["coe"] = render_coe(values, bits, digits)
    if "bin" in formats:
        out["bin"] = render_bin(values, bits)
    return {f: out[f] for f in formats}


def parse_bin(data, bits, signed=False):
    """Words of a ``.bin`` image (``data`` = its bytes)."""
    nb = byte_width(bits)
    if len(data) % nb:
        raise ValueError(f"{len(data)} bytes is not a whole number of {nb}-byte words")
    raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, nb)
    full = np.zeros((raw.shape[0], 8), dtype=np.uint8)
    full[:, :nb] = raw
    return from_unsigned(full.view("<u8").reshape(-1).astype(np.uint64), bits, signed)


def parse_text(data, bits, fmt, signed=False):
    """Words of a ``.hex``, ``.mem`` or ``.coe`` image (``data`` = its bytes)."""
    text = data.decode("ascii")
    if fmt == "coe":
        head, sep, body = text.partition("memory_initialization_vector=")
        if not sep or "memory_initialization_radix=16" not in head:
            raise ValueError("not a radix-16 COE file")
        body = body.strip()
        if not body.endswith(";"):
            raise ValueError("COE vector does not end with ';'")
        tokens = [t.strip() for t in body[:-1].split(",")]
    else:
        tokens = text.split()
        if fmt == "mem":
            if not tokens or tokens[0] != "@0":
                raise ValueError("a .mem image must start with '@0'")
            tokens = tokens[1:]
    words = np.fromiter((int(t, 16) for t in tokens), dtype=np.uint64, count=len(tokens))
    if words.size and bits < 64 and int(words.max()) >> bits:
        raise ValueError(f"word wider than {bits} bits")
    return from_unsigned(words, bits, signed)


def parse(data, bits, fmt, signed=False):
    """Words of an image in any of the :data:`FORMATS`."""
    if fmt == "bin":
        return parse_bin(data, bits, signed)
    return parse_text(data, bits, fmt, signed)


def read_image(path, bits, signed=False):
    """Read an image file; the format comes from the file name's extension."""
    path = Path(path)
    fmt = path.suffix.lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"{path}: unknown image format '{fmt}'")
    return parse(path.read_bytes(), bits, fmt, signed)
