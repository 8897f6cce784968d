"""Sweep EIE array configurations (PEs, MACs, queue depth, seed, memories, column alignment) on a local pool or a Dask cluster.

Each point is a simulation of one workload -- a pack (``--pack DIR``, re-packed to each point's
PE count) or a generated EIE-paper-style layer (``--layer COLSxROWS``, ``--weight-density``,
``--activation-density``; the point's ``seed`` draws the data) -- on the golden model (ideal
cycles; cheap) or Verilator (measured cycles), and optionally a yosys utilisation estimate
(``--estimate yosys``) or an open-flow bitstream (``--estimate build``, minutes a point).

Points: a grid (``--pes 4,8,16 --macs 1,2 --queue-depth 4,8``) or a JSON list of objects
(``--configs points.json``, keys pes, macs, queue_depth, seed, memories, align_columns).

Jobs run on a local process pool sized to the cores and the free memory (``--workers``,
``--mem-per-point``), or on a Dask cluster: ``--scheduler tcp://HOST:PORT`` (the workers need
sparsa installed). Every point appears in the results, with a result or an error.
Writes ``explore.json``, ``explore.md`` and ``explore.png`` (time per inference against LUTs,
or against multipliers when no estimate ran) to ``--out``. See docs/explore.md.
"""

import re
import time
from pathlib import Path

from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import check_outputs, claim_output_dir
from sparsa.sw.jobs import open_executor

__all__ = ["add_arguments", "run"]


def _ints(opt):
    def parse(text):
        try:
            vals = [int(v) for v in text.split(",") if v.strip()]
        except ValueError:
            raise UserError(f"{opt}: expected comma-separated integers, found {text!r}") from None
        if not vals:
            raise UserError(f"{opt}: expected comma-separated integers, found {text!r}")
        return vals
    return parse


def add_arguments(p):
    w = p.add_argument_group("workload")
    w.add_argument("--pack", metavar="DIR", help="an EIE pack directory (default: a generated layer)")
    w.add_argument("--layer", default="256x256", metavar="COLSxROWS",
                   help="generated layer: inputs x outputs (default 256x256)")
    w.add_argument("--weight-density", type=float, default=0.1, help="generated layer (default 0.1)")
    w.add_argument("--activation-density", type=float, default=0.35,
                   help="nonzero input fraction (default 0.35)")
    g = p.add_argument_group("points")
    g.add_argument("--pes", default="8", help="PE counts, e.g. 4,8,16 (default 8)")
    g.add_argument("--macs", default="2", help="MACs per PE: 1, 2 or 1,2 (default 2)")
    g.add_argument("--queue-depth", default="8", help="activation queue depths, e.g. 4,8 (default 8)")
    g.add_argument("--seeds", default="0", help="data seeds, e.g. 0,1,2 (default 0)")
    g.add_argument("--memories", default="auto", help="with --estimate build: auto, block, fit (comma list)")
    g.add_argument("--align-columns", default="0", metavar="N,...",
                   help="layouts: `sparsa pack --align-columns N` for each N, e.g. 0,3 (default 0: the encoder's)")
    g.add_argument("--configs", metavar="JSON", help="a JSON list of configurations instead of the grid")
    m = p.add_argument_group("measurement")
    m.add_argument("--engine", choices=("golden", "verilator"), default="verilator",
                   help="golden: ideal cycles of the work model; verilator: measured (default)")
    m.add_argument("--estimate", choices=("none", "yosys", "build"), default="none",
                   help="utilisation: none, yosys (synthesis only) or build (open-flow bitstream, Fmax)")
    m.add_argument("--board", default="ulx3s-85f", help="board for --estimate (default ulx3s-85f)")
    m.add_argument("--clock-mhz", type=float, default=100.0,
                   help="clock for time per inference when no build measured Fmax (default 100)")
    e = p.add_argument_group("execution")
    e.add_argument("--scheduler", metavar="tcp://HOST:PORT", help="a Dask scheduler (default: local pool)")
    e.add_argument("--workers", type=int, metavar="N", help="local pool size (default: cores, memory permitting)")
    e.add_argument("--mem-per-point", type=float, metavar="GIB",
                   help="memory one point needs, for the local pool's guard (default by engine/estimate)")
    p.add_argument("-o", "--out", default="build/explore", metavar="DIR", help="output directory")


