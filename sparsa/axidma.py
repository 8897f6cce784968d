"""The AXI DMA without PYNQ: a register-level driver and u-dma-buf buffers.

On a board image without PYNQ (PetaLinux, a plain Debian), :class:`AxiDma` drives the AXI
DMA's simple-mode registers (PG021, "Register Space") through ``/dev/mem`` or a UIO device, and
:class:`UdmaBuf` gives physically contiguous buffers from the u-dma-buf kernel module
(``/dev/udmabufN``, its physical address in ``/sys/class/u-dma-buf/udmabufN/phys_addr``).
Together they satisfy the runtime's DMA contract (:mod:`sparsa.dma`)::

    dma = AxiDma("/dev/mem", 0x40400000, UdmaBuf("udmabuf0"), UdmaBuf("udmabuf1"))
    backend = LinuxBackend.from_address_map("address_map.json", dma=dma)

A ``UdmaBuf`` is also the CNN runtime's DRAM buffer (``CNNLinuxBackend(buffer=UdmaBuf(...))``).
Cache maintenance: u-dma-buf maps the buffer uncached when it is opened with ``O_SYNC`` (its
``sync_mode`` 1, the default), which ``UdmaBuf`` does, so ``flush`` and ``invalidate`` have
nothing to do. Never run on a board: tested against a register stand-in and a fake sysfs.
"""

import mmap
import os
from pathlib import Path

import numpy as np

from sparsa.dma import DMAError
from sparsa.mmio import MmioRegisters
from sparsa.sw.errors import UserError

__all__ = ["AxiDma", "UdmaBuf", "AXI_DMA_REGISTERS"]

# PG021 "Register Space", simple (direct register) mode, byte offsets.
AXI_DMA_REGISTERS = {"MM2S_DMACR": 0x00, "MM2S_DMASR": 0x04, "MM2S_SA": 0x18, "MM2S_SA_MSB": 0x1C,
                     "MM2S_LENGTH": 0x28, "S2MM_DMACR": 0x30, "S2MM_DMASR": 0x34, "S2MM_DA": 0x48,
                     "S2MM_DA_MSB": 0x4C, "S2MM_LENGTH": 0x58}
RS, RESET = 1 << 0, 1 << 2                       # DMACR: run/stop, soft reset (both channels)
HALTED, IDLE, IOC = 1 << 0, 1 << 1, 1 << 12      # DMASR
ERRORS = {1 << 4: "DMAIntErr", 1 << 5: "DMASlvErr", 1 << 6: "DMADecErr"}
_RESET_POLLS = 1000


class UdmaBuf(np.ndarray):
    """A u-dma-buf buffer as a uint8 array with ``physical_address``, ``flush`` and
    ``invalidate`` (the shape ``pynq.allocate`` gives). ``UdmaBuf("udmabuf0")``."""

    def __new__(cls, name, sysfs="/sys/class/u-dma-buf", dev="/dev"):
        info = Path(sysfs) / name
        try:
            phys = int((info / "phys_addr").read_text().strip(), 16)
            size = int((info / "size").read_text().strip(), 0)
        except (OSError, ValueError) as e:
            raise UserError(f"{info}: u-dma-buf: expected phys_addr and size (load the u-dma-buf module with "
                            f"a buffer named {name}), found {type(e).__name__}: {e}") from None
        path = Path(dev) / name
        try:
            fd = os.open(path, os.O_RDWR | getattr(os, "O_SYNC", 0))     # O_SYNC: an uncached mapping
        except OSError as e:
            raise UserError(f"{path}: u-dma-buf: expected the buffer's device, found {e.strerror}") from None
        try:
            mm = mmap.mmap(fd, size, mmap.MAP_SHARED, mmap.PROT_READ | mmap.PROT_WRITE)
        finally:
            os.close(fd)
        buf = np.frombuffer(mm, dtype=np.uint8).view(cls)
        buf.physical_address = phys
        return buf

    def __array_finalize__(self, obj):
        self.physical_address = getattr(obj, "physical_address", None)

    def flush(self):
        """Nothing to do: the mapping is uncached (see the module docstring)."""

    def invalidate(self):
        """Nothing to do: the mapping is uncached (see the module docstring)."""


class AxiDma:
    """The runtime's DMA contract (:mod:`sparsa.dma`) over the AXI DMA's registers at ``offset``
    of ``path``, sending from ``inbuf`` and receiving into ``outbuf`` (physically contiguous:
    :class:`UdmaBuf` or ``pynq.allocate`` arrays).

    Nothing is written when it is made: the runtime resets it (:meth:`reset`) after it has checked
    the accelerator's ID, so a wrong address is refused before any write."""

    def __init__(self, path, offset, inbuf, outbuf, regs=None):
        self.regs = regs if regs is not None else MmioRegisters(path, AXI_DMA_REGISTERS, offset)
        self.where = f"AXI DMA at {path}" + (f" {offset:#x}" if offset else "")
        self.inbuf, self.outbuf = inbuf, outbuf
        self._nbytes = 0

    @classmethod
    def from_address_map(cls, path, inbuf, outbuf, mem="/dev/mem"):
        """The DMA at the base a Vivado tree's ``address_map.json`` records (cell ``dma``)."""
        from sparsa.mmio import register_base
        return cls(mem, register_base(path, "eie", "EIE SoC", cell="dma"), inbuf, outbuf)

    def _fits(self, buf, nbytes, what):
        if nbytes > buf.size:
            raise ValueError(f"{self.where}: {what}: {nbytes} bytes, the buffer holds {buf.size}")

    def _check(self, channel):
        status = self.regs[f"{channel}_DMASR"]
        bad = [name for bit, name in ERRORS.items() if status & bit]
        if bad:
            raise DMAError(f"{self.where}: {channel}_DMASR {status:#x}: {', '.join(bad)}")
        return status

    def send(self, data):
        self._fits(self.inbuf, len(data), "send")
        self.inbuf[:len(data)] = np.frombuffer(data, np.uint8)
        self.inbuf.flush()
        self._start("MM2S", "SA", self.inbuf.physical_address, len(data))

    def start_recv(self, nbytes):
        self._fits(self.outbuf, nbytes, "receive")
        self._nbytes = nbytes
        self._start("S2MM", "DA", self.outbuf.physical_address, nbytes)

    def _start(self, channel, addr, phys, nbytes):
        self._check(channel)
        self.regs[f"{channel}_DMASR"] = IOC                  # clear the last completion (RW1C)
        self.regs[f"{channel}_{addr}"] = phys & 0xFFFFFFFF
        self.regs[f"{channel}_{addr}_MSB"] = phys >> 32
        self.regs[f"{channel}_LENGTH"] = nbytes              # writing the length starts it

    def recv_done(self):
        self._check("MM2S")
        return bool(self._check("S2MM") & IOC)

    def recv_data(self):
        got = self.regs["S2MM_LENGTH"]                       # bytes actually written (tlast)
        if got != self._nbytes:
            raise DMAError(f"{self.where}: received {got} bytes, expected {self._nbytes} (tlast early or late)")
        self.outbuf.invalidate()
        return bytes(self.outbuf[:self._nbytes])

    def reset(self):
        """PG021 soft reset (either channel's DMACR.Reset resets both), then both channels run."""
        self.regs["MM2S_DMACR"] = RESET
        for _ in range(_RESET_POLLS):
            if not self.regs["MM2S_DMACR"] & RESET:
                break
        else:
            raise DMAError(f"{self.where}: the soft reset (MM2S_DMACR.Reset) did not complete")
        self.regs["MM2S_DMACR"] = RS
        self.regs["S2MM_DMACR"] = RS
