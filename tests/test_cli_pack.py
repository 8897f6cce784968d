"""`sparsa pack`, `sparsa unpack` and `sparsa inspect`, including every bad input (exit 2)."""

import json

import numpy as np
import pytest
from test_pack import compressed_arrays

from sparsa.cli import main


@pytest.fixture
def mat(tmp_path):
    """A 30 x 20 int16 matrix with 3 distinct nonzeros, saved as .npy."""
    print("seed", 5)
    rng = np.random.default_rng(5)
    w = ((rng.random((30, 20)) < 0.2) * rng.choice([-3, 1, 500], (30, 20))).astype(np.int16)
    np.save(tmp_path / "w.npy", w)
    return w


@pytest.fixture
def model(tmp_path):
    print("seed", 6)
    arrays = compressed_arrays(np.random.default_rng(6), [12, 20, 7])
    np.savez(tmp_path / "m.npz", **arrays)
    return arrays


def fails(capsys, argv, *needles, out=None):
    """Run the CLI, expect exit 2 with a one-line error holding every needle and no output."""
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    if out is not None:
        assert not out.exists()
    return err


#
# Success paths
#

def test_pack_then_unpack_gives_the_matrix_back(tmp_path, mat, capsys):
    b = np.arange(30, dtype=np.int32) - 15
    np.save(tmp_path / "b.npy", b)
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "4", "-o", str(tmp_path / "pk"),
                 "--bias", str(tmp_path / "b.npy"), "--shift", "3", "--relu"]) == 0
    assert capsys.readouterr().err == ""
    man = json.loads((tmp_path / "pk/manifest.json").read_text())
    assert man["layers"][0]["shift"] == 3 and man["layers"][0]["relu"] is True
    assert main(["unpack", str(tmp_path / "pk"), "-o", str(tmp_path / "u.npz")]) == 0
    with np.load(tmp_path / "u.npz") as u:
        assert u["layer0.weight"].dtype == np.int16 and np.array_equal(u["layer0.weight"], mat)
        assert np.array_equal(u["layer0.bias"], b)


def test_pack_compressed_model_and_unpack_dequantized(tmp_path, model):
    assert main(["pack", str(tmp_path / "m.npz"), "--pes", "3", "-o", str(tmp_path / "pk")]) == 0
    assert main(["unpack", str(tmp_path / "pk"), "-o", str(tmp_path / "u.npz"), "--dequantize"]) == 0
    with np.load(tmp_path / "u.npz") as u:
        w1 = model["layer1.codebook"][model["layer1.index"]] * 2.0 ** -8
        assert u["layer1.weight"].dtype == np.float32 and np.allclose(u["layer1.weight"], w1)
        assert np.allclose(u["layer0.bias"], model["layer0.bias"] * 2.0 ** -(6 + 8))


def test_inspect_prints_load_table(tmp_path, mat, capsys):
    main(["pack", str(tmp_path / "w.npy"), "--pes", "4", "-o", str(tmp_path / "pk")])
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "pk")]) == 0
    text = capsys.readouterr().out
    assert "imbalance EIE" in text and "per PE" in text


def test_inspect_json_cycles_follow_the_model(tmp_path, capsys):
    w = np.zeros((40, 2), np.int16)
    w[0, 0] = w[38, 0] = 1            # PE 0 (of 2): local rows 0 and 19, a gap of 18 -> 1 padding
    w[1, 1] = 2
    np.save(tmp_path / "w.npy", w)
    main(["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk")])
    capsys.readouterr()
    assert main(["inspect", str(tmp_path / "pk"), "--json"]) == 0
    (layer,) = json.loads(capsys.readouterr().out)["layers"]
    assert [p["entries"] for p in layer["pes"]] == [3, 1]
    assert [p["real"] for p in layer["pes"]] == [2, 1]
    assert (layer["cycles_eie"], layer["cycles_sparsa"], layer["cycles_ideal"]) == (3, 2, 2)
    assert layer["imbalance_eie"] == pytest.approx(1.5)


#
# Bad input: one line, exit 2, nothing written
#

def test_pack_missing_model_file(tmp_path, capsys):
    fails(capsys, ["pack", str(tmp_path / "nope.npy"), "--pes", "2", "-o", str(tmp_path / "pk")],
          "nope.npy", "not found", out=tmp_path / "pk")


def test_pack_non_numpy_file(tmp_path, capsys):
    (tmp_path / "w.npy").write_text("hello")
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk")],
          "w.npy", "expected a numpy .npy file", out=tmp_path / "pk")


