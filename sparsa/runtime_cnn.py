"""Host runtime of the CNN engine on Linux: :class:`CNNLinuxBackend`.

The CNN SoC (``hw/cnn/soc.py``) fetches its program, weights and activations itself through
its AXI4 master, so the host needs no DMA: one physically contiguous buffer holds the pack's
``dram.bin``, DRAM_BASE points the engine at it, and per input the host writes the image at
the program's input address, starts the engine, waits for DONE and reads the output.

The buffer is any object shaped like ``pynq.allocate``'s: a uint8 numpy array of at least the
pack's ``dram_size`` with ``physical_address`` (4 KiB aligned), ``flush()`` (before the
engine reads what the CPU wrote) and ``invalidate()`` (before the CPU reads what the engine
wrote): the Zynq HP ports are not cache-coherent. Checks before anything is written: ID is
the CNN SoC's, CONFIG equals the pack's engine configuration and IBUF_BYTES, WBUF_WORDS,
OBUF_DEPTH and PSUM_DEPTH its buffer sizes (the program is compiled for one engine: lanes,
datapaths, weight format, buffers). Never run on a board: tested against a mapped
register file and a stand-in engine (tests/test_runtime_cnn.py).
"""

import time

import numpy as np

from sparsa.hw.cnn.soc import CNN_REGISTERS, CNN_SOC_ID
from sparsa.mmio import MmioRegisters, find_uio, register_base
from sparsa.sw.cnn.pack import load_cnn_pack
from sparsa.sw.errors import UserError

__all__ = ["CNNLinuxBackend", "CNNAccelerator"]

REG = {name: offset for name, offset, _, _ in CNN_REGISTERS}
# The buffer sizes the engine reports, and the pack configuration's field for each.
_BUFFER_REGISTERS = {"IBUF_BYTES": "ibuf_bytes", "WBUF_WORDS": "wbuf_words", "OBUF_DEPTH": "obuf_depth",
                     "PSUM_DEPTH": "psum_depth"}
_START, _ABORT, _BUSY, _DONE = 1, 2, 1, 2
_POLL_S = 1e-4


