"""Block RAM / LUT RAM planning for `sparsa build --memories fit` (sparsa.boards.memplan).

Expected block counts are worked out here from the DP16KD and SB_RAM40_4K aspect ratios, not
taken from the planner.
"""

import pytest

from sparsa.boards.memplan import PEMemory, blocks, mark_ram_style, pe_memories, plan
from sparsa.hw.eie.config import EIEConfig
from sparsa.sw.errors import UserError

# The ESE-size LSTM (I=153, H=1024, P=512, 11.2%) on 4 PEs, compressed with --pad-free:
# 90,948 entries per PE = 11,369 words; 665 and 1024 columns -> 846 pointer words per bank.
ESE4 = dict(pes=4, max_cols=4096, max_rows_pe=1024, spm_words=11369, ptr_words=846, bias_words=1152,
            max_layers=2, pointer_bits=17, lstm=True, act_words=256)


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


def test_the_cheapest_memories_per_block_freed_move_first():
    cfg = EIEConfig(**ESE4)
    # All in block RAM: spm 46, ptr 1 + 1, bias 3, act 1 + 1, acc 2 + 2, cstate 1, peep 1 = 59 a PE,
    # 236 in all: 28 over the 85F's 208, so 7 blocks a PE must go. Bits per block freed: act 4,096,
    # cstate 6,144, bias 36,864 / 3 = 12,288, ptr 14,382, peep 16,384: act_a, act_b, cstate and
    # bias free 6, and ptr_even the seventh.
    p = plan(cfg, "ecp5", 208)
    moved = {k for k, v in p["styles"].items() if v == "distributed"}
    assert moved == {"act_a", "act_b", "cstate", "bias", "ptr_even"}
    assert p["blocks"] == 208
    assert p["lutram_bits"] == 4 * (2 * 16 * 256 + 24 * 256 + 32 * 1152 + 17 * 846)
    # The weights and accumulators never move.
    assert all(p["styles"][k] == "block" for k in ("spm", "acc0", "acc1"))


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


def test_pe_memories_match_the_generated_verilog_names():
    from sparsa.hw.eie.verilog import generate_verilog
    import re
    cfg = EIEConfig(pes=2, max_cols=32, max_rows_pe=16, spm_words=16, ptr_words=17, bias_words=16, lstm=True)
    v = generate_verilog(cfg, name="eie_top")
    for m in pe_memories(cfg):
        assert re.search(r"reg \[%d:0\] %s \[%d:0\];" % (m.width - 1, m.name, m.depth - 1), v), m


def test_mark_ram_style_puts_one_attribute_on_each_named_memory():
    v = "  reg [15:0] act_a [255:0];\n  reg [63:0] spm [99:0];\n  reg [15:0] act_ab [3:0];\n"
    out = mark_ram_style(v, {"act_a": "distributed", "spm": "block"})
    assert out == ('  (* ram_style = "distributed" *)\n  reg [15:0] act_a [255:0];\n'
                   '  (* ram_style = "block" *)\n  reg [63:0] spm [99:0];\n  reg [15:0] act_ab [3:0];\n')
    # A memory the design only reads (the board harness ties the load port off) cannot be LUT
    # RAM in yosys: it becomes logic.
    rom = mark_ram_style("  reg [31:0] bias [9:0];\n", {"bias": "distributed"}, roms=("bias",))
    assert rom == '  (* ram_style = "logic" *)\n  reg [31:0] bias [9:0];\n'
