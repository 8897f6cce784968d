"""Issue 26, the fix must hold for the whole class: each test is a case an independent hostile
review found after the issue's own examples were fixed (outputs over inputs in `run` and
`verilog`, half-written outputs, output directories of `demo` and `bench`, inconsistent pack
images, deeply nested or endless JSON, unvalidated run reports and graph formats, long names,
modes and owners, and messages).
"""

import json
import os
import stat
from pathlib import Path

import numpy as np
import pytest
from test_pack import compressed_arrays

from sparsa.cli import main
from sparsa.sw.manifest import manifest_digest


def refused(capsys, argv, *needles):
    rc = main([str(a) for a in argv])
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in err, err
    return err


def tree(path):
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(Path(path).rglob("*")) if p.is_file()}


@pytest.fixture
def pack(tmp_path):
    print("seed", 26)
    np.savez(tmp_path / "m.npz", **compressed_arrays(np.random.default_rng(26), [12, 20, 7]))
    assert main(["pack", str(tmp_path / "m.npz"), "--pes", "2", "-o", str(tmp_path / "pk")]) == 0
    np.save(tmp_path / "x.npy", np.random.default_rng(26).integers(-50, 50, (2, 12)).astype(np.int16))
    return tmp_path / "pk"


def _edit(pack, change):
    path = pack / "manifest.json"
    man = json.loads(path.read_text())
    change(man)
    man["manifest_sha256"] = manifest_digest(man)
    path.write_text(json.dumps(man))


# -- outputs over inputs, in run and verilog -------------------------------------------------------

@pytest.mark.parametrize("case", ["o=x", "o=manifest", "report=manifest", "report=o", "report=x", "o=symlink-to-x",
                                  "o-inside-pack"])
def test_run_refuses_an_output_over_an_input_or_inside_the_pack(tmp_path, pack, capsys, case):
    x = tmp_path / "x.npy"
    (tmp_path / "xl.npy").symlink_to(x)
    o, report = {"o=x": (x, None), "o=manifest": (pack / "manifest.json", None),
                 "report=manifest": (tmp_path / "y.npy", pack / "manifest.json"),
                 "report=o": (tmp_path / "y.npy", tmp_path / "y.npy"), "report=x": (tmp_path / "y.npy", x),
                 "o=symlink-to-x": (tmp_path / "xl.npy", None), "o-inside-pack": (pack / "new.npy", None)}[case]
    before = tree(tmp_path)
    refused(capsys, ["run", pack, "-i", x, "-o", o] + (["--report", report] if report else []), "expected a path apart")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("target", ["manifest.json", "layer0/codebook.hex", "top.v"])
def test_verilog_refuses_an_output_inside_its_pack(tmp_path, pack, capsys, target):
    before = tree(pack)
    refused(capsys, ["verilog", pack, "-o", pack / target], "-o", "expected a path apart from the input PACK")
    assert tree(pack) == before


# -- nothing half-written when a later output is refused -----------------------------------------------

