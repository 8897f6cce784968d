"""cocotb bench of the board system (:class:`sparsa.hw.board_top.BoardTop`): its UART pins <-> a
Unix socket (``SPARSA_LINK_SOCKET``).

Bytes from the socket are driven onto ``uart_rx`` as 8N1 frames at ``SPARSA_LINK_DIVISOR``
cycles per bit; bytes the SoC sends on ``uart_tx`` are sampled in their bits' middles and
written to the socket. The test ends when the host closes the socket. ``SPARSA_LINK_FAULTS``
(JSON, a list of ``[kind, n]``) injects link faults on the host-to-board bytes: ``flip`` bit 3
of byte n, ``drop`` byte n, ``reset`` the board (its reset button) just before byte n.
With ``SPARSA_LINK_TIMES`` set, the bench writes there (JSON) the clock cycle at which each byte
started on either line, for :func:`sparsa.sim.board.timing.link_cycles`.
"""

import json
import os
import socket

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, FallingEdge
from cocotb.utils import get_sim_time

PERIOD_NS = 10      # the simulator's clock period; the board's own clock rate only scales the times


def _cycle():
    return int(get_sim_time("ns")) // PERIOD_NS


async def _tx_to_socket(dut, div, sock, starts):
    while True:
        await FallingEdge(dut.uart_tx)
        starts.append(_cycle())
        await ClockCycles(dut.clk, div // 2)
        value = 0
        for i in range(8):
            await ClockCycles(dut.clk, div)
            value |= int(dut.uart_tx.value) << i
        await ClockCycles(dut.clk, div)
        if int(dut.uart_tx.value) != 1:
            dut._log.warning("uart_tx: stop bit low")
        sock.setblocking(True)
        sock.sendall(bytes([value]))
        sock.setblocking(False)


async def _reset(dut):
    # The board's reset button: held for a few cycles, then the top's reset synchronizer
    # releases the system 2 cycles after it.
    dut.button.value = 1
    await ClockCycles(dut.clk, 4)
    dut.button.value = 0
    await ClockCycles(dut.clk, 4)


@cocotb.test()
async def serve(dut):
    div = int(os.environ["SPARSA_LINK_DIVISOR"])
    faults = {n: kind for kind, n in json.loads(os.environ.get("SPARSA_LINK_FAULTS", "[]"))}
    Clock(dut.clk, PERIOD_NS, unit="ns").start()
    dut.uart_rx.value = 1
    await _reset(dut)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(os.environ["SPARSA_LINK_SOCKET"])
    sock.setblocking(False)
    times = {"divisor": div, "rx": [], "tx": []}     # start cycles: host -> board, board -> host
    cocotb.start_soon(_tx_to_socket(dut, div, sock, times["tx"]))
    n = 0
    while True:
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            await ClockCycles(dut.clk, 10 * div)     # a byte time of idle line
            continue
        except ConnectionResetError:
            break       # the host closed the link with bytes of ours unread (a repeated response)
        if not data:
            break                                     # the host closed the link
        for byte in data:
            kind = faults.get(n)
            n += 1
            if kind == "drop":
                continue
            if kind == "reset":
                await _reset(dut)
            if kind == "flip":
                byte ^= 1 << 3
            times["rx"].append(_cycle())
            for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                dut.uart_rx.value = bit
                await ClockCycles(dut.clk, div)
    sock.close()
    if os.environ.get("SPARSA_LINK_TIMES"):
        with open(os.environ["SPARSA_LINK_TIMES"], "w") as f:
            json.dump(times, f)
