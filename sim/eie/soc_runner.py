"""Build the SoC wrapper (hw/soc.py) once per configuration and run cocotbext-axi jobs on it.

``run_soc(pack, x, engine=..., pause=..., reset_mid=...)`` loads the pack through the
AXI4-Lite LD_* registers, streams each input through AXI-Stream and returns the outputs and
per-job cycles; builds are cached under ``build/sim/soc-<engine>-<key>`` like the array's.
"""

import hashlib
import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np

from sparsa.sim.cocotb_job import cache_root, cached_build, run_cocotb_job, source_digest, tool_env
from sparsa.sim.eie.runner import _job_arrays
from sparsa.sw.eie.config import EIEConfig

__all__ = ["run_soc", "soc_verilog"]

TOPLEVEL = "sparsa_soc"


def soc_verilog(cfg):
    """Verilog of the SoC wrapper (no weights in the memories: every PE is one shared module)."""
    from amaranth.back import verilog
    from sparsa.hw.eie.pe import ProcessingElement
    from sparsa.hw.eie.top import EIEArray
    from sparsa.hw.eie.verilog import fast_memory_init
    from sparsa.hw.soc import EIESoC
    with fast_memory_init():
        top = verilog.convert(EIESoC(cfg), name=TOPLEVEL, emit_src=False)
        pe = verilog.convert(ProcessingElement(cfg), name=EIEArray.PE_MODULE, emit_src=False)
    return top + "\n" + pe


def _build(cfg, engine):
    h = hashlib.sha256(json.dumps(asdict(cfg), sort_keys=True).encode())
    h.update(source_digest("sparsa.hw:**/*.py", "sparsa.sw.eie:*.py", "sparsa.sw.eie.lstm_cell",
                           "sparsa.sim.eie.soc_runner").encode())
    return cached_build(cache_root() / f"soc-{engine}-{h.hexdigest()[:16]}", engine, TOPLEVEL,
                        lambda: soc_verilog(cfg), asdict(cfg), opt="-O0")


def run_soc(pack, x, *, engine="verilator", pause=0.0, reset_mid=False, abort_mid=0, seed=0):
    """Run int16 inputs ``x`` (batch, cols) through the SoC; returns ``{"y", "cycles"}``.
    ``abort_mid``: first start a run and abort it that many cycles later (CTRL.ABORT). An LSTM
    pack runs ``x`` (T, inputs) as a sequence from zero state, the Linux runtime's way
    (:meth:`sparsa.runtime.LinuxBackend.run_lstm`); ``y`` is (T, outputs)."""
    from sparsa.sw.eie.memmap import build_memory_map
    tool_env()
    mm = build_memory_map(pack)
    cfg = EIEConfig.reusable_for(mm)
    bdir = _build(cfg, engine)
    work = Path(tempfile.mkdtemp(prefix="soc-run-", dir=cache_root()))
    try:
        job, result = work / "job.npz", work / "result.npz"
        arrays = _job_arrays(mm, x, len(mm.layers))
        opts = json.loads(str(arrays["options"]))
        if pack.lstm:
            rows = pack.lstm["outputs_pad"]
            opts.update(rows_out=rows, lstm={"x_base": rows // pack.pes, "pes": pack.pes})
        opts.update(pause=pause, reset_mid=bool(reset_mid), abort_mid=int(abort_mid), seed=seed,
                    capacity={"CAP_COLS": cfg.max_cols, "CAP_SPM": cfg.spm_words, "CAP_PTR": cfg.ptr_words,
                              "CAP_BIAS": cfg.bias_words, "CAP_ROWS_PE": cfg.max_rows_pe,
                              "CAP_ACT": cfg.act_depth, "CAP_PTR_BITS": cfg.pointer_bits})
        arrays["options"] = np.array(json.dumps(opts))
        np.savez(job, **arrays)
        run_cocotb_job(engine, TOPLEVEL, "sparsa.sim.eie.soc_tb", bdir, work,
                       {"SPARSA_SOC_JOB": str(job), "SPARSA_SOC_RESULT": str(result)}, "SoC")
        if not result.exists():
            raise RuntimeError("SoC simulation wrote no result file; see " + str(work / "sim.log"))
        with np.load(result) as r:
            out = {k: r[k] for k in r.files}
        if pack.lstm:
            out["y"] = out["y"][:, :pack.lstm["outputs"]]
        return out
    finally:
        shutil.rmtree(work, ignore_errors=True)
