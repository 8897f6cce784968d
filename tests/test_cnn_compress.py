"""Float CNN -> int8 graph (dynamic fixed point): accuracy against the float graph, the scale
rules (pools, residual adds, negative shifts), pruning, errors, and `sparsa compress` on a CNN."""

import copy
import json

import numpy as np
import pytest

from sparsa.cli import main
from sparsa.sw.cnn.compress import (compress_cnn, default_calib, dequantize_output, float_layer_outputs,
                                    quant_error, quantize_input)
from sparsa.sw.cnn.golden import cnn_forward, validate_int_graph
from sparsa.sw.errors import UserError
from sparsa.sw.model.graph import Graph, graph_forward, load_graph, save_graph
from sparsa.sw.compress.prune import magnitude_mask

SEED = 5
REL_RMS_BOUND = 0.05


def float_cnn(seed=SEED, shape=(3, 12, 12)):
    """conv-relu, conv-relu, conv, residual add + relu, maxpool, avgpool, linear; He init."""
    rng = np.random.default_rng(seed)
    he = lambda *s: (rng.normal(size=s) * np.sqrt(2.0 / np.prod(s[1:]))).astype(np.float32)
    small = lambda n: (rng.normal(size=n) * 0.1).astype(np.float32)
    c = shape[0]
    arrays = {"c1.w": he(8, c, 3, 3), "c1.b": small(8), "c2.w": he(8, 8, 3, 3), "c2.b": small(8),
              "c3.w": he(8, 8, 3, 3), "c3.b": small(8), "c4.w": he(6, 8, 3, 3), "c4.b": small(6),
              "fc.w": he(10, 6 * 2 * 2), "fc.b": small(10)}
    conv = lambda n, **kw: dict({"name": n, "op": "conv2d", "weight": f"{n}.w", "bias": f"{n}.b",
                                 "stride": 1, "padding": 1, "relu": True}, **kw)
    layers = [conv("c1"), conv("c2"), conv("c3", relu=False),
              {"name": "res", "op": "add", "inputs": ["c1", "c3"], "relu": True},
              {"name": "mp", "op": "maxpool2d", "size": 2, "stride": 2},                 # 12 -> 6
              conv("c4", stride=2, padding=1),                                            # 6 -> 3
              {"name": "ap", "op": "avgpool2d", "size": 2, "stride": 1},                  # 3 -> 2
              {"name": "fc", "op": "linear", "weight": "fc.w", "bias": "fc.b", "relu": False}]
    spec = {"format": "sparsa-model", "version": 1, "input": {"shape": list(shape), "dtype": "float32"},
            "layers": layers}
    return Graph(spec, arrays)


def rel_rms(a, b):
    return float(np.sqrt(np.sum((a - b) ** 2) / np.sum(b ** 2)))


def test_int_graph_tracks_the_float_graph():
    print("seed", SEED)
    g = float_cnn()
    rng = np.random.default_rng(SEED + 1)
    calib = rng.uniform(-1, 1, size=(64,) + g.input_shape)
    q = compress_cnn(g, calib)
    validate_int_graph(q, "q")
    for layer in q.layers:
        if layer["op"] in ("conv2d", "linear"):
            assert q.arrays[layer["weight"]].dtype == np.int8 and q.arrays[layer["bias"]].dtype == np.int32
            assert 0 <= layer["shift"] <= 31
    x = rng.uniform(-1, 1, size=(64,) + g.input_shape)           # held out from the calibration
    y = dequantize_output(q, cnn_forward(q, quantize_input(q, x)))
    err = rel_rms(y, graph_forward(g, x))
    print(f"relative RMS error, dequantized int8 golden vs float64: {err:.4f}")
    assert err < REL_RMS_BOUND
    assert quant_error(q, g, x) == pytest.approx(err)
    # The argmax (the class) agrees on most inputs.
    agree = np.mean(np.argmax(y, axis=1) == np.argmax(graph_forward(g, x), axis=1))
    print(f"argmax agreement {agree:.3f}")
    assert agree >= 0.9


