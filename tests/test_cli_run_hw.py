"""`sparsa run --engine verilator|icarus`: the CLI drives the generated Verilog end to end."""

import json

import numpy as np
import pytest
from test_golden_eie import bigint_layer

from sparsa.cli import main


@pytest.fixture
def packed(tmp_path):
    seed = 31
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    w = ((rng.random((37, 23)) < 0.25) * rng.choice([-900, 4, 77, 1200], (37, 23))).astype(np.int16)
    b = rng.integers(-5000, 5000, 37).astype(np.int32)
    x = rng.integers(-3000, 3000, (2, 23)).astype(np.int16)
    x[:, ::4] = 0
    np.save(tmp_path / "w.npy", w)
    np.save(tmp_path / "b.npy", b)
    np.save(tmp_path / "x.npy", x)
    assert main(["pack", str(tmp_path / "w.npy"), "--pes", "4", "-o", str(tmp_path / "pk"),
                 "--bias", str(tmp_path / "b.npy"), "--shift", "3", "--relu"]) == 0
    return w, b, x


def run_cli(tmp_path, engine):
    return main(["run", str(tmp_path / "pk"), "-i", str(tmp_path / "x.npy"), "-o", str(tmp_path / "y.npy"),
                 "--engine", engine, "--report", str(tmp_path / "r.json")])


@pytest.mark.xdist_group("eie_cli_verilator")
def test_run_on_verilator_equals_bigint_reference_and_reports_counters(tmp_path, packed):
    w, b, x = packed
    assert run_cli(tmp_path, "verilator") == 0
    y = np.load(tmp_path / "y.npy")
    want = np.array([bigint_layer(w.tolist(), b, 3, True, xi.tolist()) for xi in x])
    np.testing.assert_array_equal(y, want)
    rep = json.loads((tmp_path / "r.json").read_text())
    assert rep["engine"] == "verilator" and rep["batch"] == 2
    assert rep["cycles"] > 0
    layer = rep["layers"][0]
    assert set(layer["per_pe"]) == {"busy", "starved", "stalled", "pad", "macs"}
    # MACs = real entries in the active columns, summed over the batch.
    assert sum(layer["per_pe"]["macs"]) == int(sum(np.count_nonzero(w[:, xi != 0]) for xi in x))


@pytest.mark.xdist_group("eie_cli_verilator")
def test_run_report_ideal_cycles_and_html_report_in_chromium(tmp_path, packed):
    from browser import dump_dom
    from sparsa.report import SECTIONS
    w, b, x = packed
    assert run_cli(tmp_path, "verilator") == 0
    rep = json.loads((tmp_path / "r.json").read_text())
    layer, macs = rep["layers"][0], rep["config"]["macs"]
    assert macs in (1, 2)
    # Ideal = sum over inputs of max(real / (PEs x macs), nonzero activations), computed here
    # from the float-free weights: real = nonzero weights in the active columns (no padding).
    nz = [int(np.count_nonzero(xi)) for xi in x]
    real = [int(np.count_nonzero(w[:, xi != 0])) for xi in x]
    assert layer["nonzero_activations"] == sum(nz)
    ideal = sum(max(r / (4 * macs), n) for r, n in zip(real, nz))
    assert layer["ideal_cycles"] == round(ideal, 1)
    assert sum(layer["entries_per_pe"]) >= sum(real)
    assert 0 < layer["efficiency"] == round(ideal / layer["cycles"], 3) <= 1
    out = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "pk"), "-o", str(out), "--run", str(tmp_path / "r.json")]) == 0
    dom = dump_dom(out)
    for sec in SECTIONS:
        assert f'<section id="{sec}">' in dom, sec
    assert 'data-images="4/4"' in dom          # compression, load, cycles, roofline
    assert "No hardware run given" not in dom


@pytest.mark.xdist_group("eie_cli_icarus")
def test_run_on_icarus_equals_bigint_reference(tmp_path, packed):
    w, b, x = packed
    assert run_cli(tmp_path, "icarus") == 0
    want = np.array([bigint_layer(w.tolist(), b, 3, True, xi.tolist()) for xi in x])
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), want)
