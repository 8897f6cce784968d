"""`sparsa run`: engines, inputs, outputs, the report, and every bad input (exit 2)."""

import hashlib
import json
import sys
import types

import numpy as np
import pytest
from test_golden_eie import bigint_layer
from test_pack import compressed_arrays

from sparsa.cli import main
from sparsa.cli import run as cli_run
from sparsa.sw.fixedpoint import quantize


@pytest.fixture
def case(tmp_path):
    """A packed 30 x 20 matrix with bias, shift 2 and ReLU, plus int16 inputs."""
    print("seed", 8)
    rng = np.random.default_rng(8)
    w = ((rng.random((30, 20)) < 0.3) * rng.choice([-900, 4, 77], (30, 20))).astype(np.int16)
    b = rng.integers(-5000, 5000, 30).astype(np.int32)
    x = rng.integers(-32768, 32768, (3, 20)).astype(np.int16)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "x.npy", x)
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "4", "-o", str(tmp_path / "pk"),
                 "--bias", str(tmp_path / "b.npy"), "--shift", "2", "--relu"]) == 0
    return w, b, x


def args(tmp_path, *extra, x="x.npy"):
    return ["run", str(tmp_path / "pk"), "-i", str(tmp_path / x), "-o", str(tmp_path / "y.npy"), *extra]


def test_golden_run_matches_bigint_reference(tmp_path, case):
    w, b, x = case
    assert main(args(tmp_path, "--engine", "golden")) == 0
    y = np.load(tmp_path / "y.npy")
    assert y.dtype == np.int16 and y.shape == (3, 30)
    assert y.tolist() == [bigint_layer(w.tolist(), b.tolist(), 2, True, row) for row in x.tolist()]


def test_single_vector_input_gives_single_vector_output(tmp_path, case):
    w, b, x = case
    np.save(tmp_path / "x1.npy", x[1])
    assert main(args(tmp_path, x="x1.npy")) == 0
    assert np.load(tmp_path / "y.npy").tolist() == bigint_layer(w.tolist(), b.tolist(), 2, True, x[1].tolist())


def test_report_names_engine_batch_layers_checksum_and_time(tmp_path, case):
    assert main(args(tmp_path, "--report", str(tmp_path / "r.json"))) == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    y = np.load(tmp_path / "y.npy")
    assert rep["engine"] == "golden" and rep["batch"] == 3
    assert rep["layers"] == [{"name": "layer0", "rows": 30, "cols": 20, "nnz": int(np.count_nonzero(case[0]))}]
    assert rep["output"]["sha256"] == hashlib.sha256(y.astype("<i2").tobytes()).hexdigest()
    assert rep["time_s"] >= 0


def test_float_input_is_quantised_and_output_dequantised(tmp_path):
    print("seed", 9)
    rng = np.random.default_rng(9)
    arrays = compressed_arrays(rng, [12, 20, 7])
    np.savez(tmp_path / "m.npz", **arrays)
    assert main(["pack", str(tmp_path / "m.npz"), "--pes", "3", "-o", str(tmp_path / "pk")]) == 0
    xf = rng.normal(0, 1, (2, 12))
    np.save(tmp_path / "x.npy", xf)
    assert main(args(tmp_path, "--dequantize")) == 0
    yf = np.load(tmp_path / "y.npy")
    # reference: quantise, two bigint layers, dequantise with out_frac_bits = 6
    h = quantize(xf, 6).tolist()
    for k, relu in ((0, True), (1, False)):
        wk = arrays[f"layer{k}.codebook"].astype(np.int64)[arrays[f"layer{k}.index"]].tolist()
        h = [bigint_layer(wk, arrays[f"layer{k}.bias"].tolist(), 8, relu, row) for row in h]
    assert yf.dtype == np.float32 and np.array_equal(yf, np.asarray(h) * 2.0 ** -6)


def test_integer_valued_float_input_accepted_without_frac_bits(tmp_path, case):
    w, b, x = case
    np.save(tmp_path / "xf.npy", x.astype(np.float64))
    assert main(args(tmp_path, x="xf.npy")) == 0
    assert np.load(tmp_path / "y.npy").shape == (3, 30)


def test_hardware_engines_go_through_eie_runner(tmp_path, case, monkeypatch):
    calls = []

    def fake_run(pack_dir, pack, x, engine, report, reusable):
        calls.append((str(pack_dir), engine, x.dtype, report, reusable))
        return pack.run_golden(x), {"cycles": 123}

    monkeypatch.setitem(sys.modules, "sparsa.sim.eie.runner", types.SimpleNamespace(run=fake_run))
    assert main(args(tmp_path, "--engine", "icarus", "--report", str(tmp_path / "r.json"))) == 0
    assert calls == [(str(tmp_path / "pk"), "icarus", np.int16, True, False)]
    assert json.loads((tmp_path / "r.json").read_text())["cycles"] == 123
    # --reusable-build asks the runner for the rounded, shared build instead of the exact one.
    assert main(args(tmp_path, "--engine", "verilator", "--reusable-build")) == 0
    assert calls[1] == (str(tmp_path / "pk"), "verilator", np.int16, False, True)


