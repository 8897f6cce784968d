"""The ONNX importer through the command line: import, compress, pack and run ONNX exports."""

import numpy as np
from onnx import helper
from test_import_onnx import onnxruntime_run, save_model

from sparsa.sw.model.importer import import_model


def _mlp_onnx(tmp_path, rng):
    inits = {"w1": rng.normal(size=(16, 10)), "b1": rng.normal(size=16) * 0.1,
             "w2": rng.normal(size=(4, 16)), "b2": rng.normal(size=4) * 0.1}
    nodes = [helper.make_node("Gemm", ["x", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["hr"], name="relu1"),
             helper.make_node("Gemm", ["hr", "w2", "b2"], ["y"], name="fc2", transB=1)]
    return save_model(tmp_path / "mlp.onnx", nodes, inits, ["N", 10], ["N", 4]), inits


def test_cli_compress_and_run_an_onnx_mlp(tmp_path, capsys):
    from sparsa.cli import main
    from sparsa.sw.compress.mlp import load_compressed
    rng = np.random.default_rng(12)
    print("seed=12")
    path, inits = _mlp_onnx(tmp_path, rng)
    # Dense (density 1) and 4-bit sharing: the compressed model must still track onnxruntime.
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (40, 10)))
    out = tmp_path / "c.npz"
    assert main(["compress", str(path), "--density", "1", "--bits", "4", "--calib", str(tmp_path / "x.npy"),
                 "-o", str(out)]) == 0
    m = load_compressed(out)
    assert [l.index.shape for l in m.layers] == [(16, 10), (4, 16)] and [l.relu for l in m.layers] == [True, False]
    from sparsa.sw.compress.mlp import run_compressed
    x = rng.uniform(-1, 1, (20, 10))
    ref = onnxruntime_run(path, x)
    err = np.sqrt(np.mean((run_compressed(m, x) - ref) ** 2)) / np.sqrt(np.mean(ref ** 2))
    # 15 shared values for a small Gaussian layer: compress reports ~10% weight error per layer,
    # so the output is within ~12%; a wrong import (transposed weight, lost bias) gives ~100%.
    assert err < 0.25, err


def test_cli_import_writes_sparsa_formats(tmp_path, capsys):
    from sparsa.cli import main
    from sparsa.sw.model.importer import load_mlp
    rng = np.random.default_rng(13)
    path, inits = _mlp_onnx(tmp_path, rng)
    assert main(["import", str(path), "-o", str(tmp_path / "m.npz")]) == 0
    assert "mlp" in capsys.readouterr().out
    layers = load_mlp(tmp_path / "m.npz")
    np.testing.assert_allclose(layers[0].weight, inits["w1"].astype(np.float32))


def test_cli_import_unsupported_op_exits_2_and_writes_nothing(tmp_path, capsys):
    from sparsa.cli import main
    nodes = [helper.make_node("Gemm", ["x", "w"], ["h"], name="fc", transB=1),
             helper.make_node("Softmax", ["h"], ["y"], name="prob")]
    path = save_model(tmp_path / "sm.onnx", nodes, {"w": np.ones((3, 4))}, [1, 4], [1, 3])
    assert main(["import", str(path), "-o", str(tmp_path / "m.npz")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "node 'prob' (Softmax)" in err[0] and "sm.onnx" in err[0]
    assert not (tmp_path / "m.npz").exists()


def test_cli_compress_takes_a_cnn_onnx_for_the_cnn_engine(tmp_path, capsys):
    from sparsa.cli import main
    from sparsa.sw.cnn.compress import quant_error
    from sparsa.sw.model.graph import load_graph
    rng = np.random.default_rng(15)
    print("seed=15")
    nodes = [helper.make_node("Conv", ["x", "w"], ["y"], name="c", kernel_shape=[3, 3])]
    path = save_model(tmp_path / "c.onnx", nodes, {"w": rng.normal(size=(2, 1, 3, 3))}, [1, 1, 5, 5], [1, 2, 3, 3])
    np.save(tmp_path / "x.npy", rng.uniform(-1, 1, (16, 1, 5, 5)))
    assert main(["compress", str(path), "--calib", str(tmp_path / "x.npy"), "-o", str(tmp_path / "o.npz")]) == 0
    q = load_graph(tmp_path / "o.npz")
    assert q.spec["input"]["dtype"] == "int8" and q.layers[0]["op"] == "conv2d"
    assert quant_error(q, import_model(path).graph, rng.uniform(-1, 1, (16, 1, 5, 5))) < 0.05
    # --bits means weight sharing, which the CNN engine does not do: refused in one line.
    assert main(["compress", str(path), "--bits", "4", "-o", str(tmp_path / "o2.npz")]) == 2
    err = capsys.readouterr().err
    assert "--bits" in err and "CNN" in err and not (tmp_path / "o2.npz").exists()


def test_cli_compress_an_onnx_lstm_for_the_ese_engine(tmp_path, capsys):
    from sparsa.cli import main
    rng = np.random.default_rng(14)
    print("seed=14")
    h, i = 6, 4
    inits = {"W": rng.normal(size=(1, 4 * h, i)) * 0.4, "R": rng.normal(size=(1, 4 * h, h)) * 0.4,
             "B": rng.normal(size=(1, 8 * h)) * 0.1}
    nodes = [helper.make_node("LSTM", ["x", "W", "R", "B"], ["y"], name="lstm", hidden_size=h)]
    path = save_model(tmp_path / "lstm.onnx", nodes, inits, [8, 1, i], [8, 1, 1, h])
    assert main(["compress", str(path), "--density", "1", "--bits", "4", "--balance-pes", "2",
                 "-o", str(tmp_path / "c.npz")]) == 0
    assert main(["pack", str(tmp_path / "c.npz"), "--pes", "2", "-o", str(tmp_path / "pk")]) == 0
    x = rng.uniform(-1, 1, (8, i))
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--dequantize"]) == 0
    ref = onnxruntime_run(path, x[:, None, :]).reshape(8, h)
    y = np.load(tmp_path / "y.npy")
    # 4-bit weight sharing and 16-bit fixed point against onnxruntime's float LSTM.
    assert np.sqrt(np.mean((y - ref) ** 2)) / np.sqrt(np.mean(ref ** 2)) < 0.2
