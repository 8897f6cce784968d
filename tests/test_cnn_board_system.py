"""The CNN board system (hw/cnn/link_soc.py: the CNN SoC, its DRAM in block RAM, the memory
window, behind the UART link) on Verilator, as ``sparsa build`` puts it into the ULX3S
bitstream with its PLL a pass-through, driven by the Zynq's CNN runtime over the link: the
window reads back what it wrote (odd starts and ends included), a seeded random CNN runs bit for
bit against the golden model, and ``sparsa run --engine board --port sim:ulx3s-85f`` does the
same from the command line with the link measured. The refusals need no simulator."""

import json

import numpy as np
import pytest
from cnn_cases import SMALL, random_graph

from sparsa.cli import main
from sparsa.sw.cnn.compiler import compile_graph
from sparsa.sw.cnn.golden import cnn_forward
from sparsa.sw.cnn.pack import write_cnn_pack
from sparsa.sw.model.graph import save_graph

SEED = 3
CLOCK_MHZ = 12          # 4 cycles a UART bit at 3 Mbaud: the shortest simulation of the same system


@pytest.fixture
def pack(tmp_path):
    print(f"seed={SEED}")
    graph, x = random_graph(SEED)
    prog = compile_graph(graph, SMALL)
    write_cnn_pack(prog, tmp_path / "pk")
    save_graph(tmp_path / "g.npz", graph)
    rng = np.random.default_rng(SEED + 100)
    xs = np.stack([x, rng.integers(-128, 128, x.shape).astype(np.int8)])
    return prog, graph, xs, tmp_path / "pk"


def _window_edges(backend, mem, model, mem_bytes):
    """The window's registers by hand: a SEND ends a read left unfinished (WIN_COUNT not 0, a
    value fetched ahead), RECV stops at WIN_COUNT with LAST, and past the memory's end values
    read 0 and writes go nowhere (not round to address 0)."""
    from sparsa.sw.link import Cmd, Status
    regs, link = backend.regs, backend.regs.link
    values = lambda data: np.frombuffer(data, "<u2").tolist()
    regs["WIN_ADDR"] = 100
    regs["WIN_COUNT"] = 4
    status, data = link.command(Cmd.RECV, bytes([2]), "reading two of four")
    assert status == Status.OK and values(data) == values(bytes(model[100:104]))
    regs["WIN_ADDR"] = 200
    assert link.command(Cmd.SEND, np.array([0xAAAA, 0xBBBB], "<u2").tobytes(), "writing")[0] == Status.OK
    model[200:204] = np.array([0xAAAA, 0xBBBB], "<u2").tobytes()
    assert regs["WIN_COUNT"] == 0 and regs["WIN_ADDR"] == 204
    assert mem[196:208].tobytes() == bytes(model[196:208])
    regs["WIN_ADDR"] = 300
    regs["WIN_COUNT"] = 3
    status, data = link.command(Cmd.RECV, bytes([10]), "asking for more than WIN_COUNT")
    assert status == Status.LAST and values(data) == values(bytes(model[300:306]))
    regs["WIN_ADDR"] = mem_bytes - 2
    assert link.command(Cmd.SEND, np.array([0x1234, 0x5678, 0x9ABC], "<u2").tobytes(), "past the end")[0] == Status.OK
    model[mem_bytes - 2:] = np.array([0x1234], "<u2").tobytes()
    regs["WIN_ADDR"] = mem_bytes - 2
    regs["WIN_COUNT"] = 3
    status, data = link.command(Cmd.RECV, bytes([3]), "reading past the end")
    assert status == Status.LAST and values(data) == [0x1234, 0, 0]
    assert mem[0:8].tobytes() == bytes(model[0:8])


@pytest.mark.xdist_group("cnn_board_verilator")
def test_the_window_and_a_cnn_pack_on_the_simulated_ulx3s_system(pack):
    from sparsa.boards.systems import cnn_memory_bytes, uart_divisor
    from sparsa.link import cnn_link_backend
    from sparsa.runtime_cnn import CNNAccelerator
    from sparsa.sim.board.runner import SimulatedBoard
    prog, graph, xs, pack_dir = pack
    mem_bytes = cnn_memory_bytes(prog, "ulx3s-85f", pack_dir)
    assert mem_bytes >= prog.dram_size and mem_bytes & (mem_bytes - 1) == 0 and mem_bytes < 2 * max(prog.dram_size, 4096)
    divisor, _ = uart_divisor(CLOCK_MHZ, 3_000_000)
    with SimulatedBoard(prog.cfg, divisor=divisor, name="sim:ulx3s-85f", n_leds=3, mem_bytes=mem_bytes) as transport:
        backend = cnn_link_backend(None, transport=transport, timeout_s=600, link_timeout_s=30)
        mem = backend.buffer
        assert mem.size == mem_bytes
        # The window: writes at odd and even starts and lengths, the memory's last bytes
        # included, read back whole against a byte array.
        rng = np.random.default_rng(SEED)
        model = bytearray(mem_bytes)
        spans = [(0, 5), (mem_bytes - 3, mem_bytes), (7, 8), (130, 131), (301, 1300)]
        for lo, hi in spans:
            data = rng.integers(0, 256, hi - lo, dtype=np.uint8)
            mem[lo:hi] = data
            model[lo:hi] = data.tobytes()
        for lo, hi in spans + [(0, 1400), (mem_bytes - 9, mem_bytes)]:
            assert mem[lo:hi].tobytes() == bytes(model[lo:hi]), (lo, hi)
        _window_edges(backend, mem, model, mem_bytes)
        # The pack, loaded and run by the Zynq's CNN runtime.
        acc = CNNAccelerator(pack_dir, backend)
        y = acc.run(xs)
        assert np.array_equal(y, cnn_forward(graph, xs)), "the board system differs from the golden model"
        assert all(0 < m <= c for m, c in zip(acc.mac_cycles, acc.cycles))
        # The output is in the on-chip DRAM where the program put it.
        n_out = int(np.prod(prog.output_shape))
        last = mem[prog.output_addr:prog.output_addr + n_out].view(np.int8)
        assert np.array_equal(last, np.asarray(y[-1]).reshape(-1))
        backend.close()


