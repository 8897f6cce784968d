"""`sparsa report` on a CNN pack: per-layer latency and DRAM bandwidth from the cycle model and
a measured run, the run report treated as untrusted input, and no half-written output."""

import json
import re

import numpy as np
import pytest

from sparsa.cli import main
from sparsa.sw.cnn.compiler import compile_graph
from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.pack import write_cnn_pack
from sparsa.sw.cnn.timing import program_cycles

from cnn_cases import Builder


@pytest.fixture
def cnn_pack(tmp_path):
    print("seed", 41)
    b = Builder(np.random.default_rng(41), (3, 12, 12))
    b.conv(8, 3, pad=1, relu=True)
    b.pool(2)
    b.linear(10)
    prog = compile_graph(b.graph(), CNNConfig())
    write_cnn_pack(prog, tmp_path / "pk")
    return prog, tmp_path / "pk"


def run_report(prog, cycles, batch=2):
    """A run report as `sparsa run --engine verilator --report` writes it: per layer a list of
    cycle counts (one per input), or a number for a single input."""
    per = (lambda c: [c] * batch) if batch > 1 else (lambda c: c)
    return {"engine": "verilator", "kind": "cnn", "lanes": prog.cfg.lanes, "batch": batch,
            "cycles_per_input": float(sum(cycles)),
            "layers": [{"name": m["name"], "cycles": per(c)} for m, c in zip(prog.layers, cycles)]}


def test_report_of_a_cnn_pack_gives_latency_and_bandwidth_per_layer(tmp_path, cnn_pack, capsys):
    prog, pk = cnn_pack
    measured = [5000, 700, 400]
    (tmp_path / "r.json").write_text(json.dumps(run_report(prog, measured)))
    out = tmp_path / "rep.html"
    assert main(["report", str(pk), "-o", str(out), "--run", str(tmp_path / "r.json")]) == 0
    page = out.read_text()
    assert all(f'<section id="{s}">' in page for s in ("summary", "layers", "bandwidth"))
    assert (tmp_path / "rep_files" / "bandwidth.png").stat().st_size > 1000
    total = program_cycles(prog.program).cycles
    assert f"{total:,}" in page and f"{total / 200:,.1f} us" in page
    # per layer: bytes a cycle and GB/s at 200 MHz from the measured cycles, worked out here
    for m, c in zip(prog.layers, measured):
        moved = m["dram_read"] + m["dram_write"]
        row = re.search(rf"<tr><td>{m['name']}</td>.*?</tr>", page).group(0)
        assert f"<td>{moved / c:.2f}</td><td>{moved / c * 0.2:.2f}</td>" in row, row
        assert f"<td>{c / 200:,.1f}</td>" in row
    data = json.loads((tmp_path / "rep_files" / "report-data.json").read_text())
    assert sum(l["model_cycles"] for l in data["layers"]) <= total


def test_report_of_a_cnn_pack_without_a_run_uses_the_cycle_model(tmp_path, cnn_pack):
    prog, pk = cnn_pack
    assert main(["report", str(pk), "-o", str(tmp_path / "rep.html")]) == 0
    assert "cycles (measured)" not in (tmp_path / "rep.html").read_text()


def test_a_single_input_run_report_gives_numbers_not_lists(tmp_path, cnn_pack):
    # what `sparsa run` writes for one (C, H, W) input: each layer's cycles a number
    prog, pk = cnn_pack
    (tmp_path / "r.json").write_text(json.dumps(run_report(prog, [5000, 700, 400], batch=1)))
    assert main(["report", str(pk), "-o", str(tmp_path / "rep.html"), "--run", str(tmp_path / "r.json")]) == 0
    assert "<td>5,000</td>" in (tmp_path / "rep.html").read_text()


def test_names_with_tex_and_unencodable_text_are_shown_as_text(tmp_path, cnn_pack):
    # matplotlib would parse "$...$" as maths (and fail on "$\\frac{1$"); "\ud800" is valid JSON
    prog, pk = cnn_pack
    rep = {**run_report(prog, [5000, 700, 400]), "engine": "a$b^$c $\\frac{1$ \ud800"}
    (tmp_path / "r.json").write_text(json.dumps(rep))
    assert main(["report", str(pk), "-o", str(tmp_path / "rep.html"), "--run", str(tmp_path / "r.json")]) == 0
    assert "a$b^$c" in (tmp_path / "rep.html").read_text()


