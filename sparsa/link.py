"""The host end of the board link (protocol: :mod:`sparsa.sw.link`): the runtime of
:mod:`sparsa.runtime` over a UART instead of ``/dev/mem`` and an AXI DMA.

* :class:`Link` sends commands and waits for their responses, with retries: a command whose
  response does not come (a frame the board dropped for its CRC or a lost byte, a response lost
  on the way back) is sent again with the same sequence number, which the board answers without
  executing it twice. Register writes are posted (sent in batches); anything else sends them first,
  so the board sees every access in program order.
* :class:`LinkRegisters` (registers by name) and :class:`LinkStreams` (the DMA contract of
  :mod:`sparsa.dma`) over a :class:`Link` are what :class:`~sparsa.runtime.LinuxBackend` drives.
* :class:`LinkMemory`: the CNN board system's on-chip DRAM through its window
  (:mod:`sparsa.hw.cnn.link_soc`), shaped as the DRAM buffer that
  :class:`~sparsa.runtime_cnn.CNNLinuxBackend` drives.
* Transports: :class:`SerialTransport` (pyserial: the board's USB UART), or any object with
  ``name``, ``write(bytes)``, ``read() -> bytes`` (what has arrived, without waiting) and
  ``close()``: the simulated board's socket (:class:`sparsa.sim.board.runner.SocketTransport`).

:func:`link_backend` and :func:`cnn_link_backend` put them together.
"""

import time

import numpy as np

from sparsa.dma import DMAError
from sparsa.sw.eie.protocol import REG
from sparsa.sw.errors import UserError
from sparsa.sw.link import (CMD_SYNC, MAX_READS, MAX_VALUES, MAX_WRITES, RESET_FLAG, RSP_SYNC, Cmd, Status, frame,
                            parse_frame)

__all__ = ["Link", "LinkError", "LinkRegisters", "LinkStreams", "LinkMemory", "SerialTransport", "link_backend",
           "cnn_link_backend"]

_POLL_S = 1e-4


class LinkError(RuntimeError):
    """No valid response after every retry: names the port and the stage."""


class SerialTransport:
    """The board's USB UART through pyserial: ``port`` (``/dev/ttyUSB0``), ``baud``."""

    def __init__(self, port, baud):
        try:
            import serial
        except ImportError:
            raise UserError("--port: the board link needs pyserial: pip install pyserial") from None
        try:
            self.serial = serial.Serial(port, baud, timeout=0)
        except (serial.SerialException, OSError, ValueError) as e:     # ValueError: a baud rate it refuses
            raise UserError(f"{port}: serial port: expected the board's USB UART, found {e}") from None
        self.name = port

    def write(self, data):
        self.serial.write(data)

    def read(self):
        return self.serial.read(self.serial.in_waiting or 1)

    def close(self):
        self.serial.close()


