"""sparsa swap-weights: another pack's weights in a finished bitstream, no re-synthesis.

One real icebreaker build (--swappable, ~70 s) of a 1-PE pack A; pack B (other weights,
codebook, biases, shift, ReLU) is swapped in. The proof that it works: the block RAM contents
read back out of the swapped bitstream equal B's memory images exactly, and the board harness
(boot ROM replay + generated array) simulated under Icarus with those contents gives B's
golden outputs.

ECP5 (ulx3s-85f): one real swappable build of the same 1-PE pack (~95 s; each swap goes
through ecpunpack and ecppack, ~15 s), marked slow: the same checks on the Trellis text
configuration's ``.bram_init`` blocks.
"""

import os
import subprocess

import numpy as np
import pytest

from sparsa.boards import swap
from sparsa.cli import main
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.eie.pack_dir import load_pack

SEED = 1234


def _pack(tmp, name, rng, shape, density, values, pes=1, extra=()):
    w = ((rng.random(shape) < density) * rng.choice(values, shape)).astype(np.int16)
    np.save(tmp / f"{name}.npy", w)
    np.save(tmp / f"{name}_b.npy", rng.integers(-60, 60, shape[0]).astype(np.int32))
    assert main(["pack", str(tmp / f"{name}.npy"), "--pes", str(pes), "--bias", str(tmp / f"{name}_b.npy"),
                 "-o", str(tmp / name), *extra]) == 0


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("swap")
    rng = np.random.default_rng(SEED)
    print(f"seed={SEED}")
    _pack(tmp, "pa", rng, (16, 12), 0.3, [-9, -3, 2, 5, 11], extra=["--shift", "2"])
    _pack(tmp, "pb", rng, (16, 12), 0.25, [-7, -1, 4, 6, 13, 21], extra=["--shift", "3", "--relu"])
    _pack(tmp, "dense", rng, (16, 12), 1.0, [-5, 3, 7])          # 192 entries: more than 16 words
    _pack(tmp, "two_pes", rng, (16, 12), 0.3, [-9, 2], pes=2)
    _pack(tmp, "wide", rng, (16, 20), 0.1, [-9, 2])              # 20 inputs: longer vectors than built
    # YoWASP tools cannot open absolute /tmp paths: work relative to tmp.
    cwd = os.getcwd()
    os.chdir(tmp)
    assert main(["build", "pa", "--board", "icebreaker", "--swappable", "--spm-words", "16", "-o", "ice"]) == 0
    yield tmp
    os.chdir(cwd)


def _images(pack_dir, cfg):
    return swap.memory_images(build_memory_map(load_pack(pack_dir)), cfg)


def _same(a, b):
    return a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)


@pytest.mark.xdist_group("boards_ice40")
def test_swap_writes_new_images_and_round_trips_byte_for_byte(built, capsys):
    rep_map = (built / "ice" / swap.MAP_NAME)
    assert rep_map.is_file()
    assert main(["swap-weights", "ice/top.bin", "pb", "-o", "b.bin"]) == 0
    assert "wrote b.bin" in capsys.readouterr().out
    top, new = (built / "ice" / "top.bin").read_bytes(), (built / "b.bin").read_bytes()
    assert new != top and len(new) == len(top) == 104090
    # The block RAMs of each bitstream hold exactly its pack's images (all PE memories + boot ROM).
    img_a, cfg = swap.read_back_ice40("ice/top.bin")
    img_b, _ = swap.read_back_ice40("b.bin", "ice/" + swap.MAP_NAME)
    assert _same(img_a, _images("pa", cfg)) and _same(img_b, _images("pb", cfg))
    assert not _same(img_a, img_b)
    # Swapping the original back reproduces the original bitstream; so does the build.sh recipe.
    assert main(["swap-weights", "b.bin", "pa", "--map", "ice/bram_map.json", "-o", "a_again.bin"]) == 0
    assert (built / "a_again.bin").read_bytes() == top
    assert main(["swap-weights", "ice/placeholder.bin", "pa", "--map", "ice/bram_map.json", "-o", "a_ph.bin"]) == 0
    assert (built / "a_ph.bin").read_bytes() == top
    assert "swap-weights placeholder.bin" in (built / "ice" / "build.sh").read_text()


