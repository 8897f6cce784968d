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
    # The link's time is measured in simulated cycles: never less than the run's bytes back to
    # back at 3 Mbaud (10 bit times each), and the board's own pauses before it answers are
    # small beside the bytes (the host's thinking time is left out).
    m, wire_rate = rep["link"]["measured"], 3_000_000 / 10
    assert m["run_s"] >= rep["link"]["run_bytes"] / wire_rate and m["load_s"] >= rep["link"]["load_bytes"] / wire_rate
    assert 0.5 * wire_rate <= m["run_bytes_per_s"] <= wire_rate and 0.5 * wire_rate <= m["load_bytes_per_s"] <= wire_rate
    assert rep["time_per_input_s"]["link"] == m["run_s"] / 2
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


@pytest.mark.parametrize("port,extra,message", [
    (None, [], r"--port: expected the board's serial port .* found none"),
    ("sim:nope", [], r"--port: expected sim:<board> with board one of icebreaker, ulx3s-85f, found 'nope'"),
    ("/dev/nonexistent-tty", [], r"/dev/nonexistent-tty: serial port: expected the board's USB UART, found"),
    # 50 MHz / 3 Mbaud is 16.7 cycles a bit: 4% off at 17.
    ("sim:ulx3s-85f", ["--clock-mhz", "50"], r"--clock-mhz: expected a clock that divides 3000000 baud .* found 50 MHz"),
    ("/dev/nonexistent-tty", ["--clock-mhz", "48"], r"--clock-mhz: expected --engine board --port sim:<board>"),
])
def test_a_missing_or_bad_port_is_one_line_and_exit_2(tmp_path, capsys, port, extra, message):
    import re
    _mlp(tmp_path)
    args = ["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
            "--engine", "board", *extra] + (["--port", port] if port else [])
    assert main(args) == 2
    err = capsys.readouterr().err.strip()
    assert re.search(message, err) and len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert not (tmp_path / "y.npy").exists()


def test_a_measurement_whose_results_differ_from_the_golden_model_stops(tmp_path, monkeypatch):
    """sparsa build's link measurement checks the simulated system's results: one value off
    (here a stand-in board run) is an error naming how many differ, not a report."""
    from sparsa.cli import run_board as rb
    _mlp(tmp_path)
    pack = load_pack(tmp_path / "pk")

    def off_by_one(pack_dir, pack, x, port, baud=None, **kw):
        y = np.asarray(pack.run_golden(x)).copy()
        y[0, 0] += 1
        return y, {}
    monkeypatch.setattr(rb, "run_board", off_by_one)
    with pytest.raises(RuntimeError, match=rf"differ from the golden model in 1 of {4 * pack.output_rows} values"):
        rb.measure_on_simulated_board(tmp_path / "pk", "icebreaker", 24)


def _cnn_pack(tmp_path):
    from cnn_cases import random_graph

    from sparsa.sw.model.graph import save_graph
    graph, x = random_graph(3)
    print("seed=3")
    save_graph(tmp_path / "g.npz", graph)
    assert main(["pack", str(tmp_path / "g.npz"), "-o", str(tmp_path / "pk"), "--lanes", "4"]) == 0
    np.save(tmp_path / "x.npy", x[None])


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_board_only_options_with_another_engine_are_one_line(tmp_path, capsys, kind):
    """Checked for a CNN pack too, whose run is dispatched elsewhere."""
    _mlp(tmp_path) if kind == "mlp" else _cnn_pack(tmp_path)
    capsys.readouterr()
    for extra, message in ((["--reload"], "--reload: expected --engine board"),
                           (["--clock-mhz", "48"], "--clock-mhz: expected --engine board --port sim:<board>")):
        assert main(["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                     "--engine", "golden", *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not (tmp_path / "y.npy").exists()
