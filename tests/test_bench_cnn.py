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
