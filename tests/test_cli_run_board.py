"""`sparsa run --engine board --port sim:<board>`: the simulated board (its SoC on Verilator
behind the UART link) from the command line, for an MLP and an LSTM pack, against references
computed independently of the engines; and the one-line errors of a missing or bad port."""

import json

import numpy as np
import pytest
from test_golden_eie import bigint_layer
from test_lstm import random_lstm

from sparsa.cli import main
from sparsa.sw.eie.lstm_step import lstm_golden
from sparsa.sw.eie.pack_dir import load_pack


def _mlp(tmp_path, seed=41):
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    w = ((rng.random((19, 13)) < 0.3) * rng.choice([-900, 4, 77, 1200], (19, 13))).astype(np.int16)
    b = rng.integers(-5000, 5000, 19).astype(np.int32)
    x = rng.integers(-3000, 3000, (2, 13)).astype(np.int16)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "x.npy", x)
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "2", "-o", str(tmp_path / "pk"),
                 "--bias", str(tmp_path / "b.npy"), "--shift", "3", "--relu"]) == 0
    return w, b, x


def _run(tmp_path, port, *extra):
    return main(["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--engine", "board", "--port", port, "--report", str(tmp_path / "r.json"), *extra])


@pytest.mark.xdist_group("board_verilator")
@pytest.mark.parametrize("board", ["icebreaker", "ulx3s-85f"])
def test_an_mlp_runs_on_the_simulated_board_from_the_cli(tmp_path, board, capsys):
    w, b, x = _mlp(tmp_path)
    assert _run(tmp_path, f"sim:{board}") == 0
    want = np.array([bigint_layer(w.tolist(), b, 3, True, xi.tolist()) for xi in x])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["engine"] == "board" and rep["port"] == f"sim:{board}" and rep["baud"] == 3_000_000
    assert rep["link"]["resends"] == 0 and rep["link"]["load_bytes"] > 0 and len(rep["cycles_per_input"]) == 2
    assert rep["time_per_input_s"]["link"] > rep["time_per_input_s"]["compute"] > 0
    assert f"simulating sim:{board}" in capsys.readouterr().out


@pytest.mark.xdist_group("board_verilator")
def test_an_lstm_sequence_runs_on_the_simulated_board_from_the_cli(tmp_path):
    seed = 43
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    w = random_lstm(rng, 5, 8, 3, peepholes=True)
    np.savez(tmp_path / "lstm.npz", **w.arrays())
    x = rng.uniform(-1, 1, (5, 5))
    np.save(tmp_path / "xf.npy", x)
    assert main(["compress", str(tmp_path / "lstm.npz"), "--density", "0.5", "--bits", "4", "--balance-pes", "2",
                 "--calib", str(tmp_path / "xf.npy"), "-o", str(tmp_path / "c.npz")]) == 0
    assert main(["pack", str(tmp_path / "c.npz"), "--pes", "2", "-o", str(tmp_path / "pk")]) == 0
    pack = load_pack(tmp_path / "pk")
    xq = np.clip(np.round(x * 2 ** pack.input_frac_bits), -32768, 32767).astype(np.int16)
    np.save(tmp_path / "x.npy", xq)
    assert _run(tmp_path, "sim:icebreaker") == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), lstm_golden(pack, xq))


@pytest.mark.parametrize("port,message", [
    (None, r"--port: expected the board's serial port .* found none"),
    ("sim:nope", r"--port: expected sim:<board> with board one of icebreaker, ulx3s-85f, found 'nope'"),
    ("/dev/nonexistent-tty", r"/dev/nonexistent-tty: serial port: expected the board's USB UART, found"),
])
def test_a_missing_or_bad_port_is_one_line_and_exit_2(tmp_path, capsys, port, message):
    import re
    _mlp(tmp_path)
    args = ["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
            "--engine", "board"] + (["--port", port] if port else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(message, err) and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "y.npy").exists()
