"""The generated CNN engine equals the golden model bit for bit (cocotb, cocotbext-axi AXI RAM).

One Verilator build of a small configuration (4 lanes, small buffers so that layers tile into
several row tiles and output groups) runs every graph on both conv datapaths; Icarus runs one
small graph. Random graphs print their seed.
"""

import json
import subprocess
import sys
from dataclasses import replace

import numpy as np
import pytest

from sparsa.sw.cnn.compiler import compile_graph
from sparsa.sw.cnn.golden import cnn_forward, int_layer_outputs
from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.isa import Flag, Op, decode_program
from sparsa.sim.cnn.runner import run_program

from cnn_cases import Builder, check_cycle_model, random_graph, run_every_layer_on_rtl, yolo_ops_graph

# psum_depth 128 cuts the window convolver's layers into several row tiles
HW = CNNConfig(lanes=4, ibuf_bytes=2048, wbuf_words=512, obuf_depth=256, psum_depth=128)


def run_and_check(graph, x, datapath, engine="verilator", **kw):
    """Run on the RTL; the output *and every intermediate layer* (read back from DRAM) must
    equal the golden model's."""
    prog = compile_graph(graph, HW, datapath)
    return prog, run_every_layer_on_rtl(prog, graph, x, engine=engine, **kw)


@pytest.mark.xdist_group("cnn_verilator")
@pytest.mark.parametrize("datapath", ["direct", "winograd"])
@pytest.mark.parametrize("seed", range(4))
def test_random_graph_matches_golden(seed, datapath):
    print("seed", seed)
    graph, x = random_graph(seed)
    prog, res = run_and_check(graph, x, datapath)
    if datapath == "direct":     # every random graph has 3x3 layers: they run on the convolver
        assert prog.layers[0]["datapath"] == "convolver"
    # the engine's multiplier-cycle counter equals the compiler's count of CONV work
    assert int(res["mac_cycles"][0]) == sum(m["mac_cycles"] for m in prog.layers)
    assert int(res["layer_cycles"].sum()) + int(res["overhead_cycles"][0]) == int(res["cycles"][0])
    # the cycle model (sparsa.sw.cnn.timing) is within 0.5% of the RTL, and 1% on every layer
    check_cycle_model(prog, res, rel=0.005, layer_rel=0.01)


@pytest.mark.xdist_group("cnn_verilator")
@pytest.mark.parametrize("datapath", ["direct", "winograd"])
@pytest.mark.parametrize("seed", range(2))
def test_yolo_ops_match_golden(seed, datapath):
    """Leaky ReLU, a stride-1 pool padded right and bottom, upsample and concats on the RTL."""
    print("seed", seed)
    graph, x = yolo_ops_graph(seed)
    prog, res = run_and_check(graph, x, datapath)
    ops = {Op(i["op"]).name + ("+" + Flag(i["flags"] & (Flag.LEAKY | Flag.UP)).name if i["flags"] & (Flag.LEAKY | Flag.UP)
                               else "") for i in decode_program(prog.program)}
    assert {"CONV+LEAKY", "POOL+UP"} <= ops
    cat = next(m for m in prog.layers if m["op"] == "concat" and not m.get("flatten"))
    # the upsample and the early conv are written in place; only the model input is copied
    assert sum(1 for i in decode_program(prog.program)[cat["instr_start"]:cat["instr_end"]]
               if i["op"] == Op.POOL) >= 1
    check_cycle_model(prog, res, rel=0.005, layer_rel=0.02)


@pytest.mark.xdist_group("cnn_verilator")
def test_batch_and_axi_backpressure():
    """Random pauses on every AXI channel, three inputs back to back on one program."""
    print("seed", 21)
    graph, x = random_graph(21)
    rng = np.random.default_rng(21)
    xs = np.stack([x, rng.integers(-128, 128, x.shape).astype(np.int8), np.zeros_like(x)])
    _, res = run_and_check(graph, xs, "winograd", pause=0.3, seed=21)
    assert len(res["cycles"]) == 3