class Link:
    """Commands over ``transport`` (see the module docstring). ``timeout_s``: how long to wait
    for one response before sending the command again; ``retries``: how many times."""

    def __init__(self, transport, timeout_s=0.25, retries=4):
        self.transport, self.timeout_s, self.retries = transport, timeout_s, retries
        self.name = transport.name
        self._seq = 0
        self._open = False
        self.session = 0              # counts the sessions opened (LinkRegisters' held values are per session)
        self._posted = []
        self._rx = b""
        self.bytes_sent = self.bytes_received = 0
        self.resends = 0
        self.answered = 0             # responses so far: a reset flag is expected only on the first
        self.board_was_reset = False  # the first response said the board was reset since its last one

    @property
    def is_open(self):
        """A session is open: every command since its opening was answered."""
        return self._open

    def write(self, offset, value):
        """Post a register write (sent with the next batch or before any other command)."""
        self._posted.append(bytes([offset]) + (int(value) & 0xFFFFFFFF).to_bytes(4, "little"))
        if len(self._posted) == MAX_WRITES:
            self.flush()

    def flush(self):
        if self._posted:
            posted, self._posted = b"".join(self._posted), []
            self._expect(Cmd.WRITE, posted, "register write")

    def command(self, cmd, payload, stage):
        """Send the posted writes, then ``cmd``; its ``(Status, payload)``."""
        self.flush()
        return self._transact(cmd, payload, stage)

    def request(self, cmd, payload, stage):
        """:meth:`command` that must succeed: its payload; any status but OK is a LinkError."""
        self.flush()
        return self._expect(cmd, payload, stage)

    def _expect(self, cmd, payload, stage):
        status, data = self._transact(cmd, payload, stage)
        if status != Status.OK:
            raise LinkError(f"{self.name}: {stage}: the board answered {status.name}")
        return data

    def _transact(self, cmd, payload, stage):
        if not self._open:
            # seq 0 opens the session (the board never takes it for a repeat of an earlier
            # session's command); a READ, so that executing it twice does no harm. Open only
            # once it answered: until then every command goes after a new opening.
            self._seq = 0
            self._send_and_wait(Cmd.READ, b"\x00", "opening the link")
            self._open = True
            self.session += 1
        self._seq = self._seq % 255 + 1               # 1..255, never 0 again
        try:
            return self._send_and_wait(cmd, payload, stage)
        except LinkError:
            self._open = False        # the board may have been replaced or reset: open anew
            raise

    def _send_and_wait(self, cmd, payload, stage):
        f = frame(CMD_SYNC, self._seq, cmd, payload)
        for attempt in range(self.retries + 1):
            if attempt:
                self.resends += 1
            self._rx = b""
            self.transport.write(f)
            self.bytes_sent += len(f)
            deadline = time.monotonic() + self.timeout_s
            while time.monotonic() < deadline:
                try:
                    chunk = self.transport.read()
                except ConnectionError as e:
                    raise LinkError(f"{self.name}: {stage}: {e}") from None
                self.bytes_received += len(chunk)
                self._rx += chunk
                try:
                    got = parse_frame(self._rx, RSP_SYNC)
                except ValueError:
                    break                    # a damaged response: ask again (the board replays it)
                if got is None:
                    if not chunk:
                        time.sleep(_POLL_S)
                    continue
                seq, code, data, self._rx = got
                if seq == self._seq:
                    if code & RESET_FLAG and not self.answered:
                        self.board_was_reset = True      # since the previous session: the model is gone
                    if code & RESET_FLAG and self.answered:
                        raise LinkError(f"{self.name}: {stage}: the board was reset since the previous command "
                                        f"(power, button or reconfiguration): the loaded model and any run in "
                                        f"flight are lost; nothing from this run is returned; load the pack again")
                    self.answered += 1
                    try:
                        return Status(code & ~RESET_FLAG), data
                    except ValueError:
                        raise LinkError(f"{self.name}: {stage}: the board answered status {code}, "
                                        f"which this runtime does not know") from None
                # a late response to an earlier command: keep looking
        raise LinkError(f"{self.name}: {stage}: no valid response in {self.retries + 1} tries of "
                        f"{self.timeout_s} s (does the board run a bitstream with the sparsa host link, docs/soc.md, "
                        f"at this baud?)")


# The load registers hold what was last written to them (storage in the SoC's register file,
# kept by a CTRL abort) and only LD_GO acts, so writing one again with the value it holds does
# nothing: LinkRegisters skips such writes. A load word then costs 3 or 4 writes of 5 bytes instead
# of 6 (LD_KIND, LD_PE and often LD_DATA_HI repeat). A held value counts only within the session
# it was written in, and only while that session is open: after any link error, or a new session
# (the board may have been reset), every write goes out again.
HELD_REGISTERS = frozenset({"LD_KIND", "LD_PE", "LD_ADDR", "LD_DATA_LO", "LD_DATA_HI"})


