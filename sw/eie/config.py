"""EIEConfig: the parameters of one generated PE array, validated once.

Pure Python (no Amaranth import) so that sw/ and sim/ can use it too. Every sizing policy is
a named constructor here, so that every tool builds the same hardware for the same pack:

* :meth:`EIEConfig.for_pack` -- exact: the smallest sizes that hold one or more packs (what
  ``sparsa verilog PACK``, ``sparsa build PACK`` and ``sparsa run --engine verilator PACK`` use);
* :meth:`EIEConfig.reusable_for` -- every size rounded up to a power of two, so that one
  simulation build serves many packs (tests, benchmarks, ``sparsa run --reusable-build``);
* :meth:`EIEConfig.from_args` -- sized from explicit command-line numbers (``sparsa verilog --pes``).

:meth:`EIEConfig.check_fits` is the one check that a pack fits built hardware.
"""

from dataclasses import dataclass, replace

from sparsa.sw.errors import UserError, user_error
from sparsa.sw.eie.format import BIAS_BITS, ENTRIES_PER_WORD, pointer_bits_for

__all__ = ["EIEConfig"]


def _bits(n):
    """Bits to hold the unsigned values 0..n."""
    return max(1, int(n).bit_length())


@dataclass(frozen=True)
class EIEConfig:
    """Parameters of an EIE PE array.

    Parameters
    ----------
    pes : int
        Number of processing elements N (PE k owns rows i with i % N == k).
    queue_depth : int
        Activation queue depth per PE (EIE: 8).
    max_cols : int
        Largest input (or output) vector length of any layer.
    max_rows_pe : int
        Largest number of local rows per PE (= ceil(rows / N)) of any layer.
    spm_words : int
        Depth of each PE's sparse-matrix memory, in 64-bit words (all layers).
    ptr_words : int
        Depth of each pointer bank (all layers).
    bias_words : int
        Depth of each PE's bias memory (all layers).
    max_layers : int
        Entries in the layer table.
    pointer_bits : int or None
        Width of a pointer word (absolute entry index). ``None``: the narrowest that
        addresses ``spm_words`` (:meth:`pointer_bits_for_words`, at least EIE's 16).
    macs : int
        Multiply-accumulates per PE per cycle (1 or 2). With 2, the sparse-matrix reader
        retires two real entries of a column in one cycle, each into a bank of accumulators
        of its own (see ``acc_banks``); EIE has 1. Costs one more multiplier per PE.
    acc_banks : str
        How the two accumulator banks of a ``macs=2`` PE split the rows. ``"full"`` (default):
        both banks hold every row and the output stage adds them (one more cycle a layer), so
        any two entries pair, and a word's odd last entry pairs with the next word's first.
        ``"split"``: bank ``r % 2`` holds row ``r``, half the accumulator memory, and two
        entries pair only as neighbours in a word whose rows differ in parity (fewer pairs:
        the ESE step takes 8,538 cycles instead of 6,524). For builds short of block RAM.
        No effect with ``macs=1``.
    multiplier : str
        ``"generic"`` (a ``*`` between registers, for every target and simulator) or
        ``"ecp5"`` (MULT18X18D blocks with their own input and output registers, for ECP5
        builds; yosys cannot simulate them).
    lstm : bool
        Add the ESE element-wise unit to every PE (cell state, peephole memory, sigmoid and
        tanh tables) so that a gates layer (layer-table field ``ew``) drains into m_t.
    reader : str
        The sparse-matrix reader: ``"pipelined"`` (a 64-bit word a cycle, up to ``macs`` real
        entries out, padding free) or ``"serial"`` (EIE's: one entry a cycle, padding included;
        a sixth of the area, for small FPGAs whose host link is the bottleneck). Serial needs
        ``macs == 1``. Both give the same results.
    codebooks : str
        Where the layers' codebooks live (:mod:`sparsa.hw.eie.codebooks`): ``"registers"``
        (every layer's in flip-flops, no latency) or ``"memory"`` (a block RAM, the current
        layer's copied into flip-flops in 18 cycles at the layer's start; for small FPGAs).
        Both give the same results.
    act_words : int or None
        Depth of each activation file. ``None``: enough for any layer within ``max_cols`` and
        ``max_rows_pe``. An LSTM's gates layer writes a quarter of its rows (one m per cell),
        so its exact depth (:attr:`MemoryMap.act_words`) is a quarter of that.
    """
    pes: int
    max_cols: int
    max_rows_pe: int
    spm_words: int
    ptr_words: int
    bias_words: int
    max_layers: int = 1
    queue_depth: int = 8
    pointer_bits: int = None
    macs: int = 2
    lstm: bool = False
    multiplier: str = "generic"
    act_words: int = None
    reader: str = "pipelined"
    codebooks: str = "registers"
    acc_banks: str = "full"

    def __post_init__(self):
        if self.pointer_bits is None and isinstance(self.spm_words, int) and self.spm_words >= 1:
            object.__setattr__(self, "pointer_bits", self.pointer_bits_for_words(self.spm_words))

        def need(name, ok, limit):
            if not ok:
                raise UserError(f"EIEConfig: {name}: expected {limit}, found {getattr(self, name)}")
        need("pes", isinstance(self.pes, int) and 1 <= self.pes <= 1024, "an integer in 1..1024")
        need("queue_depth", 1 <= self.queue_depth <= 256, "1..256")
        need("max_cols", 1 <= self.max_cols < (1 << 24), "1..2^24-1")
        need("max_rows_pe", self.max_rows_pe >= 1, ">= 1")
        need("spm_words", 1 <= self.spm_words < 1 << 29, "1..2^29-1 (at most 32-bit pointers, 8 entries a word)")
        need("ptr_words", self.ptr_words >= 1, ">= 1")
        need("bias_words", self.bias_words >= 1, ">= 1")
        need("max_layers", 1 <= self.max_layers <= 64, "1..64")
        need("macs", self.macs in (1, 2), "1 or 2")
        need("multiplier", self.multiplier in ("generic", "ecp5"), "generic or ecp5")
        need("reader", self.reader in ("pipelined", "serial"), "pipelined or serial")
        need("reader", self.reader == "pipelined" or self.macs == 1, "pipelined when macs is 2 (serial issues one entry a cycle)")
        need("codebooks", self.codebooks in ("registers", "memory"), "registers or memory")
        need("acc_banks", self.acc_banks in ("full", "split"), "full or split")
        need("act_words", self.act_words is None or self.act_words >= 1, "None or >= 1")
        need("pointer_bits", _bits(self.spm_words * 8) <= self.pointer_bits <= 32,
             f"{_bits(self.spm_words * 8)}..32 (enough for {self.spm_words} words)")

    # Derived widths ----------------------------------------------------------------------
    @property
    def col_bits(self):
        return _bits(self.max_cols)

    @property
    def act_depth(self):
        """Words per activation file: local slots for the longest vector (or ``act_words``)."""
        if self.act_words is not None:
            return self.act_words
        return max(self.max_rows_pe, -(-self.max_cols // self.pes))

    @property
    def split_banks(self):
        """Two accumulator banks split by row parity (``macs == 2`` and ``acc_banks == "split"``)."""
        return self.macs == 2 and self.acc_banks == "split"

    @property
    def acc_bank_depth(self):
        """Words in each accumulator bank: every row, or half of them when split."""
        return -(-self.max_rows_pe // 2) if self.split_banks else self.max_rows_pe

    @property
    def acc_bits(self):
        """Accumulator width: exact for cols products of int16 x int16 plus an int32 bias."""
        return 33 + _bits(self.max_cols)

    @property
    def load_data_bits(self):
        return 64

    def replace(self, **kw):
        return replace(self, **kw)

    @staticmethod
    def pointer_bits_for_words(spm_words):
        """The pointer width rule: enough to address every entry of ``spm_words`` words."""
        return pointer_bits_for(max(1, int(spm_words)) * ENTRIES_PER_WORD)

    # Named constructors: the sizing policies -------------------------------------------------
    @classmethod
    def for_pack(cls, *packs, queue_depth=8, macs=2, multiplier="generic", reader="pipelined", codebooks="registers",
                 spm_words=None, where="pack", acc_banks="full"):
        """Exact: the smallest config that holds every pack given.

        Each of ``packs`` is a :class:`~sparsa.sw.eie.pack.Pack` or its
        :class:`~sparsa.sw.eie.memmap.MemoryMap`. ``spm_words``: a deeper sparse-matrix memory
        than the packs need (headroom for packs swapped in later); a :class:`UserError` naming
        ``where`` if it is shallower.
        """
        mms = [_memory_map(p) for p in packs]
        if not mms:
            raise TypeError("EIEConfig.for_pack: give at least one pack or memory map")
        if len({m.pes for m in mms}) != 1:
            raise user_error(where, "pes", "the same PE count in every pack", sorted({m.pes for m in mms}))
        lstm = any(m.peep is not None for m in mms)
        need_spm = max(1, max(m.spm_words for m in mms))
        if spm_words is not None and spm_words < need_spm:
            raise user_error(where, "--spm-words", f"at least {need_spm} (what the pack needs)", spm_words)
        spm = need_spm if spm_words is None else spm_words
        return cls(pes=mms[0].pes, queue_depth=queue_depth, macs=macs, multiplier=multiplier, reader=reader,
                   codebooks=codebooks, lstm=lstm, acc_banks=acc_banks,
                   max_cols=max(m.max_cols for m in mms), max_rows_pe=max(m.max_rows_pe for m in mms),
                   spm_words=spm, ptr_words=max(1, max(m.ptr_words for m in mms)),
                   bias_words=max(1, max(m.bias_words for m in mms)),
                   max_layers=max(len(m.layers) for m in mms),
                   pointer_bits=cls.pointer_bits_for_words(spm),
                   act_words=max(m.act_words for m in mms) if lstm else None)

    @classmethod
    def reusable_for(cls, *packs, queue_depth=8):
        """:meth:`for_pack` with every size rounded up to a power of two (at least 16) and room
        for 4 layers, so that packs of similar size share one simulation build."""
        exact = cls.for_pack(*packs, queue_depth=queue_depth)
        p2 = lambda n: max(16, 1 << (int(n) - 1).bit_length())
        spm = p2(exact.spm_words)
        return exact.replace(max_cols=p2(exact.max_cols), max_rows_pe=p2(exact.max_rows_pe),
                             spm_words=spm, ptr_words=p2(exact.ptr_words), bias_words=p2(exact.bias_words),
                             max_layers=max(4, exact.max_layers),
                             act_words=exact.act_words and p2(exact.act_words),
                             pointer_bits=cls.pointer_bits_for_words(spm))

    @classmethod
    def from_args(cls, pes, *, max_cols=1024, max_rows_pe=64, spm_words=1024, ptr_words=None, bias_words=None,
                  max_layers=1, queue_depth=8, macs=2):
        """Sized from explicit numbers (``sparsa verilog --pes N ...``): pointer banks of
        ``max_cols // 2 + 1`` words and ``max_rows_pe`` biases unless given."""
        return cls(pes=pes, queue_depth=queue_depth, macs=macs, max_cols=max_cols, max_rows_pe=max_rows_pe,
                   spm_words=spm_words, ptr_words=ptr_words or max_cols // 2 + 1,
                   bias_words=bias_words or max_rows_pe, max_layers=max_layers,
                   pointer_bits=cls.pointer_bits_for_words(spm_words))

    @classmethod
    def from_dict(cls, d, where):
        """The config saved as a dict (``asdict``) in ``where`` (e.g. a ``bram_map.json``)."""
        try:
            return cls(**d)
        except TypeError as e:
            raise user_error(where, "config", "EIEConfig fields", str(e)) from None

    # The fits check ------------------------------------------------------------------------------
    def check_fits(self, mm, where="pack"):
        """Raise a one-line UserError saying by how much memory map ``mm`` does not fit this hardware
        (``sparsa run``, ``sparsa build``, ``sparsa swap-weights`` and the generator all ask here)."""
        if mm.peep is not None and not self.lstm:
            raise user_error(where, "lstm", "hardware built with the element-wise unit (lstm=True) for an LSTM pack",
                             "hardware without it")
        checks = [
            ("pes", mm.pes, self.pes, "=="),
            ("layers", len(mm.layers), self.max_layers, "<="),
            ("vector length (max cols/rows)", mm.max_cols, self.max_cols, "<="),
            ("local rows per PE", mm.max_rows_pe, self.max_rows_pe, "<="),
            ("sparse-matrix words per PE", mm.spm_words, self.spm_words, "<="),
            ("pointer words per bank", mm.ptr_words, self.ptr_words, "<="),
            ("bias words per PE", mm.bias_words, self.bias_words, "<="),
            ("activation words per PE", mm.act_words, self.act_depth, "<="),
            ("pointer_bits", mm.pointer_bits, self.pointer_bits, "<="),
        ]
        for name, have, cap, op in checks:
            if op == "==" and have != cap:
                raise user_error(where, name, f"{cap} (as built)", have)
            if op == "<=" and have > cap:
                raise user_error(where, name, f"at most {cap} (as built)", f"{have} (too large by {have - cap})")
        # Layer-table and bias fields the hardware holds at a fixed width.
        for li, layer in enumerate(mm.layers):
            if not 0 <= layer.shift < 64:
                raise user_error(where, f"layer {li} shift", "0..63", layer.shift)
        limit = 1 << BIAS_BITS - 1
        for k, b in enumerate(mm.bias):
            if b.size and (b.min() < -limit or b.max() >= limit):
                raise user_error(where, f"bias (PE {k})", f"{BIAS_BITS}-bit values", int(abs(b).max()))


def _memory_map(p):
    """A pack's memory map (a memory map is returned as it is)."""
    from sparsa.sw.eie.memmap import MemoryMap, build_memory_map
    return p if isinstance(p, MemoryMap) else build_memory_map(p)
