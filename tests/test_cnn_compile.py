"""CNN compiler + instruction-level model against the golden model, and `sparsa pack` of a CNN graph."""

import json
from dataclasses import replace

import numpy as np
import pytest

from sparsa.cli import main
from sparsa.sw.cnn.compiler import compile_graph
from sparsa.sw.cnn.executor import CNNExecError, execute
from sparsa.sw.cnn.golden import cnn_forward
from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.isa import Flag, Op, Target, decode_program, encode_program
from sparsa.sw.cnn.pack import load_cnn_pack
from sparsa.sw.errors import UserError
from sparsa.sw.model.graph import save_graph

from cnn_cases import CONFIGS, SMALL, Builder, random_graph


def check(graph, x, cfg, datapath):
    prog = compile_graph(graph, cfg, datapath)
    y, stats = prog.run(x)
    ref = cnn_forward(graph, x)
    assert y.shape == ref.shape and y.dtype == np.int8
    assert np.array_equal(y, ref)
    return prog, stats


@pytest.mark.parametrize("cfg_name", list(CONFIGS))
@pytest.mark.parametrize("datapath", ["direct", "winograd"])
@pytest.mark.parametrize("seed", range(5))
def test_random_graph_matches_golden(seed, datapath, cfg_name):
    print("seed", seed)
    graph, x = random_graph(seed)
    prog, stats = check(graph, x, CONFIGS[cfg_name], datapath)
    assert {m["op"] for m in prog.layers} >= {"conv2d", "add"}
    # every intermediate layer too, not only the output
    from sparsa.sw.cnn.golden import int_layer_outputs
    dram = prog.dram_image(x)
    execute(prog.program, dram, prog.cfg)
    ref = int_layer_outputs(graph, x)
    for m in prog.layers:
        assert np.array_equal(prog.read_layer(dram, m["name"]), ref[m["name"]].reshape(m["shape"])), m["name"]
    assert stats.mac_cycles == sum(m["mac_cycles"] for m in prog.layers)
    if datapath == "winograd":
        assert prog.layers[0]["datapath"] == "winograd"


def test_small_buffers_tile_rows_and_groups():
    print("seed", 11)
    b = Builder(np.random.default_rng(11), (6, 21, 19))
    b.conv(10, 3, pad=1)               # Cout 10 on 4 lanes: groups of 4, 4, 2
    b.conv(7, 3, stride=2, pad=2)
    b.pool(2, avg=True)
    graph, x = b.graph(), np.random.default_rng(11).integers(-128, 128, (6, 21, 19)).astype(np.int8)
    one_mult = replace(SMALL, convolver=False)
    for cfg, datapath, want in ((one_mult, "direct", "direct"), (one_mult, "winograd", "winograd"),
                                (SMALL, "direct", "convolver")):
        prog, stats = check(graph, x, cfg, datapath)
        conv = prog.layers[0]
        assert conv["row_tiles"] > 1 and conv["groups"] == 3
        assert prog.layers[1]["row_tiles"] > 1
        assert conv["datapath"] == want
        per = stats.by_layer()
        assert per[0]["mac_cycles"] == conv["mac_cycles"]
        if want == "direct":
            assert conv["mac_cycles"] == 3 * 21 * 19 * 6 * 9       # 3 groups, each pixel, Cin*k*k
        elif want == "convolver":
            assert conv["mac_cycles"] == 3 * 21 * 19 * 6           # a whole 3x3 window a cycle
            assert per[0]["mults"] == 3 * 21 * 19 * 6 * 9 * 4
        else:
            assert conv["mac_cycles"] < 3 * 21 * 19 * 6 * 9