class LinkRegisters:
    """The SoC's registers by name (``registers``: ``{name: offset}``) over a :class:`Link`:
    reads go out at once, writes are posted, and a write of a load register with the value it
    already holds is skipped (:data:`HELD_REGISTERS`). ``owns_transport``: :meth:`close` also
    closes the link's transport (the serial port the backend opened)."""

    def __init__(self, link, registers=REG, owns_transport=False):
        self.link, self.reg, self.owns_transport = link, registers, owns_transport
        self._held = {}               # name -> (session, value) last posted

    def __getitem__(self, name):
        data = self.link.request(Cmd.READ, bytes([self.reg[name]]), f"reading {name}")
        if len(data) != 4:
            raise LinkError(f"{self.link.name}: reading {name}: expected 4 bytes, found {len(data)}")
        return int.from_bytes(data, "little")

    def read_many(self, names):
        """Several registers in one command (at most 32)."""
        assert len(names) <= MAX_READS
        data = self.link.request(Cmd.READ, bytes(self.reg[n] for n in names), "reading registers")
        return [int.from_bytes(data[4 * i:4 * i + 4], "little") for i in range(len(names))]

    def __setitem__(self, name, value):
        value = int(value) & 0xFFFFFFFF
        if name in HELD_REGISTERS:
            session = self.link.session if self.link.is_open else None
            if session is not None and self._held.get(name) == (session, value):
                return
            self._held[name] = (session, value)
        self.link.write(self.reg[name], value)

    def flush(self):
        """Send the posted writes now (the end of a load, an abort)."""
        self.link.flush()

    def close(self):
        """Send the posted writes; then close the transport if it is ours (even if they fail)."""
        try:
            self.link.flush()
        finally:
            if self.owns_transport:
                self.link.transport.close()


class LinkStreams:
    """The runtime's DMA contract (:mod:`sparsa.dma`) over a :class:`Link`: ``send`` pushes the
    input into the SoC's input stream (64 values a command); ``recv_done`` pulls what the output
    stream has, one command per call, until ``nbytes`` arrived with tlast on the last value."""

    def __init__(self, link):
        self.link = link
        self._want = None
        self._got = []
        self._last = False

    def send(self, data):
        values = np.frombuffer(bytes(data), "<u2")
        for i in range(0, len(values), MAX_VALUES):
            chunk = values[i:i + MAX_VALUES]
            status, got = self.link.command(Cmd.SEND, chunk.astype("<u2").tobytes(), "sending the input")
            if status == Status.STALLED:
                raise DMAError(f"{self.link.name}: sending the input: the engine took {i + got[0]} of "
                               f"{len(values)} values, then stopped taking them")
            if status != Status.OK:
                raise DMAError(f"{self.link.name}: sending the input: the board answered {status.name}")

    def start_recv(self, nbytes):
        self._want, self._got, self._last = nbytes // 2, [], False

    def recv_done(self):
        if self._want is None:
            return False
        if len(self._got) < self._want and not self._last:
            ask = min(MAX_VALUES, self._want - len(self._got))
            status, data = self.link.command(Cmd.RECV, bytes([ask]), "receiving the output")
            self._got += np.frombuffer(data, "<u2").tolist()
            self._last = status == Status.LAST
        if self._last and len(self._got) != self._want:
            raise DMAError(f"{self.link.name}: receiving the output: expected {self._want} values, found "
                           f"{len(self._got)} (tlast came early)")
        return len(self._got) == self._want and self._last

    def recv_data(self):
        return np.array(self._got, "<u2").tobytes()

    def reset(self):
        self._want, self._got, self._last = None, [], False

    def check_errors(self):
        """Nothing to poll: a failed SEND raised at once (the runtime's error check while it
        waits for the input, without pulling the output stream)."""

    def close(self):
        pass


def link_backend(port, baud=None, *, timeout_s=5.0, transport=None, link_timeout_s=0.25):
    """A :class:`~sparsa.runtime.LinuxBackend` on a board over its UART: ``port`` a serial device
    (with ``baud``), or ``transport`` already made (the simulated board). ``timeout_s``: per
    input; ``link_timeout_s``: per response, before a command is sent again."""
    from sparsa.runtime import LinuxBackend
    owns = transport is None
    if owns:
        transport = SerialTransport(port, baud)
    link = Link(transport, timeout_s=link_timeout_s)
    return LinuxBackend.over(LinkRegisters(link, owns_transport=owns), LinkStreams(link), where=transport.name,
                             timeout_s=timeout_s)



