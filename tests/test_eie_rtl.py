"""The generated EIE Verilog equals the golden model bit for bit (cocotb on Verilator + Icarus).

One Verilog build per PE count (cached under build/sim); every case loads its pack through
the load port, so many models run on one build. Random cases print their seed.
"""

import numpy as np
import pytest

from sparsa.hw.eie.pe import COUNTERS
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sim.eie.runner import run_memory_map

from eie_cases import (hw_config, independent_golden, pack_from_indices, random_codebook,
                       random_index, random_input, random_pack)

BUSY, STARVED, STALLED, PAD, MACS = (COUNTERS.index(n) for n in ("busy", "starved", "stalled", "pad", "macs"))


def run_and_check(pack, x, *, engine="verilator", cfg=None, **kw):
    mm = build_memory_map(pack)
    cfg = cfg or hw_config(pack.pes)
    res = run_memory_map(mm, x, engine=engine, cfg=cfg, **kw)
    want = independent_golden(pack, x)
    np.testing.assert_array_equal(res["y"], want)
    return res


def expected_work(layer, x):
    """Real entries and padding entries in the columns of nonzero x (per PE), from the slices."""
    busy, pad = [], []
    nz = np.flatnonzero(x)
    for s in layer.slices:
        b = p = 0
        for j in nz:
            v = s.v[s.ptr[j]:s.ptr[j + 1]]
            b += int(np.count_nonzero(v))
            p += int(np.count_nonzero(v == 0))
        busy.append(b)
        pad.append(p)
    return np.array(busy), np.array(pad)


# ---- random sweeps -----------------------------------------------------------------------------

@pytest.mark.xdist_group("eie_verilator")
@pytest.mark.parametrize("pes", [1, 2, 4, 16])
@pytest.mark.parametrize("density", [0.0, 0.01, 0.1, 0.5, 1.0])
def test_random_layer_matches_golden(pes, density):
    seed = 1000 * pes + int(density * 100)
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    rows = int(rng.integers(pes, 90))          # usually not a multiple of N
    cols = int(rng.integers(1, 90))
    pack = random_pack([(rows, cols)], pes, density, rng)
    x = random_input(cols, rng, batch=2)
    res = run_and_check(pack, x)
    # Counters are exact: one MAC per real entry, every padding entry counted; a busy cycle
    # issues one or two entries.
    real, pad = expected_work(pack.layers[0], x[0])
    stats = res["layer_stats"][0, 0]
    np.testing.assert_array_equal(stats[:, MACS], real)
    np.testing.assert_array_equal(stats[:, PAD], pad)
    assert np.all(stats[:, BUSY] <= real) and np.all(2 * stats[:, BUSY] >= real)


@pytest.mark.xdist_group("eie_verilator_64")
def test_64_pes_random_layers():
    seed = 64064
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    for density in (0.05, 0.3):
        pack = random_pack([(100, 97)], 64, density, rng)
        run_and_check(pack, random_input(97, rng, batch=2))


@pytest.mark.xdist_group("eie_verilator")
def test_three_layer_mlp_with_relu():
    seed = 33
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = random_pack([(60, 50), (40, 60), (10, 40)], 4, 0.3, rng)
    x = random_input(50, rng, batch=3)
    # The x_in / y_out host streams, with random pauses on both (seeded).
    res = run_and_check(pack, x, stream_io=True, idle=0.3, backpressure=0.5, seed=seed)
    assert res["layer_cycles"].shape == (3, 3)


# ---- named edge cases ------------------------------------------------------------------------

@pytest.mark.xdist_group("eie_verilator")
def test_padding_for_gaps_over_15_and_31():
    # PE-local gaps of 20 and 40 rows: one and two padding entries (z = 15) before a value.
    pes, rows, cols = 2, 2 * 90, 3
    idx = np.zeros((rows, cols), dtype=np.uint8)
    idx[0, 0] = 3; idx[2 * 21, 0] = 5           # local rows 0 and 21: gap 20
    idx[1, 1] = 7; idx[1 + 2 * 41, 1] = 9       # PE 1: local rows 0 and 41: gap 40
    idx[2 * 89, 2] = 1                           # gap 89 from row 0: five paddings
    rng = np.random.default_rng(5)
    pack = pack_from_indices([idx], [random_codebook(rng)], pes)
    assert sum(s.padding for s in pack.layers[0].slices) == 1 + 2 + 5
    x = np.array([[100, -200, 300]], dtype=np.int16)
    res = run_and_check(pack, x, cfg=hw_config(2, max_cols=200))
    assert res["layer_stats"][0, 0][:, PAD].sum() == 8


