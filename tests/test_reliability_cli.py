"""Issue 26, "tracebacks and silent nonsense": every item is a named test here.

The contract for a user error: exit 2, one line on stderr naming the file or option, the
field, the limit and what was found; nothing written. A degenerate but valid request: exit
0 with one ``warning:`` line on stderr.
"""

import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from cnn_cases import random_graph
from test_pack import compressed_arrays

from sparsa.cli import main
from sparsa.sw.model.graph import save_graph


def fails(capsys, argv, *needles, out=None):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, err
    if out is not None:
        assert not Path(out).exists()
    return err


def warns(capsys, argv, *needles):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 0, err
    lines = [l for l in err.splitlines() if "warning" in l]
    assert len(lines) == 1, err
    for n in needles:
        assert n in lines[0], err
    return lines[0]


@pytest.fixture
def eie_pack(tmp_path):
    print("seed", 6)
    np.savez(tmp_path / "m.npz", **compressed_arrays(np.random.default_rng(6), [12, 20, 7]))
    assert main(["pack", str(tmp_path / "m.npz"), "--pes", "3", "-o", str(tmp_path / "pk")]) == 0
    return tmp_path / "pk"


@pytest.fixture
def cnn_pack(tmp_path):
    print("seed", 3)
    graph, x = random_graph(3)
    save_graph(tmp_path / "cnn.npz", graph)
    assert main(["pack", str(tmp_path / "cnn.npz"), "-o", str(tmp_path / "cpk"), "--lanes", "4"]) == 0
    return tmp_path / "cpk", graph, x


@pytest.fixture
def float_mlp(tmp_path):
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "mlp.npz", **{"l0.weight": rng.standard_normal((32, 16)).astype(np.float32),
                                      "l0.bias": np.zeros(32, np.float32)})
    return tmp_path / "mlp.npz"


def _no_build(monkeypatch):
    """Make any simulator build fail loudly: an empty batch must not build anything."""
    import sparsa.sim.cnn.runner as cr
    import sparsa.sim.eie.runner as er

    def boom(*a, **k):
        raise AssertionError("built a simulator for an empty batch")
    monkeypatch.setattr(er, "build", boom)
    for name in ("build_cnn", "run_dram"):
        if hasattr(cr, name):
            monkeypatch.setattr(cr, name, boom)


#
# 1. Empty batch
#

