"""Fuzz harness (issue 26): mutated EIE pack manifests against inspect, run, unpack and verilog.

Each example starts from a real small pack's manifest.json, applies 1-4 mutations (a field's
type or value changed, a field deleted, a layer duplicated, dropped or reordered, a list cut
short or grown), recomputes ``manifest_sha256`` with :func:`sparsa.sw.manifest.manifest_digest`
so that the edit gets past the digest, and runs the commands that read a pack. The contract:
exit 0 with a consistent result, or exit 2 with one line, no traceback, nothing written, the
pack untouched. ``make test``: a bounded derandomized run; ``make fuzz``: a long one.
"""

import json
import shutil

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_fuzz_cli import SETTINGS, check_contract, mutate_json
from test_pack import compressed_arrays

from sparsa.cli import main
from sparsa.sw.manifest import manifest_digest

pytestmark = pytest.mark.xdist_group("fuzz_manifest")


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A real two-layer pack (3 PEs) and an input for it."""
    d = tmp_path_factory.mktemp("fuzzman")
    print("seed", 11)
    np.savez(d / "m.npz", **compressed_arrays(np.random.default_rng(11), [10, 9, 5]))
    assert main(["pack", str(d / "m.npz"), "--pes", "3", "-o", str(d / "pk")]) == 0
    np.save(d / "x.npy", np.random.default_rng(1).integers(-300, 300, (2, 10)).astype(np.int16))
    return d


@st.composite
def mutated(draw, man):
    man = mutate_json(draw, man, keep=("manifest_sha256",), boring=("files", "layout"))
    man["manifest_sha256"] = manifest_digest(man)     # else the digest would stop every edit
    return man


def _write_pack(base, tmp, man):
    pk = tmp / "pk"
    if pk.exists():
        shutil.rmtree(pk)
    shutil.copytree(base / "pk", pk)
    (pk / "manifest.json").write_text(json.dumps(man, indent=1))
    return pk


def _fresh(tmp):
    for name in ("y.npy", "u.npz", "v.v", "r.json"):
        (tmp / name).unlink(missing_ok=True)


@SETTINGS
@given(data=st.data())
def test_fuzz_mutated_manifest(base, tmp_path_factory, data):
    man0 = json.loads((base / "pk" / "manifest.json").read_text())
    man = data.draw(mutated(man0), label="manifest")
    tmp = tmp_path_factory.mktemp("case", numbered=True)
    pk = _write_pack(base, tmp, man)
    x = base / "x.npy"

    def golden_ok(out):
        from sparsa.sw.eie.pack_dir import load_pack
        y = np.load(tmp / "y.npy")
        pack = load_pack(pk)
        assert y.shape == (2, pack.output_rows)
        assert np.array_equal(y, pack.run_golden(np.load(x)).reshape(y.shape))
        rep = json.loads((tmp / "r.json").read_text())
        assert rep["batch"] == 2 and rep["output"]["shape"] == list(y.shape)

    check_contract(["inspect", pk], [pk], [])
    check_contract(["inspect", pk, "--json"], [pk], [])
    check_contract(["run", pk, "-i", x, "-o", tmp / "y.npy", "--report", tmp / "r.json"], [pk, x],
                   [tmp / "y.npy", tmp / "r.json"], ok=golden_ok)
    check_contract(["unpack", pk, "-o", tmp / "u.npz"], [pk], [tmp / "u.npz"],
                   ok=lambda out: np.load(tmp / "u.npz").close())
    shutil.rmtree(tmp)


def test_fuzz_manifest_unmutated_pack_runs(base, tmp_path):
    """The harness's baseline: the pack as written passes every command."""
    man = json.loads((base / "pk" / "manifest.json").read_text())
    pk = _write_pack(base, tmp_path, man)
    rc, _ = check_contract(["run", pk, "-i", base / "x.npy", "-o", tmp_path / "y.npy"], [pk], [tmp_path / "y.npy"])
    assert rc == 0
