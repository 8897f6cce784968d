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
from sparsa.sw.eie.protocol import (COUNTERS, CTRL_ABORT, CTRL_START, REG, SOC_ID, STATUS_DONE, config_from_registers,
                                   load_sequence, lstm_step_ctrl, lstm_step_writes, model_id, register_writes)

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
        self._attach(MmioRegisters(path, REG, offset), dma, f"{path}" + (f" at {offset:#x}" if offset else ""),
                     timeout_s)

    def _attach(self, regs, dma, where, timeout_s):
        self.regs, self.dma, self.where, self.timeout_s = regs, dma, where, timeout_s
        self._aborted = False
        self.loaded = None

    @classmethod
    def over(cls, regs, dma, where, timeout_s=1.0):
        """The backend on registers and streams that are already open: ``regs`` any object with
        ``regs[name]`` reads and writes (:class:`sparsa.link.LinkRegisters` for a board's UART),
        ``dma`` the stream contract; ``where`` names the device in messages."""
        self = cls.__new__(cls)
        self._attach(regs, dma, where, timeout_s)
        return self

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

    def load(self, mm, where="pack", reload=False):
        """Check ``mm`` against the device, stop whatever it was doing (a run left busy, a stream
        left half-sent: the DMA is reset and the engine aborted), then load it through the LD_*
        registers (the protocol's load sequence), unless MODEL_ID says the device holds it
        already and ``reload`` is false. ``loaded`` says whether it was written."""
        self.check(mm, where)
        self.abort()
        self._aborted = False             # the load's own abort: nothing of a run to clear after it
        ident = model_id(mm)
        self.loaded = reload or self.regs["MODEL_ID"] != ident
        if self.loaded:
            self.regs["MODEL_ID"] = 0         # a load cut short leaves no claim behind
            for load in load_sequence(mm):
                for name, value in register_writes(load):
                    self.regs[name] = value
            self.regs["MODEL_ID"] = ident
        self.regs["N_LAYERS"] = len(mm.layers)
        self._flush()                     # posted writes (a UART link) reach the board now

    def _need_dma(self):
        if self.dma is None:
            raise UserError("LinuxBackend.run: the activation streams need an AXI DMA: pass dma=<object with "
                            "the contract of sparsa.dma, e.g. sparsa.dma.PynqDma(overlay.axi_dma_0)>")

    def run(self, x, rows):
        """Run each input vector of int16 ``x`` ((cols,) or (batch, cols)) as one job; the
        outputs (batch, ``rows``) and the cycles of each."""
        self._need_dma()
        ys, cycles = [], []
        for xi in np.atleast_2d(x):
            deadline = self._begin(rows, send=np.asarray(xi, "<i2").tobytes())
            self._wait_input(len(xi), deadline)
            ys.append(self._finish(rows, CTRL_START, deadline))
            cycles.append(self.regs["CYCLES"])
        return np.array(ys, dtype=np.int16), np.array(cycles)

    def run_lstm(self, x, x_base, rows, pes):
        """Run the loaded LSTM over int16 ``x`` (T, I) from zero state, one step per row
        (the protocol's :func:`~sparsa.sw.eie.protocol.lstm_step_writes`: x_t through LD_* at
        ``x_base``, since the stream would write over y_{t-1}; START with LSTM_CLEAR on step 0;
        y_t, ``rows`` values, over the DMA). Outputs (T, rows) and cycles."""
        self._need_dma()
        ys, cycles = [], []
        for t, xt in enumerate(np.atleast_2d(x)):
            for name, value in lstm_step_writes(xt, t, x_base, pes, rows):
                self.regs[name] = value
            deadline = self._begin(rows)
            ys.append(self._finish(rows, lstm_step_ctrl(t), deadline))
            cycles.append(self.regs["CYCLES"])
        return np.array(ys, dtype=np.int16), np.array(cycles)

    def _begin(self, rows, send=None):
        """Clear DONE and stray input, arm the receive, start the send; the job's deadline. A
        failure here stops the DMA and the engine (nothing is left armed) before it is raised."""
        self.regs["STATUS"] = STATUS_DONE                 # a DONE left from before is not this run's
        if self._aborted or self.regs["X_COUNT"]:
            # Beats of an aborted transfer may have come in late, or sit in converters on the way:
            # ABORT again clears X_COUNT and the engine's input position, and flushes the
            # converters (axis_resetn), now that the DMA has let go of the old transfer.
            self.regs["CTRL"] = CTRL_ABORT
            self._aborted = False
        deadline = time.monotonic() + self.timeout_s
        try:
            self.dma.start_recv(2 * rows)
            if send is not None:
                self.dma.send(send)
        except BaseException:
            self.abort()
            raise
        return deadline

    def _wait_input(self, n, deadline):
        """Wait until the engine has taken all ``n`` input values (X_COUNT): the engine takes
        input only while idle, and a DMA that reports its send done may still hold beats on the way."""
        def arrived():
            got = self.regs["X_COUNT"]
            if got > n:
                raise DMAError(f"{self.where}: X_COUNT: expected {n} input values, found {got}: the engine "
                               f"took more than was sent")
            return got == n
        self._poll(deadline, arrived, "all the input", recv=False,
                   detail=lambda: f"the engine took {self.regs['X_COUNT']} of {n} input values")

    def _finish(self, rows, ctrl, deadline):
        """START (``ctrl``), wait for DONE and the receive, clear DONE; the output row."""
        self.regs["Y_COUNT"] = rows
        self.regs["CTRL"] = ctrl
        self._poll(deadline, lambda: self.regs["STATUS"] & STATUS_DONE, "DONE from the engine", recv=True)
        y = np.frombuffer(self.dma.recv_data(), "<i2")
        self.regs["STATUS"] = STATUS_DONE
        return y

    def _poll(self, deadline, ready, what, recv, detail=None):
        """Poll ``ready()`` (``what``) and, with ``recv``, the DMA's receive, in either order,
        until both hold or ``deadline``; DMA errors are seen here too. On a timeout or a DMA
        error, abort (DMA reset, CTRL.ABORT) and raise."""
        done, received = False, not recv
        check = None if recv else getattr(self.dma, "check_errors", None)
        while True:
            try:
                if check is not None:
                    check()                       # errors only: the output is not due yet
                else:
                    received = bool(self.dma.recv_done()) or received
                done = done or bool(ready())
            except DMAError:
                self.abort()
                raise
            if done and received:
                return
            if time.monotonic() > deadline:
                status = self.regs["STATUS"]
                missing = " and ".join(w for w, ok in ((what, done), ("the DMA's receive", received)) if not ok)
                why = detail() if detail else f"{missing} did not come"
                self.abort()
                raise TimeoutError(f"{self.where}: {why} within {self.timeout_s} s (STATUS was {status:#x}); "
                                   f"the engine was aborted (CTRL.ABORT) and the DMA reset")
            time.sleep(_POLL_S)

    def abort(self):
        """Stop a run: reset the DMA's channels, then CTRL.ABORT (the model stays loaded). In
        this order: an idle engine takes input beats, so the stream must stop first."""
        self._aborted = True
        try:
            if self.dma is not None:
                self.dma.reset()
        finally:
            self.regs["CTRL"] = CTRL_ABORT        # even if the DMA's reset failed
            self._flush()

    def _flush(self):
        flush = getattr(self.regs, "flush", None)
        if flush is not None:
            flush()

    def close(self):
        """Unmap the registers and close the DMA (if it can be closed); the device keeps its model."""
        for obj in (self.regs, self.dma):
            close = getattr(obj, "close", None)
            if close is not None:
                close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def counter(self, pe, index):
        self.regs["STAT_SEL"] = pe * len(COUNTERS) + index
        return self.regs["STAT"]


