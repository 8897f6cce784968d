"""The activation streams over PCIe: Xilinx's XDMA (DMA/Bridge Subsystem for PCIe, PG195) in
AXI-Stream mode, through the character devices of Xilinx's Linux driver (``dma_ip_drivers``,
``XDMA/linux-kernel``).

The KU060 PCIe card design puts the EIE SoC behind an XDMA. The driver publishes, per card:

``/dev/xdma0_user``
    The AXI-Lite BAR: the SoC's registers, mapped at offset 0 (:class:`LinuxBackend
    <sparsa.runtime.LinuxBackend>` maps it like any register file).
``/dev/xdma0_h2c_0``
    Host to card: one ``write()`` is one stream packet (tlast on its last beat); it blocks
    until the descriptors complete.
``/dev/xdma0_c2h_0``
    Card to host: one ``read()`` receives one stream packet; it blocks until tlast or until the
    requested length has arrived. Opened with ``O_TRUNC``, the driver's "eop_flush" mode, so
    that a read ends at tlast even when it spans several descriptors (the driver's own
    ``dma_from_device -e`` does the same). The driver lets one process at a time open it.

:class:`XdmaStreams` is the runtime's DMA contract (:mod:`sparsa.dma`) over the two stream
devices, and :func:`xdma_backend` the whole backend::

    acc = Accelerator("pack_dir", backend=xdma_backend("/dev/xdma0"))

Never run on a card: it follows the driver's source (``cdev_sgdma.c``, ``libxdma.c``) and is
tested here against FIFOs, ``/dev/full``, ``/dev/zero`` and a pseudo-terminal standing in for
the devices.
"""

import errno
import mmap
import os
import stat
import threading
from concurrent.futures import Future

from sparsa.dma import DMAError
from sparsa.runtime import LinuxBackend
from sparsa.sw.errors import UserError

__all__ = ["XdmaStreams", "xdma_backend"]

H2C, C2H = "h2c", "c2h"
_FLAGS = {H2C: os.O_WRONLY, C2H: os.O_RDONLY | os.O_TRUNC}      # O_TRUNC on C2H: eop_flush
_DRIVER_TIMEOUT = {H2C: "h2c_timeout", C2H: "c2h_timeout"}     # xdma module parameters, 10 s by default


