"""`sparsa compress`: the happy path and one named test per bad input (exit 2, one line, no output)."""

import json

import numpy as np
import pytest

from sparsa.cli import main
from sparsa.sw.compress.mlp import load_compressed

SEED = 11


@pytest.fixture
def mlp(tmp_path):
    print("seed", SEED)
    rng = np.random.default_rng(SEED)
    path = tmp_path / "mlp.npz"
    np.savez(path, **{"0.weight": rng.normal(size=(24, 12)).astype(np.float32),
                      "0.bias": rng.normal(size=24).astype(np.float32) * 0.1,
                      "2.weight": rng.normal(size=(5, 24)).astype(np.float32)})
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, size=(50, 12)))
    return path


def test_compress_writes_model_and_report(tmp_path, mlp, capsys):
    out, rep = tmp_path / "c.npz", tmp_path / "r.json"
    rc = main(["compress", str(mlp), "--density", "0.25", "--bits", "3", "--balance-pes", "2",
               "--calib", str(tmp_path / "x.npy"), "-o", str(out), "--report", str(rep)])
    assert rc == 0
    m = load_compressed(out)
    assert [l.index.shape for l in m.layers] == [(24, 12), (5, 24)]
    assert [l.relu for l in m.layers] == [True, False]
    assert all(l.index.max() <= 7 for l in m.layers)
    r = json.loads(rep.read_text())
    assert r["pes"] == 2 and r["calibrated"] and len(r["layers"]) == 2
    assert r["total"]["nonzeros"] == 72 + 30
    text = capsys.readouterr().out
    assert "Deep Compression" in text and "total" in text and str(out) in text


def test_no_relu_and_npy_input(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.arange(1, 41, dtype=np.int16).reshape(5, 8))
    out = tmp_path / "c.npz"
    assert main(["compress", str(tmp_path / "w.npy"), "--density", "1", "--bits", "4", "-o", str(out)]) == 0
    (layer,) = load_compressed(out).layers
    assert np.count_nonzero(layer.index) == 40 and not layer.relu


def _fails(capsys, argv, *needles, out=None):
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsa compress: error: ") and "Traceback" not in err
    for n in needles:
        assert n in lines[0]
    if out is not None:
        assert not out.exists()
        assert not list(out.parent.glob(f".{out.name}*"))     # no temporary left either
    return lines[0]


def _args(model, out, *extra, density="0.5", bits="4"):
    return ["compress", str(model), "--density", density, "--bits", bits, "-o", str(out), *extra]


def test_missing_model_file(tmp_path, capsys):
    out = tmp_path / "c.npz"
    _fails(capsys, _args(tmp_path / "nope.npz", out), "nope.npz", "not found", out=out)


def test_model_file_not_numpy(tmp_path, capsys):
    (tmp_path / "w.npy").write_text("hello")
    out = tmp_path / "c.npz"
    _fails(capsys, _args(tmp_path / "w.npy", out), "w.npy", "expected a numpy .npy file", out=out)


def test_npz_not_a_zip(tmp_path, capsys):
    (tmp_path / "m.npz").write_bytes(b"PK garbage")
    out = tmp_path / "c.npz"
    _fails(capsys, _args(tmp_path / "m.npz", out), "m.npz", "expected a numpy .npz archive", out=out)


def test_model_with_unknown_suffix(tmp_path, capsys):
    (tmp_path / "m.pt").write_bytes(b"x")
    out = tmp_path / "c.npz"
    _fails(capsys, _args(tmp_path / "m.pt", out), "m.pt", "suffix '.pt'", out=out)


def test_model_wrong_rank(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.ones(5))
    out = tmp_path / "c.npz"
    _fails(capsys, _args(tmp_path / "w.npy", out), "w.npy", "2-D matrix", "shape (5,)", out=out)


def test_model_non_finite(tmp_path, capsys):
    w = np.ones((3, 3))
    w[1, 1] = np.nan
    np.save(tmp_path / "w.npy", w)
    out = tmp_path / "c.npz"
    _fails(capsys, _args(tmp_path / "w.npy", out), "w.npy", "finite values", "1 NaN/inf", out=out)


def test_model_empty_matrix(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.ones((0, 4)))
    out = tmp_path / "c.npz"
    _fails(capsys, _args(tmp_path / "w.npy", out), "w.npy", "at least one weight", "(0, 4)", out=out)


