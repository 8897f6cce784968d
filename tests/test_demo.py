"""`sparsa demo`: the digits MLP, compressed, on the golden EIE model."""

import io
import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from sparsa.cli import demo as demo_cli
from sparsa.cli import main
from sparsa.sw.compress.mlp import load_compressed
from sparsa.demo.mlp import golden_predict
from sparsa.sw.model.digits import load_data

# One module-scoped training run: keep its tests on one xdist worker (--dist loadgroup).
pytestmark = pytest.mark.xdist_group("sw_demo")


@pytest.fixture(scope="module")
def full_demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo")
    assert main(["demo", "-o", str(out)]) == 0
    return out, json.loads((out / "report.json").read_text())


def test_demo_meets_the_accuracy_target(full_demo):
    # The acceptance target: compressed (golden EIE, int16) within 1 point of float, at <= 10%.
    _, r = full_demo
    print("seed", r["seed"], "float", r["float_accuracy"], "compressed", r["compressed_accuracy"])
    assert r["compressed_accuracy"] >= r["float_accuracy"] - 0.01
    assert r["float_accuracy"] > 0.95
    assert r["weight_density"] <= 0.10
    assert r["compression_ratio"] > 10


def test_demo_hardware_run_equals_golden_on_every_test_sample(full_demo):
    # The generated Verilog (Verilator) classifies the whole held-out split; its int16 logits
    # must equal the golden model's on every sample.
    _, r = full_demo
    assert r["hardware_engine"] == "verilator"
    assert r["hardware_mismatches"] == 0
    assert r["hardware_accuracy"] == pytest.approx(r["compressed_accuracy"])
    assert r["cycles_per_inference"] > 0


def test_demo_writes_the_html_report_with_the_hardware_run(full_demo):
    out, r = full_demo
    assert r["html_report"] == str(out / "report.html") and (out / "report.html").is_file()
    html = (out / "report.html").read_text()
    assert '<section id="roofline">' in html and "No hardware run given" not in html
    assert sorted(p.name for p in (out / "report_files").glob("*.png")) == \
        ["compression.png", "cycles.png", "load.png", "roofline.png"]


def test_demo_report_fields(full_demo):
    _, r = full_demo
    for key in ("float_accuracy", "compressed_accuracy", "weight_density", "compression_ratio",
                "compression_ratio_huffman", "compression", "timings_s", "history"):
        assert key in r
    assert len(r["compression"]["layers"]) == 2


def test_demo_writes_the_pack_when_the_packer_is_there(full_demo):
    out, r = full_demo
    if r["pack"] is not None:
        # The packed images, decoded by the packer, classify exactly like the compressed model.
        from sparsa.sw.fixedpoint import quantize
        from sparsa.sw.eie.pack_dir import load_pack
        _, x_te, _, _ = load_data(r["seed"])
        model = load_compressed(out / "model.npz")
        logits = load_pack(out / "pack").run_golden(quantize(x_te, model.input_frac_bits))
        assert np.array_equal(np.argmax(logits, axis=1), golden_predict(model, x_te))
    assert (out / "model.npz").exists() and (out / "float.npz").exists() and (out / "calib.npy").exists()


def test_demo_accuracy_is_the_golden_models_on_the_saved_model(full_demo):
    out, r = full_demo
    _, x_te, _, y_te = load_data(r["seed"])
    model = load_compressed(out / "model.npz")
    assert np.mean(golden_predict(model, x_te) == y_te) == r["compressed_accuracy"]


def test_demo_float_model_and_calibration_are_reusable_by_compress(full_demo, tmp_path):
    out, _ = full_demo
    rc = main(["compress", str(out / "float.npz"), "--density", "0.1", "--bits", "4",
               "--calib", str(out / "calib.npy"), "-o", str(tmp_path / "c.npz")])
    assert rc == 0 and (tmp_path / "c.npz").exists()


def test_demo_bad_option_leaves_nothing(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "-o", str(out), "--pes", "0"]) == 2
    assert "--pes" in capsys.readouterr().err
    assert not out.exists()


def test_demo_runs_the_digits_cnn_on_the_cnn_engine(full_demo):
    # The CNN half: int8 golden within 2 points of float, and the generated CNN engine
    # (Verilator, Winograd datapath) equal to the golden model on every held-out image.
    out, r = full_demo
    cnn = r["cnn"]
    print("float", cnn["float_accuracy"], "int8", cnn["int8_accuracy"], "cycles", cnn["cycles_per_inference"])
    assert cnn["float_accuracy"] > 0.9
    assert cnn["int8_accuracy"] >= cnn["float_accuracy"] - 0.02
    assert cnn["hardware_engine"] == "verilator" and cnn["datapath"] == "winograd"
    assert cnn["hardware_mismatches"] == 0
    assert cnn["hardware_accuracy"] == pytest.approx(cnn["int8_accuracy"])
    assert cnn["test_samples"] == r["test_samples"]
    assert (out / "cnn" / "pack" / "manifest.json").is_file() and (out / "cnn" / "run.json").is_file()


# ---- the README's demo numbers are the ones this run prints ---------------------------------

README = Path(__file__).resolve().parent.parent / "README.md"


def _table_rows(text, title):
    """{metric: value} of the rich table whose title starts with ``title`` in ``text``."""
    lines = text.splitlines()
    start = next(i for i, l in enumerate(lines) if title in l)
    rows = {}
    for line in lines[start:]:
        if line.startswith("└"):
            break
        if line.startswith("│"):
            metric, value = (c.strip() for c in line.strip().strip("│").split("│"))
            rows[metric] = value
    return rows


def _printed(report):
    """The demo's tables exactly as `sparsa demo` prints them, rendered from this run's report."""
    buf = io.StringIO()
    demo_cli._print(report, Console(file=buf, width=132, highlight=False))
    return buf.getvalue()


def test_readme_demo_table_is_what_the_demo_prints_now(full_demo):
    # Every deterministic row (all but the wall-clock times): accuracies, density, ratios,
    # sample count, hardware accuracy and mismatches, cycles per inference.
    _, r = full_demo
    title = "sparsa demo: digits MLP"
    printed = _table_rows(_printed(r), title)
    readme = _table_rows(README.read_text(), title)
    for metric in ("float accuracy", "compressed accuracy (golden EIE, int16)",
                   "cycles per inference", "hardware mismatches vs golden (must be 0)"):
        assert metric in printed
    want = {k: v for k, v in printed.items() if not k.startswith("time:")}
    got = {k: v for k, v in readme.items() if not k.startswith("time:")}
    assert got == want


def test_readme_cnn_demo_sentence_is_what_the_demo_prints_now(full_demo):
    _, r = full_demo
    cnn = _table_rows(_printed(r), "sparsa demo: digits CNN")
    cycles = next(v for k, v in cnn.items() if k.startswith("cycles per inference"))
    sentence = (f"float {cnn['float accuracy']}, int8 golden {cnn['int8 accuracy (golden model)']}, "
                f"hardware {next(v for k, v in cnn.items() if k.startswith('hardware accuracy'))} "
                f"with {cnn['hardware mismatches vs golden (must be 0)']} mismatches,\n"
                f"{cycles} cycles per image ({cnn['MAC utilisation (MACs / lanes / cycles)']} MAC utilisation")
    assert sentence in README.read_text()