class LinkMemory:
    """The CNN board system's on-chip DRAM (:mod:`sparsa.hw.cnn.link_soc`) as the DRAM buffer of
    :class:`~sparsa.runtime_cnn.CNNLinuxBackend`: ``buf[a:b] = bytes`` writes through the window
    (WIN_ADDR, then SEND, 64 values a command), ``buf[a:b]`` reads (WIN_ADDR and WIN_COUNT, then
    RECV); an odd first or last byte is merged with the 16-bit value it shares. ``size`` is the
    board's MEM_BYTES; the engine sees it at bus address 0 (``physical_address``); ``flush`` and
    ``invalidate`` have nothing to do."""

    physical_address = 0

    def __init__(self, regs):
        self.regs, self.link = regs, regs.link
        self._size = None

    @property
    def size(self):
        if self._size is None:
            self._size = self.regs["MEM_BYTES"]
        return self._size

    def _span(self, key):
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("LinkMemory takes byte ranges buf[a:b]")
        start, stop, _ = key.indices(self.size)
        return start, max(start, stop)

    def _read(self, lo, hi):
        """Bytes ``lo`` to ``hi`` (both even)."""
        out = bytearray()
        for a in range(lo, hi, 2 * MAX_VALUES):
            n = min(MAX_VALUES, (hi - a) // 2)
            self.regs["WIN_ADDR"] = a
            self.regs["WIN_COUNT"] = n
            status, data = self.link.command(Cmd.RECV, bytes([n]), "reading the board's memory")
            if len(data) != 2 * n or status != Status.LAST:
                raise LinkError(f"{self.link.name}: reading the board's memory at {a:#x}: expected {n} values "
                                f"ending with last, found {len(data) // 2} ({status.name})")
            out += data
        return bytes(out)

    def __getitem__(self, key):
        start, stop = self._span(key)
        lo, hi = start & ~1, (stop + 1) & ~1
        data = self._read(lo, hi) if hi > lo else b""
        return np.frombuffer(data[start - lo:stop - lo], np.uint8)

    def __setitem__(self, key, value):
        start, stop = self._span(key)
        data = np.asarray(value).astype(np.uint8, copy=False).tobytes()
        if len(data) != stop - start:
            raise ValueError(f"LinkMemory: {len(data)} bytes for a range of {stop - start}")
        if start & 1:                        # the value it shares with the byte before
            data = self._read(start - 1, start + 1)[:1] + data
            start -= 1
        if stop & 1:
            data += self._read(stop - 1, stop + 1)[1:]
            stop += 1
        values = np.frombuffer(data, "<u2")
        for i in range(0, len(values), MAX_VALUES):
            if i == 0:
                self.regs["WIN_ADDR"] = start
            status, got = self.link.command(Cmd.SEND, values[i:i + MAX_VALUES].tobytes(), "writing the board's memory")
            if status != Status.OK:
                raise LinkError(f"{self.link.name}: writing the board's memory at {start + 2 * i:#x}: the board "
                                f"answered {status.name}")

    def flush(self):
        pass

    def invalidate(self):
        pass


def cnn_link_backend(port, baud=None, *, timeout_s=5.0, transport=None, link_timeout_s=0.25):
    """A :class:`~sparsa.runtime_cnn.CNNLinuxBackend` on a CNN board system over its UART
    (arguments as for :func:`link_backend`)."""
    from sparsa.hw.cnn.link_soc import WINDOW_REGISTERS
    from sparsa.runtime_cnn import REG as CNN_REG, CNNLinuxBackend
    owns = transport is None
    if owns:
        transport = SerialTransport(port, baud)
    link = Link(transport, timeout_s=link_timeout_s)
    regs = LinkRegisters(link, {**CNN_REG, **{name: offset for name, offset, _, _ in WINDOW_REGISTERS}},
                         owns_transport=owns)
    return CNNLinuxBackend.over(regs, LinkMemory(regs), where=transport.name, timeout_s=timeout_s)
