"""The EIE host protocol, defined once: SoC registers, load-port targets, counters, load sequence.

A specification (pure Python and ``amaranth.lib.enum``): the hardware (``hw/eie``, ``hw/soc.py``)
imports it to build the ports and the register file, the hosts (the cocotb testbenches, the
runtime, the bitstream tools) import it to drive them.

* :data:`REGISTERS` -- the SoC wrapper's AXI4-Lite register map (``docs/soc.md``).
* :class:`LoadKind` -- what a load-port write targets.
* :data:`COUNTERS` -- the per-PE performance counters, in ``stat`` / ``STAT_SEL`` order.
* :func:`load_sequence` -- the load-port writes that put a :class:`~.memmap.MemoryMap` on chip,
  as :class:`Load` tuples; :func:`register_writes` turns one into the SoC's ``LD_*`` writes.
* :func:`memory_map_arrays` / :func:`memory_map_from_arrays` -- a memory map as flat named
  per-PE arrays (``spm3``, ``bias0``, ``layer_table``...) and back: simulation jobs, bitstream images.
"""

from typing import NamedTuple

import numpy as np
from amaranth.lib import enum

from sparsa.sw.eie.memmap import LAYER_FIELDS, LayerEntry, MemoryMap

__all__ = ["SOC_ID", "model_id", "model_digest", "Register", "REGISTERS", "REG", "CTRL_START", "CTRL_ABORT", "STATUS_BUSY", "STATUS_DONE",
           "CAPACITY_REGISTERS", "config_word", "capacity_words", "config_from_registers", "LoadKind", "COUNTERS", "ALL_PES",
           "LAYER_STRIDE", "CODEBOOK_STRIDE", "PE_MEMORIES", "Load", "memory_loads", "table_loads",
           "load_sequence", "register_writes", "memory_map_arrays", "memory_map_from_arrays"]

SOC_ID = 0x53505253          # "SPRS"

# Per-PE performance counters (32-bit), in the order of the array's ``stat`` bus and STAT_SEL.
COUNTERS = ("busy", "starved", "stalled", "pad", "macs")


class LoadKind(enum.Enum, shape=3):
    """Load-port targets (``ld_kind``, register LD_KIND). The layer table and the codebooks live
    in the central control (every PE sees them); the rest are per-PE memories."""
    SPM = 0
    PTR_EVEN = 1
    PTR_ODD = 2
    BIAS = 3
    CODEBOOK = 4
    LAYER = 5
    ACT = 6       # input activations into file A, N at a time (instead of x_in)
    PEEP = 7      # LSTM peephole weights (one per gates-layer local row)


class Register(NamedTuple):
    name: str
    offset: int          # byte offset
    access: str          # RO, RW, WO, RW1C
    description: str


REGISTERS = [Register(*r) for r in (
    ("ID", 0x00, "RO", "0x53505253 ('SPRS')"),
    ("CONFIG", 0x04, "RO", "[15:0] PEs, [17:16] MACs per PE, [18] LSTM unit, [31:24] layer-table entries"),
    ("CTRL", 0x08, "RW", "[0] START (write 1: start a run; reads 0), [1] LSTM_CLEAR (c = 0 in this run), "
                         "[2] Y_SKIP (leave the result on chip), [3] ABORT (write 1: reset the array's control "
                         "state and clear DONE, the loaded model stays; stop the input stream first; reads 0)"),
    ("STATUS", 0x0C, "RW1C", "[0] BUSY (RO), [1] DONE (set at the end of a run; write 1 to clear)"),
    ("N_LAYERS", 0x10, "RW", "layers to run (1..)"),
    ("IRQ_EN", 0x14, "RW", "[0] raise irq while DONE"),
    ("CYCLES", 0x18, "RO", "cycles of the last run (start to done)"),
    ("STAT_SEL", 0x1C, "RW", "counter index: PE k, counter c at k * 5 + c (busy, starved, stalled, pad, macs)"),
    ("STAT", 0x20, "RO", "the selected performance counter"),
    ("LD_KIND", 0x24, "RW", "load target (LoadKind: 0 SPM, 1 PTR_EVEN, 2 PTR_ODD, 3 BIAS, 4 CODEBOOK, "
                            "5 LAYER, 6 ACT, 7 PEEP)"),
    ("LD_ADDR", 0x28, "RW", "load address"),
    ("LD_PE", 0x2C, "RW", "PE to write (0xFFFFFFFF: all PEs)"),
    ("LD_DATA_LO", 0x30, "RW", "load data [31:0]"),
    ("LD_DATA_HI", 0x34, "RW", "load data [63:32]"),
    ("LD_GO", 0x38, "WO", "write: one load-port write of LD_DATA to LD_ADDR (array idle only)"),
    ("Y_COUNT", 0x3C, "RW", "rows of the last layer (m_axis tlast on the last one)"),
    # What the build holds (EIEConfig), so that a host refuses a pack that does not fit before
    # writing anything: a load past a memory's depth would wrap onto other weights.
    ("CAP_COLS", 0x40, "RO", "longest input vector (EIEConfig.max_cols)"),
    ("CAP_ROWS_PE", 0x44, "RO", "local rows per PE (max_rows_pe)"),
    ("CAP_SPM", 0x48, "RO", "sparse-matrix words per PE (spm_words)"),
    ("CAP_PTR", 0x4C, "RO", "pointer words per bank (ptr_words)"),
    ("CAP_BIAS", 0x50, "RO", "bias words per PE (bias_words)"),
    ("CAP_ACT", 0x54, "RO", "activation words per PE and file (act_depth)"),
    ("CAP_PTR_BITS", 0x58, "RO", "pointer width (pointer_bits)"),
    # A host starts a run only once the whole input has reached the engine: a DMA reporting its
    # send done says nothing of the beats still in converters and FIFOs on the way.
    ("X_COUNT", 0x5C, "RO", "input values taken from s_axis since the last START or ABORT"),
    # Which model the memories hold, so that a host skips a load the board already has (the
    # model survives resets and ABORT, and a bitstream can be built with it): the host writes 0
    # before a load and model_id(mm) after it, so a load cut short leaves 0.
    ("MODEL_ID", 0x60, "RW", "model_id of the memory map the memories hold (0: none known); kept through "
                             "resets and ABORT, cleared by an LD_GO of any kind but ACT"),
)]
REG = {r.name: r.offset for r in REGISTERS}
CTRL_START, CTRL_LSTM_CLEAR, CTRL_ABORT = 1 << 0, 1 << 1, 1 << 3
STATUS_BUSY, STATUS_DONE = 1 << 0, 1 << 1