BAD = [
    ({"kind": "eie"}, "kind"),
    ({"lanes": 16}, "lanes"),
    ({"engine": {"x": 1}}, "engine"),
    ({"batch": "two"}, "batch"),
    ({"cycles_per_input": 1e400}, "cycles_per_input"),
    ({"cycles_per_input": 0}, "cycles_per_input"),
    ("drop one layer", "layers"),
    ("rename layer 1", r"layers\[1\]\.name"),
    ("cycles -3", r"layers\[1\]\.cycles"),
    ("cycles 0", r"layers\[1\]\.cycles"),
    ("cycles 2.5", r"layers\[1\]\.cycles"),
    ("cycles []", r"layers\[1\]\.cycles"),
    ("no cycles", r"layers\[1\]\.cycles"),
]


@pytest.mark.parametrize("bad,field", BAD, ids=[str(i) for i in range(len(BAD))])
def test_a_bad_cnn_run_report_is_one_line_and_writes_nothing(tmp_path, cnn_pack, capsys, bad, field):
    prog, pk = cnn_pack
    rep = run_report(prog, [1, 2, 3])
    if isinstance(bad, dict):
        rep.update(bad)
    elif bad == "drop one layer":
        rep["layers"].pop()
    elif bad == "rename layer 1":
        rep["layers"][1]["name"] = "other"
    elif bad == "no cycles":
        del rep["layers"][1]["cycles"]
    else:
        rep["layers"][1]["cycles"] = json.loads(bad.split(" ", 1)[1])
    (tmp_path / "r.json").write_text(json.dumps(rep).replace("Infinity", "1e400"))
    out = tmp_path / "rep.html"
    assert main(["report", str(pk), "-o", str(out), "--run", str(tmp_path / "r.json")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and re.search(rf"r\.json: {field}: expected", err), err
    assert not out.exists() and not (tmp_path / "rep_files").exists()


def test_an_eie_benchmark_with_a_cnn_pack_is_refused(tmp_path, cnn_pack, capsys):
    _, pk = cnn_pack
    (tmp_path / "eie.json").write_text("{}")
    assert main(["report", str(pk), "-o", str(tmp_path / "rep.html"), "--bench", str(tmp_path / "eie.json")]) == 2
    assert "--bench: expected none for a CNN pack" in capsys.readouterr().err


def test_a_concat_written_in_place_has_zero_cycles_in_the_report(tmp_path, capsys):
    """A concat whose inputs are written in place has no instructions: 0 cycles, no rates, and
    a run report must give it 0 (and every other layer at least 1)."""
    from cnn_cases import yolo_ops_graph
    graph, _ = yolo_ops_graph(0)
    prog = compile_graph(graph, CNNConfig())
    write_cnn_pack(prog, tmp_path / "pk")
    empty = [i for i, m in enumerate(prog.layers) if m["instr_start"] == m["instr_end"]]
    assert empty and all(prog.layers[i]["op"] == "concat" for i in empty)
    cycles = [0 if i in empty else 100 + i for i in range(len(prog.layers))]
    (tmp_path / "r.json").write_text(json.dumps(run_report(prog, cycles)))
    out = tmp_path / "rep.html"
    assert main(["report", str(tmp_path / "pk"), "-o", str(out), "--run", str(tmp_path / "r.json")]) == 0
    row = re.search(rf"<tr><td>{prog.layers[empty[0]]['name']}</td>.*?</tr>", out.read_text()).group(0)
    assert "<td>-</td><td>-</td>" in row
    cycles[0] = 0                                  # a layer with instructions cannot take 0 cycles
    (tmp_path / "r.json").write_text(json.dumps(run_report(prog, cycles)))
    assert main(["report", str(tmp_path / "pk"), "-o", str(tmp_path / "rep2.html"), "--run",
                 str(tmp_path / "r.json")]) != 0
    assert "layers[0].cycles" in capsys.readouterr().err


def test_the_config_register_word_by_hand():
    assert CNNConfig(lanes=8).config_word == 8 | 1 << 8 | 1 << 9
    assert CNNConfig(lanes=32, winograd=False, weight_bits=8, pair_multipliers=True).config_word == \
        32 | 1 << 9 | 1 << 10 | 1 << 11
