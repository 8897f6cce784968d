"""Run benchmarks and write JSON + markdown tables (`sparsa bench pack|eie|ese|ese-overlap|cnn|cnn-networks|cnn-resources|boards|all`).

Each benchmark is a module with ``NAME``, ``add_arguments`` (optional) and
``run_bench(out_dir, args) -> dict``; results go to ``OUT/<name>.json`` and ``OUT/<name>.md``.
"""

import importlib
import time
from pathlib import Path

from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import claim_output_dir

# benchmark name -> module
BENCHES = {
    "pack": "sparsa.bench.pack",
    "eie": "sparsa.bench.eie",
    "ese": "sparsa.bench.ese",
    "ese-overlap": "sparsa.bench.ese_overlap",
    "cnn": "sparsa.bench.cnn",
    "cnn-networks": "sparsa.bench.networks",
    "cnn-resources": "sparsa.bench.cnn_resources",
    "boards": "sparsa.bench.boards",
}


def add_arguments(p):
    p.add_argument("which", choices=[*BENCHES, "all"], help="benchmark to run")
    p.add_argument("-o", "--out", default="build/bench", help="output directory (default build/bench)")
    p.add_argument("--quick", action="store_true", help="smaller sizes, for a smoke run")
    p.add_argument("--macs", type=int, choices=(1, 2), default=None,
                   help="eie, ese: multipliers per PE (1 = EIE's and ESE's PE; default: run both)")
    p.add_argument("--queue-depth", type=int, default=None, metavar="N",
                   help="eie, ese: activation queue depth (eie: the layer table's array; default 8, EIE's)")
    p.add_argument("--no-sweeps", action="store_true", help="eie: the layer table only, no queue-depth and PE sweeps")
    p.add_argument("--balance-rows", action="store_true", help="eie: renumber each layer's rows as "
                   "`sparsa pack --balance-rows` renumbers a hidden layer's (same work, every PE the same nonzeros)")
    p.add_argument("--align-columns", type=int, default=None, metavar="N",
                   help="eie, ese: lay each layer out as `sparsa pack --align-columns N` does (0..7: see sparsa pack -h)")


def run(args):
    for opt, value, takes in (("--queue-depth", args.queue_depth, ("eie", "ese")),
                              ("--no-sweeps", args.no_sweeps or None, ("eie",)),
                              ("--balance-rows", getattr(args, "balance_rows", False) or None, ("eie",)),
                              ("--align-columns", getattr(args, "align_columns", None), ("eie", "ese"))):
        if value is not None and args.which not in takes:
            raise user_error(None, opt, " or ".join(f"sparsa bench {b}" for b in takes), f"sparsa bench {args.which}")
    if args.queue_depth is not None and not 1 <= args.queue_depth <= 256:
        raise user_error(None, "--queue-depth", "1..256", args.queue_depth)
    if getattr(args, "align_columns", None) is not None:
        from sparsa.sw.eie.align import check_max_fill
        check_max_fill(args.align_columns)
    # "all": cnn-networks is a part of cnn
    names = [n for n in BENCHES if n != "cnn-networks"] if args.which == "all" else [args.which]
    out = Path(args.out)
    claim_output_dir(out, "bench")
    for name in names:
        try:
            mod = importlib.import_module(BENCHES[name])
        except ModuleNotFoundError as e:
            raise UserError(f"bench {name}: not available yet ({e.name} missing)")
        t0 = time.perf_counter()
        mod.run_bench(out, args)
        print(f"[bench {name}] done in {time.perf_counter() - t0:.1f} s -> {out}/{name}.json, {out}/{name}.md")
    return 0