@pytest.mark.xdist_group("cnn_verilator")
def test_saturation_and_odd_sizes():
    """Shift 0 with large weights saturates both ways; 9x7 maps give odd Winograd tiles; k = 5,
    stride 2, padding 2; a 1x1 conv; Cout not a multiple of the lanes."""
    print("seed", 5)
    b = Builder(np.random.default_rng(5), (3, 9, 7))
    b.conv(7, 3, pad=1, saturate=True)
    b.conv(5, 5, stride=2, pad=2)
    b.conv(6, 1)
    b.pool(2, avg=True)
    graph = b.graph()
    x = np.random.default_rng(5).integers(-128, 128, (3, 9, 7)).astype(np.int8)
    first = int_layer_outputs(graph, x)["l0"]
    assert (first == 127).any() and ((first == -128).any() or (first == 0).any())
    for dp in ("direct", "winograd"):
        run_and_check(graph, x, dp)


@pytest.mark.xdist_group("cnn_verilator")
def test_kernel_7_padding_2_winograd_avgpool_and_pool_stride_3():
    """Named coverage the random graphs can miss: k = 7, a Winograd layer with padding 2,
    average pooling, a 3x3 max-pool with stride 3, channel counts not multiples of the lanes."""
    print("seed", 9)
    rng = np.random.default_rng(9)
    b = Builder(rng, (3, 13, 12))
    b.conv(5, 7, pad=3)
    b.conv(6, 3, pad=2)
    b.pool(2, avg=True)
    b.conv(7, 3, pad=1)
    b.pool(3, stride=3)
    graph = b.graph()
    x = rng.integers(-128, 128, (3, 13, 12)).astype(np.int8)
    for dp in ("direct", "winograd"):
        prog, res = run_and_check(graph, x, dp)
        # the 7x7 layer runs on the window convolver as 3 x 3 pieces of 3x3 (9 CONVs a tile)
        assert [m["datapath"] for m in prog.layers if m["op"] == "conv2d"] == (
            ["convolver"] * 3 if dp == "direct" else ["convolver", "winograd", "winograd"])
        check_cycle_model(prog, res, rel=0.005, layer_rel=0.02)


@pytest.mark.xdist_group("cnn_one_multiplier")
def test_kernel_7_and_5_on_the_one_multiplier_walker():
    """An engine without the window convolver runs k = 7 and k = 5 on the direct walker
    (one multiplier a lane, k x k cycles a pixel), bit-exact, every layer."""
    print("seed", 10)
    rng = np.random.default_rng(10)
    b = Builder(rng, (3, 13, 12))
    b.conv(5, 7, pad=3)
    b.conv(6, 5, stride=2, pad=1)
    graph = b.graph()
    x = rng.integers(-128, 128, (3, 13, 12)).astype(np.int8)
    prog = compile_graph(graph, replace(HW, convolver=False), "direct")
    assert [m["datapath"] for m in prog.layers] == ["direct", "direct"]
    res = run_every_layer_on_rtl(prog, graph, x)
    check_cycle_model(prog, res, rel=0.005, layer_rel=0.01)


