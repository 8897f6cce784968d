"""Build the CNN engine (hw/cnn) once per configuration and run DRAM jobs on it with cocotb.

``run_dram(cfg, dram, prog_addr, in_addr, inputs, out_addr, out_bytes, engine=...)`` is the
low-level entry (a DRAM image and byte ranges); :func:`run_program` takes a compiled
program from :mod:`sparsa.sw.cnn.compiler`. Builds are cached under
``build/sim/cnn-<engine>-<key>``; the key hashes the configuration and the generator sources.
"""

import hashlib
import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sparsa.sim.cocotb_job import cache_root, cached_build, run_cocotb_job, source_digest, tool_env

__all__ = ["build_cnn", "run_dram", "run_program", "run_soc_program", "TOPLEVEL", "SOC_TOPLEVEL"]

TOPLEVEL = "sparsa_cnn"
SOC_TOPLEVEL = "sparsa_cnn_soc"     # hw/cnn/soc.py: AXI4-Lite control around the engine


def _key(cfg, engine, soc=False):
    h = hashlib.sha256(json.dumps({**asdict(cfg), "soc": soc}, sort_keys=True).encode())
    if engine == "verilator":     # the C++ optimisation level changes the model, not its behaviour
        h.update(os.environ.get("SPARSA_VERILATOR_OPT", "-O1").encode())
    h.update(source_digest("sparsa.hw.cnn:*.py", "sparsa.hw.axil", "sparsa.sw.cnn.isa", "sparsa.sw.cnn.config",
                           "sparsa.sim.cnn:*.py").encode())
    return f"cnn{'-soc' if soc else ''}-{engine}-{h.hexdigest()[:16]}"


def build_cnn(cfg, engine="verilator", progress=False, soc=False):
    """Generate and compile the engine's Verilog for ``cfg`` (with ``soc``, the AXI4-Lite SoC
    wrapper around it); returns the (cached) build directory."""
    from sparsa.hw.cnn.verilog import generate_verilog
    tool_env()
    top = SOC_TOPLEVEL if soc else TOPLEVEL

    def make_verilog():
        if not soc:
            return generate_verilog(cfg, top)
        from amaranth.back import verilog

        from sparsa.hw.cnn.soc import CNNSoC
        from sparsa.hw.eie.verilog import fast_memory_init
        with fast_memory_init():
            return verilog.convert(CNNSoC(cfg), name=top, emit_src=False)
    return cached_build(cache_root() / _key(cfg, engine, soc), engine, top, make_verilog, asdict(cfg),
                        progress=f"building the CNN engine ({engine})" if progress else None)


