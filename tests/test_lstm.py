"""ESE LSTM: the golden model against float64, load balance, the CLI path, and the generated
Verilog (Verilator; a short Icarus pass) bit for bit against the golden model."""

import json

import numpy as np
import pytest

from sparsa.cli import main
from sparsa.sw.fixedpoint import dequantize, quantize
from sparsa.sw.model.lstm import LSTMWeights, lstm_forward
from sparsa.sw.eie.lstm_step import hw_gate_rows, lstm_golden
from sparsa.sw.lstm.pack import compress_lstm, pack_lstm


def random_lstm(rng, i, h, p=None, *, bias=True, peepholes=False):
    """Weights scaled ~1/sqrt(fan-in) so that the gates stay mostly out of saturation."""
    s = 1 / np.sqrt(h)
    pp = p or h
    w = LSTMWeights(w_ih=rng.normal(size=(4 * h, i)) * s, w_hh=rng.normal(size=(4 * h, pp)) * s,
                    b_ih=rng.normal(size=4 * h) * 0.1 if bias else np.zeros(4 * h),
                    b_hh=rng.normal(size=4 * h) * 0.1 if bias else np.zeros(4 * h))
    if p:
        w.w_hr = rng.normal(size=(p, h)) * s
    if peepholes:
        w.w_ic, w.w_fc, w.w_oc = (rng.normal(size=h) * 0.3 for _ in range(3))
    return w


@pytest.mark.parametrize("shape,peep", [((20, 37, 13), True), ((16, 64, 32), False), ((8, 24, None), True)])
def test_golden_within_3_percent_of_float64_over_50_steps(shape, peep):
    seed = sum(shape[:2]) + peep
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    w = random_lstm(rng, *shape, peepholes=peep)
    x = rng.uniform(-1, 1, (50, shape[0]))
    comp = compress_lstm(w, 0.3, 4, 4, calib=x)
    pack = pack_lstm(comp, 4)
    y = dequantize(lstm_golden(pack, quantize(x, comp.in_frac)), comp.in_frac)
    ref = lstm_forward(comp.dequantized(), x)          # float64 on the same (dequantized) weights
    err = np.sqrt(np.mean((y - ref) ** 2)) / np.sqrt(np.mean(ref ** 2))
    print(f"relative RMS error over 50 steps: {err:.4%}")
    assert err < 0.03


def test_pruning_is_balanced_over_the_pes_in_hardware_row_order():
    rng = np.random.default_rng(3)
    w = random_lstm(rng, 10, 20, 12)
    comp = compress_lstm(w, 0.25, 4, 4)
    pack = pack_lstm(comp, 4)
    for layer in pack.layers:
        real = layer.real_per_pe
        assert max(real) - min(real) <= 1, (layer.name, real)
    # Gate rows of one cell sit in one PE, in order i, f, g, o.
    rows = hw_gate_rows(20, 4)
    assert list(rows[[0, 4, 8, 12]]) == [0, 20, 40, 60]           # PE 0, local rows 0..3: cell 0
    assert list(rows[[1, 5, 9, 13]]) == [1, 21, 41, 61]           # PE 1: cell 1


def test_cli_compress_pack_run_unpack(tmp_path, capsys):
    rng = np.random.default_rng(5)
    print("seed=5")
    w = random_lstm(rng, 6, 10, 4, peepholes=True)
    np.savez(tmp_path / "lstm.npz", **w.arrays())
    x = rng.uniform(-1, 1, (12, 6))
    np.save(tmp_path / "x.npy", x)
    # Density 1: only weight sharing (4-bit) changes the weights, so the outputs stay close.
    assert main(["compress", str(tmp_path / "lstm.npz"), "--density", "1", "--bits", "4",
                 "--balance-pes", "2", "--calib", str(tmp_path / "x.npy"), "-o", str(tmp_path / "c.npz"),
                 "--report", str(tmp_path / "c.json")]) == 0
    rep = json.loads((tmp_path / "c.json").read_text())
    assert rep["kind"] == "lstm" and rep["peepholes"] and rep["output_rel_rms_on_calib"] < 0.25
    assert main(["pack", str(tmp_path / "c.npz"), "--pes", "2", "-o", str(tmp_path / "pk")]) == 0
    assert main(["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--dequantize"]) == 0
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (12, 4)
    assert main(["unpack", str(tmp_path / "pk"), "--dequantize", "-o", str(tmp_path / "u.npz")]) == 0
    u = dict(np.load(tmp_path / "u.npz"))
    assert set(u) == set(w.arrays())                     # the same key names as the input
    # The unpacked float model reproduces the engine's output to within the fixed-point error.
    ref = lstm_forward(LSTMWeights(**{k: u.get(f"{n}_l0") for k, n in (
        ("w_ih", "weight_ih"), ("w_hh", "weight_hh"), ("b_ih", "bias_ih"), ("b_hh", "bias_hh"),
        ("w_hr", "weight_hr"), ("w_ic", "weight_ic"), ("w_fc", "weight_fc"), ("w_oc", "weight_oc"))}), x)
    assert np.sqrt(np.mean((y - ref) ** 2)) / np.sqrt(np.mean(ref ** 2)) < 0.03


