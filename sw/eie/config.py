"""EIEConfig: the parameters of one generated PE array, validated once.

Pure Python (no Amaranth import) so that sw/ and sim/ can use it too.
"""

from dataclasses import dataclass, replace

from sparsa.sw.errors import UserError

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
    pointer_bits : int
        Width of a pointer word (absolute entry index).
    macs : int
        Multiply-accumulates per PE per cycle (1 or 2). With 2, the sparse-matrix reader
        retires two real entries of a column in one cycle when their rows fall in different
        accumulator banks (row parity); EIE has 1. Costs one more multiplier per PE.
    multiplier : str
        ``"generic"`` (a ``*`` between registers, for every target and simulator) or
        ``"ecp5"`` (MULT18X18D blocks with their own input and output registers, for ECP5
        builds; yosys cannot simulate them).
    lstm : bool
        Add the ESE element-wise unit to every PE (cell state, peephole memory, sigmoid and
        tanh tables) so that a gates layer (layer-table field ``ew``) drains into m_t.
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
    pointer_bits: int = 16
    macs: int = 2
    lstm: bool = False
    multiplier: str = "generic"
    act_words: int = None

    def __post_init__(self):
        def need(name, ok, limit):
            if not ok:
                raise UserError(f"EIEConfig: {name}: expected {limit}, found {getattr(self, name)}")
        need("pes", isinstance(self.pes, int) and 1 <= self.pes <= 1024, "an integer in 1..1024")
        need("queue_depth", 1 <= self.queue_depth <= 256, "1..256")
        need("max_cols", 1 <= self.max_cols < (1 << 24), "1..2^24-1")
        need("max_rows_pe", self.max_rows_pe >= 1, ">= 1")
        need("spm_words", self.spm_words >= 1, ">= 1")
        need("ptr_words", self.ptr_words >= 1, ">= 1")
        need("bias_words", self.bias_words >= 1, ">= 1")
        need("max_layers", 1 <= self.max_layers <= 64, "1..64")
        need("macs", self.macs in (1, 2), "1 or 2")
        need("multiplier", self.multiplier in ("generic", "ecp5"), "generic or ecp5")
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
    def acc_bits(self):
        """Accumulator width: exact for cols products of int16 x int16 plus an int32 bias."""
        return 33 + _bits(self.max_cols)

    @property
    def load_data_bits(self):
        return 64

    def replace(self, **kw):
        return replace(self, **kw)

    # Construction from a pack ---------------------------------------------------------------
    @classmethod
    def for_memory_map(cls, mm, *, queue_depth=8, macs=2, headroom=None):
        """The smallest config that holds memory map ``mm`` (see sparsa.sw.eie.memmap)."""
        return cls(pes=mm.pes, queue_depth=queue_depth, macs=macs, lstm=mm.peep is not None,
                   max_cols=mm.max_cols,
                   max_rows_pe=mm.max_rows_pe, spm_words=max(1, mm.spm_words),
                   ptr_words=max(1, mm.ptr_words), bias_words=max(1, mm.bias_words),
                   max_layers=len(mm.layers), pointer_bits=mm.pointer_bits,
                   act_words=mm.act_words if mm.peep is not None else None)

    def check_fits(self, mm, where="pack"):
        """Raise a UserError saying by how much ``mm`` does not fit this hardware."""
        checks = [
            ("pes", mm.pes, self.pes, "=="),
            ("layers", len(mm.layers), self.max_layers, "<="),
            ("vector length (max cols/rows)", mm.max_cols, self.max_cols, "<="),
            ("local rows per PE", mm.max_rows_pe, self.max_rows_pe, "<="),
            ("sparse-matrix words per PE", mm.spm_words, self.spm_words, "<="),
            ("pointer words per bank", mm.ptr_words, self.ptr_words, "<="),
            ("bias words per PE", mm.bias_words, self.bias_words, "<="),
            ("activation words per PE", mm.act_words, self.act_depth, "<="),
        ]
        if mm.peep is not None and not self.lstm:
            raise UserError(f"{where}: an LSTM pack needs hardware built with the element-wise unit (lstm=True)")
        for name, have, cap, op in checks:
            ok = have == cap if op == "==" else have <= cap
            if not ok:
                if op == "==":
                    raise UserError(f"{where}: {name}: the hardware was built for {cap}, the pack needs {have}")
                raise UserError(f"{where}: {name}: hardware limit {cap}, the pack needs {have} "
                                f"(too large by {have - cap})")
        if mm.pointer_bits > self.pointer_bits:
            raise UserError(f"{where}: pointer_bits: hardware limit {self.pointer_bits}, "
                            f"the pack needs {mm.pointer_bits}")
