"""Pack manifests are untrusted input: every edit a user or a bad disk can make is refused in
one line by every command that reads a pack, even with the manifest's digest recomputed."""

import json

import numpy as np
import pytest
from cnn_cases import random_graph
from test_pack import compressed_arrays

from sparsa.cli import main
from sparsa.sw.cnn.compiler import compile_graph
from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.pack import write_cnn_pack
from sparsa.sw.manifest import manifest_digest

READERS = [("inspect",), ("unpack", "-o", "{tmp}/u.npz"), ("run", "-i", "{tmp}/x.npy", "-o", "{tmp}/y.npy",
           "--engine", "golden"), ("verilog", "-o", "{tmp}/top.v")]


@pytest.fixture
def pack(tmp_path):
    print("seed", 21)
    np.savez(tmp_path / "m.npz", **compressed_arrays(np.random.default_rng(21), [12, 20, 7]))
    assert main(["pack", str(tmp_path / "m.npz"), "--pes", "2", "-o", str(tmp_path / "pk")]) == 0
    np.save(tmp_path / "x.npy", np.zeros((2, 12), np.int16))
    return tmp_path / "pk"


def edit(pack, change, *, rehash=True):
    """Apply ``change(manifest)`` and (by default) recompute the digest so the edit gets past it."""
    path = pack / "manifest.json"
    man = json.loads(path.read_text())
    change(man)
    if rehash and "manifest_sha256" in man:
        man["manifest_sha256"] = manifest_digest(man)
    path.write_text(json.dumps(man))


def refused_by_every_reader(tmp_path, pack, capsys, *needles):
    for cmd in READERS:
        argv = [cmd[0], str(pack)] + [a.format(tmp=tmp_path) for a in cmd[1:]]
        rc = main(argv)
        err = capsys.readouterr().err.strip()
        assert rc == 2, (argv, err)
        assert len(err.splitlines()) == 1 and "Traceback" not in err, err
        assert "manifest.json" in err, err
        for n in needles:
            assert n in err, (argv, err)
    assert not (tmp_path / "u.npz").exists() and not (tmp_path / "y.npy").exists()


def set_(path, value):
    def change(man):
        *head, last = path
        node = man
        for k in head:
            node = node[k]
        node[last] = value
    return change


@pytest.mark.parametrize("path,value,needle", [
    (("pes",), 0, "pes: expected a value >= 1"),
    (("pes",), 100000, "pes: expected a value <= 1024"),
    (("pointer_bits",), 0, "pointer_bits"),
    (("layers", 0, "rows"), 10 ** 12, "layers[0].rows: expected a value <= "),
    (("layers", 0, "cols"), 10 ** 12, "layers[0].cols"),
    (("input", "frac_bits"), 10 ** 9, "input.frac_bits"),
    (("input", "frac_bits"), 1e9, "input.frac_bits: expected a JSON integer or null"),
    (("layers",), [], "layers: expected at least 1 item"),
    (("layers", 0, "relu"), "false", "layers[0].relu: expected a JSON boolean, found 'false'"),
    (("layers", 0, "cols"), "16", "layers[0].cols: expected a JSON integer, found '16'"),
    (("layers", 0, "rows"), 32.7, "layers[0].rows: expected a JSON integer"),
    (("layers", 0, "shift"), -3, "layers[0].shift: expected a value >= 0"),
    (("layers", 0, "entries_per_pe"), [3], "layers[0].entries_per_pe: expected 2 entries"),
    (("files",), {}, "files"),
])
def test_an_edited_field_is_refused_by_every_reader(tmp_path, pack, capsys, path, value, needle):
    edit(pack, set_(path, value))
    refused_by_every_reader(tmp_path, pack, capsys, needle)


def test_a_duplicated_layer_is_refused(tmp_path, pack, capsys):
    edit(pack, lambda m: m["layers"].append(m["layers"][-1]))
    refused_by_every_reader(tmp_path, pack, capsys, "layers[2].cols")


def test_the_manifest_digest_is_mandatory(tmp_path, pack, capsys):
    edit(pack, lambda m: m.pop("manifest_sha256"), rehash=False)
    refused_by_every_reader(tmp_path, pack, capsys, "manifest_sha256")


def test_an_edit_without_a_new_digest_is_refused(tmp_path, pack, capsys):
    edit(pack, set_(("layers", 0, "shift"), 3), rehash=False)
    refused_by_every_reader(tmp_path, pack, capsys, "manifest_sha256", "changed after packing")


@pytest.mark.parametrize("stem", ["../outside/pe0.spm", "/etc/passwd", "layer0/unlisted"])
def test_an_image_path_outside_the_pack_or_unlisted_is_refused(tmp_path, pack, capsys, stem):
    (tmp_path / "outside").mkdir()
    edit(pack, set_(("layers", 0, "pe_images", 0, "spm"), stem))
    refused_by_every_reader(tmp_path, pack, capsys, "layers[0].pe_images[0].spm")


def test_a_codebook_image_must_be_listed(tmp_path, pack, capsys):
    def change(man):
        man["files"].pop(man["layers"][0]["codebook_image"] + ".bin")
    edit(pack, change)
    refused_by_every_reader(tmp_path, pack, capsys, "layers[0].codebook_image", "not listed")


@pytest.fixture
def cnn_pack(tmp_path):
    print("seed", 3)
    graph, _ = random_graph(3)[:2]
    write_cnn_pack(compile_graph(graph, CNNConfig(lanes=4, convolver=False)), tmp_path / "cpk")
    return tmp_path / "cpk"


@pytest.mark.parametrize("path,value,needle", [
    (("config", "lanes"), "8", "lanes"),
    (("dram_size",), 10 ** 12, "dram_size: expected a value <= "),
    (("input", "addr"), 1 << 31, "input.addr"),
    (("layers",), "all", "layers: expected a JSON array"),
    (("files", "../x"), "0" * 64, "files"),
])
def test_an_edited_cnn_manifest_is_refused(tmp_path, cnn_pack, capsys, path, value, needle):
    edit(cnn_pack, set_(path, value))
    rc = main(["inspect", str(cnn_pack)])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1 and needle in err, err
