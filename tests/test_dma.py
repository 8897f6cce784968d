"""sparsa.dma.PynqDma against a stand-in of PYNQ's AXI DMA driver API (``transfer``, ``idle``,
``error``, ``start``, the IP's ``read``/``write``) and ``allocate`` buffers that record cache
maintenance. Not a board run: what is checked is the order of flush, transfer, invalidate and
the reset sequence of PG021."""

import numpy as np
import pytest

from sparsa.dma import DMAError, PynqDma


class Buffer(np.ndarray):
    def flush(self):
        self.log.append(("flush", bytes(self[:8])))

    def invalidate(self):
        self.log.append(("invalidate",))


class Channel:
    def __init__(self, name, log):
        self.name, self.log = name, log
        self.idle, self.error = True, False

    def transfer(self, buf, nbytes=0):
        self.log.append((self.name, "transfer", nbytes))
        self.idle = False

    def start(self):
        self.log.append((self.name, "start"))


class Dma:
    def __init__(self, log):
        self.log = log
        self.sendchannel, self.recvchannel = Channel("send", log), Channel("recv", log)
        self.dmacr = 0
        self.reset_reads = 0

    def write(self, offset, value):
        self.log.append(("write", offset, value))
        self.dmacr = value

    def read(self, offset):
        assert offset == 0x00
        self.reset_reads += 1
        if self.reset_reads >= 3:         # the reset bit clears after a few reads
            self.dmacr &= ~4
        return self.dmacr


def _pynq(capacity=64):
    log = []

    def allocate(shape, dtype):
        b = np.zeros(shape, dtype).view(Buffer)
        b.log = log
        return b
    dma = Dma(log)
    return PynqDma(dma, capacity=capacity, allocate=allocate), dma, log


def test_send_flushes_before_the_transfer_and_recv_invalidates_before_reading():
    p, dma, log = _pynq()
    p.start_recv(6)
    p.send(np.arange(4, dtype="<i2").tobytes())
    assert log == [("recv", "transfer", 6), ("flush", np.arange(4, dtype="<i2").tobytes()), ("send", "transfer", 8)]
    assert not p.recv_done()
    p.outbuf[:6] = [1, 0, 2, 0, 255, 255]
    dma.recvchannel.idle = True
    assert p.recv_done()
    assert np.frombuffer(p.recv_data(), "<i2").tolist() == [1, 2, -1]
    assert log[-1] == ("invalidate",)


def test_a_channel_error_is_a_dma_error():
    p, dma, _ = _pynq()
    dma.sendchannel.error = True
    with pytest.raises(DMAError, match="sendchannel"):
        p.recv_done()


def test_reset_is_the_pg021_soft_reset_then_both_channels_restart():
    p, dma, log = _pynq()
    p.reset()
    assert log == [("write", 0x00, 4), ("send", "start"), ("recv", "start")]
    assert dma.reset_reads == 3


def test_a_transfer_larger_than_the_buffers_is_refused():
    p, _, _ = _pynq(capacity=16)
    with pytest.raises(ValueError, match=r"send: 18 bytes, the buffers hold 16 \(PynqDma\(dma, capacity=18\)\)"):
        p.send(bytes(18))