def test_pack_unreadable_compressed_model(tmp_path, capsys):
    (tmp_path / "m.npz").write_bytes(b"PK\x03\x04 broken")
    fails(capsys, ["pack", str(tmp_path / "m.npz"), "--pes", "2", "-o", str(tmp_path / "pk")],
          "m.npz", "npz", out=tmp_path / "pk")


def test_pack_unknown_model_suffix(tmp_path, capsys):
    (tmp_path / "w.txt").write_text("1 2")
    fails(capsys, ["pack", str(tmp_path / "w.txt"), "--pes", "2", "-o", str(tmp_path / "pk")],
          "w.txt", ".npz", ".npy", out=tmp_path / "pk")


def test_pack_wrong_rank(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.arange(5))
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk")],
          "w.npy", "rank", "2 dimensions", "(5,)", out=tmp_path / "pk")


def test_pack_non_finite_values(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.array([[1.0, np.nan], [0.0, 2.0]]))
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk")],
          "w.npy", "weights", "finite", "1 NaN/inf", out=tmp_path / "pk")


def test_pack_values_outside_int16(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.array([[1, 40000], [0, 2]]))
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk")],
          "w.npy", "weights", "[-32768, 32767]", "40000", out=tmp_path / "pk")


def test_pack_non_integer_values(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.array([[1.5, 0.0]]))
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "1", "-o", str(tmp_path / "pk")],
          "w.npy", "integer values", out=tmp_path / "pk")


def test_pack_more_than_15_distinct_values(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.arange(1, 17).reshape(4, 4))
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk")],
          "w.npy", "distinct nonzero", "at most 15", "found 16", out=tmp_path / "pk")


def test_pack_pe_count_below_one(tmp_path, mat, capsys):
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "0", "-o", str(tmp_path / "pk")],
          "--pes", "1..1024", "found 0", out=tmp_path / "pk")


def test_pack_negative_shift(tmp_path, mat, capsys):
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk"), "--shift", "-1"],
          "--shift", "0..62", "found -1", out=tmp_path / "pk")


def test_pack_shift_above_62(tmp_path, mat, capsys):
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk"), "--shift", "63"],
          "--shift", "found 63", out=tmp_path / "pk")


def test_pack_bias_of_wrong_length(tmp_path, mat, capsys):
    np.save(tmp_path / "b.npy", np.zeros(29, np.int32))
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk"),
                   "--bias", str(tmp_path / "b.npy")],
          "b.npy", "bias shape", "(30,)", "(29,)", out=tmp_path / "pk")


def test_pack_bias_outside_int32(tmp_path, mat, capsys):
    np.save(tmp_path / "b.npy", np.full(30, 2**31, np.int64))
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk"),
                   "--bias", str(tmp_path / "b.npy")],
          "b.npy", "bias", "int32", str(2**31), out=tmp_path / "pk")


def test_pack_missing_bias_file(tmp_path, mat, capsys):
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk"),
                   "--bias", str(tmp_path / "nob.npy")], "nob.npy", "not found", out=tmp_path / "pk")


@pytest.mark.parametrize("option", [["--shift", "2"], ["--relu"], ["--bias", "b.npy"]])
def test_pack_layer_options_refused_with_a_compressed_model(tmp_path, model, capsys, option):
    fails(capsys, ["pack", str(tmp_path / "m.npz"), "--pes", "2", "-o", str(tmp_path / "pk"), *option],
          "m.npz", option[0], "compressed", out=tmp_path / "pk")


def test_pack_compressed_model_with_bad_codebook(tmp_path, model, capsys):
    model["layer0.codebook"] = model["layer0.codebook"] + 1
    np.savez(tmp_path / "bad.npz", **model)
    fails(capsys, ["pack", str(tmp_path / "bad.npz"), "--pes", "2", "-o", str(tmp_path / "pk")],
          "bad.npz", "layer0.codebook[0]", out=tmp_path / "pk")


def packed(tmp_path, mat):
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "3", "-o", str(tmp_path / "pk")]) == 0
    return tmp_path / "pk"


def test_unpack_pack_file_changed_since_packing(tmp_path, mat, capsys):
    pk = packed(tmp_path, mat)
    (pk / "layer0/pe002.ptr_even.hex").write_text("0000\n")
    fails(capsys, ["unpack", str(pk), "-o", str(tmp_path / "u.npz")],
          "pe002.ptr_even.hex", "sha256", "changed after packing", out=tmp_path / "u.npz")


def test_unpack_missing_manifest(tmp_path, mat, capsys):
    pk = packed(tmp_path, mat)
    (pk / "manifest.json").unlink()
    fails(capsys, ["unpack", str(pk), "-o", str(tmp_path / "u.npz")],
          "manifest.json", "no such file", out=tmp_path / "u.npz")


