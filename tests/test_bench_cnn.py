"""`sparsa bench cnn --quick` runs end to end on Verilator (performance figures are not checked)."""

import argparse
import json

import pytest

from sparsa.bench.cnn import run_bench


@pytest.mark.slow
def test_bench_cnn_quick(tmp_path):
    result = run_bench(tmp_path, argparse.Namespace(quick=True))
    assert (tmp_path / "cnn.md").read_text().startswith("# sparsa CNN benchmark")
    saved = json.loads((tmp_path / "cnn.json").read_text())
    assert saved["quick"] and saved["bit_exact"] and result["bit_exact"]
    assert saved["vgg16"] and all(r[dp]["bit_exact"] for r in saved["vgg16"] for dp in ("direct", "winograd"))
    assert saved["digits"]["direct"]["bit_exact"] and saved["digits"]["winograd"]["bit_exact"]
    # the whole-network table: a reduced VGG16, ResNet-18 and YOLOv3-tiny on 8, 16 and 32 lanes, bit-exact
    nets = saved["networks"]
    assert [r["lanes"] for r in nets] == [8, 16, 32, 32] * 3 and all(r["bit_exact_vs_golden"] for r in nets)
    assert all(r["multipliers"] == 9 * r["lanes"] and 0 < r["mac_util"] <= 1 for r in nets)
    assert "## Whole networks" in (tmp_path / "cnn.md").read_text()
    # LOAD cycles: each layer's LOADs as the model's own parts add them up (a LOAD waits for
    # nothing in these programs but a running SAVE on flag SYNC), and the overlap bound lies
    # between the rest of the work and the whole
    for r in nets:
        assert r["load_cycles"] == sum(l["load_cycles"] for l in r["layers"]) > 0
        assert r["cycles"] - r["load_cycles"] <= r["cycles_if_loads_overlapped"] < r["cycles"]


def test_load_cycles_are_each_loads_fetch_and_rows():
    from sparsa.bench.networks import load_cycles
    from sparsa.sw.cnn.config import CNNConfig
    from sparsa.sw.cnn.compiler import compile_graph
    from sparsa.sw.cnn.isa import Flag, Op, decode_program
    from sparsa.sw.cnn.timing import FETCH, program_cycles, _load_rows
    from cnn_cases import random_graph
    g, _ = random_graph(3)
    prog = compile_graph(g, CNNConfig(lanes=4), "direct")
    ins = decode_program(prog.program)
    got = load_cycles(prog, program_cycles(prog.program))
    want = []
    for m in prog.layers:
        loads = [f for f in ins[m["instr_start"]:m["instr_end"]] if f["op"] == Op.LOAD]
        assert not any(f["flags"] & Flag.SYNC for f in loads)
        # a LOAD beside a compute (flag BG) holds the engine for its fetch only
        want.append(sum(FETCH + (0 if f["flags"] & Flag.BG else _load_rows(f, 0)) for f in loads))
    print("LOAD cycles per layer:", got)
    assert got == want and sum(want) > 0


def test_resources_table_names_every_engine_and_says_whether_it_fits():
    from sparsa.bench.cnn_resources import resources_markdown
    from sparsa.bench.networks import ENGINES
    from sparsa.sw.cnn.config import CNNConfig
    # every engine of the network table is a valid configuration; the last one pairs multipliers
    cfgs = [CNNConfig(**fields) for _, fields in ENGINES]
    assert cfgs[-1].pair_multipliers and cfgs[-1].weight_bits == 8 and not any(c.winograd for c in cfgs)
    est = lambda dsps, fits: {"luts": 1234, "ffs": 99, "dsps": dsps, "brams": 74.5, "fits": fits}
    md = resources_markdown([{"engine": "a", "multipliers": 72, "boards": [est(82, True), est(82, True)]},
                             {"engine": "b", "multipliers": 288, "boards": [est(322, False), est(322, False)]}])
    rows = [l for l in md.splitlines() if l.startswith("| a") or l.startswith("| b")]
    assert rows[0] == ("| a | 72 | 1,234 LUTs, 99 FFs, 82 DSPs, 74.5 BRAM36: fits | "
                       "1,234 LUTs, 99 FFs, 82 DSPs, 74.5 BRAM36: fits |")
    assert rows[1].count("does NOT fit") == 2