@pytest.mark.xdist_group("eie_verilator")
def test_gaps_of_exactly_15_zero_rows_fit_and_16_need_a_padding_entry():
    # EIE's 4-bit z counts at most 15 zero rows before an entry; 16 need a padding entry
    # (v = 0, z = 15) first. PE-local rows on 2 PEs (global row = 2 * local + PE):
    pes, rows, cols = 2, 2 * 70, 5
    local = {  # (column, PE): local rows; padding entries counted by hand in the comment
        (0, 0): [0, 16],              # gap 15: none
        (0, 1): [3, 20],              # gap 16: 1
        (1, 0): [16],                 # 16 zero rows before the first entry: 1
        (1, 1): [15],                 # 15 before the first entry: none
        (2, 0): [0, 33],              # gap 32: 2
        (2, 1): [0, 32],              # gap 31: 1
        (3, 0): [15, 31, 47, 63],     # 15, 15, 15, 15: none
        (3, 1): [16, 33, 50, 67],     # 16, 16, 16, 16: 4
        (4, 0): [0, 1, 17, 18, 34],   # 0, 15, 0, 15: none
        (4, 1): [2, 19, 20, 37],      # 2, 16, 0, 16: 2
    }
    hand_padding = 0 + 1 + 1 + 0 + 2 + 1 + 0 + 4 + 0 + 2
    rng = np.random.default_rng(23)
    print("seed=23")
    idx = np.zeros((rows, cols), dtype=np.uint8)
    for (j, k), locs in local.items():
        for r in locs:
            idx[pes * r + k, j] = rng.integers(1, 16)
    cb = random_codebook(rng)
    pack = pack_from_indices([idx], [cb], pes)
    slices = pack.layers[0].slices
    assert sum(s.padding for s in slices) == hand_padding
    x = np.array([[100, -200, 300, -77, 55], [-1, 2, -3, 4, -5]], dtype=np.int16)
    res = run_and_check(pack, x, cfg=hw_config(2, max_cols=200))
    # Against the dense matrix directly (not decoded from the slices): Python integers.
    w = cb.astype(np.int64)[idx].tolist()
    want = [[max(-32768, min(32767, sum(w[i][j] * int(xb[j]) for j in range(cols))))
             for i in range(rows)] for xb in x]
    assert res["y"].tolist() == want
    assert res["layer_stats"][0, 0][:, PAD].sum() == hand_padding


@pytest.mark.xdist_group("eie_verilator")
def test_empty_columns_and_all_zero_input():
    rng = np.random.default_rng(7)
    idx = random_index(30, 40, 0.3, rng)
    idx[:, ::3] = 0                               # every third column empty
    pack = pack_from_indices([idx], [random_codebook(rng)], 4,
                             biases=[rng.integers(-100, 100, 30).astype(np.int32)])
    x = np.vstack([np.zeros(40, dtype=np.int16), random_input(40, rng, batch=1)])
    res = run_and_check(pack, x)
    # An all-zero input broadcasts nothing: no busy cycles at all; the output is the bias.
    assert res["layer_stats"][0, 0][:, BUSY].sum() == 0


@pytest.mark.xdist_group("eie_verilator")
def test_saturation_both_ways():
    cb = np.zeros(16, dtype=np.int16)
    cb[1], cb[2] = 32767, -32768
    idx = np.zeros((8, 16), dtype=np.uint8)
    idx[0::2, :] = 1                              # large positive sums
    idx[1::2, :] = 2                              # large negative sums
    pack = pack_from_indices([idx], [cb], 4, shifts=[0])
    x = np.full((1, 16), 32767, dtype=np.int16)
    res = run_and_check(pack, x)
    assert set(res["y"].ravel().tolist()) == {32767, -32768}


@pytest.mark.xdist_group("eie_verilator")
def test_back_to_back_same_row_hits_use_bypass():
    # One output row: every column's only entry lands on row 0 of PE 0, cycle after cycle.
    rng = np.random.default_rng(11)
    idx = np.ones((1, 64), dtype=np.uint8) * rng.integers(1, 16, 64).astype(np.uint8)
    pack = pack_from_indices([idx], [random_codebook(rng, scale=100)], 1)
    x = rng.integers(-100, 100, (2, 64)).astype(np.int16)
    x[x == 0] = 1
    run_and_check(pack, x, cfg=hw_config(1))


