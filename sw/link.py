"""The board host link: framed commands over a UART, defined once for the gateware
(:mod:`sparsa.hw.link`) and the host (:mod:`sparsa.link`).

The link carries the SoC's own host protocol (the register map of :mod:`sparsa.sw.eie.protocol`
and its two activation streams), so the runtime that drives a Zynq through ``/dev/mem`` and a DMA
drives a board over its USB UART with the same code; only the transport differs.

Frames, host to board (a *command*) and board to host (a *response*)::

    SYNC  seq  code  len  payload[len]  crc_lo crc_hi

``SYNC`` is :data:`CMD_SYNC` or :data:`RSP_SYNC`; ``seq`` a sequence number (the host's, echoed);
``code`` the command (:class:`Cmd`) or the response status (:class:`Status`); ``len`` the payload
bytes, at most :data:`MAX_PAYLOAD`; the CRC is :func:`crc16` (CRC-16/CCITT-FALSE) over ``seq``
to the payload's end, little-endian.

Commands:

``READ``   payload: register byte offsets (one byte each, at most 32) ->
           response: the 32-bit values, little-endian.
``WRITE``  payload: (offset, 32-bit value little-endian) pairs, at most 25 -> empty response.
``SEND``   payload: 16-bit values (little-endian) for the SoC's input stream ``s_axis``, at most
           64 -> empty response once all were taken; ``STALLED`` with the count taken (one byte)
           if the stream stopped taking them for :data:`STREAM_WAIT` cycles.
``RECV``   payload: one byte, the most values wanted (at most 64) -> the values from the output
           stream ``m_axis`` that came within :data:`STREAM_WAIT` cycles of each other; status
           ``LAST`` when the last of them carried tlast.

Bit 7 of a response's code, :data:`RESET_FLAG`, says that the board was reset (power, button,
reconfiguration) since its previous response: the host knows the loaded model and any run in
flight are gone, and says so instead of going on.

A frame with a bad CRC, a bad length or a gap of more than :data:`BYTE_GAP_BITS` bit times between
two of its bytes is dropped without a response: the host times out and sends it again with the
same ``seq``. The board remembers the last ``seq`` it executed and its response: a command with
that ``seq`` again is not executed a second time, its response is sent again (a lost response
never makes a write, a stream beat or a read of the output stream happen twice). The host
therefore uses a new ``seq`` for each new command: 1 to 255, then 1 again. ``seq`` 0 opens a
session and is never taken for a repeat: the board may still hold the last ``seq`` of an earlier
session, which a new session's first command could otherwise match. The host opens each session
with a READ (safe to execute twice) under ``seq`` 0.
"""

import enum

__all__ = ["CMD_SYNC", "RSP_SYNC", "MAX_PAYLOAD", "MAX_READS", "MAX_WRITES", "MAX_VALUES", "STREAM_WAIT",
           "BYTE_GAP_BITS", "LINK_ID", "RESET_FLAG", "Cmd", "Status", "crc16", "frame", "parse_frame"]

CMD_SYNC, RSP_SYNC = 0x5A, 0xA5
MAX_PAYLOAD = 128
MAX_READS, MAX_WRITES, MAX_VALUES = 32, 25, 64
STREAM_WAIT = 4096          # cycles a stream may pause inside one SEND or RECV
BYTE_GAP_BITS = 40          # bit times of silence that end a frame early (4 idle byte times)
RESET_FLAG = 0x80          # in a response's code: the board was reset since its previous response
LINK_ID = 0x4C4B            # "LK": not on the wire; names the protocol revision in docs and reports


class Cmd(enum.IntEnum):
    READ = 1
    WRITE = 2
    SEND = 3
    RECV = 4


class Status(enum.IntEnum):
    OK = 0
    LAST = 1            # RECV: the last value carried tlast
    STALLED = 2         # SEND: the stream stopped taking values; payload: how many it took
    BAD_COMMAND = 3     # an unknown code, or a payload of the wrong size for the command


def crc16(data, crc=0xFFFF):
    """CRC-16/CCITT-FALSE (polynomial 0x1021, initial 0xFFFF, no reflection, no final XOR) of
    ``data``; ``crc16(b"123456789") == 0x29B1``."""
    for byte in data:
        crc ^= byte << 8
        for _ in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return crc


def frame(sync, seq, code, payload=b""):
    """The bytes of one frame (see the module docstring)."""
    payload = bytes(payload)
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"link frame: payload: expected at most {MAX_PAYLOAD} bytes, found {len(payload)}")
    body = bytes([seq & 0xFF, int(code), len(payload)]) + payload
    crc = crc16(body)
    return bytes([sync]) + body + bytes([crc & 0xFF, crc >> 8])


def parse_frame(data, sync):
    """``(seq, code, payload, rest)`` of the first whole frame starting with ``sync`` in ``data``
    (bytes before it are skipped), or ``None`` if there is none yet. A frame whose CRC or length
    is wrong raises ``ValueError``."""
    start = data.find(bytes([sync]))
    if start < 0 or len(data) - start < 4:
        return None
    n = data[start + 3]
    if n > MAX_PAYLOAD:
        raise ValueError(f"link frame: length: expected at most {MAX_PAYLOAD}, found {n}")
    end = start + 4 + n + 2
    if len(data) < end:
        return None
    body = data[start + 1:start + 4 + n]
    got = data[end - 2] | data[end - 1] << 8
    if crc16(body) != got:
        raise ValueError(f"link frame: CRC: expected {crc16(body):#06x}, found {got:#06x}")
    return body[0], body[1], bytes(body[3:]), data[end:]