def test_pad_free_compression_stores_no_padding_and_stays_balanced_and_accurate():
    seed = 16
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    w = random_lstm(rng, 20, 64, 24, peepholes=True)
    x = rng.uniform(-1, 1, (50, 20))
    packs = {pf: pack_lstm(compress_lstm(w, 0.1, 4, 4, calib=x, pad_free=pf), 4) for pf in (False, True)}
    assert sum(sum(l.padding_per_pe) for l in packs[False].layers) > 0
    for plain, free in zip(packs[False].layers, packs[True].layers):
        assert sum(free.padding_per_pe) == 0
        assert free.real_per_pe == plain.real_per_pe          # the same nonzeros on every PE
    comp = compress_lstm(w, 0.1, 4, 4, calib=x, pad_free=True)
    y = dequantize(lstm_golden(packs[True], quantize(x, comp.in_frac)), comp.in_frac)
    ref = lstm_forward(comp.dequantized(), x)
    assert np.sqrt(np.mean((y - ref) ** 2)) / np.sqrt(np.mean(ref ** 2)) < 0.03


# ---- the generated Verilog -----------------------------------------------------------------------

def _hw_case(seed, i, h, p, pes, *, bias=True, peep=False, density=0.4, steps=10, pad_free=False):
    rng = np.random.default_rng(seed)
    w = random_lstm(rng, i, h, p, bias=bias, peepholes=peep)
    x = rng.uniform(-1, 1, (steps, i))
    comp = compress_lstm(w, density, 4, pes, calib=x, pad_free=pad_free)
    return pack_lstm(comp, pes), quantize(x, comp.in_frac)


def _check(pack, xq, engine="verilator"):
    from sparsa.sim.eie.runner import run_lstm
    res = run_lstm(pack, xq, engine=engine)
    np.testing.assert_array_equal(res["y"], lstm_golden(pack, xq))
    return res


@pytest.mark.xdist_group("lstm_verilator")
@pytest.mark.parametrize("case", [
    dict(seed=11, i=5, h=8, p=4, pes=2, bias=False, peep=False),
    dict(seed=12, i=20, h=37, p=13, pes=4, bias=True, peep=True),
    dict(seed=13, i=12, h=16, p=None, pes=4, bias=True, peep=False),
    dict(seed=14, i=9, h=30, p=7, pes=8, bias=True, peep=True, density=0.15),
    dict(seed=16, i=20, h=37, p=13, pes=4, bias=True, peep=True, density=0.1, pad_free=True),
])
def test_rtl_equals_golden_on_random_lstms(case):
    print(f"seed={case['seed']}")
    pack, xq = _hw_case(**case, steps=12)
    res = _check(pack, xq)
    assert len(res["cycles"]) == 12 and min(res["cycles"]) > 0


@pytest.mark.xdist_group("lstm_verilator")
def test_rtl_all_zero_and_saturating_inputs():
    pack, xq = _hw_case(21, 6, 12, 6, 2, peep=True, steps=10)
    zeros = np.zeros_like(xq)
    _check(pack, zeros)
    sat = np.where(np.arange(xq.size).reshape(xq.shape) % 2, 32767, -32768).astype(np.int16)
    y = _check(pack, sat)["y"]
    assert np.any(y != 0)


@pytest.mark.xdist_group("lstm_icarus")
def test_icarus_small_lstm():
    pack, xq = _hw_case(31, 4, 6, 4, 2, peep=True, steps=10)
    _check(pack, xq, engine="icarus")


@pytest.mark.xdist_group("lstm_verilator")
def test_cli_run_verilator_reports_cycles_per_step(tmp_path, capsys):
    rng = np.random.default_rng(41)
    print("seed=41")
    w = random_lstm(rng, 5, 8, 4, peepholes=True)
    np.savez(tmp_path / "lstm.npz", **w.arrays())
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (10, 5)))
    assert main(["compress", str(tmp_path / "lstm.npz"), "--density", "0.5", "--bits", "4",
                 "--balance-pes", "2", "-o", str(tmp_path / "c.npz")]) == 0
    assert main(["pack", str(tmp_path / "c.npz"), "--pes", "2", "-o", str(tmp_path / "pk")]) == 0
    for engine in ("golden", "verilator"):
        assert main(["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / f"{engine}.npy"),
                     "--engine", engine, "--report", str(tmp_path / f"{engine}.json")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "verilator.npy"), np.load(tmp_path / "golden.npy"))
    rep = json.loads((tmp_path / "verilator.json").read_text())
    assert len(rep["cycles_per_step"]) == 10 and rep["cycles"] == sum(rep["cycles_per_step"])
    assert rep["lstm"]["hidden"] == 8 and rep["lstm"]["outputs"] == 4
    # Per layer (gates, projection): cycles over all steps and each PE's counters.
    assert [l["name"] for l in rep["layers"]] == ["gates", "projection"]
    per_layer = np.array(rep["per_step_layer_cycles"]).sum(axis=0)
    assert [l["cycles"] for l in rep["layers"]] == per_layer.tolist()
    for layer in rep["layers"]:
        assert set(layer["per_pe"]) == {"busy", "starved", "stalled", "pad", "macs"}
        assert all(len(v) == 2 for v in layer["per_pe"].values())
        assert sum(layer["per_pe"]["macs"]) > 0
    # ... which `sparsa report --run` takes (it refuses a report without per-layer cycles).
    assert main(["report", str(tmp_path / "pk"), "-o", str(tmp_path / "r.html"),
                 "--run", str(tmp_path / "verilator.json")]) == 0


