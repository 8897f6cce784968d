"""Build a toplevel once per key (locked, cached) and run cocotb test modules on it."""

import fcntl
import hashlib
import importlib
import json
import os
import sys
from pathlib import Path

from sparsa.sim.eie.runner import _run_quietly, icarus_fixup, verilator_makeflags

__all__ = ["cached_build", "run_cocotb_job", "source_digest"]


def source_digest(*specs):
    """SHA-256 (hex) of the source files a build depends on, so a cached build is redone when
    any of them changes. Each spec is ``"package.module"`` (that module's file) or
    ``"package:glob"`` (files of that package's directory matching ``glob``, recursively with
    ``**``); packages are found by import, so the digest follows the code wherever it lives."""
    h = hashlib.sha256()
    for spec in specs:
        name, _, pattern = spec.partition(":")
        mod = importlib.import_module(name)
        files = sorted(Path(mod.__file__).parent.glob(pattern)) if pattern else [Path(mod.__file__)]
        for f in files:
            h.update(f.read_bytes())
    return h.hexdigest()


def cached_build(bdir, engine, toplevel, make_verilog, stamp, *, opt="-O1", progress=None):
    """Compile ``make_verilog()`` (the text of ``toplevel``) for ``engine`` in ``bdir`` unless a
    finished build is there. A file lock makes parallel test workers wait for one build;
    ``stamp`` (JSON) marks it finished. ``opt`` is the Verilator C++ optimisation level
    (``SPARSA_VERILATOR_OPT`` overrides it); ``progress`` labels a spinner. Returns ``bdir``."""
    from cocotb_tools.runner import get_runner
    bdir.mkdir(parents=True, exist_ok=True)
    done = bdir / "built.json"
    with open(bdir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if done.exists():
            return bdir
        text = make_verilog()
        if engine == "icarus":
            text = icarus_fixup(text)
        (bdir / f"{toplevel}.v").write_text(text)
        kwargs = dict(sources=[bdir / f"{toplevel}.v"], hdl_toplevel=toplevel, build_dir=bdir, always=True)
        if engine == "verilator":
            kwargs["build_args"] = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"]
            verilator_makeflags(os.environ.get("SPARSA_VERILATOR_OPT", opt))
        else:
            kwargs["timescale"] = ("1ns", "1ps")

        def go():
            _run_quietly(lambda: get_runner(engine).build(**kwargs), True, bdir / "build.log")
        if progress:
            from sparsa.sw.progress import run_with_progress
            run_with_progress(go, progress)
        else:
            go()
        done.write_text(json.dumps(stamp))
    return bdir


def run_cocotb_job(engine, toplevel, test_module, bdir, work, env, what):
    """Run ``test_module`` against the build in ``bdir`` with ``env`` (job/result paths), its
    output in ``work/sim.log``. Raises RuntimeError (``what`` names the run) if the test failed."""
    from cocotb_tools.check_results import get_results
    from cocotb_tools.runner import get_runner
    xml = work / "results.xml"
    env = {**env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        _run_quietly(lambda: get_runner(engine).test(
            hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", test_module=test_module,
            build_dir=bdir, test_dir=work, results_xml=str(xml), extra_env=env), True, work / "sim.log")
    except SystemExit:
        pass
    failed = get_results(xml)[1] if xml.exists() else 1
    if failed:
        log = work / "sim.log"
        raise RuntimeError(f"{what} simulation failed; log tail:\n" + (log.read_text()[-3000:] if log.exists() else ""))