@pytest.mark.xdist_group("eie_verilator")
def test_paired_entries_hit_both_banks_back_to_back():
    # Rows 0 and 1 of PE 0 in every column: each column's two entries issue together (one per
    # accumulator bank), and the next column hits the same two rows in the next cycle.
    rng = np.random.default_rng(12)
    idx = rng.integers(1, 16, (2, 64)).astype(np.uint8)
    pack = pack_from_indices([idx], [random_codebook(rng, scale=100)], 1)
    x = rng.integers(-100, 100, (2, 64)).astype(np.int16)
    x[x == 0] = 1
    res = run_and_check(pack, x, cfg=hw_config(1))
    stats = res["layer_stats"][0, 0]
    assert stats[0, MACS] == 128 and stats[0, BUSY] == 64


def _same_parity_pack(rng):
    # Rows 0 and 2 of a 4-row PE in every column: two entries of one row parity.
    idx = np.zeros((4, 64), dtype=np.uint8)
    idx[[0, 2], :] = rng.integers(1, 16, (2, 64))
    pack = pack_from_indices([idx], [random_codebook(rng, scale=100)], 1)
    x = rng.integers(-100, 100, (2, 64)).astype(np.int16)
    x[x == 0] = 1
    return pack, x


@pytest.mark.xdist_group("eie_verilator")
def test_rows_of_one_parity_pair_with_full_accumulator_banks():
    # Both banks hold every row (the default), so rows 0 and 2 issue together: 64 busy cycles.
    pack, x = _same_parity_pack(np.random.default_rng(21))
    stats = run_and_check(pack, x, cfg=hw_config(1))["layer_stats"][0, 0]
    assert stats[0, MACS] == 128 and stats[0, BUSY] == 64


@pytest.mark.xdist_group("eie_verilator_split")
def test_split_accumulator_banks_match_golden_and_pair_only_across_parity():
    # acc_banks="split": row r in bank r % 2 (half the accumulator memory). Rows 0 and 2 share
    # a bank, so they take a cycle each; random layers stay exact (one build, one PE).
    pack, x = _same_parity_pack(np.random.default_rng(22))
    cfg = hw_config(1).replace(acc_banks="split")
    stats = run_and_check(pack, x, cfg=cfg)["layer_stats"][0, 0]
    assert stats[0, MACS] == 128 and stats[0, BUSY] == 128
    for density in (0.1, 0.5, 1.0):
        seed = 3200 + int(density * 100)
        print(f"seed={seed}")
        r = np.random.default_rng(seed)
        pk = random_pack([(int(r.integers(4, 90)), int(r.integers(1, 90)))], 1, density, r)
        xr = random_input(pk.layers[0].cols, r, batch=2)
        res = run_and_check(pk, xr, cfg=cfg)
        real, _ = expected_work(pk.layers[0], xr[0])
        np.testing.assert_array_equal(res["layer_stats"][0, 0][:, MACS], real)


@pytest.mark.xdist_group("eie_verilator_macs1")
@pytest.mark.parametrize("density", [0.1, 0.5, 1.0])
def test_one_mac_per_pe_matches_golden(density):
    # cfg.macs = 1 (EIE's single MAC, half the multipliers): one entry per busy cycle.
    seed = 3100 + int(density * 100)
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = random_pack([(int(rng.integers(4, 90)), int(rng.integers(1, 90)))], 4, density, rng)
    x = random_input(pack.layers[0].cols, rng, batch=2)
    res = run_and_check(pack, x, cfg=hw_config(4).replace(macs=1))
    real, _ = expected_work(pack.layers[0], x[0])
    stats = res["layer_stats"][0, 0]
    np.testing.assert_array_equal(stats[:, BUSY], real)
    np.testing.assert_array_equal(stats[:, MACS], real)


@pytest.mark.xdist_group("eie_verilator")
def test_heavy_column_for_one_pe_fills_its_queue_and_stalls_broadcast():
    rng = np.random.default_rng(13)
    idx = np.zeros((64, 40), dtype=np.uint8)
    idx[0::4, :] = rng.integers(1, 16, (16, 40))     # PE 0: 16 entries per column, others none
    pack = pack_from_indices([idx], [random_codebook(rng, scale=50)], 4, shifts=[4])
    x = rng.integers(1, 100, (1, 40)).astype(np.int16)
    res = run_and_check(pack, x)
    stats = res["layer_stats"][0, 0]
    assert stats[0, STALLED] > 0
    assert stats[1:, BUSY].sum() == 0 and stats[1:, STARVED].min() > 0