def test_scale_rules_pools_and_residual_add():
    g = float_cnn()
    q = compress_cnn(g, default_calib(g))
    quant = q.spec["quant"]
    frac = quant["frac"]
    # Pools keep the scale; the add, both its inputs and what follows through pools share one.
    assert frac["res"] == frac["c1"] == frac["c3"] == frac["mp"]
    assert frac["ap"] == frac["c4"]
    assert quant["input_frac"] == frac["input"] == 6              # |x| < 1: 127 / 2**6 covers it
    assert quant["output_frac"] == frac["fc"]
    rows = {r["name"]: r for r in quant["layers"]}
    for name in ("c1", "c2", "c3", "c4", "fc"):
        r = rows[name]
        assert r["shift"] == r["in_frac"] + r["weight_frac"] - r["out_frac"]
        layer = next(l for l in q.layers if l["name"] == name)
        assert layer["shift"] == r["shift"]
    # The scale of every tensor holds its calibration range in int8 (the chosen frac is the
    # largest that fits, up to the shared-group minimum).
    acts = float_layer_outputs(g, default_calib(g))
    for name, a in acts.items():
        assert np.abs(a).max() * 2.0 ** frac[name] <= 127.5
    # The integer outputs use their range: not all saturated, not all tiny.
    yq = cnn_forward(q, quantize_input(q, default_calib(g)))
    assert 16 <= np.abs(yq).max() <= 127


def test_negative_shift_lowers_the_output_scale():
    # 1x1 conv, weight 1, bias -99.5, ReLU, inputs in [0, 100]: f_in = 0, f_w = 6, but the
    # output (<= 0.5) would get f_out = 7: lowered to 6 with shift 0, and noted.
    g = Graph({"format": "sparsa-model", "version": 1, "input": {"shape": [1, 1, 4], "dtype": "float32"},
               "layers": [{"name": "c", "op": "conv2d", "weight": "w", "bias": "b", "relu": True}]},
              {"w": np.ones((1, 1, 1, 1)), "b": np.array([-99.5])})
    calib = np.array([[[[0.0, 50.0, 99.0, 100.0]]]])
    q = compress_cnn(g, calib)
    (row,) = q.spec["quant"]["layers"]
    assert (row["in_frac"], row["weight_frac"], row["out_frac"], row["shift"]) == (0, 6, 6, 0)
    assert "lowered from 7 to 6" in row["note"]
    assert q.arrays["b"].tolist() == [-99 * 64 - 32]
    assert dequantize_output(q, cnn_forward(q, quantize_input(q, calib))).ravel().tolist() == [0, 0, 0, 0.5]


def test_pruning_to_a_density():
    g = float_cnn()
    rng = np.random.default_rng(SEED + 2)
    calib = rng.uniform(-1, 1, size=(64,) + g.input_shape)
    q = compress_cnn(g, calib, density=0.5, prune={"fc": 0.25})
    rows = {r["name"]: r for r in q.spec["quant"]["layers"]}
    for name in ("c1", "c2", "c3", "c4"):
        assert rows[name]["density"] <= 0.5 and rows[name]["density_target"] == 0.5
    assert rows["fc"]["density"] <= 0.25
    # Against the float graph pruned the same way (magnitude, per layer) the error stays small.
    pruned = Graph(copy.deepcopy(g.spec), dict(g.arrays))
    for layer in g.layers:
        if layer["op"] in ("conv2d", "linear"):
            w = g.arrays[layer["weight"]]
            d = 0.25 if layer["name"] == "fc" else 0.5
            pruned.arrays[layer["weight"]] = w * magnitude_mask(w.reshape(len(w), -1), d).reshape(w.shape)
            # Every weight the int graph keeps is one the float pruning kept.
            assert not np.any((q.arrays[layer["weight"]] != 0) & (pruned.arrays[layer["weight"]] == 0))
    x = rng.uniform(-1, 1, size=(32,) + g.input_shape)
    err = quant_error(q, pruned, x)
    print(f"relative RMS error against the pruned float graph: {err:.4f}")
    assert err < REL_RMS_BOUND


def test_default_calibration_is_deterministic():
    g = float_cnn()
    a, b = compress_cnn(g), compress_cnn(g)
    assert a.spec == b.spec and all(np.array_equal(a.arrays[k], b.arrays[k]) for k in a.arrays)


def _bad(g, **kw):
    with pytest.raises(UserError) as e:
        compress_cnn(g, **kw, where="m.npz")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("m.npz: ")
    return msg


def test_errors():
    g = float_cnn()
    q = compress_cnn(g)
    assert "already an integer model" in _bad(q)
    assert "calibration data" in _bad(g, calib=np.zeros((4, 3, 12, 11)))
    assert "NaN" in _bad(g, calib=np.full((1, 3, 12, 12), np.nan))
    assert "--density" in _bad(g, density=0.0)
    assert "prune" in _bad(g, prune={"nope": 0.5})
    g3 = Graph(copy.deepcopy(g.spec), g.arrays)
    g3.layers[5]["stride"] = 3
    msg = _bad(g3)
    assert "c4.stride" in msg and "1..2" in msg
    g4 = Graph(copy.deepcopy(g.spec), g.arrays)
    g4.layers[6]["size"] = 3
    assert "ap.size" in _bad(g4)


