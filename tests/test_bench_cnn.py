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
    assert [r["lanes"] for r in nets] == [8, 16, 32] * 3 and all(r["bit_exact_vs_golden"] for r in nets)
    assert all(r["multipliers"] == 9 * r["lanes"] and 0 < r["mac_util"] <= 1 for r in nets)
    assert "## Whole networks" in (tmp_path / "cnn.md").read_text()
