"""sparsa.xdma without a card: FIFOs stand in for the XDMA driver's stream devices
(``xdma0_h2c_0``, ``xdma0_c2h_0``) and a plain file for its user BAR (``xdma0_user``); the test
is the card, reading the input packet from the h2c FIFO and writing the result into the c2h one.
Real character devices stand in where a FIFO cannot: ``/dev/full`` (every write fails),
``/dev/zero`` and a pseudo-terminal (a read that returns less than asked, as the driver does at
tlast). Every wait has a deadline, so a broken transfer fails a test instead of hanging it."""

import mmap
import os
import select
import threading
import time

import numpy as np
import pytest
from eie_cases import independent_golden
from test_runtime import FakeSoC, _pack

from sparsa.dma import DMAError
from sparsa.runtime import Accelerator, LinuxBackend
from sparsa.sw.eie.config import EIEConfig
from sparsa.sw.errors import UserError
from sparsa.xdma import XdmaStreams, xdma_backend

WAIT_S = 2.0


def _until(cond, timeout=WAIT_S):
    """Poll ``cond`` until it holds; fail (never hang) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"not within {timeout} s"
        time.sleep(0.001)


class Fifos:
    """The card's ends of the stand-in devices under ``tmp_path``. The card opens both FIFOs
    O_RDWR, which never blocks on Linux, so the host's O_WRONLY / O_RDONLY opens (which wait
    for the other end of a FIFO; the driver's devices never do) return at once."""

    def __init__(self, tmp_path):
        self.root = tmp_path
        self.device = tmp_path / "xdma0"
        self.h2c_path, self.c2h_path = tmp_path / "xdma0_h2c_0", tmp_path / "xdma0_c2h_0"
        os.mkfifo(self.h2c_path)
        os.mkfifo(self.c2h_path)
        self.h2c = os.open(self.h2c_path, os.O_RDWR)
        self.c2h = os.open(self.c2h_path, os.O_RDWR)
        (tmp_path / "xdma0_user").write_bytes(bytes(mmap.PAGESIZE))
        self.opened = []

    def streams(self):
        s = XdmaStreams(str(self.device))
        self.opened.append(s)
        return s

    def take(self, n, timeout=WAIT_S):
        """The next ``n`` bytes the host sent on h2c (fails after ``timeout``)."""
        out, deadline = bytearray(), time.monotonic() + timeout
        while len(out) < n:
            ready, _, _ = select.select([self.h2c], [], [], max(0.0, deadline - time.monotonic()))
            assert ready, f"the card got {len(out)} of {n} bytes on h2c within {timeout} s"
            out += os.read(self.h2c, n - len(out))
        return bytes(out)

    def give(self, data):
        """Write ``data`` on c2h (at most a pipe buffer, so this never blocks)."""
        assert len(data) <= 4096 and os.write(self.c2h, data) == len(data)

    def close_c2h(self):
        os.close(self.c2h)
        self.c2h = None

    def close(self):
        # The host first; then the card's ends, which ends any read still blocked on c2h (EOF)
        # and any write on h2c (EPIPE), so no thread outlives the test for long.
        for s in self.opened:
            s.close()
        for fd in (self.h2c, self.c2h):
            if fd is not None:
                os.close(fd)


@pytest.fixture(autouse=True)
def no_thread_outlives_the_test():
    """Every transfer thread ends once its test closed the devices (none is left blocked)."""
    yield
    _until(lambda: not [t for t in threading.enumerate() if t.name.startswith("xdma-")])


@pytest.fixture
def fifos(tmp_path):
    card = Fifos(tmp_path)
    yield card
    card.close()


class Card:
    """The engine behind FakeSoC: on START it takes the input packet from h2c, runs the golden
    model and writes the result on c2h (unless ``answer`` is off), then raises DONE."""

    def __init__(self, fifos, soc, pack, cols, answer=True):
        self.fifos, self.soc, self.pack, self.cols, self.answer = fifos, soc, pack, cols, answer
        self.inputs = []
        self.pending = b""

    def x_count(self):
        """X_COUNT: the input values that have come in on h2c (taken without blocking)."""
        while len(self.pending) < 2 * self.cols and select.select([self.fifos.h2c], [], [], 0)[0]:
            self.pending += os.read(self.fifos.h2c, 2 * self.cols - len(self.pending))
        return len(self.pending) // 2

    def started(self):
        assert len(self.pending) == 2 * self.cols, "START before the whole input came in"
        x, self.pending = np.frombuffer(self.pending, "<i2"), b""
        self.inputs.append(x)
        if self.answer:
            self.fifos.give(self.pack.run_golden(x).astype("<i2").tobytes())
        self.soc.finish(600 + len(self.inputs))

    def tick(self):
        pass


class Finisher:
    """An engine that raises DONE on START and leaves the streams alone."""

    def __init__(self, soc):
        self.soc = soc

    def x_count(self):
        return 0

    def started(self):
        self.soc.finish(1)

    def tick(self):
        pass


def _backend(fifos, pack, answer=True, **kw):
    backend = xdma_backend(str(fifos.device), **kw)
    fifos.opened.append(backend.dma)
    soc = FakeSoC(backend.regs, EIEConfig.reusable_for(pack))
    backend.regs = soc
    soc.engine = card = Card(fifos, soc, pack, 17, answer)
    return backend, soc, card


def test_packets_go_to_the_card_and_its_answers_come_back(fifos):
    print("seed=1101")
    rng = np.random.default_rng(1101)
    streams = fifos.streams()
    for n_in, n_out in [(34, 18), (1, 1), (5000, 4096), (70001, 3)]:
        data, answer = rng.bytes(n_in), rng.bytes(n_out)
        streams.start_recv(n_out)
        streams.send(data)
        assert fifos.take(n_in) == data
        time.sleep(0.01)
        assert not streams.recv_done()           # sent, but the card has not answered yet
        fifos.give(answer)
        _until(streams.recv_done)
        assert streams.recv_data() == answer
    assert streams.stale() == []


