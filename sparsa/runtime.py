"""Host runtime: ``Accelerator`` loads a pack, runs inputs and reads the counters.

Backends:

* ``"sim"`` (default): the generated Verilog under cocotb/Verilator (:mod:`sparsa.sim.eie.runner`),
  bit-exact with the hardware; ``run`` returns outputs and cycle counts.
* :class:`LinuxBackend`: a board running the SoC wrapper (``hw/soc.py``). Registers are
  memory-mapped from a UIO device (``/dev/uioN``), ``/dev/mem`` at the AXI-Lite base address,
  or any file (the tests map a plain file). It loads the model through the ``LD_*`` registers,
  starts runs, waits for DONE and reads CYCLES and the counters. The activation streams need
  the board's AXI DMA (MM2S into ``s_axis``, S2MM from ``m_axis``) with physically contiguous
  buffers; pass a ``dma`` object with ``send(bytes)`` and ``recv(nbytes) -> bytes``
  (for example over u-dma-buf) -- sparsa does not ship a DMA driver.
"""

import mmap
import os
import time

import numpy as np

from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.errors import UserError
from sparsa.sw.eie.pack_dir import load_pack
from sparsa.sw.eie.protocol import COUNTERS, REG, load_sequence, register_writes

__all__ = ["Accelerator", "LinuxBackend", "MmioRegisters"]


class MmioRegisters:
    """32-bit registers of the SoC wrapper, memory-mapped from ``path`` at ``offset``."""

    def __init__(self, path, offset=0, size=0x1000):
        self.reg = REG
        self._fd = os.open(path, os.O_RDWR | getattr(os, "O_SYNC", 0))
        try:
            self._mm = mmap.mmap(self._fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE, offset=offset)
        except (OSError, ValueError) as e:
            os.close(self._fd)
            raise UserError(f"{path}: registers: expected a mappable device or file of {size} bytes at "
                            f"offset {offset:#x}, found {e}") from None
        self._words = np.frombuffer(self._mm, dtype="<u4")

    def __getitem__(self, name):
        return int(self._words[self.reg[name] // 4])

    def __setitem__(self, name, value):
        self._words[self.reg[name] // 4] = int(value) & 0xFFFFFFFF

    def close(self):
        del self._words
        self._mm.close()
        os.close(self._fd)


class LinuxBackend:
    """Drives the SoC wrapper's registers (see the module docstring)."""

    def __init__(self, path, offset=0, dma=None, timeout_s=1.0):
        self.regs = MmioRegisters(path, offset)
        self.dma = dma
        self.timeout_s = timeout_s

    def load(self, mm):
        """Load memory map ``mm`` through the LD_* registers (the protocol's load sequence)."""
        for load in load_sequence(mm):
            for name, value in register_writes(load):
                self.regs[name] = value
        self.regs["N_LAYERS"] = len(mm.layers)

    def run(self, x, rows):
        if self.dma is None:
            raise UserError("LinuxBackend.run: the activation streams need an AXI DMA: pass dma=<object with "
                            "send(bytes) and recv(nbytes)>")
        ys, cycles = [], []
        for xi in np.atleast_2d(x):
            self.dma.send(np.asarray(xi, "<i2").tobytes())
            self.regs["Y_COUNT"] = rows
            self.regs["CTRL"] = 1
            ys.append(np.frombuffer(self.dma.recv(2 * rows), "<i2"))
            self.wait_done()
            cycles.append(self.regs["CYCLES"])
            self.regs["STATUS"] = 2
        return np.array(ys, dtype=np.int16), np.array(cycles)

    def wait_done(self):
        t0 = time.monotonic()
        while not self.regs["STATUS"] & 2:
            if time.monotonic() - t0 > self.timeout_s:
                raise TimeoutError(f"the accelerator did not finish within {self.timeout_s} s")

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
            backend.load(self.mm)
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
