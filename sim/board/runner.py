"""Build the board SoC's Verilog once per configuration and serve it on a socket.

``with SimulatedBoard(cfg) as transport:`` builds (cached under ``build/sim/board-...``),
starts the simulation on a worker thread (the simulator is its own process), and returns a
:class:`SocketTransport` connected to the SoC's UART: hand it to
:func:`sparsa.link.link_backend`. Leaving the block closes the link, which ends the simulation.
"""

import hashlib
import json
import shutil
import socket
import tempfile
import threading
from dataclasses import asdict
from pathlib import Path

from sparsa.sim.cocotb_job import cache_root, cached_build, source_digest, tool_env

__all__ = ["SimulatedBoard", "SocketTransport", "board_verilog"]

TOPLEVEL = "sparsa_board"


class SocketTransport:
    """The host end of the simulated UART, a transport for :class:`sparsa.link.Link`."""

    def __init__(self, sock, name):
        self.sock, self.name = sock, name
        sock.setblocking(False)

    def write(self, data):
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def read(self):
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return b""
        if not data:
            raise ConnectionError("the simulated board closed the link (see its sim.log)")
        return data

    def close(self):
        self.sock.close()


def board_verilog(cfg, divisor):
    """Verilog of :class:`sparsa.hw.link_soc.LinkSoC` (every PE one shared module)."""
    from amaranth.back import verilog
    from sparsa.hw.eie.pe import ProcessingElement
    from sparsa.hw.eie.top import EIEArray
    from sparsa.hw.eie.verilog import fast_memory_init
    from sparsa.hw.link_soc import LinkSoC
    with fast_memory_init():
        top = verilog.convert(LinkSoC(cfg, divisor), name=TOPLEVEL, emit_src=False)
        pe = verilog.convert(ProcessingElement(cfg), name=EIEArray.PE_MODULE, emit_src=False)
    return top + "\n" + pe


def _build(cfg, divisor, engine):
    h = hashlib.sha256(json.dumps({**asdict(cfg), "divisor": divisor}, sort_keys=True).encode())
    h.update(source_digest("sparsa.hw:**/*.py", "sparsa.sw.eie:*.py", "sparsa.sw.link",
                           "sparsa.sim.board.runner").encode())
    return cached_build(cache_root() / f"board-{engine}-{h.hexdigest()[:16]}", engine, TOPLEVEL,
                        lambda: board_verilog(cfg, divisor), {**asdict(cfg), "divisor": divisor}, opt="-O1")


class SimulatedBoard:
    """See the module docstring. ``divisor``: clock cycles per UART bit; ``faults``: link
    faults to inject (:mod:`sparsa.sim.board.tb`); ``connect_timeout_s``: how long the
    simulator may take to start."""

    def __init__(self, cfg, *, divisor=8, engine="verilator", faults=(), name="sim:board", connect_timeout_s=120):
        self.cfg, self.divisor, self.engine, self.faults, self.name = cfg, divisor, engine, list(faults), name
        self.connect_timeout_s = connect_timeout_s
        self.error = None

    def __enter__(self):
        tool_env()
        bdir = _build(self.cfg, self.divisor, self.engine)
        self.work = Path(tempfile.mkdtemp(prefix="board-sim-", dir=cache_root()))
        path = str(self.work / "uart.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        env = {"SPARSA_LINK_SOCKET": path, "SPARSA_LINK_DIVISOR": str(self.divisor),
               "SPARSA_LINK_FAULTS": json.dumps(self.faults)}
        self.thread = threading.Thread(target=self._simulate, args=(bdir, env), daemon=True)
        self.thread.start()
        server.settimeout(self.connect_timeout_s)
        try:
            conn, _ = server.accept()
        except socket.timeout:
            raise RuntimeError(f"{self.name}: the simulator did not connect within {self.connect_timeout_s} s; "
                               f"see {self.work / 'sim.log'}") from None
        finally:
            server.close()
        self.transport = SocketTransport(conn, self.name)
        return self.transport

    def _simulate(self, bdir, env):
        import os
        import sys
        from cocotb_tools.runner import get_runner
        try:
            get_runner(self.engine).test(
                hdl_toplevel=TOPLEVEL, hdl_toplevel_lang="verilog", test_module="sparsa.sim.board.tb",
                build_dir=bdir, test_dir=self.work, results_xml=str(self.work / "results.xml"),
                extra_env={**env, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)},
                log_file=self.work / "sim.log")
        except BaseException as e:          # reported by __exit__
            self.error = e

    def __exit__(self, exc_type, *exc):
        self.transport.close()
        self.thread.join(timeout=60)
        if exc_type is None and self.error is None:
            shutil.rmtree(self.work, ignore_errors=True)
        elif self.error is not None and exc_type is None:
            raise RuntimeError(f"{self.name}: the simulation failed: {self.error}; see {self.work / 'sim.log'}")
        # on an error the work directory (sim.log) stays for the message that points to it