class XdmaStreams:
    """The runtime's DMA contract (:mod:`sparsa.dma`) over the XDMA driver's stream devices
    ``{device}_h2c_{channel}`` (written) and ``{device}_c2h_{channel}`` (read).

    The driver's ``read`` and ``write`` block until the transfer is done, and the contract may
    not block: each transfer runs on its own daemon thread, on its own duplicate of the file
    descriptor and its own page-aligned buffer (the driver refuses stream buffers below the
    engine's address alignment), and ``recv_done`` polls it. ``recv_done`` is true once the
    receive and the send both completed, so that a send never overlaps the previous one. A
    failed transfer (an ``OSError`` from the driver: ``ETIMEDOUT`` when the driver's own timeout
    fired, ``EIO`` on an engine error) raises :class:`~sparsa.dma.DMAError` naming the device.

    Packets: a write shorter than the packet, and a read that ends short of ``nbytes`` (tlast
    came early), are DMA errors naming both counts. On a character device one ``read`` is the
    whole packet (reading again would wait for the next packet); on anything else (the tests'
    FIFOs, which have no packet boundaries) reads repeat until ``nbytes`` or end of file. A
    packet longer than ``nbytes`` is not seen here: its tail stays in the engine and arrives at
    the start of the next read.
    """

    def __init__(self, device="/dev/xdma0", channel=0):
        self.path = {H2C: f"{device}_h2c_{channel}", C2H: f"{device}_c2h_{channel}"}
        self._fd = {H2C: None, C2H: None}
        self._one_read = False
        self._send = self._recv = None
        self._stale = {}                     # side -> an abandoned transfer's future
        for side in (H2C, C2H):
            try:
                self._open(side)
            except OSError as e:
                self._close_files()
                raise _open_error(self.path[side], e) from None

    # The contract (sparsa.dma); none of these blocks.

    def send(self, data):
        """Start writing ``data`` to the card as one packet."""
        view = memoryview(data).cast("B")
        if not view.nbytes:
            raise ValueError(f"{self.path[H2C]}: send: expected at least 1 byte, found 0")
        _idle(self._send, self.path[H2C], "send")
        fd = self._ensure(H2C)
        buf = _aligned(view.nbytes)
        buf[:] = view
        self._send = _spawn(_guarded, self.path[H2C], "send", _write_packet, os.dup(fd), buf)

    def start_recv(self, nbytes):
        """Start reading one packet of ``nbytes`` from the card."""
        if nbytes < 1:
            raise ValueError(f"{self.path[C2H]}: receive: expected at least 1 byte, found {nbytes}")
        _idle(self._recv, self.path[C2H], "receive")
        fd = self._ensure(C2H)
        self._recv = _spawn(_guarded, self.path[C2H], "receive", _read_packet, os.dup(fd), _aligned(nbytes),
                            self._one_read)

    def recv_done(self):
        """Whether the receive (and the send) completed; a failed one raises its DMAError."""
        for fut in (self._send, self._recv):
            if fut is not None and fut.done() and fut.exception() is not None:
                raise fut.exception()
        return self._recv is not None and self._recv.done() and (self._send is None or self._send.done())

    def recv_data(self):
        """The received packet, once ``recv_done()``."""
        if not self.recv_done():
            raise DMAError(f"{self.path[C2H]}: recv_data: the receive has not completed (poll recv_done first)")
        return self._recv.result(timeout=0)         # never blocks, whatever recv_done said

    def reset(self):
        """Abandon the transfers in flight, close both devices and reopen them.

        A read or write blocked in the driver cannot be cancelled from user space: its thread is
        left behind (a daemon, never joined), still holding its own file descriptor, and ends
        when the driver's own timeout fires (module parameters ``h2c_timeout`` /
        ``c2h_timeout``, in seconds, 10 by default, ``sgdma_timeout`` in older releases;
        ``modprobe xdma c2h_timeout=1`` shortens it; 0 means never, and then the device stays
        unusable here until the process exits). Until
        then that device stays closed here, because the driver allows one open of a C2H stream
        and would hand the abandoned read the next packet: ``send`` / ``start_recv`` raise a
        :class:`~sparsa.dma.DMAError` saying so, and :meth:`stale` lists such devices. The next
        transfer starts on the reopened devices with a new buffer. Never raises (the runtime
        calls it while aborting): a device that does not reopen is retried, and its error
        raised, by the next transfer on it.
        """
        for side, fut in ((H2C, self._send), (C2H, self._recv)):
            if fut is not None and not fut.done():
                self._stale[side] = fut
        self._send = self._recv = None
        self._close_files()
        for side in (H2C, C2H):
            try:
                self._ensure(side)
            except DMAError:
                pass

    # Beyond the contract.

    def stale(self):
        """The device paths on which a transfer abandoned by :meth:`reset` is still in the driver."""
        return [self.path[side] for side, fut in self._stale.items() if not fut.done()]

    def close(self):
        """Close both devices; transfers in flight are abandoned as by :meth:`reset`."""
        self._send = self._recv = None
        self._close_files()

    # Internals.

    def _open(self, side):
        fd = os.open(self.path[side], _FLAGS[side])
        if side == C2H:
            self._one_read = stat.S_ISCHR(os.fstat(fd).st_mode)
        self._fd[side] = fd
        return fd

    def _ensure(self, side):
        """The open descriptor of ``side``, reopened after a reset once nothing is left in the driver."""
        if self._fd[side] is not None:
            return self._fd[side]
        stale = self._stale.get(side)
        if stale is not None and not stale.done():
            raise DMAError(f"{self.path[side]}: a transfer abandoned by reset() is still blocked in the driver; "
                           f"the device reopens when the driver's timeout (xdma module parameter "
                           f"{_DRIVER_TIMEOUT[side]}, 10 s by default) ends it")
        self._stale.pop(side, None)
        try:
            return self._open(side)
        except OSError as e:
            raise DMAError(f"{self.path[side]}: reopening after reset: {e}") from e

    def _close_files(self):
        for side, fd in self._fd.items():
            if fd is not None:
                os.close(fd)
                self._fd[side] = None