def test_single_vector_output_keeps_rank_when_engine_returns_a_batch(tmp_path, case, monkeypatch):
    w, b, x = case
    np.save(tmp_path / "x1.npy", x[0])
    fake = types.SimpleNamespace(run=lambda pack_dir, pack, x, engine, report, reusable: (pack.run_golden(x[None]), {}))
    monkeypatch.setitem(sys.modules, "sparsa.sim.eie.runner", fake)
    assert main(args(tmp_path, "--engine", "verilator", x="x1.npy")) == 0
    assert np.load(tmp_path / "y.npy").shape == (30,)


def test_engine_registry_lists_the_engines():
    assert list(cli_run.ENGINES) == ["golden", "verilator", "icarus"]


#
# Bad input: one line, exit 2, no Y and no report written
#

def fails(capsys, tmp_path, argv, *needles):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "r.json").exists()


def test_run_unknown_engine(tmp_path, case, capsys):
    fails(capsys, tmp_path, args(tmp_path, "--engine", "modelsim"), "--engine", "golden, verilator, icarus", "modelsim")


def test_run_hardware_engine_not_in_this_build(tmp_path, case, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "sparsa.sim.eie.runner", None)     # import fails as if absent
    fails(capsys, tmp_path, args(tmp_path, "--engine", "verilator", "--report", str(tmp_path / "r.json")),
          "engine 'verilator' arrives with the EIE PE array (not in this build)")


def test_run_input_of_wrong_length(tmp_path, case, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((2, 19), np.int16))
    fails(capsys, tmp_path, args(tmp_path, x="bad.npy"), "bad.npy", "input length", "20", "(2, 19)")


def test_run_input_of_wrong_rank(tmp_path, case, capsys):
    np.save(tmp_path / "bad.npy", np.zeros((2, 2, 20), np.int16))
    fails(capsys, tmp_path, args(tmp_path, x="bad.npy"), "bad.npy", "input rank", "(2, 2, 20)")


def test_run_non_finite_input(tmp_path, case, capsys):
    x = np.zeros(20)
    x[3] = np.inf
    np.save(tmp_path / "bad.npy", x)
    fails(capsys, tmp_path, args(tmp_path, x="bad.npy"), "bad.npy", "input", "finite", "1 NaN/inf")


def test_run_input_outside_int16(tmp_path, case, capsys):
    np.save(tmp_path / "bad.npy", np.full(20, 40000, np.int32))
    fails(capsys, tmp_path, args(tmp_path, x="bad.npy"), "bad.npy", "input", "[-32768, 32767]", "40000")


def test_run_fractional_input_without_frac_bits(tmp_path, case, capsys):
    np.save(tmp_path / "bad.npy", np.full(20, 0.5))
    fails(capsys, tmp_path, args(tmp_path, x="bad.npy"), "bad.npy", "no input frac bits", "non-integer")


def test_run_missing_input_file(tmp_path, case, capsys):
    fails(capsys, tmp_path, args(tmp_path, x="none.npy"), "none.npy", "not found")


def test_run_pack_file_changed_since_packing(tmp_path, case, capsys):
    f = tmp_path / "pk/layer0/pe000.bias.bin"
    data = f.read_bytes()
    f.write_bytes(bytes([data[0] ^ 1]) + data[1:])        # flip one bit: same size, new hash
    fails(capsys, tmp_path, args(tmp_path), "pe000.bias.bin", "sha256")


def test_run_missing_manifest(tmp_path, case, capsys):
    (tmp_path / "pk/manifest.json").unlink()
    fails(capsys, tmp_path, args(tmp_path), "manifest.json", "no such file")


def test_run_dequantize_without_output_scale(tmp_path, case, capsys):
    fails(capsys, tmp_path, args(tmp_path, "--dequantize"), "out_frac_bits", "none")


def test_compress_pack_run_agrees_with_the_compressed_model(tmp_path):
    """End to end: `sparsa compress` -> `sparsa pack` -> `sparsa run` = compress's own golden run."""
    from sparsa.sw.compress.mlp import load_compressed, run_compressed
    print("seed", 11)
    rng = np.random.default_rng(11)
    np.savez(tmp_path / "mlp.npz", **{"l0.weight": rng.normal(0, 0.3, (40, 64)), "l0.bias": rng.normal(0, 0.1, 40),
                                      "l1.weight": rng.normal(0, 0.3, (10, 40)), "l1.bias": np.zeros(10)})
    x = rng.normal(0, 1, (6, 64))
    np.save(tmp_path / "x.npy", x)
    assert main(["compress", str(tmp_path / "mlp.npz"), "--density", "0.2", "--bits", "4",
                 "--calib", str(tmp_path / "x.npy"), "-o", str(tmp_path / "m.npz")]) == 0
    assert main(["pack", str(tmp_path / "m.npz"), "--pes", "3", "-o", str(tmp_path / "pk")]) == 0
    assert main(args(tmp_path, "--dequantize")) == 0
    want = run_compressed(load_compressed(tmp_path / "m.npz"), x)
    assert np.array_equal(np.load(tmp_path / "y.npy"), want.astype(np.float32))


def test_run_manifest_metadata_changed_since_packing(tmp_path, case, capsys):
    # shift, relu, rows, ... live only in manifest.json: its own digest covers them.
    man = tmp_path / "pk" / "manifest.json"
    man.write_text(man.read_text().replace('"shift": 2', '"shift": 1'))
    assert main(args(tmp_path, "--engine", "golden")) == 2
    err = capsys.readouterr().err
    assert "manifest_sha256" in err and "changed after packing" in err
    assert not (tmp_path / "y.npy").exists()
