"""Build the EIE Verilog once per configuration and run jobs on it under cocotb.

``run(...)`` is what ``sparsa run --engine verilator|icarus`` and the tests call:

1. size an :class:`~sparsa.sw.eie.config.EIEConfig` for the pack: exactly the hardware that
   ``sparsa verilog`` writes and ``sparsa build`` synthesises (:meth:`EIEConfig.for_pack`), or
   rounded up so that one build serves many packs (:meth:`EIEConfig.reusable_for`), or one given;
2. generate the Verilog (memories empty: the model arrives through the load port) and build
   it with the simulator, cached under ``build/sim/<engine>-<key>`` where the key hashes the
   configuration and the generator's source; Verilator objects go through ccache;
3. write a job file, run the cocotb test :mod:`sparsa.sim.eie.tb`, read the result file.

So a second run of any model of the same size starts in well under a second of build time.
"""

import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sparsa.sim.cocotb_job import cache_root, source_digest, icarus_fixup, run_quietly, tool_env, verilator_makeflags
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.progress import run_with_progress
from sparsa.sw.errors import UserError

__all__ = ["ENGINES", "build", "run_memory_map", "run", "run_lstm", "cache_root",
           "primitive_models"]

ENGINES = ("verilator", "icarus")
TOPLEVEL = "eie_top"
_HERE = Path(__file__).resolve().parent


_MODELS = _HERE.parent / "models"


def primitive_models(verilog):
    """Simulation models (paths) of the vendor primitives that ``verilog`` instantiates.

    With ``EIEConfig(multiplier="ecp5")`` the Verilog holds MULT18X18D instances; yosys has no
    model of them, so sparsa ships a behavioural one (``sim/models/MULT18X18D.v``).
    """
    return [p for p in sorted(_MODELS.glob("*.v")) if re.search(rf"^\s*{p.stem}\b", verilog, re.M)]


def _source_hash():
    # Everything the generated Verilog depends on: the generator, the specifications it
    # imports (formats, memory map, configuration, LSTM arithmetic) and the primitive models.
    return source_digest("sparsa.hw.eie:*.py", "sparsa.sw.eie:*.py", "sparsa.sw.eie.lstm_cell",
                         "sparsa.sim.eie.runner", "sparsa.sim:models/*.v")[:12]