class Accelerator:
    """A pack on an engine: ``Accelerator("pack_dir").run(x)`` -> int16 outputs.

    ``backend``: ``"sim"`` (Verilator), ``"icarus"``, or a :class:`LinuxBackend`, which loads
    the pack unless the device holds it already (MODEL_ID; ``reload=True`` loads anyway). After
    ``run``, ``cycles`` holds the cycles of each input.
    """

    def __init__(self, pack_dir, backend="sim", reload=False):
        self.pack = load_pack(pack_dir)
        self.mm = build_memory_map(self.pack)
        self.backend = backend
        self.cycles = None
        self.stats = None
        if isinstance(backend, LinuxBackend):
            backend.load(self.mm, where=str(pack_dir), reload=reload)
        elif backend not in ("sim", "icarus"):
            raise UserError(f"Accelerator: backend: expected 'sim', 'icarus' or a LinuxBackend, found {backend!r}")

    def run(self, x):
        """Outputs of int16 ``x``: (cols,) or (batch, cols); for an LSTM pack, the sequence
        (T, inputs) from zero state, one output row per step."""
        x = np.asarray(x, dtype=np.int16)
        cols = self.pack.lstm["inputs"] if self.pack.lstm else self.mm.layers[0].cols
        if x.ndim not in (1, 2) or x.shape[-1] != cols:
            raise UserError(f"Accelerator.run: x: expected int16 of shape (cols,) or (batch, cols) with "
                            f"cols = {cols} (the pack's input length), found shape {x.shape}")
        lstm = self.pack.lstm
        if isinstance(self.backend, LinuxBackend):
            if lstm:
                y, self.cycles = self.backend.run_lstm(x, lstm["outputs_pad"] // self.pack.pes,
                                                       lstm["outputs_pad"], self.pack.pes)
                return y[:, :lstm["outputs"]] if x.ndim == 2 else y[0, :lstm["outputs"]]
            y, self.cycles = self.backend.run(x, self.pack.output_rows)
            return y if x.ndim == 2 else y[0]
        from sparsa.sim.eie.runner import run_lstm, run_memory_map
        from sparsa.sw.eie.config import EIEConfig
        engine = "verilator" if self.backend == "sim" else "icarus"
        if lstm:
            res = run_lstm(self.pack, np.atleast_2d(x), engine=engine)
            res["y"] = res["y"] if x.ndim == 2 else res["y"][0]
        else:
            res = run_memory_map(self.mm, x, engine=engine, cfg=EIEConfig.reusable_for(self.mm))
        self.cycles = res["cycles"]
        self.stats = res["layer_stats"]
        return res["y"]
