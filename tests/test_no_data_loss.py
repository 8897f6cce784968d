"""Outputs never destroy what the user did not ask to overwrite (issue: data loss).

Each test names the class of mistake it covers: an output onto a device, FIFO or symlink; an
output directory that is not provably ours, or that holds an input; an output that is also an
input; permissions; temporaries left by a killed process.
"""

import json
import os
import stat
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
from test_pack import compressed_arrays

from sparsa.cli import main
from sparsa.sw import fileio


@pytest.fixture
def model(tmp_path):
    print("seed", 11)
    np.savez(tmp_path / "m.npz", **compressed_arrays(np.random.default_rng(11), [12, 20, 7]))
    return tmp_path / "m.npz"


@pytest.fixture
def pack(tmp_path, model):
    assert main(["pack", str(model), "--pes", "2", "-o", str(tmp_path / "pk")]) == 0
    return tmp_path / "pk"


def refused(capsys, argv, *needles):
    rc = main(argv)
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


def tree(path):
    """Every file under ``path`` with its bytes (what a user would lose)."""
    return {p.relative_to(path).as_posix(): p.read_bytes() for p in sorted(Path(path).rglob("*")) if p.is_file()}


# -- 1. an output onto a device, a FIFO or a symlink ---------------------------------------------

def test_output_onto_a_character_device_writes_through_and_keeps_the_device(tmp_path, pack, capsys):
    null = tmp_path / "null"
    os.mknod(null, stat.S_IFCHR | 0o666, os.makedev(1, 3))     # the /dev/null device
    np.save(tmp_path / "x.npy", np.zeros((1, 12), np.int16))
    assert main(["run", str(pack), "-i", str(tmp_path / "x.npy"), "-o", str(null), "--engine", "golden"]) == 0
    assert stat.S_ISCHR(os.stat(null).st_mode)
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_output_onto_a_fifo_writes_through_to_the_reader(tmp_path, pack):
    fifo = tmp_path / "out.fifo"
    os.mkfifo(fifo)
    got = {}
    reader = threading.Thread(target=lambda: got.update(data=fifo.read_bytes()), daemon=True)
    reader.start()
    try:
        rc = main(["unpack", str(pack), "-o", str(fifo)])
    finally:
        if reader.is_alive():                 # nothing was written: let the reader go
            with open(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK), "wb"):
                pass
        reader.join(10)
    assert rc == 0
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got["data"][:2] == b"PK"                      # the .npz (a zip) came through the pipe


def test_output_through_a_symlink_writes_the_target_and_keeps_the_link(tmp_path, pack):
    target = tmp_path / "real.npz"
    target.write_bytes(b"old")
    link = tmp_path / "link.npz"
    link.symlink_to(target)
    assert main(["unpack", str(pack), "-o", str(link)]) == 0
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert np.load(target)["layer0.weight"].shape == (20, 12)


@pytest.mark.parametrize("kind", ["fifo", "device", "symlink", "file"])
def test_pack_output_directory_onto_a_non_directory_is_refused(tmp_path, model, capsys, kind):
    node = tmp_path / "node"
    if kind == "fifo":
        os.mkfifo(node)
    elif kind == "device":
        os.mknod(node, stat.S_IFCHR | 0o666, os.makedev(1, 3))
    elif kind == "symlink":
        (tmp_path / "elsewhere").mkdir()
        node.symlink_to(tmp_path / "elsewhere")
    else:
        node.write_text("mine")
    before = os.lstat(node)
    refused(capsys, ["pack", str(model), "--pes", "2", "-o", str(node)], str(node), "refusing")
    after = os.lstat(node)
    assert (before.st_mode, before.st_ino) == (after.st_mode, after.st_ino)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.npz", "node"] + (["elsewhere"] if kind == "symlink" else []))


# -- 2. output directories that are not provably ours ---------------------------------------------

