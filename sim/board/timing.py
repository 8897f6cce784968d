"""How long a link exchange takes on the simulated board, from the bench's byte times.

The bench (:mod:`sparsa.sim.board.tb`) records the clock cycle at which every byte started on
the UART's two lines. A byte takes ten bit times (8N1). The time of an exchange counted here is
what the link and the board spend: every cycle a byte is on either line, and every idle gap
that ends with the *board* starting to send (it was decoding, executing, computing, checking a
CRC). An idle gap that ends with the *host* sending is the host's own turnaround, which the
simulation does not model faithfully (the simulated host answers as fast as the simulator
polls; a real USB UART adds its latency timer on top) and is left out, and reported apart.
"""

__all__ = ["link_cycles", "split_phases"]


def link_cycles(rx, tx, divisor):
    """``(link, host)``: cycles of the exchange whose bytes started at the cycles ``rx`` (host to
    board) and ``tx`` (board to host), counted as the module docstring says, and the cycles of
    host turnaround left out. Idle time before the first byte counts as neither."""
    byte = 10 * divisor
    events = sorted([(t, "rx") for t in rx] + [(t, "tx") for t in tx])
    link = host = 0
    end = None                     # the cycle the last byte so far ends
    for start, line in events:
        if end is not None and start > end:
            if line == "tx":
                link += start - end
            else:
                host += start - end
        busy_from = start if end is None else max(start, end)
        link += max(0, start + byte - busy_from)
        end = start + byte if end is None else max(end, start + byte)
    return link, host


def split_phases(times, sent, received):
    """The bench's byte times split where the host had sent ``sent`` and received ``received``
    bytes: ``((rx, tx) before, (rx, tx) after)``."""
    rx, tx = times["rx"], times["tx"]
    return (rx[:sent], tx[:received]), (rx[sent:], tx[received:])