def test_a_refused_report_leaves_no_model_and_no_result(tmp_path, pack, capsys):
    (tmp_path / "adir").mkdir()
    np.save(tmp_path / "w.npy", np.random.default_rng(1).standard_normal((12, 10)).astype(np.float32))
    refused(capsys, ["compress", tmp_path / "w.npy", "--density", "0.3", "-o", tmp_path / "c.npz",
                     "--report", tmp_path / "adir"], "--report", "found a directory")
    assert not (tmp_path / "c.npz").exists()
    refused(capsys, ["run", pack, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--report", tmp_path / "adir"],
            "--report", "found a directory")
    assert not (tmp_path / "y.npy").exists()


def test_long_legal_output_names_work_and_too_long_ones_name_the_limit(tmp_path, pack, capsys):
    ok = tmp_path / ("y" * 250 + ".npy")                 # 254 bytes: legal, its temporary must be too
    assert main(["run", str(pack), "-i", str(tmp_path / "x.npy"), "-o", str(ok)]) == 0
    assert np.load(ok).shape == (2, 7)
    refused(capsys, ["run", pack, "-i", tmp_path / "x.npy", "-o", tmp_path / ("y" * 260 + ".npy")],
            "-o", "at most 255 bytes", "found 264")


def test_an_unwritable_place_is_reported_under_the_users_path(tmp_path, pack, capsys):
    err = refused(capsys, ["run", pack, "-i", tmp_path / "x.npy", "-o", "/proc/sparsa-test.npy"],
                  "/proc/sparsa-test.npy")
    assert ".tmp" not in err


# -- output directories of demo and bench ----------------------------------------------------------------

@pytest.mark.parametrize("argv", [["demo", "--quick", "--engine", "golden"], ["bench", "pack", "--quick"],
                                  ["explore", "--engine", "golden", "--layer", "32x16", "--pes", "2"]])
def test_demo_bench_and_explore_do_not_write_into_a_users_directory(tmp_path, capsys, argv):
    user = tmp_path / "mine"
    user.mkdir()
    (user / "report.html").write_text("my report")
    (user / "pack.json").write_text("{}")
    before = tree(user)
    refused(capsys, argv + ["-o", user], "-o", "refusing to write into it")
    assert tree(user) == before


@pytest.mark.parametrize("argv,opt,msg", [
    (["bench", "pack", "--queue-depth", "16"], "--queue-depth",
     "expected sparsa bench eie or sparsa bench ese, found sparsa bench pack"),
    (["bench", "ese", "--no-sweeps"], "--no-sweeps", "expected sparsa bench eie, found sparsa bench ese"),
    (["bench", "pack", "--no-sweeps"], "--no-sweeps", "expected sparsa bench eie, found sparsa bench pack"),
    (["bench", "eie", "--queue-depth", "0"], "--queue-depth", "expected 1..256, found 0"),
    (["bench", "ese", "--balance-rows"], "--balance-rows", "expected sparsa bench eie, found sparsa bench ese"),
    (["bench", "pack", "--align-columns", "2"], "--align-columns",
     "expected sparsa bench eie or sparsa bench ese, found sparsa bench pack"),
    (["bench", "eie", "--align-columns", "8"], "--align-columns", "0..7, found 8"),
])
def test_bench_eie_ese_options_are_refused_elsewhere_or_out_of_range(tmp_path, capsys, argv, opt, msg):
    refused(capsys, argv + ["-o", tmp_path / "b"], opt, msg)
    assert not (tmp_path / "b").exists()


def test_bench_writes_again_into_its_own_directory(tmp_path, capsys):
    out = tmp_path / "b"
    assert main(["bench", "pack", "--quick", "-o", str(out)]) == 0
    assert main(["bench", "pack", "--quick", "-o", str(out)]) == 0
    assert (out / "pack.json").is_file() and (out / ".sparsa-output.json").is_file()


# -- modes and owners ---------------------------------------------------------------------------------------

def test_a_replaced_pack_directory_keeps_its_mode(tmp_path, pack, capsys):
    os.chmod(pack, 0o700)
    old = os.umask(0o022)
    try:
        assert main(["pack", str(tmp_path / "m.npz"), "--pes", "2", "-o", str(pack)]) == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(os.stat(pack).st_mode) == 0o700


def test_a_replaced_file_keeps_its_owner_and_loses_setuid(tmp_path, pack, capsys):
    y = tmp_path / "y.npy"
    y.write_bytes(b"old")
    os.chmod(y, 0o4755)
    if os.geteuid() == 0:
        os.chown(y, 1234, 1234)
    assert main(["run", str(pack), "-i", str(tmp_path / "x.npy"), "-o", str(y)]) == 0
    st = os.stat(y)
    assert stat.S_IMODE(st.st_mode) == 0o755                 # the permission bits, not set-user-ID
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (1234, 1234)


# -- inconsistent images and endless or deep JSON ----------------------------------------------------------

# (`inspect` reads the manifest only, by design: it describes the pack without opening images.)
@pytest.mark.parametrize("cmd", [["run", "-i", "{x}", "-o", "{tmp}/y.npy"], ["unpack", "-o", "{tmp}/u.npz"],
                                 ["verilog", "-o", "{tmp}/v.v"]])
def test_zero_counts_past_the_pes_rows_are_refused_by_every_reader_of_images(tmp_path, pack, capsys, cmd):
    # PE 1's sparse-matrix image rewritten with every zero count at 15, its digest updated: the
    # counts of entries and pointers still agree, but the rows run past the layer's.
    from sparsa.sw import images
    from sparsa.sw.eie.format import ENTRIES_PER_WORD
    man = json.loads((pack / "manifest.json").read_text())
    stem = man["layers"][0]["pe_images"][1]["spm"]
    path = pack / f"{stem}.bin"
    words = images.parse_bin(path.read_bytes(), 64)
    entries = np.ascontiguousarray(words.astype("<u8")).view(np.uint8).copy()
    n = man["layers"][0]["entries_per_pe"][1]
    assert 0 < n <= len(words) * ENTRIES_PER_WORD
    entries[:n] |= 0xF0
    path.write_bytes(images.render_bin(entries.view("<u8"), 64))
    _edit(pack, lambda m: m["files"].update({f"{stem}.bin": __import__("hashlib").sha256(path.read_bytes()).hexdigest()}))
    argv = [cmd[0], pack] + [a.format(x=tmp_path / "x.npy", tmp=tmp_path) for a in cmd[1:]]
    refused(capsys, argv, "pe001.spm.bin", "sparse-matrix image of PE 1", "of the layer's 20 rows")
    assert not any((tmp_path / n).exists() for n in ("y.npy", "u.npz", "v.v"))


def test_deeply_nested_json_is_one_line_everywhere(tmp_path, pack, capsys):
    deep = "[" * 100000
    (pack / "manifest.json").write_text(deep)
    refused(capsys, ["inspect", pack], "manifest", "nested")
    (tmp_path / "deep.json").write_text(deep)
    np.savez(tmp_path / "g.npz", graph=np.array(deep))
    refused(capsys, ["compress", tmp_path / "g.npz", "-o", tmp_path / "q.npz"], "graph", "nested")


def test_a_manifest_that_is_a_device_or_a_directory_is_refused_without_reading_it(tmp_path, pack, capsys):
    (pack / "manifest.json").unlink()
    (pack / "manifest.json").symlink_to("/dev/zero")
    refused(capsys, ["inspect", pack], "manifest", "a regular JSON file", "a character device")
    (pack / "manifest.json").unlink()
    (pack / "manifest.json").mkdir()
    refused(capsys, ["inspect", pack], "manifest", "a regular JSON file", "a directory")


@pytest.mark.parametrize("doc,needle", [
    (1, "run report"), (None, "run report"), ("layers", "run report"), ({"layers": 5}, "layers"),
    ({"layers": [1]}, "layers"), ({"layers": [{"cycles": 1}], "pes": 2}, "pes/layers"),
    ({"layers": [{"cycles": 1, "per_pe": {}}] * 2, "pes": 2}, "per_pe.busy"),
    ({"layers": [{"cycles": "x", "per_pe": {}}] * 2, "pes": 2}, "layers[0].cycles"),
])
def test_report_run_must_be_a_hardware_run_report_of_the_pack(tmp_path, pack, capsys, doc, needle):
    (tmp_path / "r.json").write_text(json.dumps(doc))
    refused(capsys, ["report", pack, "--run", tmp_path / "r.json", "-o", tmp_path / "r.html"], "r.json", needle)
    assert not (tmp_path / "r.html").exists()


# -- CNN graphs and packs --------------------------------------------------------------------------------

def _cnn_graph(tmp_path, **quant):
    from cnn_cases import random_graph
    from sparsa.sw.model.graph import save_graph
    graph, x = random_graph(3)
    if quant:
        graph.spec["quant"] = quant
        np.savez(tmp_path / "g.npz", graph=np.array(json.dumps(graph.spec)), **graph.arrays)
    else:
        save_graph(tmp_path / "g.npz", graph)
    np.save(tmp_path / "xc.npy", x)
    return tmp_path / "g.npz"


@pytest.mark.parametrize("value", ["3", None, [3], -1000000, True])
def test_a_graphs_output_format_is_checked_when_it_is_read(tmp_path, capsys, value):
    g = _cnn_graph(tmp_path, input_frac=0, output_frac=value)
    refused(capsys, ["pack", g, "--lanes", "4", "-o", tmp_path / "pk"], "quant.output_frac", "-64..64")
    assert not (tmp_path / "pk").exists()


@pytest.mark.parametrize("change,needle", [
    (lambda m: m["config"].update(winograd="false"), "config.winograd: expected true or false, found 'false'"),
    (lambda m: m["config"].update(convolver=1), "config.convolver: expected true or false, found 1"),
    (lambda m: m["config"].update(axi_data_bits="64"), "config.axi_data_bits: expected 64, found '64'"),
    (lambda m: m["layers"].append(dict(m["layers"][-1])), "layers["),
    (lambda m: (m["layers"].insert(1, dict(m["layers"][0], name="copy")),
                [layer.update(index=k) for k, layer in enumerate(m["layers"])]), "layers[1].instr_start"),
])
def test_an_edited_cnn_manifest_config_or_layer_list_is_refused(tmp_path, capsys, change, needle):
    g = _cnn_graph(tmp_path)
    assert main(["pack", str(g), "--lanes", "4", "-o", str(tmp_path / "cpk")]) == 0
    _edit(tmp_path / "cpk", change)
    refused(capsys, ["inspect", tmp_path / "cpk"], needle)
    refused(capsys, ["verilog", tmp_path / "cpk", "-o", tmp_path / "v.v"], needle)


def test_cnn_calibration_out_of_range_names_the_calibration_file(tmp_path, capsys):
    from cnn_cases import Builder
    from sparsa.sw.model.graph import save_graph
    b = Builder(np.random.default_rng(2), (1, 6, 6))
    b.conv(2, 3, pad=1)
    spec = dict(b.spec, input={"shape": [1, 6, 6], "dtype": "float32"})
    spec["layers"] = [{k: v for k, v in spec["layers"][0].items() if k != "shift"}]
    from sparsa.sw.model.graph import Graph
    save_graph(tmp_path / "f.npz", Graph(spec, {k: (v / 64).astype(np.float32) for k, v in b.arrays.items()}))
    np.save(tmp_path / "cal.npy", np.full((4, 1, 6, 6), 1e30, np.float32))
    refused(capsys, ["compress", tmp_path / "f.npz", "--calib", tmp_path / "cal.npy", "-o", tmp_path / "q.npz"],
            "cal.npy", "activations of", "f.npz")


# -- messages ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("content,found", [(b'{"a": 1}', "a JSON file"), (b"\x00\x01\x02junk" * 8, "binary data"),
                                           (b"hello world\n", "a text file")])
