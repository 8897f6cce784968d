"""One configuration (issue 22): `sparsa run --engine icarus PACK` simulates the very array that
`sparsa verilog PACK` writes and `sparsa build PACK` synthesises; `--reusable-build` is the
only way to get the rounded, shared simulation build."""

import json

import numpy as np
import pytest
from test_golden_eie import bigint_layer

from sparsa.cli import main
from sparsa.sim.cocotb_job import icarus_fixup

SEED = 2203


@pytest.fixture
def pk(tmp_path, monkeypatch):
    print(f"seed={SEED}")
    rng = np.random.default_rng(SEED)
    # Sizes no power of two: 37 rows on 4 PEs (10 local rows), 23 columns.
    w = ((rng.random((37, 23)) < 0.3) * rng.choice([-900, 4, 77, 1200], (37, 23))).astype(np.int16)
    b = rng.integers(-5000, 5000, 37).astype(np.int32)
    x = rng.integers(-3000, 3000, (2, 23)).astype(np.int16)
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "x.npy", x)
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "4", "-o", str(tmp_path / "pk"),
                 "--bias", str(tmp_path / "b.npy"), "--shift", "3", "--relu"]) == 0
    monkeypatch.setenv("SPARSA_SIM_CACHE", str(tmp_path / "sim"))     # a fresh cache: one build each
    return tmp_path, w, b, x


def _run(tmp_path, name, *extra):
    assert main(["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / f"{name}.npy"),
                 "--engine", "icarus", "--report", str(tmp_path / f"{name}.json"), *extra]) == 0
    return np.load(tmp_path / f"{name}.npy"), json.loads((tmp_path / f"{name}.json").read_text())


def _simulated_verilog(tmp_path, before=()):
    """The Verilog of the one icarus build in the cache that is not in ``before``."""
    built = [d for d in sorted((tmp_path / "sim").glob("icarus-*")) if d not in before]
    assert len(built) == 1, built
    return built[0], (built[0] / "eie_top.v").read_text()


def _ports(text, module="eie_top"):
    """The port declarations (direction, width, name) of ``module``."""
    body = text.split(f"module {module}(", 1)[1].split("endmodule", 1)[0]
    return sorted(l.strip() for l in body.splitlines() if l.strip().startswith(("input", "output")))


def test_run_verilog_and_build_generate_the_same_array(pk):
    tmp_path, w, b, x = pk
    want = np.array([bigint_layer(w.tolist(), b, 3, True, xi.tolist()) for xi in x])

    # sparsa run: exactly the pack's sizes, right answers.
    y, rep = _run(tmp_path, "exact")
    np.testing.assert_array_equal(y, want)
    bdir, simulated = _simulated_verilog(tmp_path)
    assert rep["config"]["max_cols"] == 37 and rep["config"]["max_rows_pe"] == 10

    # sparsa verilog: the same text as the simulated top (memories empty in both; the run
    # loads the model through the load port). Icarus builds get icarus_fixup, nothing else.
    assert main(["verilog", str(tmp_path / "pk"), "--no-init", "-o", str(tmp_path / "noinit.v")]) == 0
    assert main(["verilog", str(tmp_path / "pk"), "-o", str(tmp_path / "init.v")]) == 0
    written = (tmp_path / "noinit.v").read_text()
    assert simulated == icarus_fixup(written)
    assert simulated != written            # (the fixup did something: the comparison is of real text)

    # sparsa build (open flow, sources only): the array the board harness wraps is the text
    # `sparsa verilog PACK` writes with the weights as memory contents, byte for byte. The ULX3S
    # builds the default PE; --multiplier generic is the multiply `sparsa verilog` writes.
    assert main(["build", str(tmp_path / "pk"), "--board", "ulx3s-85f", "--top", "harness", "--no-build",
                 "--multiplier", "generic", "-o", str(tmp_path / "ecp")]) == 0
    init = (tmp_path / "init.v").read_text()
    assert (tmp_path / "ecp" / "eie_top.v").read_text() == init
    assert "eie_top core" in (tmp_path / "ecp" / "board_top.v").read_text()
    # With and without memory contents: the same array interface, port for port and bit for bit.
    assert _ports(init) == _ports(written) and len(_ports(init)) > 20
    built_cfg = json.loads((tmp_path / "ecp" / "report.json").read_text())["config"]
    assert built_cfg == rep["config"]


def test_a_board_builds_its_own_pe_for_the_harness_and_the_link_system(pk):
    # The iCEBreaker's PE is EIE's (one multiplier, the serial reader): its harness is the array
    # its link system runs (as sim:icebreaker simulates it), not the default PE.
    from sparsa.boards.systems import ICEBreaker
    from sparsa.sim.eie.runner import cli_config
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.eie.pack_dir import load_pack
    tmp_path = pk[0]
    assert main(["build", str(tmp_path / "pk"), "--board", "icebreaker", "--top", "harness", "--no-build",
                 "-o", str(tmp_path / "ice")]) == 0
    built_cfg = json.loads((tmp_path / "ice" / "report.json").read_text())["config"]
    link_cfg = cli_config(build_memory_map(load_pack(tmp_path / "pk"))).replace(**ICEBreaker.pe_options)
    assert (built_cfg["macs"], built_cfg["reader"], built_cfg["queue_depth"]) == (1, "serial", 2)
    assert built_cfg == json.loads(json.dumps(dict(link_cfg.__dict__)))