@pytest.mark.xdist_group("cnn_verilator")
@pytest.mark.parametrize("k,stride,pad", [(7, 2, 3), (5, 1, 2), (4, 2, 0), (6, 1, 5)])
def test_kernels_above_3_run_on_the_convolver_as_pieces(k, stride, pad):
    """A k x k kernel, 3 < k <= 7, runs on the window convolver as ceil(k/3)^2 3x3 pieces
    (ResNet's 7x7 stride-2 first layer among them): pieces whose windows fall wholly in the
    padding or past the image, every layer bit-exact, and the cycle model within its bounds."""
    print("seed", 11, "k", k, "stride", stride, "pad", pad)
    rng = np.random.default_rng(11 + k)
    b = Builder(rng, (3, 15, 14))
    b.conv(6, k, stride=stride, pad=pad)
    b.conv(5, 3, pad=1)
    graph = b.graph()
    x = rng.integers(-128, 128, (3, 15, 14)).astype(np.int8)
    prog, res = run_and_check(graph, x, "direct")
    n = -(-k // 3)
    convs = [f for f in decode_program(prog.program)[:prog.layers[0]["instr_end"]] if f["op"] == Op.CONV]
    assert prog.layers[0]["datapath"] == "convolver" and len(convs) % (n * n) == 0
    # the pieces' window origins step by 3 rows and 3 columns from the layer's own
    assert {(f["y0"] - convs[0]["y0"], f["x0"] + pad) for f in convs[:n * n]} == {
        (3 * a, 3 * c) for a in range(n) for c in range(n)}
    check_cycle_model(prog, res, rel=0.005, layer_rel=0.02)


@pytest.mark.xdist_group("cnn_verilator")
def test_window_convolver_edge_cases():
    """The 3x3 window convolver on: a 3x3 map with padding 0 (one window per channel), a 4x4
    map, maps narrower than one 8-byte ibuf word, stride 2 with and without padding, Cin 1,
    Cout not a multiple of the lanes, and a layer too deep for ibuf in one piece (channel
    chunks accumulated in psum with ACC/HOLD) over several row tiles, and chunks shared by
    several output groups at different psum bases."""
    print("seed", 31)
    rng = np.random.default_rng(31)
    graphs = []
    b = Builder(rng, (1, 3, 3))
    b.conv(5, 3, pad=0)
    graphs.append(b.graph())
    b = Builder(rng, (1, 4, 4))
    b.conv(6, 3, pad=1)
    b.conv(5, 3, stride=2, pad=1)
    b.conv(3, 3, pad=1, saturate=True)
    graphs.append(b.graph())
    b = Builder(rng, (2, 7, 5))
    b.conv(4, 3, stride=2, pad=0)
    graphs.append(b.graph())
    b = Builder(rng, (40, 13, 11))
    b.conv(6, 3, pad=1)
    b.conv(5, 3, stride=2, pad=1)
    graphs.append(b.graph())
    b = Builder(rng, (60, 7, 6))         # chunks shared by 3 output groups side by side in psum
    b.conv(10, 3, pad=1)
    graphs.append(b.graph())
    for graph in graphs:
        x = rng.integers(-128, 128, graph.input_shape).astype(np.int8)
        prog, res = run_and_check(graph, x, "direct")
        assert all(m["datapath"] == "convolver" for m in prog.layers)
        assert int(res["mac_cycles"][0]) == sum(m["mac_cycles"] for m in prog.layers)
        convs = [i for i in decode_program(prog.program) if i["op"] == Op.CONV and i["layer"] == 0]
        if graph.input_shape[0] == 40:
            assert any(c["flags"] & Flag.ACC for c in convs) and prog.layers[0]["row_tiles"] > 1
        if graph.input_shape[0] == 60:
            assert any(c["flags"] & Flag.ACC for c in convs) and any(c["b"] > 0 for c in convs)


@pytest.mark.xdist_group("cnn_verilator")
def test_sweep_pools_on_narrow_rows():
    """2x2 and 3x3 pools (flag LB: the window convolver's sweep, a window a cycle) on maps of
    one or two windows a row, where the row streams' words, not the windows, set the pace
    (a global pool's stages): bit-exact, and the cycle model within a cycle per instruction."""
    print("seed", 32)
    rng = np.random.default_rng(32)
    cases = [((64, 3, 3), 2, 2, [0, 0, 1, 1]), ((16, 5, 5), 3, 2, [0, 0, 0, 0]), ((16, 2, 2), 2, 2, [0, 0, 0, 0]),
             ((8, 6, 6), 2, 1, [0, 0, 1, 1]), ((12, 3, 3), 3, 1, [1, 1, 1, 1])]
    for shape, k, s, pads in cases:
        b = Builder(rng, shape)
        b.pool_padded(k, s, pads)
        b.pool(2, avg=True) if b.shape[1] >= 2 else None
        graph = b.graph()
        x = rng.integers(-128, 128, shape).astype(np.int8)
        prog, res = run_and_check(graph, x, "direct")
        pools = [i for i in decode_program(prog.program) if i["op"] == Op.POOL]
        assert pools and all(i["flags"] & Flag.LB for i in pools), shape
        check_cycle_model(prog, res, rel=0.02, layer_rel=0.02, instr=(1, 0.0))   # tiny programs: 2-3 cycles


@pytest.mark.xdist_group("cnn_verilator")
def test_all_zero_input():
    graph, x = random_graph(3)
    run_and_check(graph, np.zeros_like(x), "direct")


def test_icarus_small_graph():
    print("seed", 7)
    b = Builder(np.random.default_rng(7), (2, 7, 5))
    b.conv(5, 3, pad=1)
    skip = b.prev
    b.conv(5, 3, pad=1, relu=False)
    b.add(b.prev, skip, relu=True)
    b.pool(2)
    b.linear(3)
    graph = b.graph()
    x = np.random.default_rng(7).integers(-128, 128, (2, 7, 5)).astype(np.int8)
    for dp in ("direct", "winograd"):
        run_and_check(graph, x, dp, engine="icarus")


def test_icarus_yolo_ops():
    """Leaky ReLU, a 2x upsample, a stride-1 pool padded right and bottom, an in-place and a
    flattening concat, on Icarus."""
    print("seed", 8)
    rng = np.random.default_rng(8)
    b = Builder(rng, (2, 4, 4))
    first = b.conv(3, 3, pad=1, leaky=0.1)
    b.upsample()
    b.pool_padded(2, 2, [0, 0, 0, 0])
    b.pool_padded(2, 1, [0, 0, 1, 1])
    cat = b.concat([b.prev, first])
    b.conv(2, 1, relu=False, leaky=0.25)
    b.concat([b.prev, cat], flatten=True)
    graph = b.graph()
    run_and_check(graph, rng.integers(-128, 128, (2, 4, 4)).astype(np.int8), "direct", engine="icarus")


@pytest.mark.xdist_group("cnn_verilator")
def test_cli_run_cnn_pack(tmp_path):
    """sparsa pack + sparsa run --engine verilator|golden on a CNN graph, with a report."""
    from sparsa.sw.model.graph import save_graph
    graph, x = random_graph(1)
    save_graph(tmp_path / "g.npz", graph)
    np.save(tmp_path / "x.npy", x)
    cli = [sys.executable, "-m", "sparsa"]
    subprocess.run(cli + ["pack", str(tmp_path / "g.npz"), "-o", str(tmp_path / "pk"), "--lanes", "4",
                          "--ibuf-bytes", "2048", "--wbuf-words", "512", "--obuf-depth", "256",
                          "--conv-datapath", "winograd"], check=True, capture_output=True)
    for engine in ("golden", "verilator"):
        subprocess.run(cli + ["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o",
                              str(tmp_path / f"{engine}.npy"), "--engine", engine, "--report",
                              str(tmp_path / f"{engine}.json")], check=True, capture_output=True)
        np.testing.assert_array_equal(np.load(tmp_path / f"{engine}.npy"), cnn_forward(graph, x))
    rep = json.loads((tmp_path / "verilator.json").read_text())
    assert rep["cycles"] > 0 and len(rep["layers"]) == len(graph.layers)
    assert all(0 < layer["cycles"] for layer in rep["layers"])
    conv = [layer for layer in rep["layers"] if layer["op"] == "conv2d"]
    assert all(0 < layer["mac_utilisation"] <= 2.25 for layer in conv)


def test_cli_run_cnn_bad_input(tmp_path, capsys):
    from sparsa.cli import main
    from sparsa.sw.model.graph import save_graph
    graph, x = random_graph(1)
    save_graph(tmp_path / "g.npz", graph)
    assert main(["pack", str(tmp_path / "g.npz"), "-o", str(tmp_path / "pk")]) == 0
    np.save(tmp_path / "x.npy", x[:, :-1])
    capsys.readouterr()
    assert main(["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy")]) == 2
    err = capsys.readouterr().err
    assert "x.npy" in err and "input shape" in err and str(tuple(x.shape)) in err
    assert not (tmp_path / "y.npy").exists()


