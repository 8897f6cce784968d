"""Host runtime: ``Accelerator`` loads a pack, runs inputs and reads the counters.

Backends:

* ``"sim"`` (default): the generated Verilog under cocotb/Verilator (:mod:`sparsa.sim.eie.runner`),
  bit-exact with the hardware; ``run`` returns outputs and cycle counts.
* :class:`LinuxBackend`: a board running the SoC wrapper (``hw/soc.py``). It finds the
  registers (a UIO device by name, ``/dev/mem`` at the AXI-Lite base, or any file: the tests
  map a plain file), checks ID and the build's capacity (CONFIG, CAP_*) against the pack before
  writing anything, loads the model through the ``LD_*`` registers, starts runs and waits for
  DONE and the DMA with one deadline: on timeout it aborts the engine (CTRL.ABORT) and resets
  the DMA, then raises :class:`TimeoutError`. The activation streams go through the board's
  AXI DMA: any object with the contract of :mod:`sparsa.dma` (:class:`sparsa.dma.PynqDma`
  adapts PYNQ's driver).
"""

import time

import numpy as np

from sparsa.dma import DMAError
from sparsa.mmio import MmioRegisters, find_uio, register_base
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.errors import UserError
from sparsa.sw.eie.pack_dir import load_pack
from sparsa.sw.eie.protocol import (COUNTERS, CTRL_ABORT, CTRL_START, REG, SOC_ID, STATUS_BUSY, STATUS_DONE,
                                   config_from_registers, load_sequence, register_writes)

__all__ = ["Accelerator", "LinuxBackend", "MmioRegisters"]

_POLL_S = 1e-5