def test_pack_does_not_delete_a_web_app_that_holds_a_manifest_json(tmp_path, model, capsys):
    app = tmp_path / "webapp"
    (app / "src").mkdir(parents=True)
    (app / "manifest.json").write_text(json.dumps({"name": "my app", "start_url": "/"}))
    (app / "src" / "app.js").write_text("console.log('mine')")
    before = tree(app)
    refused(capsys, ["pack", str(model), "--pes", "2", "-o", str(app)], "refusing")
    assert tree(app) == before


def test_pack_does_not_delete_a_pack_with_a_file_added_by_hand(tmp_path, pack, model, capsys):
    (pack / "notes.txt").write_text("my measurements")
    refused(capsys, ["pack", str(model), "--pes", "2", "-o", str(pack)], "refusing")
    assert (pack / "notes.txt").read_text() == "my measurements"


def test_pack_does_not_delete_the_directory_that_holds_its_input(tmp_path, pack, model, capsys):
    inside = pack / "model.npz"
    inside.write_bytes(model.read_bytes())
    refused(capsys, ["pack", str(inside), "--pes", "2", "-o", str(pack)], "input")
    assert inside.read_bytes() == model.read_bytes()


def test_pack_replaces_an_earlier_pack(tmp_path, pack, model):
    assert json.loads((pack / "manifest.json").read_text())["pes"] == 2
    assert main(["pack", str(model), "--pes", "3", "-o", str(pack)]) == 0
    assert json.loads((pack / "manifest.json").read_text())["pes"] == 3


def test_only_a_manifest_naming_a_pack_format_and_listing_every_file_is_owned(tmp_path, pack):
    from sparsa.sw.manifest import owned_pack_dir
    assert owned_pack_dir(pack)
    man = json.loads((pack / "manifest.json").read_text())
    (pack / "manifest.json").write_text(json.dumps({**man, "format": "something-else"}))
    assert not owned_pack_dir(pack)
    (pack / "manifest.json").write_text(json.dumps({**man, "version": "1"}))
    assert not owned_pack_dir(pack)


# -- 4. an output that is also an input ------------------------------------------------------------

def test_compress_refuses_the_same_path_for_model_and_report(tmp_path, capsys):
    rng = np.random.default_rng(3)
    print("seed", 3)
    np.save(tmp_path / "w.npy", rng.normal(size=(16, 8)))
    out = tmp_path / "cr.npz"
    refused(capsys, ["compress", str(tmp_path / "w.npy"), "--density", "0.5", "--bits", "4",
                     "-o", str(out), "--report", str(out)], "--report", "same path")
    assert not out.exists()


def test_compress_refuses_to_write_over_its_own_input(tmp_path, capsys):
    np.save(tmp_path / "w.npy", np.random.default_rng(4).normal(size=(16, 8)))
    before = (tmp_path / "w.npy").read_bytes()
    refused(capsys, ["compress", str(tmp_path / "w.npy"), "--density", "0.5", "--bits", "4",
                     "-o", str(tmp_path / "w.npy")], "input")
    assert (tmp_path / "w.npy").read_bytes() == before


def test_unpack_into_its_own_pack_is_refused(tmp_path, pack, capsys):
    before = tree(pack)
    refused(capsys, ["unpack", str(pack), "-o", str(pack / "manifest.json")], "input")
    assert tree(pack) == before


def test_report_refuses_an_output_that_is_its_run_report(tmp_path, pack, capsys):
    run = tmp_path / "r.html"
    run.write_text("{}")
    refused(capsys, ["report", str(pack), "-o", str(run), "--run", str(run)], "input")
    assert run.read_text() == "{}"


# -- permissions and temporaries -------------------------------------------------------------------