@pytest.mark.xdist_group("cnn_board_verilator")
def test_sparsa_run_engine_board_on_a_cnn_pack_is_bit_exact_and_measures_the_link(pack, tmp_path, capsys):
    prog, graph, xs, pack_dir = pack
    np.save(tmp_path / "x.npy", xs)
    assert main(["run", str(pack_dir), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--engine", "board", "--port", "sim:ulx3s-85f", "--clock-mhz", str(CLOCK_MHZ),
                 "--report", str(tmp_path / "r.json")]) == 0
    assert np.array_equal(np.load(tmp_path / "y.npy"), cnn_forward(graph, xs))
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["engine"] == "board" and len(rep["cycles"]) == 2
    m = rep["link"]["measured"]
    wire = 3_000_000 / 10
    # The load is the whole DRAM image and the window's framing; bytes never beat the wire.
    assert rep["link"]["load_bytes"] > prog.dram_size
    for phase in ("load", "run"):
        assert wire / 2 < m[f"{phase}_bytes_per_s"] <= wire, (phase, m)
    assert rep["time_per_input_s"]["compute"] == pytest.approx(np.mean(rep["cycles"]) / (CLOCK_MHZ * 1e6))


def test_a_cnn_pack_is_refused_on_the_icebreaker_and_when_its_dram_does_not_fit(pack, tmp_path, capsys,
                                                                                monkeypatch):
    from sparsa.boards.systems import ULX3S85F
    prog, graph, xs, pack_dir = pack
    np.save(tmp_path / "x.npy", xs)
    run = ["run", str(pack_dir), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"), "--engine", "board"]
    capsys.readouterr()
    assert main(run + ["--port", "sim:icebreaker"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "the CNN engine does not fit the UP5K" in err[0], err
    assert main(["build", str(pack_dir), "--board", "icebreaker", "-o", str(tmp_path / "b")]) == 2
    assert "the CNN engine does not fit the UP5K" in capsys.readouterr().err
    monkeypatch.setattr(ULX3S85F, "cnn_mem_limit", 4096)
    assert main(run + ["--port", "sim:ulx3s-85f"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "dram_size: expected at most 4096 bytes" in err[0], err
    assert f"found {prog.dram_size} (too big by {prog.dram_size - 4096})" in err[0], err
    for extra, message in ((["--port", "sim:ulx3s-85f", "--reload"], "--reload: expected an EIE pack"),
                           (["--port", "sim:ulx3s-85f", "--baud", "115200"],
                            "--baud: expected a rate above 0 with --engine board on a real port"),
                           (["--port", "/dev/ttyUSB9", "--baud", "-5"], "found -5")):
        assert main(run + extra) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "b").exists()
    # A board run counts whole inputs: its report is refused for per-layer figures, saying why.
    (tmp_path / "r.json").write_text(json.dumps({"engine": "board", "kind": "cnn", "lanes": prog.cfg.lanes,
                                                 "batch": 2, "cycles_per_input": 5000.0, "cycles": [5000, 5000]}))
    assert main(["report", str(pack_dir), "-o", str(tmp_path / "rep.html"), "--run", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a board run counts whole inputs only" in err[0], err


def test_sparsa_build_writes_the_cnn_system_and_refuses_the_harness_options(pack, tmp_path, capsys):
    _, _, _, pack_dir = pack
    out = tmp_path / "b"
    assert main(["build", str(pack_dir), "--board", "ulx3s-85f", "-o", str(out), "--no-build",
                 "--clock-mhz", "75"]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["engine"] == "cnn" and rep["cnn"]["lanes"] == SMALL.lanes and rep["top"] == "link"
    assert rep["clock"]["pll_mhz"] == 75 and rep["link"]["divisor"] == 25
    il = (out / "top.il").read_text()
    assert "EHXPLLL" in il and not (out / "sparsa_eie_pe.v").exists()
    capsys.readouterr()
    for extra, message in ((["--top", "harness"], "--top: expected link for a CNN pack"),
                           (["--preload"], "--preload: expected an EIE pack"),
                           (["--multiplier", "generic"], "--multiplier: expected auto for a CNN pack")):
        assert main(["build", str(pack_dir), "--board", "ulx3s-85f", "-o", str(tmp_path / "c"), "--no-build",
                     *extra]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err
        assert not (tmp_path / "c").exists()


def test_the_window_register_table_in_the_docs_is_the_generated_one():
    from pathlib import Path

    from sparsa.hw.axil import register_table_markdown
    from sparsa.hw.cnn.link_soc import WINDOW_REGISTERS
    doc = (Path(__file__).parent.parent / "docs" / "cnn_engine.md").read_text()
    assert register_table_markdown(WINDOW_REGISTERS) in doc
