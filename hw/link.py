"""The board host link's gateware: UART frames in, AXI4-Lite register accesses and stream beats
to the SoC, response frames out (the protocol: :mod:`sparsa.sw.link`).

:class:`LinkBridge` sits between the board's UART pins and the SoC wrapper's host interfaces:
``axil`` (an AXI4-Lite master onto the SoC's registers), ``x`` (into the SoC's input stream) and
``y`` (from its output stream, with ``last``). One command at a time: the parser checks a
whole frame (length, CRC, no byte gap) into a payload buffer before anything is executed; the
executor runs it, writes the response payload into a second buffer, and the transmitter sends
it. The last sequence number and its response are kept, so a repeated command (its response
was lost) gets the same response again without being executed twice.

Throughput is the UART's: a byte every 10 bit times. The executor takes 2 cycles per payload
byte plus the AXI4-Lite handshakes (a few hundred cycles for 25 writes), and a SEND or RECV may
wait up to STREAM_WAIT cycles for the stream; the parser holds off until the response is out.
"""

from amaranth import *
from amaranth.lib import data, stream, wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.hw.axil import AXILiteSignature
from sparsa.hw.uart import UARTRx, UARTTx
from sparsa.sw.link import (BYTE_GAP_BITS, CMD_SYNC, MAX_PAYLOAD, MAX_READS, MAX_VALUES, MAX_WRITES, RESET_FLAG,
                            RSP_SYNC, STREAM_WAIT, Cmd, Status, crc16)

__all__ = ["LinkBridge", "crc16_next", "y_layout"]

y_layout = data.StructLayout({"data": 16, "last": 1})


def _crc_columns():
    """The CRC step is linear over GF(2): the 16-bit result of each of the 24 input bits (the
    16 of the CRC, then the 8 of the byte) alone, from the protocol's own definition."""
    cols = [crc16(b"\0", crc=1 << i) for i in range(16)]
    cols += [crc16(bytes([1 << i]), crc=0) for i in range(8)]
    return cols


_CRC_COLUMNS = _crc_columns()


def crc16_next(crc, byte):
    """CRC-16/CCITT-FALSE after one more byte (:func:`sparsa.sw.link.crc16`), as logic: each
    result bit is the XOR of the input bits whose column has it (a few XORs per bit, where the
    shift-and-conditional-XOR loop would nest eight multiplexers deep)."""
    bits = Cat(crc, byte)
    out = []
    for j in range(16):
        terms = [bits[i] for i, col in enumerate(_CRC_COLUMNS) if col >> j & 1]
        x = terms[0]
        for t in terms[1:]:
            x = x ^ t
        out.append(x)
    return Cat(*out)


