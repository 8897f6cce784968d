"""Registers on Linux: a memory-mapped register file, and finding the accelerator's UIO device.

:class:`MmioRegisters` maps 32-bit registers from a UIO device (``/dev/uioN``), ``/dev/mem`` at
the AXI-Lite base address, or any file (the tests map a plain file) and reads and writes them by
name. :func:`find_uio` finds the device by name in sysfs, the way ``uio_pdrv_genirq`` publishes
a device-tree node (``/sys/class/uio/uioN/name`` and ``maps/map0/size``).
"""

import errno
import json
import mmap
import os
from pathlib import Path

import numpy as np

from sparsa.sw.errors import UserError

__all__ = ["MmioRegisters", "find_uio", "register_base"]


class MmioRegisters:
    """32-bit registers ``registers`` (``{name: byte offset}``) mapped from ``path`` at ``offset``."""

    def __init__(self, path, registers, offset=0, size=0x1000):
        self.path = str(path)
        self.offset = offset
        self.reg = registers
        try:
            self._fd = os.open(path, os.O_RDWR | getattr(os, "O_SYNC", 0))
        except OSError as e:
            hint = {errno.EACCES: " (run as root: mapping device registers needs it)",
                    errno.EPERM: " (run as root: mapping device registers needs it)",
                    errno.ENOENT: " (no such device: load the overlay or driver first)"}.get(e.errno, "")
            raise UserError(f"{path}: registers: expected a device or file to open read-write, found "
                            f"{e.strerror or e}{hint}") from None
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


def find_uio(name, sysfs="/sys/class/uio", dev="/dev"):
    """``(device path, map size)`` of the UIO device whose name is ``name``; failing that, of the
    one device whose name starts with it (a node named ``sparsa_soc``). An exact name wins over
    longer ones (``sparsa`` beside ``sparsa_dma``); two or more longer ones and no exact one
    are ambiguous.

    A :class:`UserError` lists the UIO devices that exist when none matches, or the matches
    when more than one does."""
    root = Path(sysfs)
    found, exact, longer = [], [], []
    for entry in sorted(root.glob("uio*"), key=lambda p: (len(p.name), p.name)):
        try:
            have = (entry / "name").read_text().strip()
        except OSError:
            continue
        found.append(f"{entry.name} {have!r}")
        if have == name:
            exact.append(entry)
        elif have.startswith(name):
            longer.append(entry)
    match = exact or longer
    if len(match) > 1:
        raise UserError(f"{root}: UIO device: expected one named {name!r}, found {len(match)}: "
                        f"{', '.join(e.name for e in match)} (pass the device path)")
    if not match:
        raise UserError(f"{root}: UIO device: expected one named {name!r}, found "
                        f"{', '.join(found) if found else 'none'} (load the overlay or device-tree node of "
                        f"docs/boards.md, or pass the device path)")
    entry = match[0]
    try:
        size = int((entry / "maps" / "map0" / "size").read_text().strip(), 16)
    except (OSError, ValueError):
        size = 0x1000
    return Path(dev) / entry.name, size


def register_base(path, engine, soc, cell="accel"):
    """The register base of ``cell`` (``accel``: the accelerator, ``dma``: its AXI DMA) a Vivado
    tree's ``address_map.json`` records, for a tree of ``engine`` (``"eie"``/``"cnn"``; ``soc``
    names it in errors). The file is untrusted: anything else is a one-line UserError."""
    try:
        with open(path) as f:
            amap = json.load(f)
        base, have = amap["cells"][cell]["base"], amap["engine"]
    except (OSError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{path}: expected a sparsa address_map.json with cells.{cell}.base, found "
                        f"{type(e).__name__}: {e}") from None
    if have != engine:
        raise UserError(f"{path}: engine: expected {engine!r} (this runtime drives the {soc}), found {have!r}")
    if amap.get("host") == "pcie-xdma":
        raise UserError(f"{path}: host: expected a Zynq tree's map (registers on the PS's bus), found 'pcie-xdma': "
                        f"a PCIe card's registers are on its XDMA BAR: use sparsa.xdma.xdma_backend('/dev/xdma0')")
    if not isinstance(base, int) or isinstance(base, bool) or not 0 <= base < 1 << 48 or base % 4096:
        raise UserError(f"{path}: cells.{cell}.base: expected a 4 KiB-aligned address below 2**48, found {base!r}")
    return base