@pytest.mark.parametrize("engine", ["golden", "verilator", "icarus"])
def test_empty_batch_eie_gives_empty_result_without_building(tmp_path, eie_pack, engine, monkeypatch, capsys):
    _no_build(monkeypatch)
    np.save(tmp_path / "x.npy", np.zeros((0, 12), np.int16))
    assert main(["run", str(eie_pack), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--engine", engine, "--report", str(tmp_path / "r.json")]) == 0
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (0, 7) and y.dtype == np.int16
    assert json.loads((tmp_path / "r.json").read_text())["batch"] == 0


@pytest.mark.parametrize("engine", ["golden", "verilator", "icarus"])
def test_empty_batch_cnn_gives_empty_result_without_building(tmp_path, cnn_pack, engine, monkeypatch, capsys):
    _no_build(monkeypatch)
    pk, graph, x = cnn_pack
    np.save(tmp_path / "x.npy", np.zeros((0,) + x.shape, np.int8))
    assert main(["run", str(pk), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--engine", engine, "--report", str(tmp_path / "r.json")]) == 0
    from sparsa.sw.cnn.golden import cnn_forward
    y1 = cnn_forward(graph, x)
    y = np.load(tmp_path / "y.npy")
    assert y.shape == (0,) + y1.shape and y.dtype == np.int8
    assert json.loads((tmp_path / "r.json").read_text())["batch"] == 0


def test_empty_batch_runners_return_empty_without_building(eie_pack, cnn_pack, monkeypatch):
    _no_build(monkeypatch)
    from sparsa.sim.cnn.runner import run_program
    from sparsa.sim.eie.runner import run_memory_map
    from sparsa.sw.cnn.pack import load_cnn_pack
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.eie.pack_dir import load_pack
    mm = build_memory_map(load_pack(eie_pack))
    res = run_memory_map(mm, np.zeros((0, 12), np.int16))
    assert res["y"].shape[0] == 0 and res["cycles"].shape == (0,) and res["batch"] == 0
    prog, _, _ = load_cnn_pack(cnn_pack[0])
    res = run_program(prog, np.zeros((0,) + tuple(prog.input_shape), np.int8))
    assert res["y"].shape[0] == 0 and len(res["cycles"]) == 0


#
# 2. --pes bounds
#

def test_pack_pes_above_hardware_limit_refused(tmp_path, eie_pack, capsys):
    np.save(tmp_path / "w.npy", np.eye(32, 16, dtype=np.int16))
    fails(capsys, ["pack", tmp_path / "w.npy", "--pes", "100000", "-o", tmp_path / "big"],
          "--pes", "1..1024", "100000", out=tmp_path / "big")


def test_pack_more_pes_than_rows_warns(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.eye(32, 16, dtype=np.int16))
    warns(capsys, ["pack", tmp_path / "w.npy", "--pes", "40", "-o", tmp_path / "pk"], "40", "32")
    assert (tmp_path / "pk/manifest.json").is_file()


def test_compress_balance_pes_above_hardware_limit_refused(tmp_path, float_mlp, capsys):
    fails(capsys, ["compress", float_mlp, "--density", "0.3", "--bits", "4", "--balance-pes", "5000",
                   "-o", tmp_path / "c.npz"], "--balance-pes", "1..1024", "5000", out=tmp_path / "c.npz")


def test_verilog_pes_above_hardware_limit_refused(tmp_path, capsys):
    fails(capsys, ["verilog", "--pes", "2000", "-o", tmp_path / "v.v"], "--pes", "1..1024", "2000",
          out=tmp_path / "v.v")


#
# 3. demo
#

def test_demo_negative_seed_refused(tmp_path, capsys):
    fails(capsys, ["demo", "--seed", "-1", "-o", tmp_path / "d"], "--seed", "-1", out=tmp_path / "d")


def test_demo_pes_above_hardware_limit_refused_before_any_work(tmp_path, capsys, monkeypatch):
    import sparsa.demo.mlp as mlp

    def boom(*a, **k):
        raise AssertionError("the demo started working")
    monkeypatch.setattr(mlp, "load_data", boom)
    fails(capsys, ["demo", "--pes", "100000", "-o", tmp_path / "d"], "--pes", "1..1024", out=tmp_path / "d")


#
# 4. YoWASP tools next to the interpreter; bit maps without a config
#

def test_yowasp_tools_found_next_to_the_interpreter(monkeypatch, tmp_path):
    from sparsa.boards.tools import tool
    monkeypatch.setenv("PATH", str(tmp_path))          # not the venv
    found = tool("yowasp-iceunpack")
    assert Path(found).parent == Path(sys.executable).parent and os.access(found, os.X_OK)


def test_iceunpack_runs_without_venv_on_path(monkeypatch):
    from sparsa.boards.bram_tiles import iceunpack
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    with pytest.raises(RuntimeError, match="yowasp-iceunpack failed"):   # ran, and rejected the junk
        iceunpack(b"not a bitstream")


def test_missing_yowasp_tool_is_one_line(monkeypatch, tmp_path):
    from sparsa.boards.tools import tool
    from sparsa.sw.errors import UserError
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(UserError, match="yowasp-nonexistent.*PATH"):
        tool("yowasp-nonexistent")


def test_swap_weights_map_without_config_is_one_line(tmp_path, eie_pack, capsys):
    from sparsa.boards.swap import MAP_FORMAT, MAP_NAME
    (tmp_path / "top.bin").write_bytes(b"\0" * 64)
    (tmp_path / MAP_NAME).write_text(json.dumps({"format": MAP_FORMAT, "family": "ice40", "memories": {},
                                                 "tiles": [], "design_sha256": "0"}))
    fails(capsys, ["swap-weights", tmp_path / "top.bin", eie_pack, "-o", tmp_path / "new.bin"],
          MAP_NAME, "config", out=tmp_path / "new.bin")


#
# 5. verilog options
#

@pytest.mark.parametrize("name", ["bad name;", "1abc", "", "a-b", "module"])
def test_verilog_name_must_be_a_verilog_identifier(tmp_path, name, capsys):
    fails(capsys, ["verilog", "--pes", "2", "--name", name, "-o", tmp_path / "v.v"], "--name",
          "identifier", out=tmp_path / "v.v")


def test_verilog_pointer_memory_too_small_for_cols(tmp_path, capsys):
    fails(capsys, ["verilog", "--pes", "2", "--ptr-words", "1", "--max-cols", "16", "-o", tmp_path / "v.v"],
          "--ptr-words", "9", "by 8", out=tmp_path / "v.v")


def test_verilog_sizes_with_a_pack_refused(tmp_path, eie_pack, capsys):
    fails(capsys, ["verilog", eie_pack, "--pes", "3", "-o", tmp_path / "v.v"], "--pes", "pack",
          out=tmp_path / "v.v")
    fails(capsys, ["verilog", eie_pack, "--max-cols", "64", "-o", tmp_path / "v.v"], "--max-cols",
          out=tmp_path / "v.v")


def test_verilog_huge_spm_words_names_the_limit(tmp_path, capsys):
    err = fails(capsys, ["verilog", "--pes", "2", "--spm-words", "1000000000", "-o", tmp_path / "v.v"],
                "--spm-words", "1000000000", out=tmp_path / "v.v")
    assert "33..32" not in err


#
# 6. report --bench
#

def test_report_bench_must_be_a_bench_eie_result(tmp_path, eie_pack, capsys):
    (tmp_path / "b.json").write_text('{"a": 1}')
    fails(capsys, ["report", eie_pack, "--bench", tmp_path / "b.json", "-o", tmp_path / "r.html"],
          "b.json", "sparsa bench eie", out=tmp_path / "r.html")
    (tmp_path / "b.json").write_text('[1, 2]')
    fails(capsys, ["report", eie_pack, "--bench", tmp_path / "b.json", "-o", tmp_path / "r.html"],
          "b.json", out=tmp_path / "r.html")
    (tmp_path / "b.json").write_text(json.dumps({"format": "sparsa-bench-eie", "version": 1, "layers": [{}],
                                                 "sweeps": {"pes": [{"pes": "x"}]}, "summary": {}}))
    fails(capsys, ["report", eie_pack, "--bench", tmp_path / "b.json", "-o", tmp_path / "r.html"],
          "b.json", out=tmp_path / "r.html")


#
# 7. Degenerate requests warn
#

def test_compress_all_zero_model_warns(tmp_path, float_mlp, capsys):
    warns(capsys, ["compress", float_mlp, "--density", "1e-9", "--bits", "4", "-o", tmp_path / "c.npz"],
          "no weights")


def test_compress_balance_pes_above_rows_warns(tmp_path, float_mlp, capsys):
    warns(capsys, ["compress", float_mlp, "--density", "0.3", "--bits", "4", "--balance-pes", "100",
                   "-o", tmp_path / "c.npz"], "--balance-pes", "100", "32")


def test_compress_huge_calibration_data_warns(tmp_path, float_mlp, capsys):
    np.save(tmp_path / "calib.npy", np.full((4, 16), 1e30))
    warns(capsys, ["compress", float_mlp, "--density", "0.3", "--bits", "4", "--calib", tmp_path / "calib.npy",
                   "-o", tmp_path / "c.npz"], "calib")


#
# 8. Messages
#

@pytest.mark.parametrize("cmd", ["verilog", "run", "unpack"])
def test_directory_as_output_file_names_the_users_path(tmp_path, eie_pack, cmd, capsys):
    d = tmp_path / "d.out"
    d.mkdir()
    np.save(tmp_path / "x.npy", np.zeros((1, 12), np.int16))
    argv = {"verilog": ["verilog", "--pes", "2", "-o", d],
            "run": ["run", eie_pack, "-i", tmp_path / "x.npy", "-o", d],
            "unpack": ["unpack", eie_pack, "-o", d]}[cmd]
    err = fails(capsys, argv, str(d), "directory")
    assert ".tmp" not in err and "~" not in err.replace(str(d), "")
    assert list(d.iterdir()) == []


def test_pack_missing_file_says_missing_not_pes(tmp_path, capsys):
    err = fails(capsys, ["pack", tmp_path / "missing.npz", "-o", tmp_path / "pk"], "missing.npz",
                out=tmp_path / "pk")
    assert "--pes" not in err and "not found" in err


def test_pack_json_file_is_reported_as_json(tmp_path, capsys):
    for name in ("a.npy", "a.npz", "a.json"):
        (tmp_path / name).write_text('{"layers": []}')
        err = fails(capsys, ["pack", tmp_path / name, "--pes", "2", "-o", tmp_path / "pk"], name, "JSON",
                    out=tmp_path / "pk")
        assert "pickle" not in err


def test_pointer_bits_range_text_is_not_nonsense():
    from sparsa.sw.eie.config import EIEConfig
    from sparsa.sw.errors import UserError
    with pytest.raises(UserError) as e:
        EIEConfig.from_args(2, spm_words=1 << 30)
    assert "33..32" not in str(e.value) and "spm_words" in str(e.value)


#
# 9. Absurd sizes
#

@pytest.mark.parametrize("shape", ["1,99999999999999999999,8", "100000,100000,100000", "1,70000,1"])
def test_import_absurd_input_shape_refused(tmp_path, float_mlp, shape, capsys):
    fails(capsys, ["import", float_mlp, "--input-shape", shape, "-o", tmp_path / "i.npz"],
          "--input-shape", out=tmp_path / "i.npz")