class LinuxBackend:
    """Drives the SoC wrapper's registers (see the module docstring).

    ``path``: the register device or file; ``None`` finds the UIO device named ``uio_name`` in
    ``sysfs``. ``offset``: the AXI-Lite base address when ``path`` is ``/dev/mem``.
    ``dma``: the stream mover (:mod:`sparsa.dma`); ``timeout_s``: per input, load excluded.
    """

    def __init__(self, path=None, offset=0, dma=None, timeout_s=1.0, uio_name="sparsa", sysfs="/sys/class/uio",
                 dev="/dev"):
        if path is None:
            path, _ = find_uio(uio_name, sysfs, dev)
        self.regs = MmioRegisters(path, REG, offset)
        self.where = f"{path}" + (f" at {offset:#x}" if offset else "")
        self.dma = dma
        self.timeout_s = timeout_s

    @classmethod
    def from_address_map(cls, path, mem="/dev/mem", **kw):
        """The backend at the register base that a Vivado tree's ``address_map.json`` records
        (cell ``accel``), through ``mem``; ``kw`` as for the constructor."""
        return cls(mem, offset=register_base(path, "eie", "EIE SoC"), **kw)

    def device_config(self):
        """The :class:`~sparsa.sw.eie.config.EIEConfig` the device reports; a :class:`UserError`
        if ID is not the SoC's (a wrong device or base address): nothing is written first."""
        ident = self.regs["ID"]
        if ident != SOC_ID:
            raise UserError(f"{self.where}: ID register: expected {SOC_ID:#010x} ('SPRS', the sparsa EIE SoC), "
                            f"found {ident:#010x}: wrong device or base address; nothing was written")
        return config_from_registers(lambda name: self.regs[name])

    def check(self, mm, where="pack"):
        """Refuse (UserError, one line, by how much) memory map ``mm`` if the device cannot hold it."""
        self.device_config().check_fits(mm, where=f"{where} on the device at {self.where}")

    def load(self, mm, where="pack"):
        """Check ``mm`` against the device, stop a run left busy, then load it through the LD_*
        registers (the protocol's load sequence)."""
        self.check(mm, where)
        if self.regs["STATUS"] & STATUS_BUSY:
            self.abort()
        for load in load_sequence(mm):
            for name, value in register_writes(load):
                self.regs[name] = value
        self.regs["N_LAYERS"] = len(mm.layers)

    def run(self, x, rows):
        if self.dma is None:
            raise UserError("LinuxBackend.run: the activation streams need an AXI DMA: pass dma=<object with "
                            "the contract of sparsa.dma, e.g. sparsa.dma.PynqDma(overlay.axi_dma_0)>")
        ys, cycles = [], []
        for xi in np.atleast_2d(x):
            self.regs["STATUS"] = STATUS_DONE                 # a DONE left from before is not this run's
            self.dma.start_recv(2 * rows)
            self.dma.send(np.asarray(xi, "<i2").tobytes())
            self.regs["Y_COUNT"] = rows
            self.regs["CTRL"] = CTRL_START
            self.wait_done()
            ys.append(np.frombuffer(self.dma.recv_data(), "<i2"))
            cycles.append(self.regs["CYCLES"])
            self.regs["STATUS"] = STATUS_DONE
        return np.array(ys, dtype=np.int16), np.array(cycles)

    def wait_done(self):
        """Wait for DONE and the DMA's receive, in either order, until ``timeout_s``; then abort
        and raise TimeoutError saying which of the two never came."""
        deadline = time.monotonic() + self.timeout_s
        done = received = False
        while True:
            done = done or bool(self.regs["STATUS"] & STATUS_DONE)
            try:
                received = received or self.dma is None or bool(self.dma.recv_done())
            except DMAError:
                self.abort()
                raise
            if done and received:
                return
            if time.monotonic() > deadline:
                status = self.regs["STATUS"]
                self.abort()
                missing = " and ".join(w for w, ok in (("DONE from the engine", done), ("the DMA's receive", received))
                                       if not ok)
                raise TimeoutError(f"{self.where}: no {missing} within {self.timeout_s} s (STATUS was "
                                   f"{status:#x}); the engine was aborted (CTRL.ABORT) and the DMA reset")
            time.sleep(_POLL_S)

    def abort(self):
        """Stop a run: reset the DMA's channels, then CTRL.ABORT (the model stays loaded). In
        this order: an idle engine takes input beats, so the stream must stop first."""
        try:
            if self.dma is not None:
                self.dma.reset()
        finally:
            self.regs["CTRL"] = CTRL_ABORT        # even if the DMA's reset failed

    def counter(self, pe, index):
        self.regs["STAT_SEL"] = pe * len(COUNTERS) + index
        return self.regs["STAT"]


class Accelerator:
    """A pack on an engine: ``Accelerator("pack_dir").run(x)`` -> int16 outputs.

    ``backend``: ``"sim"`` (Verilator), ``"icarus"``, or a :class:`LinuxBackend`. After
    ``run``, ``cycles`` holds the cycles of each input.
    """

    def __init__(self, pack_dir, backend="sim"):
        self.pack = load_pack(pack_dir)
        self.mm = build_memory_map(self.pack)
        self.backend = backend
        self.cycles = None
        self.stats = None
        if isinstance(backend, LinuxBackend):
            backend.load(self.mm, where=str(pack_dir))
        elif backend not in ("sim", "icarus"):
            raise UserError(f"Accelerator: backend: expected 'sim', 'icarus' or a LinuxBackend, found {backend!r}")

    def run(self, x):
        x = np.asarray(x, dtype=np.int16)
        if isinstance(self.backend, LinuxBackend):
            y, self.cycles = self.backend.run(x, self.pack.output_rows)
            return y if x.ndim == 2 else y[0]
        from sparsa.sim.eie.runner import run_memory_map
        from sparsa.sw.eie.config import EIEConfig
        engine = "verilator" if self.backend == "sim" else "icarus"
        res = run_memory_map(self.mm, x, engine=engine, cfg=EIEConfig.reusable_for(self.mm))
        self.cycles = res["cycles"]
        self.stats = res["layer_stats"]
        return res["y"]