def _simulate_board(images, cfg, x, work):
    """The swappable board harness (boot ROM replay, then x over the serial pin) under Icarus."""
    from sparsa.boards.openflow import boot_board_top_verilog
    from sparsa.hw.eie.verilog import generate_verilog
    from sparsa.sim.cocotb_job import icarus_fixup
    from sparsa.sim.eie.runner import primitive_models
    work.mkdir(parents=True, exist_ok=True)
    # The same generator path as the build, with the read-back images as memory contents.
    core = generate_verilog(cfg, swap.placeholder_memory_map(cfg, images), name="eie_top")
    (work / "eie_top.v").write_text(icarus_fixup(swap.mark_block_ram(core)))
    (work / "board_top.v").write_text(boot_board_top_verilog(cfg.pes, images["boot"]))
    bits = []
    for j, v in enumerate(np.asarray(x, dtype=np.int64)):
        frame = [(int(v) >> (15 - b)) & 1 for b in range(16)] + [0] * 16   # one word per 32-cycle frame
        if j == len(x) - 1:
            frame[30] = 1            # shifted into sh[0] when bit_cnt == 31: start
        bits += frame
    tb = f"""
module tb;
  reg clk = 0, rx = 0;
  wire tx, led;
  board_top dut(.clk(clk), .rx(rx), .tx(tx), .led(led));
  reg [{len(bits) - 1}:0] rxbits = {len(bits)}'b{"".join(map(str, bits))[::-1]};
  integer i;
  always #5 clk = ~clk;
  always @(posedge clk) if (dut.y_valid) $display("Y %0d", $signed(dut.y_payload));
  initial begin
    // The harness takes a word every frame: hold that off until the data starts so that
    // x_0 lands at position 0.
    force dut.word_valid = 1'b0;
    wait (!dut.booting && !dut.boot_v);
    @(negedge clk); while (dut.bit_cnt != 0) @(negedge clk);
    release dut.word_valid;
    for (i = 0; i < {len(bits)}; i = i + 1) begin rx = rxbits[i]; @(negedge clk); end
    rx = 0;
    wait (dut.done);
    repeat ({4 * cfg.max_rows_pe * cfg.pes + 16}) @(posedge clk);
    $display("NLAYERS %0d", dut.n_layers);
    $finish;
  end
  initial begin #2000000; $display("TIMEOUT"); $finish; end
endmodule
"""
    (work / "tb.v").write_text(tb)
    models = [str(p) for p in primitive_models(core)]      # MULT18X18D on ECP5 builds
    subprocess.run(["iverilog", "-g2012", "-o", "sim.vvp", "tb.v", "board_top.v", "eie_top.v", *models], cwd=work,
                   check=True, capture_output=True)
    out = subprocess.run(["vvp", "-n", "sim.vvp"], cwd=work, check=True, capture_output=True, text=True).stdout
    assert "TIMEOUT" not in out, out[-2000:]
    return np.array([int(l.split()[1]) for l in out.splitlines() if l.startswith("Y ")]), out


@pytest.mark.xdist_group("boards_ice40")
def test_swapped_bitstream_contents_run_the_new_model(built):
    from sparsa.sim.eie.runner import run_memory_map
    if not (built / "b.bin").exists():
        assert main(["swap-weights", "ice/top.bin", "pb", "-o", "b.bin"]) == 0
    img, cfg = swap.read_back_ice40("b.bin", "ice/" + swap.MAP_NAME)
    rng = np.random.default_rng(SEED + 1)
    x = rng.integers(-300, 300, (3, 12)).astype(np.int16)
    golden_b, golden_a = load_pack("pb").run_golden(x), load_pack("pa").run_golden(x)
    assert not np.array_equal(golden_a, golden_b)
    # The board harness as built: the boot ROM replays layer table and codebooks, then one run.
    y, out = _simulate_board(img, cfg, x[0], built / "board_sim")
    np.testing.assert_array_equal(y, golden_b[0])
    assert "NLAYERS 1" in out
    # The EIE runner on the array with the read-back contents (no load port): a batch.
    res = run_memory_map(swap.images_to_memory_map(img, cfg), x, engine="icarus", cfg=cfg, init=True)
    np.testing.assert_array_equal(res["y"], golden_b)


@pytest.mark.xdist_group("boards_ice40")
@pytest.mark.parametrize("pack,field", [("dense", "sparse-matrix words per PE"), ("two_pes", "pes"),
                                        ("wide", "vector length")])