def test_saves_run_in_the_background_and_sync_only_where_needed():
    # Cout 16 on 4 lanes: 4 groups per tile. Each group's CONV writes the other obuf half from
    # the one the previous SAVE drains, so that SAVE needs no SYNC; each layer's last SAVE
    # has SYNC. The instruction-level model runs a background SAVE as late as the engine may,
    # so a missing SYNC changes its results: without the flags the program is wrong.
    seed = 31
    print("seed", seed)
    rng = np.random.default_rng(seed)
    b = Builder(rng, (3, 9, 10))
    b.conv(16, 3, pad=1, relu=True)
    b.pool(2)
    b.conv(8, 3, pad=1)
    graph, x = b.graph(), rng.integers(-128, 128, (3, 9, 10)).astype(np.int8)
    for cfg in (SMALL, replace(SMALL, convolver=False)):
        prog, _ = check(graph, x, cfg, "direct")
        instrs = decode_program(prog.program)
        half = cfg.obuf_depth // 2
        convs = [f for f in instrs if f["op"] == Op.CONV]
        assert [f["obase"] for f in convs[:4]] == [0, half, 0, half]
        saves = [(n, f) for n, f in enumerate(instrs) if f["op"] == Op.SAVE]
        background = [f for _, f in saves if not f["flags"] & Flag.SYNC]
        assert len(background) >= 3
        for n, f in saves:
            if instrs[n + 1]["layer"] != f["layer"] or instrs[n + 1]["op"] == Op.END:
                assert f["flags"] & Flag.SYNC
        # the same program without its SYNC flags (and also with every obase 0) is wrong
        no_sync = [dict(f, flags=f["flags"] & ~Flag.SYNC) for f in instrs]
        one_half = [dict(f, obase=0, buf=0 if f["op"] == Op.SAVE else f["buf"]) for f in no_sync]
        for bad in (no_sync, one_half):
            dram = prog.dram_image(x)
            execute(encode_program(bad), dram, cfg)
            assert not np.array_equal(prog.read_output(dram), cnn_forward(graph, x))


def test_one_row_tiles_at_the_padded_edges():
    """Tiles of one output row: the edge rows of a pad-2 conv read mostly padding."""
    print("seed", 12)
    b = Builder(np.random.default_rng(12), (3, 7, 5))
    b.conv(6, 3, pad=2)
    b.conv(5, 5, pad=2)
    b.conv(4, 3, stride=2, pad=0)
    graph, x = b.graph(), np.random.default_rng(12).integers(-128, 128, (3, 7, 5)).astype(np.int8)
    for cfg in (CNNConfig(lanes=4, ibuf_bytes=296, obuf_depth=16, wbuf_words=256), SMALL):
        check(graph, x, cfg, "direct")
        check(graph, x, cfg, "winograd")


def test_saturation_reaches_both_rails():
    print("seed", 13)
    b = Builder(np.random.default_rng(13), (4, 9, 9))
    b.conv(8, 3, pad=1, relu=False, saturate=True)
    graph = b.graph()
    x = np.random.default_rng(13).integers(-128, 128, (4, 9, 9)).astype(np.int8)
    for datapath in ("direct", "winograd"):
        prog, _ = check(graph, x, SMALL, datapath)
    y = cnn_forward(graph, x)
    assert (y == 127).any() and (y == -128).any()


def test_winograd_odd_output_sizes_and_linear_head():
    print("seed", 14)
    for h, w, pad in ((5, 7, 0), (9, 3, 1), (4, 11, 2), (3, 3, 0)):
        b = Builder(np.random.default_rng(14), (2, h, w))
        b.conv(5, 3, pad=pad)
        b.linear(6, relu=True)
        graph = b.graph()
        x = np.random.default_rng(14).integers(-128, 128, (2, h, w)).astype(np.int8)
        for cfg in (CNNConfig(lanes=4, ibuf_bytes=512, obuf_depth=32, wbuf_words=512), CNNConfig()):
            prog, _ = check(graph, x, cfg, "winograd")
            # the head runs on the direct datapath unless it has more than one group, 8-byte
            # weight words and more inputs than half of wbuf (then on the convolver, in chunks,
            # so that the next group's weights load beside the compute)
            n = int(np.prod(prog.layers[0]["shape"]))
            chunks = n > cfg.wbuf_words // 2 and cfg.weight_word_bytes >= 8 and 6 > cfg.lanes
            assert prog.layers[0]["datapath"] == "winograd"
            assert prog.layers[1]["datapath"] == ("convolver" if chunks else "direct"), (n, cfg)
            assert prog.read_output(prog.dram_image(x)).shape == (6,)


def test_add_tiles_spans_when_channels_do_not_fit():
    print("seed", 15)
    b = Builder(np.random.default_rng(15), (5, 13, 11))
    a = b.conv(6, 3, pad=1)
    c = b.conv(6, 1)
    b.add(a, c, relu=True)
    b.pool(2)
    graph = b.graph()
    x = np.random.default_rng(15).integers(-128, 128, (5, 13, 11)).astype(np.int8)
    prog, _ = check(graph, x, CNNConfig(lanes=4, ibuf_bytes=256, obuf_depth=64, wbuf_words=128), "direct")
    assert prog.layers[2]["row_tiles"] > 1