# CAP_* register -> the EIEConfig field (or property) it reports.
CAPACITY_REGISTERS = {"CAP_COLS": "max_cols", "CAP_ROWS_PE": "max_rows_pe", "CAP_SPM": "spm_words",
                      "CAP_PTR": "ptr_words", "CAP_BIAS": "bias_words", "CAP_ACT": "act_depth",
                      "CAP_PTR_BITS": "pointer_bits"}

# Kept in step with the descriptions above (a test checks both against the enum and COUNTERS).
assert all(f"{k.value} {k.name}" in REGISTERS[9].description for k in LoadKind)
assert f"k * {len(COUNTERS)} + c ({', '.join(COUNTERS)})" in REGISTERS[7].description


def model_digest(mm):
    """SHA-256 (bytes) of memory map ``mm``: every memory's contents, the layer table and the
    codebooks (:func:`memory_map_arrays`; two packs of the same weights agree)."""
    import hashlib
    h = hashlib.sha256()
    for name, array in sorted(memory_map_arrays(mm).items()):
        a = np.ascontiguousarray(array)
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.digest()


def model_id(mm):
    """The MODEL_ID of memory map ``mm``: 32 bits of :func:`model_digest`, never 0."""
    return int.from_bytes(model_digest(mm)[:4], "little") or 1


def config_word(pes, macs, lstm, max_layers):
    """The CONFIG register's value for a build (see :data:`REGISTERS`)."""
    return pes | (macs << 16) | (int(bool(lstm)) << 18) | (max_layers << 24)


def capacity_words(cfg):
    """``{register: value}`` of the CAP_* registers for EIEConfig ``cfg``."""
    return {name: int(getattr(cfg, field)) for name, field in CAPACITY_REGISTERS.items()}


def config_from_registers(read):
    """The :class:`~.config.EIEConfig` a running SoC reports: ``read(name)`` returns a register.
    The fields that do not change what fits (queue depth, multiplier) are the defaults."""
    from sparsa.sw.eie.config import EIEConfig
    config = read("CONFIG")
    cap = {field: read(name) for name, field in CAPACITY_REGISTERS.items()}
    act = cap.pop("act_depth")
    return EIEConfig(pes=config & 0xFFFF, macs=(config >> 16) & 3, lstm=bool(config >> 18 & 1),
                     max_layers=config >> 24, act_words=act, **cap)


#
# The load sequence
#

ALL_PES = 0xFFFFFFFF         # LD_PE: write every PE
LAYER_STRIDE = 8             # layer-table field f of layer L at address L * 8 + f (LAYER_FIELDS order)
CODEBOOK_STRIDE = 16         # codebook entry e of layer L at address L * 16 + e
assert len(LAYER_FIELDS) <= LAYER_STRIDE

# The per-PE memories in load order: (kind, MemoryMap attribute).
PE_MEMORIES = ((LoadKind.SPM, "spm"), (LoadKind.PTR_EVEN, "ptr_even"), (LoadKind.PTR_ODD, "ptr_odd"),
               (LoadKind.BIAS, "bias"), (LoadKind.PEEP, "peep"))

_MASK64 = (1 << 64) - 1


class Load(NamedTuple):
    """One load-port write. ``pe``: the PE, or ``None`` for all of them (LD_PE = ALL_PES);
    ``word``: the 64-bit data, unsigned (signed values in two's complement)."""
    kind: LoadKind
    pe: object
    addr: int
    word: int