def build(cfg, engine="verilator", *, memory_map=None, quiet=True, progress=False):
    """Generate and compile the Verilog for ``cfg``; returns the build directory (cached)."""
    if engine not in ENGINES:
        raise UserError(f"engine: expected one of {', '.join(ENGINES)}, found {engine!r}")
    tool_env()
    # C++ optimisation of the Verilator model. Compiling dominates for the sizes sparsa runs
    # (a 16-PE model: ~1 min at -O0, several at -Os), so -O0 is the default; set
    # SPARSA_VERILATOR_OPT=-Os for very long simulations.
    opt = os.environ.get("SPARSA_VERILATOR_OPT", "-O0") if engine == "verilator" else ""
    key = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode()
                         + _source_hash().encode() + opt.encode()).hexdigest()[:16]
    if memory_map is not None:
        key += "-init"   # memory-init builds are per model; used by tests only
        key += hashlib.sha256(b"".join(a.tobytes() for a in memory_map.spm)).hexdigest()[:8]
    bdir = cache_root() / f"{engine}-{key}"
    stamp = bdir / "built.json"
    if stamp.exists():
        return bdir
    bdir.mkdir(parents=True, exist_ok=True)
    # Two processes asking for the same model (pytest-xdist workers, two `sparsa run`s): one
    # builds, the other waits for it and reuses the result.
    with open(bdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if stamp.exists():
            return bdir
        return _build_locked(cfg, engine, memory_map, quiet, progress, bdir, stamp, opt)


def _build_locked(cfg, engine, memory_map, quiet, progress, bdir, stamp, opt):
    from cocotb_tools.runner import get_runner
    from sparsa.hw.eie.verilog import generate_verilog
    vfile = bdir / f"{TOPLEVEL}.v"
    t0 = time.perf_counter()
    text = generate_verilog(cfg, memory_map, name=TOPLEVEL)
    if engine == "icarus":
        text = icarus_fixup(text)
    vfile.write_text(text)
    t1 = time.perf_counter()
    runner = get_runner(engine)
    kwargs = dict(sources=[vfile, *primitive_models(text)], hdl_toplevel=TOPLEVEL, build_dir=bdir,
                  always=True)
    if engine == "verilator":
        kwargs["build_args"] = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"]
        verilator_makeflags(opt)
    else:
        kwargs["timescale"] = ("1ns", "1ps")
    if progress or not quiet:
        print(f"[sparsa] first run at this size: generating and compiling the {engine} model "
              f"({cfg.pes} PEs) in {bdir} ...", file=sys.stderr, flush=True)
    run_with_progress(lambda: run_quietly(lambda: runner.build(**kwargs), quiet, bdir / "build.log"),
                      f"compiling the {engine} model ({cfg.pes} PEs)", show=progress)
    t2 = time.perf_counter()
    if progress or not quiet:
        print(f"[sparsa] built in {t2 - t0:.0f} s (Verilog {t1 - t0:.0f} s); later runs reuse it",
              file=sys.stderr, flush=True)
    stamp.write_text(json.dumps({"config": asdict(cfg), "verilog_s": round(t1 - t0, 2),
                                 "compile_s": round(t2 - t1, 2)}, indent=2))
    return bdir


def _job_arrays(mm, x, n_layers, *, load=True, reset_mid_run=0, stream_io=False, pauses=(0.0, 0.0, 0),
                lstm=None):
    from sparsa.sw.eie.protocol import memory_map_arrays
    arrays = memory_map_arrays(mm)
    arrays["x"] = np.atleast_2d(np.asarray(x, dtype=np.int16))
    arrays["options"] = np.array(json.dumps({
        "pes": mm.pes, "load": load, "n_layers": n_layers,
        "rows_out": mm.layers[n_layers - 1].rows, "reset_mid_run": reset_mid_run,
        "stream_io": stream_io, "idle": pauses[0], "backpressure": pauses[1], "seed": pauses[2],
        "lstm": lstm}))
    return arrays


def run_memory_map(mm, x, *, engine="verilator", cfg=None, n_layers=None, init=False,
                   reset_mid_run=0, stream_io=False, idle=0.0, backpressure=0.0, seed=0,
                   quiet=True, progress=False, workdir=None, lstm=None):
    """Run input(s) ``x`` (int16, (cols,) or (batch, cols)) on the generated Verilog.

    Returns a dict: ``y`` (batch, rows) int16, ``cycles`` per input, ``layer_cycles``
    (batch, layers), ``layer_stats`` (batch, layers, PEs, counters), ``config``, timings.
    With ``init=True`` the Verilog is generated with the model as memory contents and
    nothing is loaded through the load port. ``stream_io`` moves x and y over the x_in/y_out
    streams (the host interface, one value a cycle) instead of the wide load/read-back ports;
    ``idle`` / ``backpressure`` are the probabilities of a random pause on x_in / y_out.
    ``lstm`` (``{"x_base", "y_rows"}``) runs x (T, I) as LSTM steps: one two-layer run per
    step, x_t loaded at local address ``x_base``, the state kept on chip, y_t read back.
    """
    from cocotb_tools.runner import get_runner
    from cocotb_tools.check_results import get_results
    from sparsa.sw.eie.config import EIEConfig
    if cfg is None:
        cfg = EIEConfig.for_pack(mm)
    cfg.check_fits(mm)
    n_layers = n_layers or len(mm.layers)
    if np.ndim(x) == 2 and np.shape(x)[0] == 0:
        # An empty batch: an empty answer, and nothing built or simulated.
        from sparsa.hw.eie.pe import COUNTERS
        rows = lstm["y_rows"] if lstm else mm.layers[n_layers - 1].rows
        return {"y": np.zeros((0, rows), np.int16), "cycles": np.zeros(0, np.int64),
                "layer_cycles": np.zeros((0, n_layers), np.int64),
                "layer_stats": np.zeros((0, n_layers, mm.pes, len(COUNTERS)), np.int64),
                "config": asdict(cfg), "build_s": 0.0, "sim_s": 0.0, "batch": 0}
    t0 = time.perf_counter()
    bdir = build(cfg, engine, memory_map=mm if init else None, quiet=quiet, progress=progress)
    t_build = time.perf_counter() - t0
    own_tmp = workdir is None
    work = Path(tempfile.mkdtemp(prefix="eie-run-", dir=cache_root())) if own_tmp else Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    try:
        job, result, xml = work / "job.npz", work / "result.npz", work / "results.xml"
        np.savez(job, **_job_arrays(mm, x, n_layers, load=not init, reset_mid_run=reset_mid_run,
                                    stream_io=stream_io, pauses=(idle, backpressure, seed), lstm=lstm))
        runner = get_runner(engine)
        done_file = work / "progress"
        env = {"SPARSA_EIE_JOB": str(job), "SPARSA_EIE_RESULT": str(result),
               "SPARSA_EIE_PROGRESS": str(done_file),
               "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        t1 = time.perf_counter()
        kwargs = dict(hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog",
                      test_module="sparsa.sim.eie.tb", build_dir=bdir,
                      test_dir=work, results_xml=str(xml), extra_env=env)
        def simulate():
            try:
                run_quietly(lambda: runner.test(**kwargs), quiet, work / "sim.log")
            except SystemExit:
                pass        # inside pytest cocotb raises on failure; the results file says why

        def inputs_done():
            try:
                return int(done_file.read_text() or 0)
            except (OSError, ValueError):
                return None
        run_with_progress(simulate, f"simulating {engine} ({cfg.pes} PEs)", total=np.atleast_2d(x).shape[0],
                          poll=inputs_done, show=progress)
        t_sim = time.perf_counter() - t1
        failed = 1
        if xml.exists():
            _, failed = get_results(xml)
        if failed or not result.exists():
            log = (work / "sim.log")
            tail = log.read_text()[-3000:] if log.exists() else "(no log)"
            raise RuntimeError(f"EIE simulation failed on {engine}; log tail:\n{tail}")
        with np.load(result) as r:
            out = {k: r[k] for k in r.files}
    finally:
        if own_tmp:
            shutil.rmtree(work, ignore_errors=True)
    x2 = np.atleast_2d(x)
    if np.ndim(x) == 1:
        out["y"] = out["y"][0]
    out.update(config=asdict(cfg), build_s=t_build, sim_s=t_sim, batch=x2.shape[0])
    return out


def run_lstm(pack, x, *, engine="verilator", cfg=None, quiet=True, progress=False):
    """Run an LSTM pack (:mod:`sparsa.sw.lstm.pack`) over int16 x (T, I) from zero state.

    ``cfg`` defaults to :meth:`EIEConfig.reusable_for` the pack (one build for packs of similar
    size). Returns the :func:`run_memory_map` dict with ``y`` (T, P) and per-step ``cycles``.
    """
    from sparsa.sw.eie.config import EIEConfig
    mm = build_memory_map(pack)
    meta = pack.lstm
    lstm = {"x_base": meta["outputs_pad"] // pack.pes, "y_rows": meta["outputs_pad"]}
    res = run_memory_map(mm, np.atleast_2d(x), engine=engine, cfg=cfg or EIEConfig.reusable_for(mm), quiet=quiet,
                         progress=progress, lstm=lstm)
    res["y"] = np.atleast_2d(res["y"])[:, :meta["outputs"]]
    return res


def cli_config(mm, reusable=False):
    """The hardware ``sparsa run --engine verilator|icarus`` simulates: exactly what ``sparsa
    verilog`` writes and ``sparsa build`` synthesises, or with ``--reusable-build`` the
    power-of-two sizes that one build shares between packs."""
    from sparsa.sw.eie.config import EIEConfig
    return EIEConfig.reusable_for(mm) if reusable else EIEConfig.for_pack(mm)


def run(pack_dir, pack, x, *, engine="verilator", report=None, reusable=False):
    """Entry point of ``sparsa run --engine verilator|icarus``: returns (y, report dict)."""
    mm = build_memory_map(pack)
    cfg = cli_config(mm, reusable)
    res = run_memory_map(mm, x, engine=engine, cfg=cfg, quiet=True, progress=True)
    from sparsa.sw.eie.protocol import COUNTERS
    from sparsa.sw.eie.work import layer_work
    stats = res["layer_stats"]          # (batch, layers, pes, counters)
    layers = []
    for li, (lay, work) in enumerate(zip(mm.layers, layer_work(pack, x, macs=cfg.macs))):
        per_pe = stats[:, li].sum(axis=0)
        cycles = int(res["layer_cycles"][:, li].sum())
        layers.append({
            "rows": lay.rows, "cols": lay.cols,
            "cycles": cycles,
            "ideal_cycles": round(work["ideal_cycles"], 1),
            "efficiency": round(work["ideal_cycles"] / cycles, 3) if cycles else None,
            "nonzero_activations": work["nonzero_activations"],
            "entries_per_pe": work["entries_per_pe"],
            "per_pe": {name: per_pe[:, c].astype(int).tolist() for c, name in enumerate(COUNTERS)},
        })
    rep = {"engine": engine, "pes": mm.pes, "batch": int(res["batch"]),
           "cycles": int(res["cycles"].sum()),
           "cycles_per_inference": float(res["cycles"].mean()),
           "layers": layers, "build_s": round(res["build_s"], 2), "sim_s": round(res["sim_s"], 2),
           "config": res["config"]}
    return res["y"], rep