def test_a_second_receive_while_one_is_in_flight_is_refused(fifos):
    streams = fifos.streams()
    streams.start_recv(4)
    with pytest.raises(DMAError, match=r"xdma0_c2h_0: receive: the previous receive is still in the driver"):
        streams.start_recv(4)
    with pytest.raises(DMAError, match=r"recv_data: the receive has not completed"):
        streams.recv_data()


def test_linux_backend_runs_bit_exact_over_xdma(fifos):
    pack, x = _pack(fifos.root, 1102)
    backend, soc, card = _backend(fifos, pack, timeout_s=2.0)
    assert isinstance(backend, LinuxBackend) and isinstance(backend.dma, XdmaStreams)
    assert backend.where == str(fifos.root / "xdma0_user")
    acc = Accelerator(fifos.root / "pk", backend=backend)
    soc.aborts = 0                               # the load's
    np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))
    np.testing.assert_array_equal(np.array(card.inputs), x)
    assert list(acc.cycles) == [601, 602, 603] and soc.aborts == 0


def test_a_card_that_never_answers_times_out_and_the_streams_recover(fifos):
    pack, x = _pack(fifos.root, 1103)
    backend, soc, card = _backend(fifos, pack, answer=False, timeout_s=0.2)
    acc = Accelerator(fifos.root / "pk", backend=backend)
    soc.aborts = 0                               # the load's
    t0 = time.monotonic()
    with pytest.raises(TimeoutError, match=r"xdma0_user: the DMA's receive did not come within 0.2 s .* the DMA reset"):
        acc.run(x[0])
    assert time.monotonic() - t0 < 1.0 and soc.aborts == 1
    streams = backend.dma
    # The abandoned read still holds c2h, as it would in the driver until its timeout fires.
    assert streams.stale() == [str(fifos.c2h_path)]
    with pytest.raises(DMAError, match=r"xdma0_c2h_0: a transfer abandoned by reset\(\) is still blocked in the "
                                       r"driver; .* c2h_timeout, 10 s by default"):
        streams.start_recv(18)
    fifos.give(bytes(18))                        # ends it (on a card: the driver's timeout)
    _until(lambda: not streams.stale())
    card.answer = True
    np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))
    assert soc.aborts == 2             # the timeout's, and the next job's clean start


def test_a_card_that_closes_c2h_early_is_a_short_packet(fifos):
    streams = fifos.streams()
    streams.start_recv(18)
    fifos.give(bytes(16))
    fifos.close_c2h()                            # end of file after 16 bytes
    with pytest.raises(DMAError, match=r"xdma0_c2h_0: receive: short packet: expected 18 bytes, found 16"):
        _until(streams.recv_done)


def _devices(tmp_path, h2c, c2h):
    """XdmaStreams whose stream devices are the character devices ``h2c`` and ``c2h``."""
    os.symlink(h2c, tmp_path / "xdma0_h2c_0")
    os.symlink(c2h, tmp_path / "xdma0_c2h_0")
    (tmp_path / "xdma0_user").write_bytes(bytes(mmap.PAGESIZE))
    return str(tmp_path / "xdma0")


def test_a_driver_error_in_the_worker_is_a_dma_error_that_aborts(tmp_path):
    # /dev/full fails every write with ENOSPC, as the driver fails a transfer with EIO or
    # ETIMEDOUT; the receive (from /dev/zero) completes, the send's error still surfaces.
    pack, x = _pack(tmp_path, 1104)
    backend = xdma_backend(_devices(tmp_path, "/dev/full", "/dev/zero"), timeout_s=2.0)
    try:
        soc = FakeSoC(backend.regs, EIEConfig.reusable_for(pack))
        backend.regs = soc
        soc.engine = Finisher(soc)
        acc = Accelerator(tmp_path / "pk", backend=backend)
        soc.aborts = 0                           # the load's
        with pytest.raises(DMAError, match=r"xdma0_h2c_0: XDMA send failed: \[Errno 28\] No space left on device"):
            acc.run(x[0])
        assert soc.aborts == 1
        _until(lambda: not backend.dma.stale())     # the receive from /dev/zero, if the reset beat it
    finally:
        backend.dma.close()


def test_on_a_character_device_one_short_read_is_the_whole_packet(tmp_path):
    # A pseudo-terminal's read returns one line, less than asked, like the driver's at tlast:
    # reading again would wait for a packet that never comes.
    master, slave = os.openpty()
    streams = XdmaStreams(_devices(tmp_path, "/dev/null", os.ttyname(slave)))
    try:
        streams.start_recv(8)
        os.write(master, b"abc\n")
        with pytest.raises(DMAError, match=r"xdma0_c2h_0: receive: short packet: expected 8 bytes, found 4"):
            _until(streams.recv_done)
    finally:
        streams.close()
        os.close(master)
        os.close(slave)


def test_a_missing_device_names_it_and_the_driver(tmp_path):
    with pytest.raises(UserError, match=r"xdma7_h2c_0: XDMA device: expected a character device of Xilinx's XDMA "
                                        r"driver, found none \(load the driver: modprobe xdma, built from "
                                        r"dma_ip_drivers XDMA/linux-kernel\)") as e:
        XdmaStreams(str(tmp_path / "xdma7"))
    assert "\n" not in str(e.value)


def test_a_missing_user_bar_names_it(fifos):
    (fifos.root / "xdma0_user").unlink()
    with pytest.raises(UserError, match=r"xdma0_user: XDMA device: expected a character device"):
        xdma_backend(str(fifos.device))
