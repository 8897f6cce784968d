"""Where each PE memory goes: block RAM or LUT RAM, so that a model fits a device.

A PE array holds, per PE, the memories listed by :func:`pe_memories`, under the names the
generated Verilog gives them. Block RAM comes in fixed blocks (ECP5: DP16KD, 18 Kbit, one of
six aspect ratios; iCE40: SB_RAM40_4K, 4 Kbit), so a memory costs whole blocks in its best
aspect ratio: a 64-bit sparse-matrix word takes two 36-bit-wide DP16KDs, and a 256 x 24
cell-state memory a whole 18 Kbit block for 6 Kbit of data. LUT RAM costs logic instead:
ECP5 holds 16 x 4 bits in a DPR16X4 (one RAM pair of slices), iCE40 has none.

:func:`plan` puts every memory in block RAM, then moves memories to LUT RAM while the array
needs more blocks than the device has: at each step the one that frees blocks for the fewest
LUT-RAM bits per block freed. The sparse-matrix and accumulator memories never move: the
weights are the bulk of the model, and the accumulators need a read port transparent to their
write port. ``sparsa build --memories fit`` applies the plan with yosys ``ram_style``
attributes; the ESE-size LSTM on 4 PEs is the case it was written for (docs/ese.md).
"""

from dataclasses import dataclass

from sparsa.sw.errors import UserError

__all__ = ["BLOCK_MODES", "LUTRAM_BITS", "PEMemory", "pe_memories", "blocks", "plan", "mark_ram_style"]

# Block RAM aspect ratios (width, depth) per family.
BLOCK_MODES = {
    "ecp5": ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)),
    "ice40": ((2, 2048), (4, 1024), (8, 512), (16, 256)),
}
# Bits of LUT RAM a family can hold (ECP5-85F: 669 Kbit of distributed RAM; iCE40: none).
LUTRAM_BITS = {"ecp5": 669 * 1024, "ice40": 0}
_FIXED = ("spm", "acc0", "acc1")          # always in block RAM


@dataclass(frozen=True)
class PEMemory:
    name: str          # the memory's name in the generated Verilog
    width: int
    depth: int

    @property
    def bits(self):
        return self.width * self.depth


def pe_memories(cfg):
    """Every memory of one PE of ``cfg`` (an EIEConfig) that synthesis may put in block RAM."""
    from sparsa.sw.eie_format import ACT_BITS, BIAS_BITS
    mems = [PEMemory("spm", 64, cfg.spm_words),
            PEMemory("ptr_even", cfg.pointer_bits, cfg.ptr_words),
            PEMemory("ptr_odd", cfg.pointer_bits, cfg.ptr_words),
            PEMemory("bias", BIAS_BITS, cfg.bias_words),
            PEMemory("act_a", ACT_BITS, cfg.act_depth),
            PEMemory("act_b", ACT_BITS, cfg.act_depth)]
    banks = cfg.macs
    mems += [PEMemory(f"acc{b}", cfg.acc_bits, -(-cfg.max_rows_pe // banks)) for b in range(banks)]
    if cfg.lstm:
        mems += [PEMemory("cstate", 24, -(-cfg.max_rows_pe // 4)), PEMemory("peep", 16, cfg.max_rows_pe)]
    return mems


def blocks(mem, family):
    """Block RAMs one memory takes in its best aspect ratio."""
    return min(-(-mem.width // w) * -(-mem.depth // d) for w, d in BLOCK_MODES[family])


def plan(cfg, family, capacity, *, where="--memories fit"):
    """Choose block or LUT RAM for every PE memory so that the array fits ``capacity`` blocks.

    Returns ``{"styles": {name: "block" | "distributed"}, "blocks": total blocks,
    "lutram_bits": total LUT-RAM bits, "memories": [per-memory rows]}``. Raises a one-line
    :class:`UserError` saying by how much the model is too large when even the memories that
    can move do not make it fit.
    """
    mems = pe_memories(cfg)
    n = cfg.pes
    style = {m.name: "block" for m in mems}
    used = lambda: n * sum(blocks(m, family) for m in mems if style[m.name] == "block")
    lut_bits = lambda: n * sum(m.bits for m in mems if style[m.name] == "distributed")
    movable = [m for m in mems if m.name not in _FIXED]
    while used() > capacity and LUTRAM_BITS[family]:
        cands = [m for m in movable if style[m.name] == "block" and blocks(m, family)]
        if not cands:
            break
        best = min(cands, key=lambda m: m.bits / blocks(m, family))
        style[best.name] = "distributed"
    if used() > capacity or lut_bits() > LUTRAM_BITS[family]:
        fixed = n * sum(blocks(m, family) for m in mems if m.name in _FIXED)
        raise UserError(f"{where}: the model needs {used()} block RAMs with {lut_bits() // 1024} Kbit in LUT RAM "
                        f"({fixed} for the weights and accumulators alone); the {family} device has {capacity} "
                        f"(too large by {used() - capacity} blocks)" if used() > capacity else
                        f"{where}: the model needs {lut_bits() // 1024} Kbit of LUT RAM besides {used()} block "
                        f"RAMs; the device has {LUTRAM_BITS[family] // 1024} Kbit")
    rows = [{"memory": m.name, "width": m.width, "depth": m.depth, "style": style[m.name],
             "blocks_per_pe": blocks(m, family) if style[m.name] == "block" else 0} for m in mems]
    return {"styles": style, "blocks": used(), "lutram_bits": lut_bits(), "memories": rows}


# Memories that only the load port writes. The open-flow harness ties the load port off, so
# synthesis sees them as ROMs, and yosys maps no ROM to ECP5 LUT RAM (its DPR16X4 is marked
# for RAMs only): "no valid mapping found" if asked to. Out of block RAM they become logic.
LOAD_ONLY = ("spm", "ptr_even", "ptr_odd", "bias", "peep")


def mark_ram_style(verilog_text, styles, *, roms=()):
    """Put a yosys ``ram_style`` attribute on every memory named in ``styles`` ({name: style});
    memories in ``roms`` (read-only in the design) that are not in block RAM go to logic."""
    import re
    styles = {k: "logic" if k in roms and v == "distributed" else v for k, v in styles.items()}
    out = verilog_text
    for style in sorted(set(styles.values())):
        names = [k for k, v in styles.items() if v == style]
        pat = re.compile(r"^(\s*)(reg \[\d+:0\] (?:%s) \[\d+:0\];)$" % "|".join(names), re.M)
        out = pat.sub(lambda m: f'{m.group(1)}(* ram_style = "{style}" *)\n{m.group(1)}{m.group(2)}', out)
    return out