def test_what_a_non_numpy_file_holds_is_said_in_words(tmp_path, capsys, content, found):
    (tmp_path / "j.npz").write_bytes(content)
    err = refused(capsys, ["import", tmp_path / "j.npz", "-o", tmp_path / "ij.npz"], "j.npz", found)
    assert "pickled" not in err
    err = refused(capsys, ["pack", tmp_path / "j.npz", "--pes", "2", "-o", tmp_path / "pk"], "j.npz")
    assert "pickled" not in err


def test_verilog_bias_memory_too_small_for_the_rows(tmp_path, capsys):
    refused(capsys, ["verilog", "--pes", "2", "--bias-words", "1", "-o", tmp_path / "v.v"],
            "--bias-words", "at least 64", "too small by 63")
    assert not (tmp_path / "v.v").exists()


@pytest.mark.parametrize("argv", [["pack", "--pes", "abc", "x.npz"], ["pack", "--pes", "1e3", "x.npz"],
                                  ["demo", "--seed", "abc"], ["import", "m.onnx", "--input-shape", "-1,8,8"],
                                  ["nope"], ["run", "pk"]])
def test_argument_errors_are_one_line_without_a_usage_block(capsys, argv):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err.strip()
    assert e.value.code == 2 and len(err.splitlines()) == 1 and "usage:" not in err, err
    assert ": error: " in err and "--help" in err