def test_outputs_respect_the_umask_and_an_overwritten_file_keeps_its_mode(tmp_path, pack, model):
    old = os.umask(0o022)
    try:
        assert main(["unpack", str(pack), "-o", str(tmp_path / "u.npz")]) == 0
        assert stat.S_IMODE(os.stat(tmp_path / "u.npz").st_mode) == 0o644
        assert main(["pack", str(model), "--pes", "2", "-o", str(tmp_path / "pk2")]) == 0
        assert stat.S_IMODE(os.stat(tmp_path / "pk2").st_mode) == 0o755
        os.chmod(tmp_path / "u.npz", 0o640)
        assert main(["unpack", str(pack), "-o", str(tmp_path / "u.npz")]) == 0
        assert stat.S_IMODE(os.stat(tmp_path / "u.npz").st_mode) == 0o640
    finally:
        os.umask(old)


def test_stale_temporaries_of_a_killed_run_are_removed_and_others_kept(tmp_path, pack, model):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True).stdout.strip()
    stale_file = tmp_path / f".u.npz.sparsa-{dead}-abc123.tmp"
    stale_file.write_bytes(b"x" * 100)
    stale_dir = tmp_path / f".pk.sparsa-{dead}-def456.tmp"
    (stale_dir / "layer0").mkdir(parents=True)
    alive = tmp_path / f".u.npz.sparsa-{os.getpid()}-live.tmp"      # a running process's
    alive.write_bytes(b"y")
    foreign = tmp_path / ".u.npz.other.tmp"                          # not of our naming
    foreign.write_bytes(b"z")
    assert main(["unpack", str(pack), "-o", str(tmp_path / "u.npz")]) == 0
    assert main(["pack", str(model), "--pes", "2", "-o", str(tmp_path / "pk")]) == 0
    assert not stale_file.exists() and not stale_dir.exists()
    assert alive.exists() and foreign.exists()


def test_sigterm_during_a_write_leaves_no_temporary(tmp_path):
    script = f"""
import os, signal, sys, time, types
from pathlib import Path
from sparsa import cli
from sparsa.sw.fileio import atomic_dir

mod = types.ModuleType("slow")
mod.__doc__ = "A slow writer."
mod.add_arguments = lambda p: None
def run(args):
    with atomic_dir(Path({str(tmp_path / 'out')!r}), owned=lambda p: False) as tmp:
        (tmp / "part").write_text("half")
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(30)
mod.run = run
sys.modules["slow"] = mod
cli.COMMANDS["slow"] = "slow"
sys.exit(cli.main(["slow"]))
"""
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert r.returncode == 143, r.stderr
    assert "terminated" in r.stderr
    assert list(tmp_path.iterdir()) == []


def test_write_pack_api_refuses_to_replace_a_directory_holding_an_input(tmp_path, pack):
    from sparsa.sw.eie.pack_dir import load_pack, write_pack
    inside = pack / "model.npz"
    inside.write_bytes(b"the user's model")
    with pytest.raises(fileio.UserError, match="input"):
        write_pack(load_pack(pack, verify=False), pack, inputs=[("MODEL", inside)])
    assert inside.read_bytes() == b"the user's model"


# -- 3. sparsa build -o ----------------------------------------------------------------------------

def test_build_does_not_write_into_a_users_directory(tmp_path, pack, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    (mine / "report.json").write_text("{}")
    before = tree(mine)
    refused(capsys, ["build", str(pack), "--board", "zynq7020", "--no-build", "-o", str(mine)], "refusing")
    assert tree(mine) == before


def test_build_replaces_an_earlier_build_and_lists_its_files(tmp_path, pack):
    out = tmp_path / "tree"
    assert main(["build", str(pack), "--board", "zynq7020", "--no-build", "-o", str(out)]) == 0
    rep = json.loads((out / "report.json").read_text())
    assert rep["format"] == "sparsa-build"
    assert set(rep["files"]) == {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()} - {"report.json"}
    assert main(["build", str(pack), "--board", "zu2cg", "--no-build", "-o", str(out)]) == 0
    assert json.loads((out / "report.json").read_text())["board"] == "zu2cg"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_build_into_its_own_pack_is_refused(tmp_path, pack, capsys):
    before = tree(pack)
    refused(capsys, ["build", str(pack), "--board", "zynq7020", "--no-build", "-o", str(pack / "b")], "input")
    assert tree(pack) == before
