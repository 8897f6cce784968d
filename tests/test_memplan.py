"""Block RAM / LUT RAM planning for `sparsa build --memories fit` (sparsa.boards.memplan).

Expected block counts are worked out here from the DP16KD and SB_RAM40_4K aspect ratios, not
taken from the planner.
"""

import pytest

from sparsa.boards.memplan import PEMemory, blocks, mark_ram_style, pe_memories, plan, yosys_blocks
from sparsa.sw.eie.config import EIEConfig
from sparsa.sw.errors import UserError

# The ESE-size LSTM (I=153, H=1024, P=512, 11.2%) on 4 PEs, compressed with --pad-free:
# 90,948 entries per PE = 11,369 words; 665 and 1024 columns -> 846 pointer words per bank.
# The ESE model on 4 PEs, as the ULX3S build has it: two-multiplier PEs whose accumulator banks
# split the rows by parity (two banks of 512 x 46).
ESE4 = dict(pes=4, max_cols=4096, max_rows_pe=1024, spm_words=11369, ptr_words=846, bias_words=1152,
            max_layers=2, pointer_bits=17, lstm=True, act_words=256, acc_banks="split")


def test_block_counts_follow_the_aspect_ratios():
    # ECP5 DP16KD: 36 x 512 is the widest mode; a 64-bit word needs two of them side by side.
    assert blocks(PEMemory("spm", 64, 11369), "ecp5") == 2 * 23
    assert blocks(PEMemory("acc0", 46, 512), "ecp5") == 2
    assert blocks(PEMemory("cstate", 24, 256), "ecp5") == 1
    assert blocks(PEMemory("bias", 32, 1152), "ecp5") == 3          # 36 x 512, three deep
    assert blocks(PEMemory("ptr_even", 17, 846), "ecp5") == 1       # 18 x 1024
    # iCE40 SB_RAM40_4K: 16 x 256 at most.
    assert blocks(PEMemory("bias", 32, 1000), "ice40") == 2 * 4
    assert blocks(PEMemory("x", 2, 2048), "ice40") == 1


def test_everything_stays_in_block_ram_when_it_fits():
    cfg = EIEConfig(pes=4, max_cols=256, max_rows_pe=64, spm_words=200, ptr_words=129, bias_words=64)
    p = plan(cfg, "ecp5", 208)
    assert set(p["styles"].values()) == {"block"} and p["lutram_bits"] == 0
    # spm 1 x 2 (36 x 512 twice), ptr 1 + 1, bias 1, act 1 + 1, acc 1 + 1 (46 x 32 -> 36 x 512 x 2 = 2 each)
    want = 4 * (2 + 1 + 1 + 1 + 1 + 1 + 2 + 2)
    assert p["blocks"] == want


def test_the_fewest_bits_that_make_it_fit_move_out():
    cfg = EIEConfig(**ESE4)
    # All in block RAM: spm 46, ptr 1 + 1, bias 3, act 1 + 1, acc 2 + 2, cstate 1, peep 1 = 59 a PE,
    # 236 in all: 28 over the 85F's 208, so 7 blocks a PE must go. Without bias (3) the movable
    # memories free only 6, so bias goes, and with it the four smallest one-block memories:
    # act_a and act_b (4,096 bits), cstate (6,144) and a pointer bank (14,382; peep has 16,384).
    p = plan(cfg, "ecp5", 208)
    moved = {k for k, v in p["styles"].items() if v == "distributed"}
    assert len(moved) == 5 and {"act_a", "act_b", "cstate", "bias"} < moved and moved & {"ptr_even", "ptr_odd"}
    assert p["blocks"] == 208
    assert p["lutram_bits"] == 4 * (2 * 16 * 256 + 24 * 256 + 32 * 1152 + 17 * 846)
    # The weights and accumulators never move.
    assert all(p["styles"][k] == "block" for k in ("spm", "acc0", "acc1"))


def test_a_smaller_count_for_the_weights_keeps_the_bias_in_block_ram():
    # yosys packs the 64 x 11,369 weight ROM into 43 blocks, not 46: 56 a PE, 224 in all, so 4
    # blocks a PE must go. act_a, act_b, cstate and a pointer bank free 4 with 28,718 bits;
    # anything with bias (36,864 bits alone) moves more.
    cfg = EIEConfig(**ESE4)
    count = lambda m: 43 if m.name == "spm" else blocks(m, "ecp5")
    p = plan(cfg, "ecp5", 208, count=count)
    moved = {k for k, v in p["styles"].items() if v == "distributed"}
    assert len(moved) == 4 and {"act_a", "act_b", "cstate"} < moved and moved & {"ptr_even", "ptr_odd"}
    assert p["styles"]["bias"] == "block" and p["blocks"] == 208
    assert p["lutram_bits"] == 4 * (2 * 16 * 256 + 24 * 256 + 17 * 846)
    assert next(r for r in p["memories"] if r["memory"] == "spm")["blocks_per_pe"] == 43
    # The pointer banks are ROMs in the board harness (yosys maps no ROM to LUT RAM): logic.
    p = plan(cfg, "ecp5", 208, count=count, roms=("spm", "ptr_even", "ptr_odd", "bias", "peep"))
    assert p["styles"]["ptr_even"] == "logic" and p["styles"]["act_a"] == "distributed"
    assert p["lutram_bits"] == 4 * (2 * 16 * 256 + 24 * 256) and p["logic_bits"] == 4 * 17 * 846


