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
from pathlib import Path

import numpy as np

from sparsa.sw.eie.memmap import LAYER_FIELDS, build_memory_map
from sparsa.sw.errors import UserError
from sparsa.sw.eie.pack_dir import load_pack

__all__ = ["Accelerator", "LinuxBackend", "MmioRegisters"]


class MmioRegisters:
    """32-bit registers of the SoC wrapper, memory-mapped from ``path`` at ``offset``."""

    def __init__(self, path, offset=0, size=0x1000):
        from sparsa.hw.soc import REGISTERS
        self.reg = {name: off for name, off, _, _ in REGISTERS}
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

    def _load(self, kind, pe, addr, value):
        r = self.regs
        v = int(value) & ((1 << 64) - 1)
        r["LD_KIND"], r["LD_PE"], r["LD_ADDR"] = kind, pe, addr
        r["LD_DATA_LO"], r["LD_DATA_HI"] = v & 0xFFFFFFFF, v >> 32
        r["LD_GO"] = 1

    def load(self, mm):
        from sparsa.hw.eie.pe import LoadKind
        for kind, arrays in ((LoadKind.SPM, mm.spm), (LoadKind.PTR_EVEN, mm.ptr_even),
                             (LoadKind.PTR_ODD, mm.ptr_odd), (LoadKind.BIAS, mm.bias)):
            for k, words in enumerate(arrays):
                for addr, w in enumerate(words):
                    self._load(kind, k, addr, int(np.int64(w)))
        for li, layer in enumerate(mm.layers):
            for fi, value in enumerate(layer.field_values()):
                self._load(LoadKind.LAYER, 0xFFFFFFFF, li * 8 + fi, value)
            for e, c in enumerate(layer.codebook):
                self._load(LoadKind.CODEBOOK, 0xFFFFFFFF, li * 16 + e, int(c) & 0xFFFF)
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
        from sparsa.hw.eie.pe import COUNTERS
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