# -- a second review round ---------------------------------------------------------------------------------------

def test_an_output_under_a_file_is_refused_before_the_first_output_is_written(tmp_path, pack, capsys):
    (tmp_path / "ufile").write_text("a file, not a directory")
    (tmp_path / "y.npy").write_bytes(b"OLD")
    refused(capsys, ["run", pack, "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy", "--report",
                     tmp_path / "ufile" / "sub" / "r.json"], "--report", "expected a path under a directory")
    assert (tmp_path / "y.npy").read_bytes() == b"OLD"


def test_explore_refuses_an_output_inside_its_pack(tmp_path, pack, capsys):
    before = tree(pack)
    refused(capsys, ["explore", "--engine", "golden", "--pack", pack, "-o", pack / "ex"], "-o", "apart from the input")
    assert tree(pack) == before


def test_a_replaced_directory_keeps_its_owner(tmp_path, pack, capsys, monkeypatch):
    from types import SimpleNamespace
    from sparsa.sw import fileio
    # The mechanism, as any user can check it: the new tree is given to the old owner, every
    # entry of it (recorded, since only root may really give files away).
    calls = []
    with monkeypatch.context() as m:
        m.setattr(os, "lchown", lambda p, u, g: calls.append((Path(p), u, g)))
        fileio._give_tree(pack, SimpleNamespace(st_uid=1234, st_gid=4321))
    assert sorted(calls) == sorted((p, 1234, 4321) for p in [pack, *pack.rglob("*")])
    if os.geteuid() == 0:           # end to end (CI and this machine run as root)
        for p in [pack, *pack.rglob("*")]:
            os.lchown(p, 1234, 1234)
        assert main(["pack", str(tmp_path / "m.npz"), "--pes", "2", "-o", str(pack)]) == 0
        assert {(p.stat().st_uid, p.stat().st_gid) for p in [pack, *pack.rglob("*")]} == {(1234, 1234)}