#
# `sparsa compress` on a CNN graph
#

@pytest.fixture
def cnn_files(tmp_path):
    g = float_cnn()
    save_graph(tmp_path / "cnn.npz", g)
    np.save(tmp_path / "x.npy", np.random.default_rng(SEED + 3).uniform(-1, 1, size=(40,) + g.input_shape))
    return tmp_path / "cnn.npz", tmp_path / "x.npy"


def test_cli_compress_cnn_graph(tmp_path, cnn_files, capsys):
    model, calib = cnn_files
    out, rep = tmp_path / "q.npz", tmp_path / "r.json"
    assert main(["compress", str(model), "--calib", str(calib), "--density", "0.75", "-o", str(out),
                 "--report", str(rep)]) == 0
    text = capsys.readouterr().out
    assert "CNN int8 compression" in text and "fx/fw/fy" in text and str(out) in text
    for name in ("c1", "res", "fc"):
        assert name in text
    q = load_graph(out)
    validate_int_graph(q, str(out))
    assert q.spec["quant"]["input_frac"] == 6
    r = json.loads(rep.read_text())
    assert r["kind"] == "cnn" and r["calibrated"] and r["calibration_inputs"] == 40
    assert r["output_rel_rms_on_calib"] < 0.5
    assert all(l["density"] <= 0.75 for l in r["layers"] if "density" in l)
    # The file's integer graph is exactly what the Python API gives.
    ref = compress_cnn(float_cnn(), np.load(calib), density=0.75)
    assert q.spec == json.loads(json.dumps(ref.spec))
    for k in ref.arrays:
        np.testing.assert_array_equal(q.arrays[k], ref.arrays[k])


def test_cli_compress_cnn_default_calibration(tmp_path, cnn_files, capsys):
    model, _ = cnn_files
    assert main(["compress", str(model), "-o", str(tmp_path / "q.npz")]) == 0
    assert "no --calib" in capsys.readouterr().out
    assert load_graph(tmp_path / "q.npz").spec["quant"]["calibration_inputs"] == 64


def _fails(capsys, argv, *needles, out):
    assert main(argv) == 2
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sparsa compress: error: ") and "Traceback" not in err
    for n in needles:
        assert n in lines[0], lines[0]
    assert not out.exists() and not list(out.parent.glob(f".{out.name}*"))


def test_cli_cnn_refuses_bits_and_balance(tmp_path, cnn_files, capsys):
    model, _ = cnn_files
    out = tmp_path / "q.npz"
    _fails(capsys, ["compress", str(model), "--bits", "4", "-o", str(out)], "--bits", "CNN", out=out)
    _fails(capsys, ["compress", str(model), "--balance-pes", "2", "-o", str(out)], "--balance-pes", out=out)
    _fails(capsys, ["compress", str(model), "--pad-free", "-o", str(out)], "--pad-free", out=out)


def test_cli_cnn_calibration_of_the_wrong_shape(tmp_path, cnn_files, capsys):
    model, _ = cnn_files
    np.save(tmp_path / "bad.npy", np.zeros((5, 12, 12)))
    out = tmp_path / "q.npz"
    _fails(capsys, ["compress", str(model), "--calib", str(tmp_path / "bad.npy"), "-o", str(out)],
           "bad.npy", "calibration data", "(n >= 1, 3, 12, 12)", "(5, 12, 12)", out=out)


def test_cli_mlp_still_needs_density_and_bits(tmp_path, capsys):
    np.savez(tmp_path / "mlp.npz", **{"0.weight": np.ones((4, 3), np.float32)})
    out = tmp_path / "c.npz"
    _fails(capsys, ["compress", str(tmp_path / "mlp.npz"), "--bits", "4", "-o", str(out)],
           "--density", "required for an MLP model", "none given", out=out)
    _fails(capsys, ["compress", str(tmp_path / "mlp.npz"), "--density", "0.5", "-o", str(out)],
           "--bits", "none given", out=out)


def test_cli_conv_state_dict_points_to_import(tmp_path, capsys):
    np.savez(tmp_path / "sd.npz", **{"0.weight": np.ones((4, 1, 3, 3), np.float32)})
    out = tmp_path / "c.npz"
    _fails(capsys, ["compress", str(tmp_path / "sd.npz"), "-o", str(out)], "Conv2d state dict",
           "sparsa import", "--input-shape", out=out)