def test_cli_verilog_for_a_cnn_pack(tmp_path, capsys):
    """`sparsa verilog PACK` on a CNN pack writes the engine for the pack's configuration."""
    from sparsa.cli import main
    from sparsa.sw.model.graph import save_graph
    graph, _ = random_graph(2)
    save_graph(tmp_path / "g.npz", graph)
    assert main(["pack", str(tmp_path / "g.npz"), "-o", str(tmp_path / "pk"), "--lanes", "4",
                 "--conv-datapath", "direct"]) == 0
    assert main(["verilog", str(tmp_path / "pk"), "-o", str(tmp_path / "cnn.v")]) == 0
    text = (tmp_path / "cnn.v").read_text()
    assert "module sparsa_cnn" in text
    for port in ("m_axi_arvalid", "m_axi_rdata", "m_axi_awaddr", "m_axi_wstrb", "m_axi_bready", "prog_addr"):
        assert port in text
    assert "4 lanes, Winograd off" in capsys.readouterr().out


@pytest.mark.xdist_group("cnn_soc")
def test_soc_wrapper_registers_irq_and_backpressure():
    """The AXI4-Lite SoC wrapper: ID/CONFIG/PROG_ADDR read back, START, irq, STATUS.DONE and
    its clear, CYCLES; two inputs back to back with random pauses on all ten channels; the
    image at bus address 0x5000 (DRAM_BASE, as a Linux buffer would be); the outputs equal
    golden and the counters equal the bare engine's."""
    from sparsa.sim.cnn.runner import run_soc_program
    print("seed", 4)
    graph, x = random_graph(4)
    xs = np.stack([x, np.random.default_rng(4).integers(-128, 128, x.shape).astype(np.int8)])
    prog = compile_graph(graph, HW, "winograd")
    res = run_soc_program(prog, xs, pause=0.2, seed=4, dram_base=0x5000)
    np.testing.assert_array_equal(res["y"], cnn_forward(graph, xs))
    bare = run_program(prog, xs)
    assert list(res["mac_cycles"]) == list(bare["mac_cycles"])
    assert all(c >= b for c, b in zip(res["cycles"], bare["cycles"]))   # pauses only add cycles