def test_vgg_sized_layer():
    """56x56x64 -> 64 3x3 conv: exact on both datapaths (and quick: the model is vectorised)."""
    print("seed", 16)
    b = Builder(np.random.default_rng(16), (64, 56, 56))
    b.conv(64, 3, pad=1)
    graph = b.graph()
    x = np.random.default_rng(16).integers(-128, 128, (64, 56, 56)).astype(np.int8)
    prog, stats = check(graph, x, CNNConfig(), "direct")
    assert stats.mults == prog.layers[0]["macs"]
    prog, stats = check(graph, x, CNNConfig(), "winograd")
    assert stats.mults * 2.25 == prog.layers[0]["macs"]


def test_layer_too_big_for_buffers_names_layer_buffer_and_numbers():
    b = Builder(np.random.default_rng(0), (64, 40, 40))
    b.conv(8, 3, pad=1)
    graph = b.graph()
    with pytest.raises(UserError) as e:
        compile_graph(graph, CNNConfig(lanes=4, ibuf_bytes=4096, obuf_depth=4096, wbuf_words=8192, convolver=False))
    msg = str(e.value)
    # one output row needs 64 channels x 3 rows x 40 columns = 7680 bytes
    assert "layer l0" in msg and "ibuf" in msg and "7680" in msg and "4096" in msg and "3584 too many" in msg, msg
    with pytest.raises(UserError, match=r"layer l0: wbuf: expected at most 512 words .* 576 words .*64 too many"):
        compile_graph(graph, CNNConfig(lanes=4, wbuf_words=512, convolver=False))
    with pytest.raises(UserError, match=r"layer l0: obuf: expected at most 32 entries .* 40 entries .*8 too many"):
        compile_graph(graph, CNNConfig(lanes=4, obuf_depth=32))
    # Winograd needs 64 x 16 = 1024 words: with 1000 the layer falls back to the convolver
    # (576 words), or without it to the direct path
    prog = compile_graph(graph, CNNConfig(lanes=4, wbuf_words=1000), "winograd")
    assert prog.layers[0]["datapath"] == "convolver"
    prog = compile_graph(graph, CNNConfig(lanes=4, wbuf_words=1000, convolver=False), "winograd")
    assert prog.layers[0]["datapath"] == "direct"


def test_convolver_splits_deep_layers_into_channel_chunks():
    """The convolver keeps partial sums on chip, so a layer whose input rows or weights do not
    fit ibuf/wbuf in one piece runs as several CONVs over chunks of input channels (ACC/HOLD)."""
    print("seed", 17)
    rng = np.random.default_rng(17)
    b = Builder(rng, (40, 9, 11))
    b.conv(6, 3, pad=1)
    b.conv(5, 3, stride=2)
    graph, x = b.graph(), rng.integers(-128, 128, (40, 9, 11)).astype(np.int8)
    cfg = CNNConfig(lanes=4, ibuf_bytes=1024, obuf_depth=256, wbuf_words=128, psum_depth=64)
    prog, stats = check(graph, x, cfg, "direct")
    assert [m["datapath"] for m in prog.layers] == ["convolver", "convolver"]
    convs = [i for i in decode_program(prog.program) if i["op"] == Op.CONV]
    first = [c for c in convs if c["layer"] == 0]
    assert any(c["flags"] & Flag.HOLD for c in first) and any(c["flags"] & Flag.ACC for c in first)
    assert all(c["gh"] * c["gw"] <= 64 for c in convs) and prog.layers[0]["row_tiles"] > 1
    # the same graph without the convolver does not fit (40 channels x 9 weight words > 128)
    with pytest.raises(UserError, match="wbuf"):
        compile_graph(graph, replace(cfg, convolver=False))


@pytest.mark.parametrize("seed", range(3))
def test_kernels_4_to_7_as_convolver_pieces_match_golden(seed):
    """k x k, 3 < k <= 7, stride 1/2, any padding below k, on every buffer configuration: the
    convolver's pieces give the golden model's numbers (the executor; the RTL in
    test_cnn_rtl.py), and an engine without the convolver runs them on the walker."""
    print("seed", seed)
    rng = np.random.default_rng(100 + seed)
    runs = 0
    for _ in range(12):
        k, s = int(rng.integers(4, 8)), int(rng.integers(1, 3))
        p, c = int(rng.integers(0, k)), int(rng.integers(1, 6))
        h, w = int(rng.integers(k, 20)), int(rng.integers(k, 20))
        b = Builder(rng, (c, h, w))
        b.conv(int(rng.integers(1, 10)), k, s, p)
        g = b.graph()
        x = rng.integers(-128, 128, (c, h, w)).astype(np.int8)
        want = cnn_forward(g, x)
        for cfg in (*CONFIGS.values(), replace(SMALL, convolver=False)):
            try:
                prog = compile_graph(g, cfg, "direct")
            except UserError:
                continue                   # a map too wide for the tiny buffers
            assert prog.layers[0]["datapath"] == ("convolver" if cfg.convolver else "direct")
            np.testing.assert_array_equal(prog.run(x)[0], want, err_msg=f"k {k} s {s} p {p} {cfg}")
            runs += 1
    assert runs >= 24


