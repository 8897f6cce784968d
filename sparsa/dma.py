"""The DMA contract of the Linux runtime, and its adapter for PYNQ's AXI DMA driver.

The EIE SoC streams activations: the board's AXI DMA moves the input from memory into
``s_axis`` (MM2S) and the result from ``m_axis`` into memory (S2MM). :class:`LinuxBackend
<sparsa.runtime.LinuxBackend>` drives any object with these methods, none of which may block
for long (the runtime owns the one deadline, so that its timeout really fires):

``send(data: bytes)``
    Start the host-to-engine transfer of ``data``.
``start_recv(nbytes: int)``
    Arm the engine-to-host transfer of ``nbytes`` (before the run starts).
``recv_done() -> bool``
    Whether the receive transfer has completed; raise :class:`DMAError` on a DMA error.
``recv_data() -> bytes``
    The received bytes, once ``recv_done()`` (cache invalidated first on non-coherent ports).
``reset()``
    Stop both channels and make them ready for the next transfer (the runtime's abort).

:class:`PynqDma` is that contract over ``pynq.lib.dma.DMA`` (an overlay's ``axi_dma_0``) with
buffers from ``pynq.allocate``, flushed before MM2S and invalidated after S2MM (HP ports on the
Zynq-7000 are not cache-coherent). It has not been run on a board: it follows PYNQ's documented
driver API (``transfer``, ``idle``, ``error``, ``start``, the IP's ``read``/``write``) and is tested here against a
stand-in of that API.
"""

import numpy as np

__all__ = ["DMAError", "PynqDma"]

_MM2S_DMACR, _DMACR_RESET = 0x00, 1 << 2     # PG021, "MM2S_DMACR (MM2S DMA Control Register)"
_RESET_POLLS = 1000


class DMAError(RuntimeError):
    """The DMA reported an error (a decode or slave error on its memory port, an internal error)."""


class PynqDma:
    """The runtime's DMA contract over a PYNQ AXI DMA. ``allocate``: PYNQ's ``allocate``
    (imported from ``pynq`` when not given); ``capacity``: bytes per buffer."""

    def __init__(self, dma, capacity=1 << 16, allocate=None):
        if allocate is None:
            from pynq import allocate     # only on a board image with PYNQ
        self.dma = dma
        self.inbuf = allocate(shape=(capacity,), dtype=np.uint8)
        self.outbuf = allocate(shape=(capacity,), dtype=np.uint8)
        self.capacity = capacity
        self._nbytes = 0

    def _fits(self, nbytes, what):
        if nbytes > self.capacity:
            raise ValueError(f"PynqDma: {what}: {nbytes} bytes, the buffers hold {self.capacity} "
                             f"(PynqDma(dma, capacity={nbytes}))")

    def send(self, data):
        self._fits(len(data), "send")
        self.inbuf[:len(data)] = np.frombuffer(data, np.uint8)
        self.inbuf.flush()
        self.dma.sendchannel.transfer(self.inbuf, nbytes=len(data))

    def start_recv(self, nbytes):
        self._fits(nbytes, "receive")
        self._nbytes = nbytes
        self.dma.recvchannel.transfer(self.outbuf, nbytes=nbytes)

    def recv_done(self):
        for name in ("sendchannel", "recvchannel"):
            if getattr(self.dma, name).error:
                raise DMAError(f"AXI DMA {name}: the channel reports an error (DMASR error bits set)")
        return bool(self.dma.recvchannel.idle)

    def recv_data(self):
        self.outbuf.invalidate()
        return bytes(self.outbuf[:self._nbytes])

    def reset(self):
        # PG021 (AXI DMA), register space: MM2S_DMACR bit 2 is a soft reset of the whole core,
        # both channels; it reads 1 until the reset is done. Channels come back halted, so
        # restart them (PYNQ's start() sets RS and waits for the channel to run).
        self.dma.write(_MM2S_DMACR, _DMACR_RESET)
        for _ in range(_RESET_POLLS):
            if not self.dma.read(_MM2S_DMACR) & _DMACR_RESET:
                break
        else:
            raise DMAError("AXI DMA: the soft reset (MM2S_DMACR.Reset) did not complete")
        for ch in (self.dma.sendchannel, self.dma.recvchannel):
            ch.start()