def test_reusable_build_is_asked_for_and_rounds_up(pk):
    tmp_path, w, b, x = pk
    want = np.array([bigint_layer(w.tolist(), b, 3, True, xi.tolist()) for xi in x])
    y, rep = _run(tmp_path, "reusable", "--reusable-build")
    np.testing.assert_array_equal(y, want)
    cfg = rep["config"]
    # Every size rounded up to a power of two, at least 16, and room for 4 layers.
    assert (cfg["max_cols"], cfg["max_rows_pe"], cfg["spm_words"], cfg["max_layers"]) == (64, 16, 16, 4)
    _, simulated = _simulated_verilog(tmp_path)
    assert main(["verilog", str(tmp_path / "pk"), "--no-init", "-o", str(tmp_path / "noinit.v")]) == 0
    assert simulated != icarus_fixup((tmp_path / "noinit.v").read_text())


def test_cnn_pack_options_and_manifest_errors_are_one_line(tmp_path, capsys):
    """CNNConfig: --reusable-build is for EIE packs; a bad size or a bad manifest config is a
    one-line UserError naming the option or field, the limit and the value."""
    from cnn_cases import random_graph
    from sparsa.sw.model.graph import save_graph
    graph, _ = random_graph(0)
    save_graph(tmp_path / "g.npz", graph)
    assert main(["pack", str(tmp_path / "g.npz"), "-o", str(tmp_path / "pk"), "--lanes", "4"]) == 0
    np.save(tmp_path / "x.npy", np.zeros(1, np.int8))     # never read: the option is refused first
    capsys.readouterr()
    assert main(["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--reusable-build"]) == 2
    assert main(["pack", str(tmp_path / "g.npz"), "-o", str(tmp_path / "p2"), "--ibuf-bytes", "100"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2
    assert "--reusable-build: expected an EIE pack" in err[0] and "found a CNN pack" in err[0]
    assert "--ibuf-bytes: expected a multiple of 8 in 8..1048576, found 100" in err[1]
    assert not (tmp_path / "y.npy").exists() and not (tmp_path / "p2").exists()
    # A manifest's config (the packs carry a digest, so ask the constructor directly).
    from sparsa.sw.cnn.config import CNNConfig
    from sparsa.sw.errors import UserError
    with pytest.raises(UserError, match=r"^m/manifest.json: config.psum_depth: expected 16..65536, found 8$"):
        CNNConfig.from_dict({"lanes": 4, "psum_depth": 8, "later_field": 1}, "m/manifest.json")
    assert CNNConfig.from_dict({"lanes": 4, "later_field": 1}, "m") == CNNConfig(lanes=4)
    with pytest.raises(UserError, match=r"^CNNConfig: lanes: expected 4, 8, 16 or 32, found 6$"):
        CNNConfig(lanes=6)


def test_sizing_policies_and_the_one_fits_check():
    """No simulation: the named constructors and EIEConfig.check_fits."""
    from eie_cases import random_pack
    from sparsa.sw.eie.config import EIEConfig
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.errors import UserError
    rng = np.random.default_rng(SEED)
    small, big = random_pack([(10, 8)], 2, 0.5, rng), random_pack([(40, 30), (12, 40)], 2, 0.5, rng)
    mb = build_memory_map(big)
    exact = EIEConfig.for_pack(big)
    assert (exact.max_cols, exact.max_rows_pe, exact.max_layers) == (40, 20, 2)   # 40 rows on 2 PEs
    assert EIEConfig.for_pack(small, big) == exact          # the smallest config holding both
    r = EIEConfig.reusable_for(big)
    assert (r.max_cols, r.max_rows_pe, r.max_layers) == (64, 32, 4) and r.spm_words >= 16
    # The pointer width rule: 8192 words of 8 entries = 65536 entries, and the end pointer
    # 65536 needs 17 bits; fewer words keep EIE's 16.
    assert EIEConfig.from_args(4, spm_words=8192).pointer_bits == 17
    assert EIEConfig.from_args(4, spm_words=8191).pointer_bits == 16
    assert EIEConfig.for_pack(big, spm_words=8192).pointer_bits == 17
    with pytest.raises(UserError, match=r"^pk: --spm-words: expected at least \d+ \(what the pack needs\), found 1$"):
        EIEConfig.for_pack(big, spm_words=1, where="pk")
    assert EIEConfig.for_pack(small).max_cols == 10                 # 10 rows, 8 columns
    with pytest.raises(UserError, match=r"^pk: vector length \(max cols/rows\): expected at most 10 \(as built\), "
                                        r"found 40 \(too large by 30\)$"):
        EIEConfig.for_pack(small).replace(max_layers=2).check_fits(mb, where="pk")
    with pytest.raises(UserError, match=r"^pk: pes: expected 4 \(as built\), found 2$"):
        EIEConfig.from_args(4, max_cols=64).check_fits(mb, where="pk")
    exact.check_fits(mb)
