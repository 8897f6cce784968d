"""The CNN engine's instruction set: one instruction = 32 little-endian 32-bit words (128 bytes).

This module is the contract between the compiler (``sw/cnn/compiler.py``), the instruction-level
model (``sw/cnn/executor.py``) and the hardware (``hw/cnn/``). Every field has its own word so a
hex dump of a program is readable; the hardware keeps only the low bits it needs (widths below).
Signed fields are two's complement.

Buffers (sizes from :class:`~sparsa.sw.cnn.config.CNNConfig`):

* **ibuf**: bytes (int8), one read per cycle; holds input rows of every channel.
* **wbuf**: words of ``lanes`` int16 weights (lane l in bytes 2l, 2l+1, little endian), or
  of ``lanes`` int8 weights (lane l in byte l) on an engine with ``weight_bits`` 8.
* **bias**: ``lanes`` int32 registers.
* **obuf**: ``lanes`` banks of int8, ``obuf_depth`` each; bank l holds lane l's outputs.
* **psum**: ``lanes`` banks of ``psum_depth`` partial sums (wide integers), used by the 3x3
  window convolver (flag LB) only.

Instructions (P = lanes; "ibuf[a]" reads 0 outside the image, see CONV):

``END``
    Stop; the engine raises ``done``.
``LOAD``
    for r < count: the ``length`` bytes at DRAM ``dram + r*dstride`` go to ``target``:
    IBUF: ``ibuf[buf + r*bstride + j]``; WBUF: words ``buf + r*bstride + w`` (``length`` a
    multiple of a word's bytes, 2P or P, DRAM address 8-aligned); BIAS: count 1, length 4P, 8-aligned, lane l = int32 at 4l.
    With flag BG (IBUF or WBUF only) the LOAD runs in the background of the next CONV, POOL
    or ADD: the engine queues it (at most ``LOAD_QUEUE`` of them) and goes on; the compute
    starts at once and the queued LOADs run beside it, in order, and the compute retires
    when they have finished too. Only LOADs may come between a LOAD with BG and its compute;
    the compute must not read a byte or word a queued LOAD writes, and no two queued LOADs,
    nor a queued LOAD and a later LOAD without BG, may write the same one (the compiler
    keeps them apart, mostly by putting successive tiles in the two halves of ibuf and wbuf;
    the instruction-level model refuses a program that breaks this).
``SAVE``
    for c < count: ``DRAM[dram + c*dstride + j] = obuf[c % P][buf + (c // P)*ostride + j]``, j < length.
    A SAVE runs in the background: the engine hands it to its store unit and goes on to the
    next instruction, so that it overlaps the next loads and compute. One SAVE runs at a time
    (a SAVE waits for the one before). Flag SYNC orders it against what follows (below).
``CONV``
    for py < gh, px < gw (grid points): accumulators = 0; for ci < count: the k x k window
    ``d[ky][kx]`` at input row ``iy = y0 + py*step + ky`` and column ``ix = x0 + px*step + kx``
    is ``ibuf[buf + ci*bstride + (iy - row0)*W + ix]`` when 0 <= iy < H and 0 <= ix < W, else 0.
    Weight word w is read at ``wbuf[wbase + w]`` (field ``wbase``), written below as ``wbuf[w]``.
    *Direct* (flag WINO clear): ``acc[l] += wbuf[ci*k*k + ky*k + kx][l] * d[ky][kx]``; output
    pixel (py, px) -> ``obuf[l][py*wo + px]``.
    *Winograd F(2x2,3x3)* (WINO set; k = 4, step = 2): ``V = B^T d B``; for e < 16
    ``M[l][e] += wbuf[ci*16 + e][l] * V[e]``; ``Y = A^T M A / 4`` (exact); pixel (2py+a, 2px+b)
    -> ``obuf[l][(2py+a)*wo + 2px+b]`` if 2py+a < out_rows and 2px+b < wo.
    *Window convolver* (flag LB; k = 3, step 1 or 2, ``b + gh*gw <= psum_depth``, ``gw == wo``):
    the sums of the direct case over this instruction's channels (with int8 weights: the
    convolver multiplies each weight word's low byte), per pixel ``q = b + py*gw + px``
    (field ``b`` is the psum base, so that several output groups' sums can sit side by side):
    ``s[l][q] = (psum[l][q] if flag ACC else 0) + sum_ci sum_ky,kx w * d``; with flag HOLD
    ``psum[l][q] = s`` and nothing is written to obuf, else ``s`` goes through ``post`` to
    ``obuf[l][q - b]`` (psum is then undefined). ACC/HOLD split one layer's input channels over
    several CONVs (the compiler's channel chunks); the weight words are those of the chunk.
    Every output goes through ``post``: ``s = acc + bias[l]``; if shift > 0
    ``s = (s + 2^(shift-1)) >> shift`` (arithmetic); with flag LEAKY, a negative ``s`` becomes
    ``(s * alpha + 64) >> 7`` (a leaky ReLU of slope ``alpha / 128``, field ``alpha``); saturate
    to int8; ReLU if flag RELU.
    Every obuf address a CONV, POOL or ADD writes is offset by field ``obase`` (a multiple of
    8: the compiler's choice, checked by the instruction-level model), so that a compute can fill one part of obuf while a SAVE drains another.
``POOL``
    for c < count, py < gh, px < gw: the k x k window as in CONV at channel c (0 outside the
    image: a max pool's padding is zeros)
    reduced by max, or (flag AVG) ``(sum + 2^(shift-1)) >> shift`` with shift = log2(k*k);
    -> ``obuf[c % P][(c // P)*ostride + py*wo + px]``. With flag UP the window origin moves
    every second grid point: row ``y0 + (py // 2)*step + ky``, column ``x0 + (px // 2)*step + kx``
    (k = 1, step 1 is a nearest-neighbour 2x upsample). With flag LB (k 2 or 3, step 1 or 2,
    ``gw == wo``, no UP) the same result comes from the window convolver's sweep, a whole
    window a cycle instead of one element.
``ADD``
    for c < count, i < length: ``sat8(ibuf[buf + c*bstride + i] + ibuf[b + c*bstride + i])``,
    ReLU if flag RELU -> ``obuf[c % P][(c // P)*ostride + i]``.

Ordering (flag SYNC, any instruction): the instruction starts only when every earlier SAVE
has finished (its last write acknowledged); a SAVE with SYNC also retires only when it has
finished itself. Without SYNC a later instruction may run while a SAVE is still reading obuf
and writing DRAM, so the compiler sets SYNC on any instruction that writes obuf words, or
reads DRAM bytes, of a SAVE that may still be running (:func:`sparsa.sw.cnn.compiler.order_saves`),
and on each layer's last SAVE, so that a layer's cycles are its own. END waits for every SAVE.
"""