def xdma_backend(device="/dev/xdma0", channel=0, **kw):
    """A :class:`~sparsa.runtime.LinuxBackend` on an XDMA card: the registers in
    ``{device}_user`` (the AXI-Lite BAR), the streams on DMA channel ``channel``. ``kw`` as for
    ``LinuxBackend`` (``timeout_s``; ``offset``: the registers' offset in the BAR, if not 0)."""
    streams = XdmaStreams(device, channel)
    user = f"{device}_user"
    try:
        if not os.path.exists(user):
            raise _missing(user)
        return LinuxBackend(user, dma=streams, **kw)
    except BaseException:
        streams.close()
        raise


def _missing(path):
    return UserError(f"{path}: XDMA device: expected a character device of Xilinx's XDMA driver, found none "
                     f"(load the driver: modprobe xdma, built from dma_ip_drivers XDMA/linux-kernel)")


def _open_error(path, e):
    """The one-line UserError of a device that does not open."""
    if isinstance(e, FileNotFoundError):
        return _missing(path)
    hint = {errno.EBUSY: " (another process has it open: the driver allows one reader per C2H channel)",
            errno.EACCES: " (run as root, or install the driver's udev rules)"}.get(e.errno, "")
    return UserError(f"{path}: XDMA device: expected to open it, found {e.strerror or e}{hint}")


def _idle(fut, path, what):
    """Refuse a transfer while the previous one in the same direction is still running."""
    if fut is not None and not fut.done():
        raise DMAError(f"{path}: {what}: the previous {what} is still in the driver")


def _aligned(nbytes):
    """A page-aligned buffer of ``nbytes`` (anonymous memory; a new one per transfer, so an
    abandoned transfer that completes late writes only into its own)."""
    return mmap.mmap(-1, nbytes)


def _spawn(fn, *args):
    """Run ``fn(*args)`` on a daemon thread; its Future. Not a ThreadPoolExecutor: those threads
    are joined at interpreter exit, which would wait out a transfer stuck in the driver."""
    fut = Future()
    fut.set_running_or_notify_cancel()

    def run():
        try:
            fut.set_result(fn(*args))
        except BaseException as e:          # handed to the polling thread
            fut.set_exception(e)

    threading.Thread(target=run, name=f"xdma-{fn.__name__}", daemon=True).start()
    return fut


def _guarded(path, what, transfer, fd, *args):
    """``transfer(fd, *args)`` on the worker's own descriptor, closed when it ends; an OSError
    from the driver becomes a DMAError naming the device."""
    try:
        return transfer(fd, *args)
    except OSError as e:
        raise DMAError(f"{path}: XDMA {what} failed: {e}") from e
    except DMAError as e:
        raise DMAError(f"{path}: {what}: {e}") from None
    finally:
        os.close(fd)


def _write_packet(fd, buf):
    """One ``write``: one packet, tlast on its last byte."""
    n = len(buf)
    done = os.write(fd, memoryview(buf))
    if done != n:
        raise DMAError(f"short write: expected {n} bytes, found {done} written")


def _read_packet(fd, buf, one_read):
    """Read ``len(buf)`` bytes into ``buf`` (``read(2)`` straight into the aligned buffer);
    stop after one read when ``one_read``, or at end of file."""
    nbytes, got = len(buf), 0
    view = memoryview(buf)
    with open(fd, "rb", buffering=0, closefd=False) as f:
        while got < nbytes:
            n = f.readinto(view[got:])
            if not n:
                break
            got += n
            if one_read:
                break
    if got != nbytes:
        raise DMAError(f"short packet: expected {nbytes} bytes, found {got} (tlast came early)")
    return bytes(buf[:nbytes])