@pytest.mark.xdist_group("cnn_soc")
def test_soc_abort_in_flight_then_the_jobs_are_exact():
    """CTRL.ABORT early, a third and two thirds into a run, with random pauses on every
    channel (so that bursts are in flight): BUSY clears, DONE stays low, and the two jobs
    after it equal the golden model: nothing the aborted runs left behind changes them."""
    from sparsa.sim.cnn.runner import run_soc_program
    print("seed", 4)
    graph, x = random_graph(4)
    xs = np.stack([x, np.random.default_rng(4).integers(-128, 128, x.shape).astype(np.int8)])
    prog = compile_graph(graph, HW, "winograd")
    run_cycles = int(run_program(prog, xs[:1])["cycles"][0])
    aborts = [10, run_cycles // 3, 2 * run_cycles // 3]
    res = run_soc_program(prog, xs, pause=0.2, seed=5, dram_base=0x5000, aborts=aborts)
    np.testing.assert_array_equal(res["y"], cnn_forward(graph, xs))
    assert len(res["abort_polls"]) == 3 and max(res["abort_polls"]) < 50


def test_soc_register_map_documented():
    from pathlib import Path

    from sparsa.hw.cnn.soc import cnn_register_map_markdown
    doc = (Path(__file__).parent.parent / "docs" / "cnn_engine.md").read_text()
    assert cnn_register_map_markdown() in doc


# int8 weight words and two lanes per convolver multiplier (the Zynq-7020-sized engines)
PAIRED = CNNConfig(lanes=8, ibuf_bytes=2048, wbuf_words=512, obuf_depth=256, psum_depth=128, winograd=False,
                   weight_bits=8, pair_multipliers=True)


@pytest.mark.xdist_group("cnn_paired")
@pytest.mark.parametrize("seed", range(2))
def test_int8_weights_and_paired_multipliers_match_golden(seed):
    """Every op (random_graph), YOLO's operators, a linear layer wider than wbuf on the convolver,
    and saturating weights (-128 and 127 in both lanes of a pair, where a packed product's
    halves carry): bit-exact, every layer, and the cycle model still holds."""
    print("seed", seed)
    rng = np.random.default_rng(100 + seed)
    b = Builder(rng, (20, 5, 5))
    b.conv(8, 3, pad=1, saturate=True)
    b.arrays[b.prev + ".w"][:, :, :, :] = rng.choice(np.array([-128, 127, -1, 0, 1], np.int8), size=(8, 20, 3, 3))
    b.linear(12, relu=True)
    graphs = [random_graph(seed), yolo_ops_graph(seed), (b.graph(), rng.integers(-128, 128, (20, 5, 5)).astype(np.int8))]
    for graph, x in graphs:
        prog = compile_graph(graph, PAIRED)
        res = run_every_layer_on_rtl(prog, graph, x)
        assert int(res["mac_cycles"][0]) == sum(m["mac_cycles"] for m in prog.layers)
        check_cycle_model(prog, res, rel=0.005, layer_rel=0.02, instr=(2, 0.05))