import enum

import numpy as np

__all__ = [
    "Op", "Target", "Flag", "FIELDS", "LOAD_QUEUE", "FIELD_BITS", "SIGNED", "WORDS", "INSTR_BYTES",
    "encode", "decode", "encode_program", "decode_program",
    "WINO_BT", "WINO_G2", "WINO_AT",
]


class Op(enum.IntEnum):
    END = 0
    LOAD = 1
    SAVE = 2
    CONV = 3
    POOL = 4
    ADD = 5


class Target(enum.IntEnum):
    IBUF = 0
    WBUF = 1
    BIAS = 2


class Flag(enum.IntFlag):
    RELU = 1
    WINO = 2
    AVG = 4
    LB = 8        # CONV on the 3x3 window convolver (line-buffered rows, 9 multipliers per lane)
    ACC = 16      # LB: start from the partial sums a previous CONV left in psum
    HOLD = 32     # LB: leave the sums in psum (no output)
    SYNC = 64     # start after every earlier SAVE has finished (a SAVE: also retire after itself)
    LEAKY = 128   # CONV: a negative output is scaled by alpha / 128 (leaky ReLU)
    UP = 256      # POOL: the window moves every second output pixel (2x nearest upsample)
    BG = 512      # LOAD: run in the background of the next compute (see LOAD_QUEUE)


# Field name -> word index. Order is the encoding; do not reorder (it is the binary format).
FIELDS = (
    "op", "flags", "layer", "target", "dram", "dstride", "count", "length", "buf", "bstride",
    "b", "ostride", "k", "step", "shift", "gh", "gw", "y0", "x0", "row0", "H", "W",
    "out_rows", "wo", "obase", "alpha", "wbase",
)
WORDS = 32
INSTR_BYTES = WORDS * 4

# Bits the hardware keeps of each field (the compiler refuses values that do not fit).
FIELD_BITS = {
    "op": 3, "flags": 10, "layer": 8, "target": 2, "dram": 32, "dstride": 32, "count": 16,
    "length": 20, "buf": 20, "bstride": 20, "b": 20, "ostride": 20, "k": 3, "step": 2,
    "shift": 5, "gh": 12, "gw": 12, "y0": 14, "x0": 5, "row0": 12, "H": 12, "W": 12,
    "out_rows": 12, "wo": 12, "obase": 20, "alpha": 8, "wbase": 16,
}
SIGNED = frozenset({"y0", "x0"})

# LOADs with flag BG the engine holds for the next compute (its load queue's depth)
LOAD_QUEUE = 2


def field_range(name):
    """(min, max) of the values field ``name`` can hold."""
    b = FIELD_BITS[name]
    return (-(1 << (b - 1)), (1 << (b - 1)) - 1) if name in SIGNED else (0, (1 << b) - 1)


def encode(**fields):
    """One instruction as 32 uint32 words. Unknown fields or values out of range raise ValueError."""
    words = np.zeros(WORDS, dtype=np.uint32)
    for name, value in fields.items():
        if name not in FIELD_BITS:
            raise ValueError(f"unknown instruction field {name!r}")
        value = int(value)
        lo, hi = field_range(name)
        if not lo <= value <= hi:
            raise ValueError(f"instruction field {name}: expected {lo}..{hi}, found {value}")
        words[FIELDS.index(name)] = value & 0xFFFFFFFF
    return words


def decode(words):
    """The inverse of :func:`encode`: a dict of every field (signed fields sign-extended)."""
    out = {}
    for i, name in enumerate(FIELDS):
        v = int(words[i]) & ((1 << FIELD_BITS[name]) - 1)
        if name in SIGNED and v >> (FIELD_BITS[name] - 1):
            v -= 1 << FIELD_BITS[name]
        out[name] = v
    return out


def encode_program(instrs):
    """A list of field dicts (or word arrays) -> bytes, END appended if missing."""
    rows = [i if isinstance(i, np.ndarray) else encode(**i) for i in instrs]
    if not rows or int(rows[-1][0]) != Op.END:
        rows.append(encode(op=Op.END))
    return np.concatenate(rows).astype("<u4").tobytes()


def decode_program(blob):
    words = np.frombuffer(blob, dtype="<u4").reshape(-1, WORDS)
    return [decode(w) for w in words]


# Winograd F(2x2,3x3) with integer matrices: U = G2 g G2^T is 4x the usual U = G g G^T,
# so Y = A^T (U . V) A is 4x the convolution and Y / 4 is exact.
WINO_BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]], dtype=np.int64)
WINO_G2 = np.array([[2, 0, 0], [1, 1, 1], [1, -1, 1], [0, 0, 2]], dtype=np.int64)
WINO_AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]], dtype=np.int64)