def test_pack_that_does_not_fit_is_refused_and_nothing_written(built, pack, field, capsys):
    assert main(["swap-weights", "ice/top.bin", pack, "-o", f"{pack}.bin"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"{pack}: {field}" in err and "expected" in err and "found" in err
    assert "(as built)" in err and (field == "pes" or "too large by" in err)   # says by how much
    assert not (built / f"{pack}.bin").exists()
    assert not [p for p in os.listdir(built) if p.endswith(".tmp")]


@pytest.mark.xdist_group("boards_ice40")
def test_not_a_bitstream_of_this_build_is_refused(built, capsys):
    (built / "junk.bin").write_bytes(b"\x00" * 100)
    assert main(["swap-weights", "junk.bin", "pb", "--map", "ice/bram_map.json", "-o", "j.bin"]) == 2
    assert main(["swap-weights", "pa/manifest.json", "pb", "-o", "j.bin"]) == 2   # no bram_map.json there
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "junk.bin: bitstream" in err[0] and "bram_map.json" in err[1]
    assert not (built / "j.bin").exists()


def test_images_round_trip_through_memory_map_and_asc_tiles():
    """No build: boot ROM and memory images of a 2-layer pack invert; an .asc tile reads back."""
    from sparsa.sw.eie.config import EIEConfig
    from eie_cases import random_pack
    rng = np.random.default_rng(SEED)
    pk = random_pack([(10, 8), (6, 10)], 2, 0.5, rng)
    mm = build_memory_map(pk)
    cfg = EIEConfig.for_pack(mm).replace(max_layers=3, spm_words=32, pointer_bits=16)
    img = swap.memory_images(mm, cfg)
    assert img["boot"].size == 3 * swap.BOOT_FIELDS + 1 and img["boot"][-1] == 2
    back = swap.images_to_memory_map(img, cfg)
    assert [l.field_values() for l in back.layers] == [l.field_values() for l in mm.layers]
    assert all(np.array_equal(a.codebook, b.codebook) for a, b in zip(back.layers, mm.layers))
    assert _same(swap.memory_images(back, cfg), img)
    asc = swap.AscRam(".comment x\n.ramb_tile 6 1\n")
    bits = rng.integers(0, 2, 4096).astype(np.uint8)
    asc.write((6, 1), bits)
    again = swap.AscRam(asc.text())
    assert np.array_equal(again.read((6, 1)), bits) and again.text() == asc.text()


def test_ecp5_bram_init_tiles_read_write_and_port_layouts():
    """No build: a ``.bram_init`` block reads back what was written, in Trellis's own text layout;
    a 36-bit port's word A bit j is tile bit 36 A + j, a 4-bit port skips every ninth bit."""
    rng = np.random.default_rng(SEED)
    ram = swap.EcpRam(".device LFE5U-85F\n\n.tile_group R1C1:X\n")
    bits = rng.integers(0, 2, 18432).astype(np.uint8)
    ram.write(5, bits)
    text = ram.text()
    assert text.startswith(".device LFE5U-85F\n\n.bram_init 5\n") and text.endswith(".tile_group R1C1:X\n")
    block = text.split(".bram_init 5\n")[1].split(".tile_group")[0].splitlines()
    assert len(block) == 257 and block[-1] == "" and len(block[0].split()) == 8 and len(block[0]) == 31
    again = swap.EcpRam(text)
    assert np.array_equal(again.read(5), bits) and not again.read(6).any()
    again.write(5, bits)
    assert again.text() == text
    words = np.array([int(v, 16) for v in " ".join(block).split()])
    assert np.array_equal(words, (bits.reshape(2048, 9) << np.arange(9)).sum(axis=1))
    assert swap.EcpRam.index(36)[3, 7] == 3 * 36 + 7 and swap.EcpRam.index(18).shape == (1024, 18)
    i4 = swap.EcpRam.index(4)
    assert i4.shape == (4096, 4) and i4[2, 1] == 9 + 1 and not (i4 % 9 == 8).any()


@pytest.fixture(scope="module")
def built_ecp5(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("swap_ecp5")
    rng = np.random.default_rng(SEED)
    _pack(tmp, "pa", rng, (16, 12), 0.3, [-9, -3, 2, 5, 11], extra=["--shift", "2"])
    _pack(tmp, "pb", rng, (16, 12), 0.25, [-7, -1, 4, 6, 13, 21], extra=["--shift", "3", "--relu"])
    _pack(tmp, "dense", rng, (16, 12), 1.0, [-5, 3, 7])
    cwd = os.getcwd()
    os.chdir(tmp)          # YoWASP tools: relative paths
    try:
        assert main(["build", "pa", "--board", "ulx3s-85f", "--swappable", "--spm-words", "16", "-o", "ecp"]) == 0
    finally:
        os.chdir(cwd)
    return tmp


@pytest.mark.slow
@pytest.mark.xdist_group("boards_ecp5")
def test_ecp5_swap_writes_new_images_runs_new_model_and_round_trips(built_ecp5, monkeypatch, capsys):
    monkeypatch.chdir(built_ecp5)
    m = swap.load_map("ecp/" + swap.MAP_NAME, "ecp/top.bit")
    assert m["family"] == "ecp5" and m["board"] == "ulx3s-85f"
    assert {s["w"] for v in m["memories"].values() for s in v["slices"]} <= set(swap.EcpRam.WIDTHS)
    assert main(["swap-weights", "ecp/top.bit", "pb", "-o", "b.bit"]) == 0
    assert "wrote b.bit" in capsys.readouterr().out
    top, new = (built_ecp5 / "ecp" / "top.bit").read_bytes(), (built_ecp5 / "b.bit").read_bytes()
    assert new != top and len(new) == len(top)
    img_a, cfg = swap.read_back("ecp/top.bit")
    img_b, _ = swap.read_back("b.bit", "ecp/" + swap.MAP_NAME)
    assert _same(img_a, _images("pa", cfg)) and _same(img_b, _images("pb", cfg))
    # The harness with the contents read back out of the swapped ECP5 bitstream runs pack B.
    x = np.random.default_rng(SEED + 1).integers(-300, 300, (1, 12)).astype(np.int16)
    y, out = _simulate_board(img_b, cfg, x[0], built_ecp5 / "board_sim")
    np.testing.assert_array_equal(y, load_pack("pb").run_golden(x)[0])
    # Byte for byte back to the build's bitstream, from the swapped one and from the placeholder one.
    assert main(["swap-weights", "b.bit", "pa", "--map", "ecp/bram_map.json", "-o", "a_again.bit"]) == 0
    assert (built_ecp5 / "a_again.bit").read_bytes() == top
    assert main(["swap-weights", "ecp/placeholder.bit", "pa", "--map", "ecp/bram_map.json", "-o", "a_ph.bit"]) == 0
    assert (built_ecp5 / "a_ph.bit").read_bytes() == top
    assert "swap-weights placeholder.bit" in (built_ecp5 / "ecp" / "build.sh").read_text()


@pytest.mark.slow
@pytest.mark.xdist_group("boards_ecp5")
def test_ecp5_refusals(built_ecp5, monkeypatch, capsys):
    monkeypatch.chdir(built_ecp5)
    assert main(["swap-weights", "ecp/top.bit", "dense", "-o", "dense.bit"]) == 2
    (built_ecp5 / "junk.bit").write_bytes(b"\x00" * 100)
    assert main(["swap-weights", "junk.bit", "pb", "--map", "ecp/bram_map.json", "-o", "j.bit"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "dense: sparse-matrix words per PE" in err[0] and "junk.bit: bitstream" in err[1]
    assert "an ECP5 bitstream" in err[1]
    assert not (built_ecp5 / "dense.bit").exists() and not (built_ecp5 / "j.bit").exists()
    assert not [p for p in os.listdir(built_ecp5) if p.endswith(".tmp")]


@pytest.mark.xdist_group("boards_ice40")      # the module's iCE40 build (`built`) is made once
@pytest.mark.parametrize("out", ["ice/top.bin", "ice/bram_map.json", "pb/manifest.json", "pb/new.bin"])
def test_swap_output_over_an_input_is_refused(built, capsys, out):
    """Issue 26: the output is never the bitstream, the map or inside the pack being read."""
    before = {p: (built / p).read_bytes() for p in ("ice/top.bin", "ice/bram_map.json", "pb/manifest.json")}
    assert main(["swap-weights", "ice/top.bin", "pb", "-o", out]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "expected a path apart from the input" in err, err
    assert {p: (built / p).read_bytes() for p in before} == before and not (built / "pb/new.bin").exists()
