"""Simulator plumbing shared by every runner: tool environment, build cache, cached builds, cocotb jobs.

A toplevel is built once per key (locked, cached under :func:`cache_root`) and cocotb test
modules run on it; the runners of each engine (:mod:`sparsa.sim.eie.runner`,
:mod:`sparsa.sim.cnn.runner`) build on these.
"""

import fcntl
import hashlib
import importlib
import json
import os
import re
import shutil
import sys
from pathlib import Path


__all__ = ["cached_build", "run_cocotb_job", "source_digest", "cache_root", "tool_env", "verilator_makeflags",
           "icarus_fixup", "run_quietly"]


def cache_root():
    return Path(os.environ.get("SPARSA_SIM_CACHE", Path.cwd() / "build" / "sim"))


def tool_env():
    """PATH with the venv's bin (verilator symlink) and ccache for Verilator objects."""
    env_bin = str(Path(sys.executable).parent)
    path = os.environ.get("PATH", "")
    if env_bin not in path.split(os.pathsep):
        os.environ["PATH"] = env_bin + os.pathsep + path
    if shutil.which("ccache"):
        os.environ.setdefault("OBJCACHE", "ccache")
    os.environ.setdefault("AMARANTH_USE_YOSYS", "builtin")


def verilator_makeflags(opt):
    """Set MAKEFLAGS for a Verilator build: no precompiled headers, C++ optimisation ``opt``.

    Precompiled headers are off. The PyPI wheel's verilated.mk leaves CFG_CXXFLAGS_PCH_I
    empty, so the "-include <pch>" flag becomes a stray input file; and with it supplied,
    parallel make sometimes builds the same .gch twice at once, which crashed gcc reading it.
    Every generated .cpp #includes its header anyway: the PCH is only a speed-up. A variable
    in MAKEFLAGS acts like a make command-line override.
    """
    names = ("CFG_CXXFLAGS_PCH_I=", "VK_PCH_I_FAST=", "VK_PCH_I_SLOW=", "OPT_FAST=", "OPT_SLOW=", "OPT_GLOBAL=")
    flags = [f for f in os.environ.get("MAKEFLAGS", "").split() if not f.startswith(names)]
    # The "slow" files are one-time construction code (the VPI symbol table): -O0 there. At
    # -O1, g++ spent over 15 minutes on that table's constructor for the 8-lane engine with
    # the 3x3 window convolver (thousands of statements in one function).
    flags += ["VK_PCH_I_FAST=", "VK_PCH_I_SLOW=", f"OPT_FAST={opt}", "OPT_SLOW=-O0", f"OPT_GLOBAL={opt}"]
    os.environ["MAKEFLAGS"] = " ".join(flags)


_KICK = re.compile(r"reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) +(= 0)?;")


def icarus_fixup(text):
    """Make Icarus evaluate every ``always @*`` block once at time 0.

    Yosys gives each module a dummy register, initialised in its declaration, that every
    combinational block reads so that the blocks run at time 0. Icarus 11 applies declaration
    initialisers without an event, so blocks whose inputs never change (an FSM that stays in
    its reset state, say) keep X outputs. Assigning the register from ``initial #0`` instead
    produces the X -> 0 event.
    """
    return _KICK.sub(lambda m: f"reg {m.group(1)} ;\n  initial #0 {m.group(1)} = 1'b0;", text)


def run_quietly(fn, quiet, log):
    """Run ``fn`` with stdout/stderr (including the simulator's) sent to ``log`` when quiet."""
    if not quiet:
        return fn()
    sys.stdout.flush(), sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    with open(log, "ab") as f:
        os.dup2(f.fileno(), 1)
        os.dup2(f.fileno(), 2)
        try:
            return fn()
        finally:
            sys.stdout.flush(), sys.stderr.flush()
            os.dup2(saved[0], 1)
            os.dup2(saved[1], 2)
            os.close(saved[0]), os.close(saved[1])


def _process_start():
    """When this process started (seconds since the epoch), from /proc; ``None`` elsewhere."""
    try:
        with open("/proc/self/stat") as f:
            ticks = int(f.read().rsplit(")", 1)[1].split()[19])      # field 22, starttime
        with open("/proc/stat") as f:
            boot = next(int(line.split()[1]) for line in f if line.startswith("btime"))
        return boot + ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, StopIteration):
        return None


_STARTED = _process_start()
# /proc's boot time is whole seconds: a file saved just before the process started is not news.
_MTIME_SLACK_S = 2.0


def source_digest(*specs):
    """SHA-256 (hex) of the source files a build depends on, so a cached build is redone when
    any of them changes. Each spec is ``"package.module"`` (that module's file) or
    ``"package:glob"`` (files of that package's directory matching ``glob``, recursively with
    ``**``); packages are found by import, so the digest follows the code wherever it lives.

    A RuntimeError if one of them changed after this process started: the process generates
    Verilog from the code it imported, and a build cached under the new files' digest would
    hold the old code's hardware for every later run."""
    h = hashlib.sha256()
    for spec in specs:
        name, _, pattern = spec.partition(":")
        mod = importlib.import_module(name)
        files = sorted(Path(mod.__file__).parent.glob(pattern)) if pattern else [Path(mod.__file__)]
        for f in files:
            h.update(f.read_bytes())
            if _STARTED is not None and f.stat().st_mtime > _STARTED + _MTIME_SLACK_S:
                raise RuntimeError(f"{f} changed after this process started: its simulation build would not "
                                   f"match the file (run again)")
    return h.hexdigest()


def cached_build(bdir, engine, toplevel, make_verilog, stamp, *, opt="-O1", progress=None, extra_sources=(),
                 defines=()):
    """Compile ``make_verilog()`` (the text of ``toplevel``) for ``engine`` in ``bdir`` unless a
    finished build is there. A file lock makes parallel test workers wait for one build;
    ``stamp`` (JSON) marks it finished. ``opt`` is the Verilator C++ optimisation level
    (``SPARSA_VERILATOR_OPT`` overrides it); ``progress`` labels a spinner; ``extra_sources``:
    more Verilog files compiled with it (cell models), with ``defines`` set (Icarus). Returns ``bdir``."""
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
        kwargs = dict(sources=[bdir / f"{toplevel}.v", *extra_sources], hdl_toplevel=toplevel, build_dir=bdir,
                      always=True, includes=sorted({str(Path(p).parent) for p in extra_sources}))
        if engine == "verilator":
            kwargs["build_args"] = ["-Wno-fatal", "-Wno-WIDTHEXPAND", "-Wno-WIDTHTRUNC"]
            verilator_makeflags(os.environ.get("SPARSA_VERILATOR_OPT", opt))
        else:
            kwargs["timescale"] = ("1ns", "1ps")
            # Cell models use SystemVerilog attributes.
            kwargs["build_args"] = ["-g2012", *(f"-D{d}" for d in defines)] if extra_sources else []

        def go():
            run_quietly(lambda: get_runner(engine).build(**kwargs), True, bdir / "build.log")
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
        run_quietly(lambda: get_runner(engine).test(
            hdl_toplevel=toplevel, hdl_toplevel_lang="verilog", test_module=test_module,
            build_dir=bdir, test_dir=work, results_xml=str(xml), extra_env=env), True, work / "sim.log")
    except SystemExit:
        pass
    failed = get_results(xml)[1] if xml.exists() else 1
    if failed:
        log = work / "sim.log"
        raise RuntimeError(f"{what} simulation failed; log tail:\n" + (log.read_text()[-3000:] if log.exists() else ""))