def test_unpack_missing_pack_directory(tmp_path, capsys):
    fails(capsys, ["unpack", str(tmp_path / "none"), "-o", str(tmp_path / "u.npz")],
          "none", "not found", out=tmp_path / "u.npz")


def test_unpack_dequantize_without_scales(tmp_path, mat, capsys):
    pk = packed(tmp_path, mat)
    fails(capsys, ["unpack", str(pk), "-o", str(tmp_path / "u.npz"), "--dequantize"],
          "manifest.json", "weight_frac_bits", "none", out=tmp_path / "u.npz")


def test_inspect_corrupt_manifest(tmp_path, mat, capsys):
    pk = packed(tmp_path, mat)
    (pk / "manifest.json").write_text("{not json")
    fails(capsys, ["inspect", str(pk)], "manifest.json", "JSON")


def test_pack_refuses_to_replace_a_directory_it_did_not_write(tmp_path, capsys):
    from sparsa.cli import main
    w = np.array([[1, 0], [0, 2]], dtype=np.int16)
    np.save(tmp_path / "w.npy", w)
    (tmp_path / "mydata").mkdir()
    (tmp_path / "mydata" / "thesis.tex").write_text("important")
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "mydata")]) == 2
    assert "refusing to replace it" in capsys.readouterr().err
    assert (tmp_path / "mydata" / "thesis.tex").read_text() == "important"
    # Nor a file: and a pack directory from an earlier run is replaced as before.
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "w.npy")]) == 2
    assert (tmp_path / "w.npy").is_file()
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk")]) == 0
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "1", "-o", str(tmp_path / "pk")]) == 0


def test_pack_balance_rows_renumbers_hidden_units_and_keeps_every_output(tmp_path, model, capsys):
    assert main(["pack", str(tmp_path / "m.npz"), "--pes", "4", "-o", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    assert main(["pack", str(tmp_path / "m.npz"), "--pes", "4", "-o", str(tmp_path / "bal"), "--balance-rows"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("balanced rows of fc0: busiest PE ") and out.count("balanced rows") == 1
    from sparsa.sw.eie.pack_dir import load_pack
    plain, bal = load_pack(tmp_path / "plain"), load_pack(tmp_path / "bal")
    rng = np.random.default_rng(7)
    print("seed", 7)
    x = rng.integers(-3000, 3000, (40, plain.input_cols)).astype(np.int16)
    np.testing.assert_array_equal(bal.run_golden(x), plain.run_golden(x))
    # The hidden layer's rows are the same rows, renumbered; the output layer keeps its rows.
    w0, b0 = plain.layers[0].weight(), bal.layers[0].weight()
    assert sorted(map(bytes, w0)) == sorted(map(bytes, b0))
    assert max(bal.layers[0].real_per_pe) <= max(plain.layers[0].real_per_pe)


def test_pack_balance_rows_refused_for_a_one_layer_matrix(tmp_path, mat, capsys):
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "4", "-o", str(tmp_path / "pk"), "--balance-rows"],
          "w.npy", "--balance-rows", "hidden layer", out=tmp_path / "pk")


def test_pack_align_columns_keeps_the_matrix_and_reports_the_memory(tmp_path, capsys):
    print("seed", 8)
    rng = np.random.default_rng(8)
    w = ((rng.random((200, 60)) < 0.08) * rng.choice([-3, 1, 500], (200, 60))).astype(np.int16)
    np.save(tmp_path / "w.npy", w)
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "4", "-o", str(tmp_path / "plain")]) == 0
    capsys.readouterr()
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "4", "-o", str(tmp_path / "al"), "--align-columns", "7"]) == 0
    out = capsys.readouterr().out
    man = [json.loads((tmp_path / d / "manifest.json").read_text())["layers"][0] for d in ("plain", "al")]
    before, after = (sum(m["entries_per_pe"]) for m in man)
    assert after > before
    assert out.startswith(f"aligned columns (at most 7 fill entries a column): {before:,} -> {after:,} entries "
                          f"(+{100 * (after - before) / before:.1f}%)")
    assert main(["unpack", str(tmp_path / "al"), "-o", str(tmp_path / "u.npz")]) == 0
    with np.load(tmp_path / "u.npz") as u:
        assert np.array_equal(u["layer0.weight"], w)


@pytest.mark.parametrize("value", ["8", "-1"])
def test_pack_align_columns_out_of_range(tmp_path, mat, capsys, value):
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "4", "-o", str(tmp_path / "pk"), "--align-columns", value],
          "w.npy", "--align-columns", "0..7", f"found {value}", out=tmp_path / "pk")