@pytest.mark.xdist_group("eie_verilator")
def test_reset_in_the_middle_of_a_run_then_clean_run():
    rng = np.random.default_rng(17)
    pack = random_pack([(60, 50), (30, 60)], 4, 0.4, rng)
    x = random_input(50, rng, batch=2)
    run_and_check(pack, x, reset_mid_run=40, stream_io=True)


@pytest.mark.xdist_group("eie_verilator")
def test_queue_depth_one_still_exact():
    rng = np.random.default_rng(19)
    pack = random_pack([(50, 40)], 4, 0.3, rng)
    run_and_check(pack, random_input(40, rng), cfg=hw_config(4, queue_depth=1))


@pytest.mark.xdist_group("eie_verilator_init")
def test_memory_init_build_runs_without_load_port():
    rng = np.random.default_rng(23)
    pack = random_pack([(20, 30), (10, 20)], 2, 0.3, rng)
    run_and_check(pack, random_input(30, rng), init=True)


# ---- the ECP5 DSP multiplier (EIEConfig.multiplier = "ecp5") ---------------------------------
# MULT18X18D instances with their own input and output registers replace the fabric multiply;
# simulated with sparsa's behavioural model of the block (tests/test_primitive_models.py).

def _extreme_pack(pes, rng):
    # Codebook and inputs at the int16 limits, so the products' signs and the 32-bit
    # accumulation are exercised at their edges; shift 15 keeps most outputs in range.
    rows, cols = 40, 30
    idx = ((rng.random((rows, cols)) < 0.4) * rng.integers(1, 16, (rows, cols))).astype(np.uint8)
    cb = np.zeros(16, dtype=np.int16)
    cb[1:] = [32767, -32768, -32767, 1, -1, 16384, -16384, 12345, -12345, 2, -2, 255, -256, 7, -7]
    pack = pack_from_indices([idx], [cb], pes, shifts=[15])
    x = rng.choice([32767, -32768, -32767, 1, -1, 0, 4096, -4097], (2, cols)).astype(np.int16)
    return pack, x


@pytest.mark.xdist_group("eie_verilator_ecp5")
@pytest.mark.parametrize("density", [0.1, 1.0])
def test_ecp5_dsp_multiplier_matches_golden(density):
    seed = 5500 + int(density * 100)
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = random_pack([(int(rng.integers(4, 90)), int(rng.integers(1, 90)))], 4, density, rng)
    run_and_check(pack, random_input(pack.layers[0].cols, rng, batch=2),
                  cfg=hw_config(4).replace(multiplier="ecp5"), stream_io=True,
                  idle=0.2, backpressure=0.3, seed=seed)


@pytest.mark.xdist_group("eie_verilator_ecp5")
def test_ecp5_dsp_multiplier_extreme_operands():
    seed = 5599
    print(f"seed={seed}")
    pack, x = _extreme_pack(4, np.random.default_rng(seed))
    run_and_check(pack, x, cfg=hw_config(4).replace(multiplier="ecp5"))


# ---- Icarus: a short pass so both simulators stay green ----------------------------------------

@pytest.mark.xdist_group("eie_icarus")
def test_icarus_small_mlp_matches_golden():
    seed = 4242
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = random_pack([(24, 20), (9, 24)], 4, 0.4, rng)
    run_and_check(pack, random_input(20, rng, batch=2), engine="icarus", stream_io=True,
                  idle=0.3, backpressure=0.5, seed=seed)


@pytest.mark.xdist_group("eie_icarus")
def test_icarus_padding_and_saturation():
    pes, rows, cols = 2, 80, 4
    idx = np.zeros((rows, cols), dtype=np.uint8)
    idx[0, 0] = 1; idx[70, 0] = 1; idx[1, 1] = 2; idx[79, 2] = 2; idx[40, 3] = 1
    cb = np.zeros(16, dtype=np.int16); cb[1], cb[2] = 32767, -32768
    pack = pack_from_indices([idx], [cb], pes, shifts=[0])
    x = np.array([[32767, 32767, 2, -3]], dtype=np.int16)
    run_and_check(pack, x, engine="icarus")


@pytest.mark.xdist_group("eie_icarus_ecp5")
def test_icarus_ecp5_dsp_multiplier():
    seed = 5598
    print(f"seed={seed}")
    pack, x = _extreme_pack(2, np.random.default_rng(seed))
    run_and_check(pack, x, engine="icarus", cfg=hw_config(2).replace(multiplier="ecp5"))
