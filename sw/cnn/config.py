"""CNNConfig: the hardware parameters of the CNN engine, validated once.

Pure Python (no Amaranth import), shared by the compiler, the pack format and the hardware
generator. The sizing policies are named constructors: :meth:`CNNConfig.from_args` (the sizes
``sparsa pack --lanes ... --ibuf-bytes ...`` gives, defaults for the rest) and
:meth:`CNNConfig.from_dict` (the configuration a CNN pack's manifest records).
"""

from dataclasses import dataclass, fields

from sparsa.sw.errors import UserError, user_error

__all__ = ["CNNConfig"]


class _BadField(UserError):
    """A CNNConfig field out of range; keeps the parts so that callers can name their option."""

    def __init__(self, field, limit, found):
        super().__init__(f"CNNConfig: {field}: expected {limit}, found {found}")
        self.field, self.limit, self.found = field, limit, found


@dataclass(frozen=True)
class CNNConfig:
    """Hardware parameters of the CNN engine.

    ``lanes`` output channels are computed in parallel (one multiplier each); ``ibuf_bytes``,
    ``wbuf_words`` and ``obuf_depth`` size the on-chip buffers. ``winograd`` generates the
    F(2x2,3x3) datapath next to the direct one. ``convolver`` generates the 3x3 window
    convolver (9 multipliers and an adder tree per lane) with ``psum_depth`` partial sums per
    lane (the most output pixels of one 3x3 CONV). The AXI4 master has ``axi_data_bits`` data.

    ``weight_bits`` is the width of a lane's weight in wbuf and in the DRAM weight blocks: 16
    (what Winograd's transformed weights need) or 8 (int8 weights, half the weight traffic
    and half the wbuf; an engine without Winograd, 8 lanes or more so that a wbuf word fills
    an AXI beat). ``pair_multipliers`` lets two lanes share each convolver multiplier (two int8
    weights packed 16 bits apart times the same int8 input, as Xilinx's DPU packs its DSPs):
    half the convolver's DSPs for the same MACs. An out-of-range field is a one-line
    :class:`UserError` naming the field, the limit and the value.
    """
    lanes: int = 8
    ibuf_bytes: int = 32768
    wbuf_words: int = 8192
    obuf_depth: int = 4096
    winograd: bool = True
    axi_data_bits: int = 64
    convolver: bool = True
    psum_depth: int = 1024
    weight_bits: int = 16
    pair_multipliers: bool = False

    def __post_init__(self):
        def need(name, ok, limit):
            if not ok:
                raise _BadField(name, limit, repr(getattr(self, name)))
        isint = lambda name: isinstance(getattr(self, name), int) and not isinstance(getattr(self, name), bool)
        need("lanes", self.lanes in (4, 8, 16, 32), "4, 8, 16 or 32")
        # ibuf/obuf are 64-bit words; their byte addresses and the weight-word index are the
        # widths of the instruction fields and of the engine's address counters
        for name, limit in (("ibuf_bytes", 1 << 20), ("obuf_depth", 1 << 20)):
            v = getattr(self, name)
            need(name, isint(name) and v % 8 == 0 and 8 <= v <= limit, f"a multiple of 8 in 8..{limit}")
        need("wbuf_words", isint("wbuf_words") and 1 <= self.wbuf_words <= 1 << 16, f"1..{1 << 16}")
        need("psum_depth", isint("psum_depth") and 16 <= self.psum_depth <= 1 << 16, f"16..{1 << 16}")
        need("axi_data_bits", isint("axi_data_bits") and self.axi_data_bits == 64, "64")
        for name in ("winograd", "convolver", "pair_multipliers"):   # true/false only: "false" or 1 would build the unit
            need(name, isinstance(getattr(self, name), bool), "true or false")
        need("weight_bits", isint("weight_bits") and self.weight_bits in (8, 16), "8 or 16")
        need("weight_bits", self.weight_bits == 16 or not self.winograd,
             "16 with the Winograd datapath (its transformed weights are wider than int8)")
        need("weight_bits", self.weight_bits == 16 or self.lanes >= 8, "16 below 8 lanes (a word must fill a beat)")
        need("pair_multipliers", not self.pair_multipliers or self.convolver, "false without the window convolver")

    @property
    def weight_word_bytes(self):
        """Bytes of one wbuf word (every lane's weight) in DRAM."""
        return self.weight_bits // 8 * self.lanes

    @property
    def config_word(self):
        """The SoC's read-only CONFIG register (``hw/cnn/soc.py``): [7:0] lanes, [8] Winograd,
        [9] window convolver, [10] int8 weight words, [11] paired convolver multipliers."""
        return (self.lanes | int(self.winograd) << 8 | int(self.convolver) << 9 | int(self.weight_bits == 8) << 10
                | int(self.pair_multipliers) << 11)

    @property
    def peak_multipliers(self):
        """Multiplies a cycle at most: 9 a lane on the window convolver, else one a lane."""
        return 9 * self.lanes if self.convolver else self.lanes

    # Named constructors ------------------------------------------------------------------------
    @classmethod
    def from_args(cls, *, datapath="direct", lanes=None, weight_bits=None, pair_multipliers=False, **sizes):
        """The engine for ``sparsa pack``'s options: ``datapath`` (``"winograd"`` generates the
        Winograd datapath), ``lanes`` and buffer ``sizes`` (``None``: the default). An
        out-of-range value is a UserError naming the option (``--ibuf-bytes``)."""
        given = {k: v for k, v in {"lanes": lanes, "weight_bits": weight_bits, **sizes}.items() if v is not None}
        try:
            return cls(winograd=datapath == "winograd", pair_multipliers=bool(pair_multipliers), **given)
        except _BadField as e:
            raise user_error(None, "--" + e.field.replace("_", "-"), e.limit, e.found) from None

    @classmethod
    def from_dict(cls, d, where):
        """The configuration recorded in ``where`` (a pack manifest's ``config``); unknown keys
        are ignored (written by a later sparsa), a bad value is a UserError naming ``where``."""
        if not isinstance(d, dict):
            raise user_error(where, "config", "an object of CNNConfig fields", type(d).__name__)
        known = {f.name for f in fields(cls)}
        try:
            return cls(**{k: v for k, v in d.items() if k in known})
        except _BadField as e:
            raise user_error(where, f"config.{e.field}", e.limit, e.found) from None