def test_full_accumulator_banks_cost_the_4_pe_ese_its_bias_block_ram():
    # Full banks (every row in both): two banks of 1,024 x 46, 3 blocks each (18 x 1,024, three
    # side by side) against 2 + 2 split. With the weights at 43 blocks: 58 a PE, 232 in all, 24
    # over; act_a, act_b, cstate and both pointer banks free only 5 a PE, so bias (3) must go.
    count = lambda m: 43 if m.name == "spm" else blocks(m, "ecp5")
    full = EIEConfig(**{**ESE4, "acc_banks": "full"})
    assert [(m.name, m.depth) for m in pe_memories(full) if m.name.startswith("acc")] == [("acc0", 1024), ("acc1", 1024)]
    assert [(m.name, m.depth) for m in pe_memories(EIEConfig(**ESE4)) if m.name.startswith("acc")] == \
        [("acc0", 512), ("acc1", 512)]
    assert blocks(PEMemory("acc0", 46, 1024), "ecp5") == 3
    p = plan(full, "ecp5", 208, count=count)
    assert p["styles"]["bias"] == "distributed" and p["blocks"] <= 208
    assert plan(EIEConfig(**ESE4), "ecp5", 208, count=count)["styles"]["bias"] == "block"


def test_a_memory_yosys_keeps_out_of_block_ram_gets_no_attribute():
    # Counted 0 blocks (yosys maps the activation files to LUT RAM by itself): "auto", so that
    # no ram_style attribute forces it into block RAM, and it never counts as moved.
    cfg = EIEConfig(**ESE4)
    count = lambda m: 0 if m.name in ("act_a", "act_b") else 43 if m.name == "spm" else blocks(m, "ecp5")
    p = plan(cfg, "ecp5", 208, count=count)
    assert p["styles"]["act_a"] == p["styles"]["act_b"] == "auto"
    # 54 a PE, 216 in all: 8 too many, 2 a PE: cstate and a pointer bank (20,526 bits) beat bias.
    moved = {k for k, v in p["styles"].items() if v == "distributed"}
    assert len(moved) == 2 and "cstate" in moved and moved & {"ptr_even", "ptr_odd"} and p["blocks"] == 208
    v = mark_ram_style("  reg [15:0] act_a [255:0];\n  reg [23:0] cstate [255:0];\n", p["styles"])
    assert v == '  reg [15:0] act_a [255:0];\n  (* ram_style = "distributed" *)\n  reg [23:0] cstate [255:0];\n'


def test_yosys_blocks_counts_what_yosys_maps():
    # Shapes with one obvious mapping: a 16 x 256 RAM in one block, a 46 x 512 RAM in two 36 x 512
    # blocks, a 32 x 1,152 ROM in three 36 x 512 blocks; iCE40: a 16 x 512 RAM in two 16 x 256.
    assert yosys_blocks(PEMemory("a", 16, 256), "ecp5", rom=False) == 1
    assert yosys_blocks(PEMemory("b", 46, 512), "ecp5", rom=False) == 2
    assert yosys_blocks(PEMemory("c", 32, 1152), "ecp5", rom=True) == 3
    assert yosys_blocks(PEMemory("d", 16, 512), "ice40", rom=False) == 2
    # The ESE weights on 4 PEs as a ROM: no fewer blocks than its 727,616 bits need (40 of
    # 18,432 bits), and no more than the widest aspect ratio's 46.
    n = yosys_blocks(PEMemory("spm", 64, 11369), "ecp5", rom=True)
    assert 40 <= n <= blocks(PEMemory("spm", 64, 11369), "ecp5")


def test_a_model_too_large_says_by_how_much():
    # With EIE's padding entries the same model needs 13,299 words a PE: 2 x 26 blocks for the
    # weights and 4 for the accumulators, 224 in all before anything else.
    cfg = EIEConfig(**{**ESE4, "spm_words": 13299})
    with pytest.raises(UserError, match=r"needs 224 block RAMs .* has 208 \(too large by 16 blocks\)"):
        plan(cfg, "ecp5", 208)


def test_ice40_has_no_lut_ram_to_move_to():
    cfg = EIEConfig(pes=2, max_cols=256, max_rows_pe=128, spm_words=600, ptr_words=129, bias_words=128)
    with pytest.raises(UserError, match="too large by"):
        plan(cfg, "ice40", 30)


@pytest.mark.parametrize("acc_banks", ["full", "split"])
def test_pe_memories_match_the_generated_verilog_names(acc_banks):
    from sparsa.hw.eie.verilog import generate_verilog
    import re
    cfg = EIEConfig(pes=2, max_cols=32, max_rows_pe=16, spm_words=16, ptr_words=17, bias_words=16, lstm=True,
                    acc_banks=acc_banks)
    v = generate_verilog(cfg, name="eie_top")
    for m in pe_memories(cfg):
        assert re.search(r"reg \[%d:0\] %s \[%d:0\];" % (m.width - 1, m.name, m.depth - 1), v), m
    assert re.search(r"reg \[%d:0\] acc0 \[%d:0\];" % (cfg.acc_bits - 1, 15 if acc_banks == "full" else 7), v)


def test_mark_ram_style_puts_one_attribute_on_each_named_memory():
    v = "  reg [15:0] act_a [255:0];\n  reg [63:0] spm [99:0];\n  reg [15:0] act_ab [3:0];\n"
    out = mark_ram_style(v, {"act_a": "distributed", "spm": "block"})
    assert out == ('  (* ram_style = "distributed" *)\n  reg [15:0] act_a [255:0];\n'
                   '  (* ram_style = "block" *)\n  reg [63:0] spm [99:0];\n  reg [15:0] act_ab [3:0];\n')
    # A ROM out of block RAM (plan's "logic": yosys maps no ROM to LUT RAM).
    rom = mark_ram_style("  reg [31:0] bias [9:0];\n", {"bias": "logic"})
    assert rom == '  (* ram_style = "logic" *)\n  reg [31:0] bias [9:0];\n'