# ---- the overlapped-schedule study (sparsa/bench/ese_overlap.py) -----------------------------------

def test_overlap_study_layout_matches_the_compressed_lstm():
    """B = [W_hr rows; W_ih in the gate rows from P' on] over [m; x], A = W_hh, computed here
    from the compressed model's PyTorch-order indices."""
    from sparsa.bench.ese_overlap import overlap_layers
    from sparsa.sw.eie.lstm_step import gate_layout
    rng = np.random.default_rng(7)
    i, h, p, n = 5, 10, 6, 4
    comp = compress_lstm(random_lstm(rng, i, h, p), 0.5, 4, n)
    pack = pack_lstm(comp, n)
    hp, pp = 12, 8                                   # H, P rounded up to a multiple of N
    b, a = overlap_layers(pack)
    gate, cell, real = gate_layout(h, n)
    want_b = np.zeros((pp + 4 * hp, hp + i), np.int64)
    want_b[:p, :h] = comp.proj_index
    want_a = np.zeros((4 * hp, pp), np.int64)
    for r in np.flatnonzero(real):
        src = gate[r] * h + cell[r]
        want_b[pp + r, hp:] = comp.gate_index[src, p:]
        want_a[r, :p] = comp.gate_index[src, :p]
    for layer, want in ((b, want_b), (a, want_a)):
        r, c, v = layer.coo()
        got = np.zeros(want.shape, np.int64)
        got[r, c] = v
        np.testing.assert_array_equal(got, want)
    # Every PE holds W_hr in local rows 0..P'/N-1 and W_ih from local row P'/N on.
    r, c, _ = b.coo()
    assert np.all((r // n >= pp // n) == (c >= hp))


def test_pe_issue_cycle_model_on_a_hand_made_slice():
    from sparsa.bench.ese_overlap import pe_issue_cycles
    from sparsa.sw.eie.pack import make_layer
    # One PE. Column 0: rows 0-3 (two pairs); column 1: rows 0, 2, 4 (a pair and a single:
    # rows of one parity pair too, each slot has its own accumulators), whose single takes
    # column 3's row 0 along (each slot has its own x; column 2 is empty); column 3: rows 0-9,
    # entries 7..16 of the stream, so it touches three words: word 0's part (row 0) is left
    # with nothing, and its cycle takes rows 1 and 2 (word 1's first two), rows 3-8 make three
    # pairs, and word 2 (row 9) a single. With one multiplier: a step per entry.
    rows = [0, 1, 2, 3, 0, 2, 4] + list(range(10))
    cols = [0] * 4 + [1] * 3 + [3] * 10
    layer = make_layer("t", 10, 4, rows, cols, np.ones(len(rows), int), np.arange(16), 1)
    assert pe_issue_cycles(layer.slices[0]) == 2 + 2 + (1 + 3 + 1)
    assert pe_issue_cycles(layer.slices[0], macs=1) == 4 + 3 + (1 + 8 + 1)
    # Column 0: rows 0 and 300, so 18 padding entries between them (16 rows each): word 0 is
    # row 0 and 7 padding, word 1 is all padding, word 2 is 3 padding, row 300, then column 1's
    # rows 0-2. Word 1 costs a cycle in which row 300 issues (and with macs=2, word 2 then has
    # nothing left, and its cycle issues column 1's rows 0 and 1).
    layer = make_layer("p", 400, 2, [0, 300, 0, 1, 2], [0, 0, 1, 1, 1], np.ones(5, int), np.arange(16), 1)
    assert [int(np.count_nonzero(layer.slices[0].v[w * 8:w * 8 + 8])) for w in range(3)] == [1, 0, 4]
    assert pe_issue_cycles(layer.slices[0], macs=1) == 1 + 1 + 1 + 2     # was 1 + 1 + 1 + 3
    assert pe_issue_cycles(layer.slices[0], macs=2) == 1 + 1 + 1 + 1     # was 1 + 1 + 1 + 2