def _points(args):
    from sparsa.bench.explore import grid_points, points_from_json
    if args.configs:
        return points_from_json(args.configs)
    mem = [v.strip() for v in args.memories.split(",") if v.strip()]
    return grid_points(pes=_ints("--pes")(args.pes), macs=_ints("--macs")(args.macs),
                       queue_depth=_ints("--queue-depth")(args.queue_depth), seed=_ints("--seeds")(args.seeds),
                       memories=mem, align_columns=_ints("--align-columns")(args.align_columns))


def _workload(args):
    from sparsa.bench.explore import make_workload
    if args.pack:
        from sparsa.sw.eie.pack_dir import load_pack
        return make_workload(pack=load_pack(args.pack), activation_density=args.activation_density)
    m = re.fullmatch(r"\s*(\d+)\s*[xX]\s*(\d+)\s*", args.layer)
    if not m or not all(0 < int(v) < 1 << 24 for v in m.groups()):
        raise user_error(None, "--layer", "COLSxROWS, e.g. 256x256", repr(args.layer))
    return make_workload(layer=(int(m[1]), int(m[2])), weight_density=args.weight_density,
                         activation_density=args.activation_density)


def run(args):
    from sparsa.bench import explore as ex
    points = _points(args)
    workload = _workload(args)
    if args.estimate != "none":
        ex._family(args.board)
    if not args.clock_mhz > 0:
        raise user_error(None, "--clock-mhz", "> 0", args.clock_mhz)
    out = Path(args.out)
    check_outputs([("-o", out)], [("--pack", args.pack), ("--configs", args.configs)], dirs=("-o",))
    claim_output_dir(out, "explore")
    specs = [{"point": p, "workload": workload, "engine": args.engine, "estimate": args.estimate,
              "board": args.board, "clock_mhz": args.clock_mhz, "work_dir": str(out / "builds")} for p in points]
    mem = args.mem_per_point or ex.MEM_PER_POINT_GIB[args.engine if args.estimate == "none" else args.estimate]
    with open_executor(args.scheduler, mem_per_job_gib=mem, workers=args.workers) as (executor, factory, where):
        print(f"[explore] {len(specs)} points, engine {args.engine}, estimate {args.estimate}, on {where}",
              flush=True)
        t0 = time.perf_counter()

        def progress(k, rec, done, total):
            label = ex.point_label(rec["point"])
            if "result" in rec:
                r = rec["result"]
                extra = f", {r['luts']} LUTs" if r.get("luts") is not None else ""
                print(f"[explore] {done}/{total} {label}: {r['cycles']} cycles, {r['time_us']} us{extra} "
                      f"({r['point_s']} s)", flush=True)
            else:
                print(f"[explore] {done}/{total} {label}: error: {rec['error']}", flush=True)
        records = ex.run_sweep(specs, executor, new_executor=factory, on_done=progress)
    meta = {"engine": args.engine, "estimate": args.estimate, "board": args.board if args.estimate != "none" else None,
            "clock_mhz": args.clock_mhz, "scheduler": args.scheduler,
            "workload": {k: v for k, v in workload.items() if k != "pack"} | (
                {"pack": args.pack} if args.pack else {}),
            "elapsed_s": round(time.perf_counter() - t0, 1)}
    data, pngs = ex.write_results(records, meta, out)
    ex.print_table(records, data["pareto"])
    failed = sum("error" in r for r in records)
    print(f"[explore] {len(records) - failed}/{len(records)} points done, {failed} failed -> {out}/explore.json, "
          f"{out}/explore.md" + "".join(f", {p}" for p in pngs), flush=True)
    return 1 if failed else 0