def test_float_graph_and_bad_weights_refused():
    b = Builder(np.random.default_rng(0), (2, 5, 5))
    b.conv(3, 3)
    g = b.graph()
    g.spec["input"]["dtype"] = "float32"
    with pytest.raises(UserError, match="input.dtype: expected 'int8'"):
        compile_graph(g)
    g.spec["input"]["dtype"] = "int8"
    g.arrays["l0.w"] = g.arrays["l0.w"].astype(np.int16) * 4
    with pytest.raises(UserError, match=r"l0.weight: expected int8 values in \[-128, 127\]"):
        compile_graph(g)
    with pytest.raises(UserError, match="datapath"):
        compile_graph(b.graph(), CNNConfig(winograd=False), "winograd")


def test_exec_refuses_out_of_range_addresses():
    cfg = CNNConfig(lanes=4, ibuf_bytes=64, obuf_depth=16, wbuf_words=16)
    dram = bytearray(1024)
    bad_load = encode_program([dict(op=Op.LOAD, target=Target.IBUF, dram=512, count=1, length=100, buf=0)])
    with pytest.raises(CNNExecError, match=r"instruction 0 \(LOAD, layer 0\): ibuf address 0..99 outside 0..63"):
        execute(bad_load, dram, cfg)
    bad_dram = encode_program([dict(op=Op.LOAD, target=Target.IBUF, dram=1000, count=1, length=40, buf=0)])
    with pytest.raises(CNNExecError, match="DRAM address"):
        execute(bad_dram, dram, cfg)
    bad_conv = encode_program([dict(op=Op.CONV, count=2, k=3, step=1, gh=5, gw=5, wo=5, H=5, W=5, layer=3)])
    with pytest.raises(CNNExecError, match=r"\(CONV, layer 3\): CONV reads wbuf words 0..17, wbuf holds 16"):
        execute(bad_conv, dram, cfg)
    bad_save = encode_program([dict(op=Op.SAVE, count=1, dram=0, length=8, buf=10)])
    with pytest.raises(CNNExecError, match="obuf address 10..17 outside 0..15"):
        execute(bad_save, dram, cfg)
    ok = encode_program([dict(op=Op.LOAD, target=Target.IBUF, dram=0, count=1, length=8, buf=0)])
    with pytest.raises(CNNExecError, match="no END"):
        execute(ok[:-128], dram, cfg)


#
# sparsa pack / inspect of a CNN graph
#

@pytest.fixture
def cnn_npz(tmp_path):
    print("seed", 3)
    graph, x = random_graph(3)
    save_graph(tmp_path / "cnn.npz", graph)
    return graph, x


def fails(capsys, argv, *needles):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.mark.parametrize("datapath", ["direct", "winograd"])
def test_pack_cnn_then_load_and_run(tmp_path, cnn_npz, capsys, datapath):
    graph, x = cnn_npz
    out = tmp_path / "pk"
    assert main(["pack", str(tmp_path / "cnn.npz"), "-o", str(out), "--lanes", "4",
                 "--conv-datapath", datapath, "--ibuf-bytes", "2048", "--obuf-depth", "256",
                 "--wbuf-words", "512"]) == 0
    assert "instructions" in capsys.readouterr().out
    man = json.loads((out / "manifest.json").read_text())
    assert man["format"] == "sparsa-cnn-pack" and man["version"] == 1 and man["datapath"] == datapath
    assert man["config"]["lanes"] == 4 and man["config"]["ibuf_bytes"] == 2048
    assert man["config"]["winograd"] == (datapath == "winograd")
    assert set(man["files"]) == {"program.bin", "dram.bin", "model.npz"}
    assert len(man["layers"]) == len(graph.layers) and man["input"]["shape"] == list(x.shape)
    dram_bin = (out / "dram.bin").read_bytes()
    assert dram_bin.startswith((out / "program.bin").read_bytes())
    prog, cfg, man2 = load_cnn_pack(out)
    assert man2 == man and cfg == CNNConfig(lanes=4, ibuf_bytes=2048, obuf_depth=256, wbuf_words=512,
                                             winograd=datapath == "winograd")
    dram = np.zeros(man["dram_size"], np.uint8)          # what a runner does, from the manifest only
    dram[:len(dram_bin)] = np.frombuffer(dram_bin, np.uint8)
    dram[man["input"]["addr"]:man["input"]["addr"] + x.size] = x.reshape(-1).view(np.uint8)
    execute((out / "program.bin").read_bytes(), dram, cfg)
    assert np.array_equal(prog.read_output(dram), cnn_forward(graph, x))
    assert np.array_equal(prog.run(x)[0], cnn_forward(graph, x))
    assert prog.graph.spec == graph.spec                  # model.npz: what the golden engine runs

    assert main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    assert "MAC cycles" in text and graph.layers[0]["name"] in text
    assert main(["inspect", str(out), "--json"]) == 0
    table = json.loads(capsys.readouterr().out)
    assert table["total"]["macs"] == man["macs"]


