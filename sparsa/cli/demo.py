"""Run the end-to-end demo: the digits MLP on the EIE engine and a digits CNN on the CNN engine.

Trains a ReLU MLP on scikit-learn's bundled digits (offline), prunes it to 10% density with
retraining (ESE load balance over --pes PEs), shares weights in 4 bits with centroid tuning,
picks fixed-point formats from the training split, then classifies the held-out split with
the bit-exact golden EIE model and the generated Verilog; then the same for a small int8
digits CNN on the CNN engine (OUT/cnn). Writes OUT/report.json and OUT/report.html.
"""

import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from sparsa.cli.compress import print_report
from sparsa.cli.limits import MAX_PES, check_pe_option, check_seed
from sparsa.demo.mlp import run_demo
from sparsa.sw.fileio import claim_output_dir, write_json

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("-o", "--out", default="build/demo", help="output directory (default build/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed for the split and the training, 0..2^32-1 (default 0)")
    p.add_argument("--pes", type=int, default=4, help=f"PEs for load-balanced pruning and the pack, 1..{MAX_PES} (default 4)")
    p.add_argument("--density", type=float, default=0.1, help="final weight density (default 0.1)")
    p.add_argument("--bits", type=int, default=4, help="weight-sharing index bits 1..4 (default 4)")
    p.add_argument("--quick", action="store_true", help="few epochs: a smoke run, not the accuracy target")
    p.add_argument("--engine", choices=["verilator", "icarus", "golden"], default="verilator",
                   help="also run the held-out split on the generated Verilog (default verilator); "
                        "'golden' skips the hardware run")


def _print(report, console):
    table = Table(title="sparsa demo: digits MLP, golden EIE model and generated hardware")
    table.add_column("metric")
    table.add_column("value", justify="right")
    rows = [("float accuracy", f"{report['float_accuracy']:.2%}"),
            ("shared-weight float accuracy", f"{report['shared_float_accuracy']:.2%}"),
            ("compressed accuracy (golden EIE, int16)", f"{report['compressed_accuracy']:.2%}"),
            ("weight density", f"{report['weight_density']:.4f}"),
            ("compression ratio (EIE format)", f"{report['compression_ratio']:.1f}x"),
            ("  with Huffman-coded streams", f"{report['compression_ratio_huffman']:.1f}x"),
            ("test samples", str(report["test_samples"]))]
    if "hardware_accuracy" in report:
        rows += [(f"hardware accuracy ({report['hardware_engine']}, generated Verilog)",
                  f"{report['hardware_accuracy']:.2%}"),
                 ("hardware mismatches vs golden (must be 0)", str(report["hardware_mismatches"])),
                 ("cycles per inference", f"{report['cycles_per_inference']:.1f}")]
    rows += [(f"time: {k}", f"{v:.1f} s") for k, v in report["timings_s"].items()]
    for r in rows:
        table.add_row(*r)
    console.print(table)
    cnn = report.get("cnn")
    if cnn:
        table = Table(title=f"sparsa demo: digits CNN, int8, on the CNN engine ({cnn['datapath']} 3x3 convs)")
        table.add_column("metric")
        table.add_column("value", justify="right")
        rows = [("model", cnn["model"]), ("float accuracy", f"{cnn['float_accuracy']:.2%}"),
                ("int8 accuracy (golden model)", f"{cnn['int8_accuracy']:.2%}"),
                ("MACs per inference", f"{cnn['macs_per_inference']:,}")]
        if "hardware_accuracy" in cnn:
            rows += [(f"hardware accuracy ({cnn['hardware_engine']}, generated Verilog)",
                      f"{cnn['hardware_accuracy']:.2%}"),
                     ("hardware mismatches vs golden (must be 0)", str(cnn["hardware_mismatches"])),
                     (f"cycles per inference ({cnn['lanes']} lanes)", f"{cnn['cycles_per_inference']:,.0f}"),
                     ("MAC utilisation (MACs / lanes / cycles)", f"{cnn['mac_utilisation']:.1%}")]
        for r in rows:
            table.add_row(*r)
        console.print(table)


def check_args(args):
    """Every option, before any work (training takes minutes)."""
    check_seed(args.seed)
    check_pe_option(args.pes)
    claim_output_dir(args.out, "demo")


def run(args):
    check_args(args)
    console = Console(highlight=False, width=None if sys.stdout.isatty() else 132)
    t0 = time.perf_counter()
    report = run_demo(args)
    report["timings_s"]["total_s"] = time.perf_counter() - t0
    write_json(Path(args.out) / "report.json", report)
    print_report(report["compression"], console)
    _print(report, console)
    print(f"wrote {Path(args.out) / 'report.json'}" + (f" and {report['pack']}" if report["pack"] else ""))
    if report.get("html_report"):
        print(f"report: {report['html_report']}")
    if report.get("hardware_mismatches"):
        print(f"sparsa demo: error: the generated hardware disagrees with the golden model on "
              f"{report['hardware_mismatches']} test samples", file=sys.stderr)
        return 1
    if report.get("cnn", {}).get("hardware_mismatches"):
        print(f"sparsa demo: error: the generated CNN engine disagrees with the golden model on "
              f"{report['cnn']['hardware_mismatches']} test images", file=sys.stderr)
        return 1
    return 0
