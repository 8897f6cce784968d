"""Write an HTML report (with PNG figures) about a pack and, optionally, its hardware runs.

``sparsa report DIR -o report.html [--run R.json] [--bench eie.json]``. A CNN pack gets its
per-layer latency and DRAM bandwidth, from the cycle model and a measured run
(:mod:`sparsa.report_cnn`). An EIE pack gets compression by stage
per layer, per-PE load, measured vs ideal cycles with stall and starve counts (from
``sparsa run --engine verilator --report R.json``), and a roofline view of ops/cycle against
the PE count (with the PE sweep of ``sparsa bench eie`` if given). Figures go to
``report_files/`` next to the HTML.
"""

from pathlib import Path

from sparsa.report import build_report, write_report
from sparsa.sw.errors import UserError
from sparsa.sw.fileio import check_outputs

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("pack", metavar="DIR", help="pack directory (from sparsa pack)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.html", help="HTML file to write")
    p.add_argument("--run", default=None, metavar="R.json", help="hardware run report (sparsa run --report)")
    p.add_argument("--bench", default=None, metavar="eie.json", help="EIE benchmark results (sparsa bench eie)")


def run(args):
    out = Path(args.output)
    check_outputs([("-o", out), ("-o (figures)", out.with_name(out.stem + "_files"))],
                  [("DIR", args.pack), ("--run", args.run), ("--bench", args.bench)], dirs=("-o (figures)",))
    from sparsa.sw.cnn.pack import is_cnn_pack
    if is_cnn_pack(args.pack):
        from sparsa.report_cnn import build_cnn_report, cnn_figures, cnn_html
        if args.bench is not None:
            raise UserError(f"{args.bench}: --bench: expected none for a CNN pack (an EIE benchmark result), "
                            "found a file")
        data = build_cnn_report(args.pack, run=args.run)
        html_path, files = write_report(data, args.output, cnn_figures, cnn_html)
    else:
        data = build_report(args.pack, run=args.run, bench=args.bench)
        html_path, files = write_report(data, args.output)
    print(f"wrote {html_path} (figures in {files})")
    return 0