def test_pack_cnn_detects_tampering(tmp_path, cnn_npz):
    out = tmp_path / "pk"
    assert main(["pack", str(tmp_path / "cnn.npz"), "-o", str(out)]) == 0
    data = bytearray((out / "dram.bin").read_bytes())
    data[-1] ^= 1
    (out / "dram.bin").write_bytes(bytes(data))
    with pytest.raises(UserError, match="sha256"):
        load_cnn_pack(out)


def test_pack_cnn_bad_options(tmp_path, cnn_npz, capsys):
    npz, out = str(tmp_path / "cnn.npz"), tmp_path / "pk"
    fails(capsys, ["pack", npz, "--pes", "4", "-o", str(out)], "--pes", "no EIE options with a CNN graph")
    for value in ("2", "0"):
        fails(capsys, ["pack", npz, "--align-columns", value, "-o", str(out)], "--align-columns",
              "no EIE options with a CNN graph")
    fails(capsys, ["pack", npz, "--shift", "0", "-o", str(out)], "--shift", "no EIE options with a CNN graph")
    fails(capsys, ["pack", npz, "--lanes", "6", "-o", str(out)], "--lanes", "4, 8, 16 or 32", "6")
    fails(capsys, ["pack", npz, "--wbuf-words", "8", "-o", str(out)], "wbuf", "too many")
    fails(capsys, ["pack", npz, "--ibuf-bytes", "0", "-o", str(out)], "--ibuf-bytes", "positive")
    assert not out.exists()
    w = np.eye(4, dtype=np.int16)
    np.save(tmp_path / "w.npy", w)
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "-o", str(out)], "--pes", "PE count for an EIE pack")
    fails(capsys, ["pack", str(tmp_path / "w.npy"), "--pes", "2", "--lanes", "4", "-o", str(out)],
          "--lanes", "CNN options only")
    assert not out.exists()


@pytest.mark.parametrize("change, field", [
    (lambda sp: sp["layers"][0].update(stride=0), "stride: expected an integer >= 1, found 0"),
    (lambda sp: sp["layers"][0].update(padding="1"), "padding: expected an integer >= 0, found '1'"),
    (lambda sp: sp.update(layers=[1, 2]), "layers: expected a list of layer objects"),
    (lambda sp: sp.update(input=3), "input: expected an object"),
])
def test_pack_refuses_malformed_graph_fields_in_one_line(tmp_path, capsys, change, field):
    """Fields are checked before the shapes are worked out from them: no traceback."""
    graph, _ = random_graph(0)
    spec = json.loads(json.dumps(graph.spec))
    change(spec)
    np.savez(tmp_path / "bad.npz", graph=np.array(json.dumps(spec)), **graph.arrays)
    assert main(["pack", str(tmp_path / "bad.npz"), "-o", str(tmp_path / "pk")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "bad.npz" in err and field in err
    assert not (tmp_path / "pk").exists()


def test_pack_names_the_bad_buffer_option_and_unwritable_output(tmp_path, capsys):
    graph, _ = random_graph(0)
    save_graph(tmp_path / "g.npz", graph)
    assert main(["pack", str(tmp_path / "g.npz"), "-o", str(tmp_path / "pk"), "--obuf-depth", "12"]) == 2
    assert "--obuf-depth: expected a multiple of 8" in capsys.readouterr().err
    blocker = tmp_path / "file"
    blocker.write_text("")
    assert main(["pack", str(tmp_path / "g.npz"), "-o", str(blocker / "pk")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(blocker) in err