@pytest.mark.parametrize("doc_change,needle", [
    (lambda r: r.update(pes=2.0), "pes/layers"),
    (lambda r: r.update(cycles=10 ** 400), "cycles"),
    (lambda r: r["layers"][0].update(nonzero_activations="abc"), "layers[0].nonzero_activations"),
    (lambda r: r["layers"][0]["per_pe"].update(busy=[10 ** 400, 1]), "layers[0].per_pe.busy"),
])
def test_report_run_numbers_must_be_numbers_a_report_can_use(tmp_path, pack, capsys, doc_change, needle):
    layer = {"cycles": 10, "per_pe": {k: [1, 2] for k in ("busy", "starved", "stalled", "pad")}}
    doc = {"pes": 2, "layers": [json.loads(json.dumps(layer)) for _ in range(2)]}
    doc_change(doc)
    (tmp_path / "r.json").write_text(json.dumps(doc))
    refused(capsys, ["report", pack, "--run", tmp_path / "r.json", "-o", tmp_path / "r.html"], needle)


def test_a_npy_file_named_npz_is_said_to_be_one(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.zeros((3, 4), np.float32))
    os.rename(tmp_path / "w.npy", tmp_path / "w.npz")
    for argv in (["import", tmp_path / "w.npz", "-o", tmp_path / "i.npz"], ["pack", tmp_path / "w.npz", "--pes", "2",
                 "-o", tmp_path / "p"], ["compress", tmp_path / "w.npz", "--density", "0.5", "-o", tmp_path / "c.npz"]):
        refused(capsys, argv, "w.npz", "a single .npy array")


def test_a_numpy_header_that_claims_more_data_than_the_file_holds_is_refused(tmp_path, pack, capsys):
    with open(tmp_path / "lie.npy", "wb") as f:
        np.lib.format.write_array_header_1_0(f, {"descr": "<i2", "fortran_order": False, "shape": (10 ** 6, 10 ** 6)})
        f.write(b"\0" * 64)
    refused(capsys, ["run", pack, "-i", tmp_path / "lie.npy", "-o", tmp_path / "y.npy"], "lie.npy",
            "(1000000, 1000000)", "the header lies")
    import zipfile
    with zipfile.ZipFile(tmp_path / "lie.npz", "w") as z:
        z.write(tmp_path / "lie.npy", "layer0.weight.npy")
    refused(capsys, ["compress", tmp_path / "lie.npz", "--density", "0.5", "-o", tmp_path / "c.npz"], "lie.npz",
            "'layer0.weight'", "the header lies")


def test_unpack_refuses_a_layer_too_large_to_write_dense(tmp_path, pack, capsys):
    _edit(pack, lambda m: None)       # a valid pack; then the limit lowered to below its layers
    from sparsa.cli import unpack
    old, unpack.UNPACK_MAX_WEIGHTS = unpack.UNPACK_MAX_WEIGHTS, 100
    try:
        refused(capsys, ["unpack", pack, "-o", tmp_path / "u.npz"], "layers[0] rows x cols", "at most 100")
    finally:
        unpack.UNPACK_MAX_WEIGHTS = old
    assert not (tmp_path / "u.npz").exists()


@pytest.mark.parametrize("opt,value", [("--ptr-words", "1000000000"), ("--spm-words", "536870911"),
                                       ("--bias-words", "1000000000"), ("--max-cols", "8000000")])
def test_verilog_memory_sizes_beyond_any_fpga_are_refused(tmp_path, capsys, opt, value):
    refused(capsys, ["verilog", "--pes", "2", opt, value, "-o", tmp_path / "v.v"], opt, "at most")
    assert not (tmp_path / "v.v").exists()


def test_a_cnn_manifest_that_disagrees_with_its_model_is_refused(tmp_path, capsys):
    g = _cnn_graph(tmp_path)
    assert main(["pack", str(g), "--lanes", "4", "-o", str(tmp_path / "cpk")]) == 0
    shape = json.loads((tmp_path / "cpk" / "manifest.json").read_text())["input"]["shape"]
    _edit(tmp_path / "cpk", lambda m: m["input"].update(shape=[shape[0], shape[1], shape[2] + 1]))
    refused(capsys, ["run", tmp_path / "cpk", "-i", tmp_path / "xc.npy", "-o", tmp_path / "y.npy"],
            "input.shape", "model.npz's input")
    _edit(tmp_path / "cpk", lambda m: (m["input"].update(shape=shape), m.update(datapath="winograd"),
                                       m["config"].update(winograd=False)))
    refused(capsys, ["inspect", tmp_path / "cpk"], "datapath", "without Winograd")


def test_no_command_is_one_line(capsys):
    assert main([]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "give a command" in err