class LinkBridge(wiring.Component):
    """See the module docstring. ``divisor``: clock cycles per UART bit."""

    def __init__(self, divisor, addr_bits=8):
        self.divisor = divisor
        super().__init__({
            "rx": In(1, init=1), "tx": Out(1, init=1),
            "axil": Out(AXILiteSignature(addr_bits)),
            "x": Out(stream.Signature(16)),
            "y": In(stream.Signature(y_layout)),
            "busy": Out(1),          # a command is being received, executed or answered
        })

    def elaborate(self, platform):
        m = Module()
        m.submodules.urx = urx = UARTRx(self.divisor)
        m.submodules.utx = utx = UARTTx(self.divisor)
        m.d.comb += [urx.rx.eq(self.rx), self.tx.eq(utx.tx)]
        m.submodules.rx_buf = rx_buf = Memory(shape=8, depth=MAX_PAYLOAD, init=[])
        m.submodules.tx_buf = tx_buf = Memory(shape=8, depth=MAX_PAYLOAD, init=[])
        rx_wr, rx_rd = rx_buf.write_port(), rx_buf.read_port()
        tx_wr, tx_rd = tx_buf.write_port(), tx_buf.read_port()

        # ---- parser: bytes -> a checked command in rx_buf ------------------------------------------
        seq, code, length = Signal(8), Signal(8), Signal(8)
        count = Signal(8)
        crc = Signal(16, init=0xFFFF)
        crc_lo = Signal(8)
        gap = Signal(range(BYTE_GAP_BITS * self.divisor + 1))
        byte = urx.o.payload
        got = urx.o.valid
        command = Signal()            # pulse: a whole, checked command is in rx_buf
        executing = Signal()          # executor and transmitter busy: the parser waits
        m.d.comb += [urx.o.ready.eq(1), rx_wr.addr.eq(count), rx_wr.data.eq(byte)]
        # A frame that stops in the middle (a lost byte) ends after BYTE_GAP_BITS bit times.
        expired = Signal()
        m.d.comb += expired.eq(gap == BYTE_GAP_BITS * self.divisor)
        with m.If(got):
            m.d.sync += gap.eq(0)
        with m.Elif(~expired):
            m.d.sync += gap.eq(gap + 1)
        with m.FSM(name="parse") as parse:
            with m.State("HUNT"):
                with m.If(got & (byte == CMD_SYNC)):
                    m.d.sync += [crc.eq(0xFFFF), gap.eq(0)]
                    m.next = "SEQ"
            for state, field, following in (("SEQ", seq, "CODE"), ("CODE", code, "LEN")):
                with m.State(state):
                    with m.If(got):
                        m.d.sync += [field.eq(byte), crc.eq(crc16_next(crc, byte))]
                        m.next = following
                    with m.Elif(expired):
                        m.next = "HUNT"
            with m.State("LEN"):
                with m.If(got):
                    m.d.sync += [length.eq(byte), count.eq(0), crc.eq(crc16_next(crc, byte))]
                    with m.If(byte > MAX_PAYLOAD):
                        m.next = "HUNT"
                    with m.Elif(byte == 0):
                        m.next = "CRC_LO"
                    with m.Else():
                        m.next = "PAYLOAD"
                with m.Elif(expired):
                    m.next = "HUNT"
            with m.State("PAYLOAD"):
                with m.If(got):
                    m.d.comb += rx_wr.en.eq(1)
                    m.d.sync += [count.eq(count + 1), crc.eq(crc16_next(crc, byte))]
                    with m.If(count == length - 1):
                        m.next = "CRC_LO"
                with m.Elif(expired):
                    m.next = "HUNT"
            with m.State("CRC_LO"):
                with m.If(got):
                    m.d.sync += crc_lo.eq(byte)
                    m.next = "CRC_HI"
                with m.Elif(expired):
                    m.next = "HUNT"
            with m.State("CRC_HI"):
                with m.If(got):
                    with m.If(Cat(crc_lo, byte) == crc):
                        m.d.comb += command.eq(1)
                        m.next = "WAIT"
                    with m.Else():
                        m.next = "HUNT"          # dropped: the host times out and repeats it
                with m.Elif(expired):
                    m.next = "HUNT"
            with m.State("WAIT"):
                with m.If(~executing):
                    m.next = "HUNT"

        # ---- executor: the command -> AXI4-Lite / streams, response into tx_buf ----------------------
        last_seq, last_valid = Signal(8), Signal()
        fresh = Signal(init=1)        # no response since reset: the next one carries RESET_FLAG
        status, rsp_len = Signal(8), Signal(8)
        ptr = Signal(8)               # rx_buf read address (data one cycle later)
        item = Signal(8)              # register / value index within the command
        k = Signal(3)                 # byte within an item
        word = Signal(40)             # gathered bytes, first byte lowest
        out = Signal(8)               # tx_buf write address
        wait = Signal(range(STREAM_WAIT + 1))
        rdata = Signal(32)
        axil = self.axil
        m.d.comb += [rx_rd.addr.eq(ptr), axil.wstrb.eq(0xF), tx_wr.addr.eq(out)]
        n_items = Signal(8)
        # A WRITE's pair count, length // 5, as (length * 205) >> 10 (exact for every 8-bit
        # length) written as shifts and adds, so that yosys maps neither a divider nor DSP
        # multipliers, and registered: ``length`` is set bytes before the command is dispatched.
        # A divider here was the slowest path of the ULX3S board system.
        fifths, whole_fifths = Signal(8), Signal()
        f = ((length << 7) + (length << 6) + (length << 3) + (length << 2) + length) >> 10
        m.d.sync += [fifths.eq(f), whole_fifths.eq((f << 2) + f == length)]
        with m.FSM(name="exec") as ex:
            with m.State("IDLE"):
                with m.If(command):
                    m.d.sync += [ptr.eq(0), item.eq(0), k.eq(0), out.eq(0), word.eq(0), wait.eq(0)]
                    # A repeat gets the same response again; seq 0 opens a session and never is one.
                    with m.If(last_valid & (seq == last_seq) & (seq != 0)):
                        m.next = "ANSWER"
                    with m.Else():
                        m.d.sync += last_valid.eq(0)
                        m.next = "DISPATCH"
            with m.State("DISPATCH"):
                m.d.sync += [status.eq(Status.OK), rsp_len.eq(0)]
                with m.If((code == Cmd.READ) & (length != 0) & (length <= MAX_READS)):
                    m.d.sync += n_items.eq(length)
                    m.next = "READ_ADDR"
                with m.Elif((code == Cmd.WRITE) & (length != 0) & (length <= 5 * MAX_WRITES)
                            & whole_fifths):
                    m.d.sync += n_items.eq(fifths)
                    m.next = "WRITE_GATHER"
                with m.Elif((code == Cmd.SEND) & (length != 0) & (length <= 2 * MAX_VALUES) & ~length[0]):
                    m.d.sync += n_items.eq(length >> 1)
                    m.next = "SEND_GATHER"
                with m.Elif((code == Cmd.RECV) & (length == 1)):
                    m.next = "RECV_COUNT"
                with m.Else():
                    m.d.sync += status.eq(Status.BAD_COMMAND)
                    m.next = "DONE"

            # READ: one register per payload byte, its value (4 bytes) into tx_buf.
            with m.State("READ_ADDR"):
                m.next = "READ_AR"                            # rx_buf[ptr] arrives next cycle
            with m.State("READ_AR"):
                m.d.comb += [axil.araddr.eq(rx_rd.data), axil.arvalid.eq(1)]
                with m.If(axil.arready):
                    m.next = "READ_R"
            with m.State("READ_R"):
                m.d.comb += axil.rready.eq(1)
                with m.If(axil.rvalid):
                    m.d.sync += [rdata.eq(axil.rdata), k.eq(0)]
                    m.next = "READ_PUT"
            with m.State("READ_PUT"):
                m.d.comb += [tx_wr.en.eq(1), tx_wr.data.eq(rdata.word_select(k, 8))]
                m.d.sync += [out.eq(out + 1), k.eq(k + 1)]
                with m.If(k == 3):
                    m.d.sync += [item.eq(item + 1), ptr.eq(ptr + 1), rsp_len.eq(rsp_len + 4)]
                    with m.If(item == n_items - 1):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "READ_ADDR"

            # WRITE: (offset, value) pairs of 5 bytes.
            with m.State("WRITE_GATHER"):
                m.next = "WRITE_TAKE"
            with m.State("WRITE_TAKE"):
                m.d.sync += [word.eq(Cat(word[8:], rx_rd.data)), ptr.eq(ptr + 1), k.eq(k + 1)]
                with m.If(k == 4):
                    m.next = "WRITE_AW"
                with m.Else():
                    m.next = "WRITE_GATHER"
            with m.State("WRITE_AW"):
                aw_done, w_done = Signal(), Signal()
                m.d.comb += [axil.awaddr.eq(word[:8]), axil.awvalid.eq(~aw_done),
                             axil.wdata.eq(word[8:40]), axil.wvalid.eq(~w_done)]
                aw_now = aw_done | axil.awready
                w_now = w_done | axil.wready
                m.d.sync += [aw_done.eq(aw_now), w_done.eq(w_now)]
                with m.If(aw_now & w_now):
                    m.d.sync += [aw_done.eq(0), w_done.eq(0)]
                    m.next = "WRITE_B"
            with m.State("WRITE_B"):
                m.d.comb += axil.bready.eq(1)
                with m.If(axil.bvalid):
                    m.d.sync += [item.eq(item + 1), k.eq(0)]
                    with m.If(item == n_items - 1):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "WRITE_GATHER"

            # SEND: 16-bit values into x, each within STREAM_WAIT cycles.
            with m.State("SEND_GATHER"):
                m.next = "SEND_TAKE"
            with m.State("SEND_TAKE"):
                m.d.sync += [word.eq(Cat(word[8:16], rx_rd.data)), ptr.eq(ptr + 1), k.eq(k + 1)]
                with m.If(k == 1):
                    m.d.sync += [k.eq(0), wait.eq(0)]
                    m.next = "SEND_PUSH"
                with m.Else():
                    m.next = "SEND_GATHER"
            with m.State("SEND_PUSH"):
                m.d.comb += [self.x.valid.eq(1), self.x.payload.eq(word[:16])]
                m.d.sync += wait.eq(wait + 1)
                with m.If(self.x.ready):
                    m.d.sync += item.eq(item + 1)
                    with m.If(item == n_items - 1):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "SEND_GATHER"
                with m.Elif(wait == STREAM_WAIT):
                    m.d.sync += [status.eq(Status.STALLED), rsp_len.eq(1)]
                    m.d.comb += [tx_wr.en.eq(1), tx_wr.data.eq(item)]
                    m.next = "DONE"

            # RECV: up to the asked count of values from y, each within STREAM_WAIT cycles.
            with m.State("RECV_COUNT"):
                m.next = "RECV_SET"
            with m.State("RECV_SET"):
                want = rx_rd.data
                m.d.sync += [n_items.eq(Mux(want > MAX_VALUES, MAX_VALUES, want)), wait.eq(0)]
                with m.If(want == 0):
                    m.next = "DONE"
                with m.Else():
                    m.next = "RECV_PULL"
            with m.State("RECV_PULL"):
                m.d.comb += self.y.ready.eq(1)
                m.d.sync += wait.eq(wait + 1)
                with m.If(self.y.valid):
                    m.d.sync += [word.eq(self.y.payload.data), wait.eq(0), item.eq(item + 1)]
                    with m.If(self.y.payload.last):
                        m.d.sync += status.eq(Status.LAST)
                    m.next = "RECV_PUT"
                with m.Elif(wait == STREAM_WAIT):
                    m.next = "DONE"
            with m.State("RECV_PUT"):
                m.d.comb += [tx_wr.en.eq(1), tx_wr.data.eq(Mux(k[0], word[8:16], word[:8]))]
                m.d.sync += [out.eq(out + 1), k.eq(k + 1), rsp_len.eq(rsp_len + 1)]
                with m.If(k[0]):
                    m.d.sync += k.eq(0)
                    with m.If((item == n_items) | (status == Status.LAST)):
                        m.next = "DONE"
                    with m.Else():
                        m.next = "RECV_PULL"

            with m.State("DONE"):
                m.d.sync += [last_seq.eq(seq), last_valid.eq(1), fresh.eq(0)]
                with m.If(fresh):
                    m.d.sync += status.eq(status | RESET_FLAG)     # kept for a replay too
                m.next = "ANSWER"

            # ---- transmitter: the response frame from tx_buf ------------------------------------
            tx_crc = Signal(16)
            step = Signal(3)                          # 0 SYNC, 1 seq, 2 status, 3 len, 4 payload, 5 crc lo, 6 hi
            sent = Signal(8)
            with m.State("ANSWER"):
                m.d.sync += [step.eq(0), sent.eq(0), tx_crc.eq(0xFFFF), out.eq(0)]
                m.next = "TX"
            with m.State("TX"):
                m.d.comb += tx_rd.addr.eq(sent)
                tx_byte = Signal(8)
                m.d.comb += tx_byte.eq(Array([C(RSP_SYNC, 8), seq, status, rsp_len, tx_rd.data,
                                              tx_crc[:8], tx_crc[8:], C(0, 8)])[step])
                m.d.comb += [utx.i.valid.eq(1), utx.i.payload.eq(tx_byte)]
                with m.If(utx.i.ready):
                    with m.If((step >= 1) & (step <= 4)):
                        m.d.sync += tx_crc.eq(crc16_next(tx_crc, tx_byte))
                    with m.If(step == 4):
                        m.d.sync += sent.eq(sent + 1)
                        with m.If(sent == rsp_len - 1):
                            m.d.sync += step.eq(5)
                        m.next = "TX_NEXT"            # tx_buf[sent + 1] arrives next cycle
                    with m.Elif((step == 3) & (rsp_len == 0)):
                        m.d.sync += step.eq(5)
                    with m.Elif(step == 6):
                        m.next = "IDLE"
                    with m.Else():
                        m.d.sync += step.eq(step + 1)
                        with m.If(step == 3):
                            m.next = "TX_NEXT"
            with m.State("TX_NEXT"):
                m.d.comb += tx_rd.addr.eq(sent)
                m.next = "TX"
        m.d.comb += [executing.eq(~ex.ongoing("IDLE")),
                     self.busy.eq(executing | ~parse.ongoing("HUNT"))]
        return m