def test_model_without_layers(tmp_path, capsys):
    np.savez(tmp_path / "m.npz", **{"0.bias": np.ones(3)})
    out = tmp_path / "c.npz"
    _fails(capsys, _args(tmp_path / "m.npz", out), "m.npz", "'<name>.weight' array", out=out)


def test_model_shape_chain_mismatch(tmp_path, capsys):
    np.savez(tmp_path / "m.npz", **{"0.weight": np.ones((6, 4)), "2.weight": np.ones((3, 5))})
    out = tmp_path / "c.npz"
    _fails(capsys, _args(tmp_path / "m.npz", out), "m.npz", "2.weight", "6 columns", "(3, 5)", out=out)


@pytest.mark.parametrize("density", ["0", "1.5", "-0.2"])
def test_density_outside_0_1(mlp, tmp_path, capsys, density):
    out = tmp_path / "c.npz"
    _fails(capsys, _args(mlp, out, density=density), "--density", "(0, 1]", density, out=out)


@pytest.mark.parametrize("bits", ["0", "5"])
def test_bits_outside_1_4(mlp, tmp_path, capsys, bits):
    out = tmp_path / "c.npz"
    _fails(capsys, _args(mlp, out, bits=bits), "--bits", "1..4", f"found {bits}", out=out)


def test_balance_pes_below_1(mlp, tmp_path, capsys):
    out = tmp_path / "c.npz"
    _fails(capsys, _args(mlp, out, "--balance-pes", "0"), "--balance-pes", ">= 1", out=out)


def test_pad_free_without_balance_pes(mlp, tmp_path, capsys):
    out = tmp_path / "c.npz"
    _fails(capsys, _args(mlp, out, "--pad-free"), "--pad-free", "--balance-pes N as well", out=out)


def test_pad_free_leaves_no_padding_entries(tmp_path, capsys):
    # 200 x 40 at 5% on 2 PEs: 100 local rows a PE, so plain pruning needs padding entries.
    rng = np.random.default_rng(SEED)
    print("seed", SEED)
    np.save(tmp_path / "w.npy", rng.normal(size=(200, 40)))
    reports = {}
    for flag in ((), ("--pad-free",)):
        rep = tmp_path / f"r{len(flag)}.json"
        assert main(["compress", str(tmp_path / "w.npy"), "--density", "0.05", "--bits", "4", "--balance-pes", "2",
                     *flag, "-o", str(tmp_path / "c.npz"), "--report", str(rep)]) == 0
        reports[bool(flag)] = json.loads(rep.read_text())["layers"][0]
    assert reports[False]["padding_entries"] > 0 and reports[True]["padding_entries"] == 0
    assert reports[True]["nonzeros"] == reports[False]["nonzeros"] == 400


def test_calib_wrong_shape(mlp, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.ones((10, 7)))
    out = tmp_path / "c.npz"
    _fails(capsys, _args(mlp, out, "--calib", str(tmp_path / "bad.npy")), "bad.npy", "(n >= 1, 12)",
           "(10, 7)", out=out)


def test_calib_non_finite(mlp, tmp_path, capsys):
    x = np.ones((4, 12))
    x[0, 0] = np.inf
    np.save(tmp_path / "bad.npy", x)
    out = tmp_path / "c.npz"
    _fails(capsys, _args(mlp, out, "--calib", str(tmp_path / "bad.npy")), "bad.npy", "finite", out=out)


def test_calib_missing(mlp, tmp_path, capsys):
    out = tmp_path / "c.npz"
    _fails(capsys, _args(mlp, out, "--calib", str(tmp_path / "none.npy")), "none.npy", "not found", out=out)


def test_output_without_npz_suffix(mlp, tmp_path, capsys):
    out = tmp_path / "c.bin"
    _fails(capsys, _args(mlp, out), "-o", "ending in .npz", "c.bin", out=out)


def test_report_not_written_on_error(mlp, tmp_path, capsys):
    out, rep = tmp_path / "c.npz", tmp_path / "r.json"
    _fails(capsys, _args(mlp, out, "--report", str(rep), bits="9"), "--bits", out=out)
    assert not rep.exists()


def test_compressed_model_given_as_input(mlp, tmp_path, capsys):
    first = tmp_path / "c1.npz"
    assert main(_args(mlp, first)) == 0
    capsys.readouterr()
    out = tmp_path / "c2.npz"
    _fails(capsys, _args(first, out), "c1.npz", "compressed model", out=out)