class CNNLinuxBackend:
    """The CNN SoC's registers (a UIO device named ``uio_name``, ``/dev/mem`` at ``offset``, or
    any file) and the DRAM ``buffer`` (see the module docstring)."""

    def __init__(self, path=None, offset=0, *, buffer, timeout_s=5.0, uio_name="sparsa", sysfs="/sys/class/uio",
                 dev="/dev"):
        if path is None:
            path, _ = find_uio(uio_name, sysfs, dev)
        self.regs = MmioRegisters(path, REG, offset)
        self.where = f"{path}" + (f" at {offset:#x}" if offset else "")
        self.buffer = buffer
        self.timeout_s = timeout_s
        self.prog = None

    @classmethod
    def over(cls, regs, buffer, where, timeout_s=5.0):
        """The backend on registers and a DRAM buffer that are already open: ``regs`` any object
        with ``regs[name]`` reads and writes, ``buffer`` as in the module docstring
        (:func:`sparsa.link.cnn_link_backend`: a board's UART); ``where`` names the device."""
        self = cls.__new__(cls)
        self.regs, self.buffer, self.where, self.timeout_s, self.prog = regs, buffer, where, timeout_s, None
        return self

    def close(self):
        close = getattr(self.regs, "close", None)
        if close is not None:
            close()

    @classmethod
    def from_address_map(cls, path, mem="/dev/mem", **kw):
        """At the base a CNN Vivado tree's ``address_map.json`` records (cell ``accel``)."""
        return cls(mem, offset=register_base(path, "cnn", "CNN SoC"), **kw)

    def check(self, prog, where="pack"):
        """Refuse (one line) a device that is not the CNN SoC, an engine built for another
        configuration, or a buffer that cannot hold the pack; nothing is written first."""
        ident = self.regs["ID"]
        if ident != CNN_SOC_ID:
            raise UserError(f"{self.where}: ID register: expected {CNN_SOC_ID:#010x} ('SCNN', the sparsa CNN SoC), "
                            f"found {ident:#010x}: wrong device or base address; nothing was written")
        config = self.regs["CONFIG"]
        if config != prog.cfg.config_word:
            raise UserError(f"{where}: engine configuration: expected CONFIG {prog.cfg.config_word:#x} (what the "
                            f"pack was compiled for), found {config:#x} on the device at {self.where}: "
                            f"load the bitstream built for this pack")
        for reg, field in _BUFFER_REGISTERS.items():
            want, found = getattr(prog.cfg, field), self.regs[reg]
            if found != want:
                raise UserError(f"{where}: engine {field}: expected {want} (what the pack was compiled for), "
                                f"found {found} in {reg} on the device at {self.where}: load the bitstream "
                                f"built for this pack (one built before the CNN SoC reported its buffers "
                                f"reads 0 there: rebuild it)")
        buf = self.buffer
        if buf.size < prog.dram_size:
            raise UserError(f"{where}: DRAM buffer: expected at least {prog.dram_size} bytes, found {buf.size} "
                            f"(too small by {prog.dram_size - buf.size})")
        addr = int(buf.physical_address)
        if addr % 4096 or addr + prog.dram_size > 1 << 32:
            raise UserError(f"{where}: DRAM buffer physical_address: expected 4 KiB aligned, with the pack's "
                            f"{prog.dram_size} bytes below 4 GiB (DRAM_BASE is 32 bits), found {addr:#x}")

    def load(self, prog, where="pack"):
        self.check(prog, where)
        if self.regs["STATUS"] & _BUSY and not self.abort():
            raise UserError(f"{self.where}: STATUS: expected an idle engine before a load, found BUSY, and "
                            f"CTRL.ABORT did not clear it within {self.timeout_s} s (the engine's bus does not "
                            f"answer): reload the bitstream")
        self.buffer[:prog.dram_size] = np.frombuffer(bytes(prog.dram_image()), np.uint8)
        self.buffer.flush()
        self.regs["DRAM_BASE"] = int(self.buffer.physical_address)
        self.regs["PROG_ADDR"] = 0
        self.regs["IRQ_EN"] = 0
        self.prog = prog

    def run(self, x):
        """``x`` (B, C, H, W) int8 -> ``(outputs, cycles, mac_cycles)``."""
        prog, buf = self.prog, self.buffer
        n_in = int(np.prod(prog.input_shape))
        n_out = int(np.prod(prog.output_shape))
        ys, cycles, macs = [], [], []
        for xi in np.asarray(x, np.int8).reshape((-1,) + tuple(prog.input_shape)):
            # An engine still busy (a run left in flight) would ignore START and keep writing the
            # output buffer, and its late DONE would pass for this input's: abort it first.
            if self.regs["STATUS"] & _BUSY and not self.abort():
                raise UserError(f"{self.where}: STATUS: expected an idle engine before a run, found BUSY, and "
                                f"CTRL.ABORT did not clear it within {self.timeout_s} s (the engine's bus does not "
                                f"answer): reload the bitstream; nothing was written")
            buf[prog.input_addr:prog.input_addr + n_in] = xi.reshape(-1).view(np.uint8)
            buf.flush()
            self.regs["STATUS"] = _DONE
            self.regs["CTRL"] = _START
            self._wait_done()
            buf.invalidate()
            y = np.array(buf[prog.output_addr:prog.output_addr + n_out]).view(np.int8)
            ys.append(y if prog.output_flat else y.reshape(prog.output_shape))
            cycles.append(self.regs["CYCLES"])
            macs.append(self.regs["MAC_CYCLES"])
            self.regs["STATUS"] = _DONE
        return np.stack(ys), np.array(cycles), np.array(macs)

    def abort(self):
        """CTRL.ABORT: the engine stops, completes the bursts it started on the bus and goes
        idle (DONE clear). True once BUSY has cleared, False if it has not within the timeout."""
        self.regs["CTRL"] = _ABORT
        deadline = time.monotonic() + self.timeout_s
        while self.regs["STATUS"] & _BUSY:
            if time.monotonic() > deadline:
                return False
            time.sleep(_POLL_S)
        return True

    def _wait_done(self):
        deadline = time.monotonic() + self.timeout_s
        while not self.regs["STATUS"] & _DONE:
            if time.monotonic() > deadline:
                status = self.regs["STATUS"]
                then = ("the run was aborted (CTRL.ABORT) and the engine is idle" if self.abort() else
                        "CTRL.ABORT did not clear BUSY either (the engine's bus does not answer): reload the bitstream")
                raise TimeoutError(f"{self.where}: no DONE within {self.timeout_s} s (STATUS {status:#x}); {then}")
            time.sleep(_POLL_S)


class CNNAccelerator:
    """A CNN pack on a board: ``CNNAccelerator("pk", backend).run(x)`` -> int8 outputs; after
    ``run``, ``cycles`` and ``mac_cycles`` hold each input's counters."""

    def __init__(self, pack_dir, backend):
        self.prog, _, _ = load_cnn_pack(pack_dir)
        self.backend = backend
        self.cycles = self.mac_cycles = None
        backend.load(self.prog, where=str(pack_dir))

    def run(self, x):
        x = np.asarray(x)
        single = x.ndim == len(self.prog.input_shape)
        y, self.cycles, self.mac_cycles = self.backend.run(x)
        return y[0] if single else y