def run_dram(cfg, dram, *, prog_addr, in_addr, inputs, out_addr, out_bytes, engine="verilator",
             pause=0.0, seed=0):
    """Run the program at ``prog_addr`` once per input (bytes written at ``in_addr``).

    Returns ``{"y": (B, out_bytes) uint8, "cycles": (B,), "mac_cycles": (B,),
    "retired": [array (n_instr, 2) of (layer, cycle) per input]}``.
    """
    bdir = build_cnn(cfg, engine)
    work = Path(tempfile.mkdtemp(prefix="cnn-run-", dir=cache_root()))
    try:
        job, result = work / "job.npz", work / "result.npz"
        inputs = np.stack([np.frombuffer(np.ascontiguousarray(x).tobytes(), dtype=np.uint8) for x in inputs])
        opts = dict(prog_addr=int(prog_addr), in_addr=int(in_addr), out_addr=int(out_addr),
                    out_bytes=int(out_bytes), pause=float(pause), seed=int(seed))
        np.savez(job, dram=np.frombuffer(bytes(dram), dtype=np.uint8), inputs=inputs,
                 options=np.array(json.dumps(opts)))
        run_cocotb_job(engine, TOPLEVEL, "sparsa.sim.cnn.tb", bdir, work,
                       {"SPARSA_CNN_JOB": str(job), "SPARSA_CNN_RESULT": str(result)}, "CNN")
        if not result.exists():
            raise RuntimeError("CNN simulation wrote no result file; see " + str(work / "sim.log"))
        with np.load(result) as r:
            out = {k: r[k] for k in ("y", "cycles", "mac_cycles")}
            out["retired"] = [r[f"retired{i}"] for i in range(len(inputs))]
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run_program(prog, x, *, engine="verilator", pause=0.0, seed=0, layers=False):
    """Run a compiled :class:`~sparsa.sw.cnn.compiler.Program` on x (C, H, W) or (B, C, H, W) int8.

    Returns ``{"y": outputs as cnn_golden.cnn_forward gives them (batch axis when x has one),
    "cycles": (B,), "mac_cycles": (B,), "layer_cycles": (B, n_layers), "overhead_cycles": (B,)}``;
    a layer's cycles run from the retirement of the instruction before its first one to the
    retirement of its last (fetch included); ``overhead_cycles`` is the final END's fetch;
    ``"retire_cycles"``: per input, the cycle at which each instruction retired.
    Instructions retire in order, so the i-th retirement is instruction i (the layer field
    of the instruction is only 8 bits). With ``layers`` the result also has ``"layer_outputs"``:
    per input, every layer's (C, H, W) output read back from DRAM, by name.
    """
    x = np.asarray(x)
    batch = x.ndim == 4
    xs = x if batch else x[None]
    if xs.shape[1:] != tuple(prog.input_shape):
        raise ValueError(f"input: expected (B,) + {tuple(prog.input_shape)}, found {x.shape}")
    xs = xs.astype(np.int8)
    if len(xs) == 0:        # an empty batch: an empty answer, and nothing built or simulated
        shape = (int(np.prod(prog.output_shape)),) if prog.output_flat else tuple(prog.output_shape)
        out = {"y": np.zeros((0,) + shape, np.int8), "cycles": np.zeros(0, np.int64),
               "mac_cycles": np.zeros(0, np.int64), "layer_cycles": np.zeros((0, len(prog.layers)), np.int64),
               "overhead_cycles": np.zeros(0, np.int64), "retire_cycles": []}
        if layers:
            out["layer_outputs"] = []
        return out
    if layers:       # read back all of DRAM, every layer's output included
        out_addr, out_bytes = 0, prog.dram_size
    else:
        out_addr, out_bytes = prog.output_addr, int(np.prod(prog.output_shape))
    res = run_dram(prog.cfg, prog.dram_image(), prog_addr=0, in_addr=prog.input_addr, inputs=list(xs),
                   out_addr=out_addr, out_bytes=out_bytes, engine=engine, pause=pause, seed=seed)
    if layers:
        drams = [bytearray(r.tobytes()) for r in res["y"]]
        ys = np.stack([prog.read(d, prog.output_addr, tuple(prog.output_shape)) for d in drams])
    else:
        ys = res["y"].view(np.int8).reshape((len(xs),) + tuple(prog.output_shape))
    if prog.output_flat:
        ys = ys.reshape(len(xs), -1)
    layer_of = np.zeros(prog.n_instructions, dtype=np.int64)
    for i, meta in enumerate(prog.layers):
        layer_of[meta["instr_start"]:meta["instr_end"]] = i
    layer_cycles = np.zeros((len(xs), len(prog.layers)), dtype=np.int64)
    overhead = np.zeros(len(xs), dtype=np.int64)
    for b, ev in enumerate(res["retired"]):
        if len(ev) != prog.n_instructions - 1:
            raise RuntimeError(f"the engine retired {len(ev)} instructions, expected {prog.n_instructions - 1}")
        prev = 0
        for i, (_, cyc) in enumerate(ev):
            layer_cycles[b, layer_of[i]] += cyc - prev
            prev = cyc
        overhead[b] = int(res["cycles"][b]) - prev
    out = {"y": ys if batch else ys[0], "cycles": res["cycles"], "mac_cycles": res["mac_cycles"],
           "layer_cycles": layer_cycles, "overhead_cycles": overhead,
           "retire_cycles": [ev[:, 1].copy() for ev in res["retired"]]}
    if layers:
        out["layer_outputs"] = [{m["name"]: prog.read(d, m["out_addr"], tuple(m["shape"])) for m in prog.layers}
                                for d in drams]
    return out


def run_soc_program(prog, x, *, engine="verilator", pause=0.0, seed=0, dram_base=0, aborts=()):
    """Run a compiled program through the SoC wrapper (AXI4-Lite control, AXI RAM as DRAM):
    x (B, C, H, W) int8, the image at bus address ``dram_base`` (DRAM_BASE). ``aborts``: cycle
    counts after which runs of the first input are aborted before the jobs (:mod:`.soc_tb`).
    Returns ``{"y", "cycles", "mac_cycles", "abort_polls"}`` (counters read over AXI4-Lite;
    STATUS reads until BUSY cleared after each ABORT)."""
    xs = np.asarray(x).astype(np.int8)
    cfg = prog.cfg
    bdir = build_cnn(cfg, engine, soc=True)
    work = Path(tempfile.mkdtemp(prefix="cnn-soc-run-", dir=cache_root()))
    try:
        job, result = work / "job.npz", work / "result.npz"
        out_bytes = int(np.prod(prog.output_shape))
        opts = dict(prog_addr=0, in_addr=prog.input_addr, out_addr=prog.output_addr, out_bytes=out_bytes,
                    pause=float(pause), seed=int(seed), config_word=cfg.config_word, dram_base=int(dram_base),
                    aborts=[int(a) for a in aborts],
                    buffers={"IBUF_BYTES": cfg.ibuf_bytes, "WBUF_WORDS": cfg.wbuf_words,
                             "OBUF_DEPTH": cfg.obuf_depth, "PSUM_DEPTH": cfg.psum_depth})
        np.savez(job, dram=np.frombuffer(bytes(prog.dram_image()), dtype=np.uint8),
                 inputs=np.stack([np.frombuffer(xb.tobytes(), dtype=np.uint8) for xb in xs]),
                 options=np.array(json.dumps(opts)))
        run_cocotb_job(engine, SOC_TOPLEVEL, "sparsa.sim.cnn.soc_tb", bdir, work,
                       {"SPARSA_CNN_JOB": str(job), "SPARSA_CNN_RESULT": str(result)}, "CNN SoC")
        with np.load(result) as r:
            ys = r["y"].view(np.int8).reshape((len(xs),) + tuple(prog.output_shape))
            return {"y": ys.reshape(len(xs), -1) if prog.output_flat else ys,
                    "cycles": r["cycles"], "mac_cycles": r["mac_cycles"], "abort_polls": r["abort_polls"]}
    finally:
        shutil.rmtree(work, ignore_errors=True)
