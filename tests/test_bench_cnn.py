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
