"""Run one cocotb test module on a built simulator and fail loudly with the log's tail."""

import os
import sys

from .eie_runner import _run_quietly

__all__ = ["run_cocotb_job"]


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