def memory_loads(mm):
    """The per-PE memory writes of ``mm``, by kind, then address, then PE: a port that writes
    every PE at once (the array's ``ld_mask``) takes each run of equal (kind, addr) in one cycle."""
    for kind, name in PE_MEMORIES:
        per_pe = getattr(mm, name)
        if per_pe is None:
            continue
        per_pe = [np.asarray(a).astype(np.int64) for a in per_pe]
        for addr in range(max((a.size for a in per_pe), default=0)):
            for k, words in enumerate(per_pe):
                if addr < words.size:
                    yield Load(kind, k, addr, int(words[addr]) & _MASK64)


def table_loads(mm):
    """The layer-table and codebook writes of ``mm`` (every PE), layer by layer: the 8 fields in
    :data:`~.memmap.LAYER_FIELDS` order, then the 16 codebook entries (the boot ROM's order too)."""
    for li, layer in enumerate(mm.layers):
        for fi, value in enumerate(layer.field_values()):
            yield Load(LoadKind.LAYER, None, li * LAYER_STRIDE + fi, value & _MASK64)
        for e, c in enumerate(layer.codebook):
            yield Load(LoadKind.CODEBOOK, None, li * CODEBOOK_STRIDE + e, int(c) & 0xFFFF)


def load_sequence(mm):
    """Every load-port write that loads memory map ``mm``: :func:`memory_loads`, then
    :func:`table_loads`. Loads happen while the array is idle; their order does not matter to
    the hardware, and a run after them is the same whatever the order."""
    yield from memory_loads(mm)
    yield from table_loads(mm)


def input_loads(x, pes, base=0):
    """The ACT load-port writes of input vector ``x`` at local address ``base`` (for an LSTM step,
    which keeps the state on chip: the stream would write from address 0): x_j to PE j % N at
    ``base + j // N``; the last group's spare slots get 0."""
    xs = np.zeros(-(-len(x) // pes) * pes, dtype=np.int64)
    xs[:len(x)] = np.asarray(x, dtype=np.int64) & 0xFFFF
    for j, v in enumerate(xs):
        yield Load(LoadKind.ACT, j % pes, base + j // pes, int(v))


def lstm_step_writes(x, t, x_base, pes, rows):
    """The register writes before START of LSTM step ``t`` on input ``x`` (:mod:`sparsa.sw.lstm.pack`):
    x_t through ACT loads at local address ``x_base`` (the state stays on chip; step 0 writes
    the whole vector with y_{-1} = 0 below it), two layers, ``rows`` outputs. START with
    :func:`lstm_step_ctrl`."""
    vec, base = (np.concatenate([np.zeros(x_base * pes, np.int64), x]), 0) if t == 0 else (x, x_base)
    for load in input_loads(vec, pes, base):
        yield from register_writes(load)
    yield "N_LAYERS", 2
    yield "Y_COUNT", rows


def lstm_step_ctrl(t):
    """CTRL for LSTM step ``t``: START, with LSTM_CLEAR (c = 0) on step 0."""
    return CTRL_START | (CTRL_LSTM_CLEAR if t == 0 else 0)


def register_writes(load):
    """The SoC register writes ``(name, value)`` of one :class:`Load` (LD_GO last)."""
    yield "LD_KIND", load.kind.value
    yield "LD_PE", ALL_PES if load.pe is None else load.pe
    yield "LD_ADDR", load.addr
    yield "LD_DATA_LO", load.word & 0xFFFFFFFF
    yield "LD_DATA_HI", load.word >> 32
    yield "LD_GO", 1


#
# Flat arrays
#

def memory_map_arrays(mm):
    """``{name: array}``: ``<memory><k>`` (e.g. ``spm3``; :data:`PE_MEMORIES`, ``peep`` only in
    LSTM maps) per PE k, ``layer_table`` (layers, 8) and ``codebooks`` (layers, 16)."""
    arrays = {}
    for k in range(mm.pes):
        for _, name in PE_MEMORIES:
            per_pe = getattr(mm, name)
            if per_pe is not None:
                arrays[f"{name}{k}"] = np.asarray(per_pe[k]).astype(np.uint64 if name == "spm" else np.int64)
    arrays["layer_table"] = np.array([l.field_values() for l in mm.layers], dtype=np.int64).reshape(-1, len(LAYER_FIELDS))
    arrays["codebooks"] = np.array([l.codebook for l in mm.layers], dtype=np.int64).reshape(-1, 16)
    return arrays


def memory_map_from_arrays(arrays):
    """The :class:`~.memmap.MemoryMap` of :func:`memory_map_arrays` output (``entries`` is left empty)."""
    pes = 0
    while f"spm{pes}" in arrays:
        pes += 1
    layers = [LayerEntry(**dict(zip(LAYER_FIELDS, (int(v) for v in row))), codebook=np.asarray(cb, np.int16))
              for row, cb in zip(arrays["layer_table"], arrays["codebooks"])]
    per_pe = {name: [np.asarray(arrays[f"{name}{k}"]) for k in range(pes)] if f"{name}0" in arrays else None
              for _, name in PE_MEMORIES}
    return MemoryMap(pes=pes, layers=layers, **per_pe)
