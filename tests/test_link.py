"""The board host link (sw/link.py, hw/uart.py, hw/link.py): the frame format and CRC against
their published definitions, and the bridge's gateware in Amaranth's simulator, driven bit by
bit on its UART pins: register writes and reads, stream beats both ways, and the faults it must
survive (a bad CRC, a lost byte, a repeated command, a stalled stream, a bad command)."""

import random

import pytest
from amaranth import Elaboratable, Module
from amaranth.lib.wiring import connect
from amaranth.sim import Simulator

from sparsa.hw.axil import AXILiteRegisterFile
from sparsa.hw.link import LinkBridge
from sparsa.sw.link import CMD_SYNC, RESET_FLAG, RSP_SYNC, STREAM_WAIT, Cmd, Status, crc16, frame, parse_frame

DIV = 4            # cycles per bit: the smallest the UART takes, so that the simulation is short


def test_crc_is_crc16_ccitt_false():
    # The catalogue check value of CRC-16/CCITT-FALSE (a.k.a. CRC-16/IBM-3740) over "123456789".
    assert crc16(b"123456789") == 0x29B1
    assert crc16(b"") == 0xFFFF


def test_the_gateware_crc_step_equals_the_protocols_on_random_inputs():
    # hw/link.py builds the CRC step from columns (it is linear over GF(2)); the logic it makes,
    # evaluated in Amaranth's simulator, must equal sw/link.py's bit loop.
    from amaranth import Module, Signal
    from sparsa.hw.link import crc16_next
    seed = 1702
    print(f"seed={seed}")
    rng = random.Random(seed)
    crc, byte, out = Signal(16), Signal(8), Signal(16)
    m = Module()
    m.d.comb += out.eq(crc16_next(crc, byte))
    sim = Simulator(m)
    cases = [(rng.randrange(1 << 16), rng.randrange(256)) for _ in range(300)] + [(0, 0), (0xFFFF, 0xFF)]

    async def bench(ctx):
        for c, b in cases:
            ctx.set(crc, c)
            ctx.set(byte, b)
            assert ctx.get(out) == crc16(bytes([b]), crc=c), (hex(c), hex(b))
    sim.add_testbench(bench)
    sim.run()


def test_frame_layout_and_parse_round_trip():
    f = frame(CMD_SYNC, 7, Cmd.WRITE, b"\x10\x01\x02\x03\x04")
    assert f[:4] == bytes([0x5A, 7, 2, 5]) and len(f) == 4 + 5 + 2
    assert f[-2] | f[-1] << 8 == crc16(f[1:-2])
    assert parse_frame(b"\x00\x13" + f + b"\x99", CMD_SYNC) == (7, 2, b"\x10\x01\x02\x03\x04", b"\x99")
    assert parse_frame(f[:-1], CMD_SYNC) is None
    bad = bytearray(f)
    bad[5] ^= 0x20
    with pytest.raises(ValueError, match="CRC"):
        parse_frame(bytes(bad), CMD_SYNC)


REGS = [("A", 0x00, "RW", ""), ("B", 0x04, "RW", ""), ("C", 0x08, "RO", "")]


class Bench(Elaboratable):
    """The bridge on a three-register AXI4-Lite file (C reads 0x1234ABCD)."""

    def __init__(self):
        self.link = LinkBridge(DIV)
        self.rf = AXILiteRegisterFile(REGS)

    def elaborate(self, platform):
        m = Module()
        m.submodules.link, m.submodules.rf = self.link, self.rf
        connect(m, self.link.axil, self.rf.bus)
        m.d.comb += self.rf.c.eq(0x1234ABCD)
        return m


def _run(script, x_ready=lambda n: True, y_values=()):
    """Run ``script(host)`` against the bridge; ``host`` sends frames and collects responses.
    ``x_ready(n)``: whether the stream sink takes a beat after ``n`` taken; ``y_values``: what the
    output stream offers, ``(value, last)`` pairs. Returns (responses, x values taken)."""
    bench = Bench()
    link = bench.link
    sim = Simulator(bench)
    sim.add_clock(1e-8)
    rx_bytes, taken = [], []

    async def uart_out(ctx):                    # the host's receiver on the bridge's tx pin
        while True:
            while ctx.get(link.tx):
                await ctx.tick()
            await ctx.tick().repeat(DIV // 2)
            value = 0
            for i in range(8):
                await ctx.tick().repeat(DIV)
                value |= ctx.get(link.tx) << i
            await ctx.tick().repeat(DIV)
            assert ctx.get(link.tx) == 1, "stop bit"
            rx_bytes.append(value)

    async def streams(ctx):
        ys = list(y_values)
        while True:
            ready = x_ready(len(taken))
            ctx.set(link.x.ready, int(ready))
            ctx.set(link.y.valid, int(bool(ys)))
            if ys:
                ctx.set(link.y.payload, {"data": ys[0][0] & 0xFFFF, "last": ys[0][1]})
            # Transfers happen at the coming edge: sample valid/ready/payload before it.
            x = ctx.get(link.x.payload) if ctx.get(link.x.valid) and ready else None
            y_taken = bool(ys) and ctx.get(link.y.ready)
            await ctx.tick()
            if x is not None:
                taken.append(x)
            if y_taken:
                ys.pop(0)

    class Host:
        def __init__(self, ctx):
            self.ctx = ctx
            self.flags = []             # RESET_FLAG of each response

        async def send(self, data, drop=None):
            for j, byte in enumerate(data):
                if j == drop:
                    continue
                for bit in [0] + [(byte >> i) & 1 for i in range(8)] + [1]:
                    self.ctx.set(link.rx, bit)
                    await self.ctx.tick().repeat(DIV)

        async def response(self, timeout_bits=2000):
            """The next response frame, or None if none comes within ``timeout_bits``."""
            for _ in range(timeout_bits):
                got = parse_frame(bytes(rx_bytes), RSP_SYNC)
                if got is not None:
                    seq, code, payload, rest = got
                    rx_bytes[:] = list(rest)
                    self.flags.append(bool(code & RESET_FLAG))
                    return seq, code & ~RESET_FLAG, payload
                await self.ctx.tick().repeat(DIV)
            return None

    async def main(ctx):
        await script(Host(ctx))

    sim.add_testbench(main)
    sim.add_testbench(uart_out, background=True)
    sim.add_testbench(streams, background=True)
    sim.run()
    return taken


def _write(seq, pairs):
    return frame(CMD_SYNC, seq, Cmd.WRITE, b"".join(bytes([a]) + v.to_bytes(4, "little") for a, v in pairs))


def test_writes_then_reads_back_registers_and_a_read_only_one():
    async def script(h):
        await h.send(_write(1, [(0x00, 0xDEADBEEF), (0x04, 0x01020304)]))
        assert await h.response() == (1, Status.OK, b"")
        await h.send(frame(CMD_SYNC, 2, Cmd.READ, bytes([0x04, 0x00, 0x08])))
        assert await h.response() == (2, Status.OK, (0x01020304).to_bytes(4, "little")
                                      + (0xDEADBEEF).to_bytes(4, "little") + (0x1234ABCD).to_bytes(4, "little"))
        assert h.flags == [True, False]             # the first response after reset says so, only it
    _run(script)


def test_a_bad_crc_is_dropped_unexecuted_and_the_retry_works():
    async def script(h):
        bad = bytearray(_write(1, [(0x00, 55)]))
        bad[6] ^= 0x01                              # one flipped bit in the value
        await h.send(bytes(bad))
        assert await h.response(timeout_bits=400) is None
        await h.send(frame(CMD_SYNC, 2, Cmd.READ, b"\x00"))
        assert await h.response() == (2, Status.OK, bytes(4))       # A is still 0
        await h.send(_write(1, [(0x00, 55)]))
        assert await h.response() == (1, Status.OK, b"")
    _run(script)


def test_a_lost_byte_ends_the_frame_after_the_gap_and_the_next_frame_works():
    async def script(h):
        await h.send(_write(3, [(0x00, 77)]), drop=5)
        assert await h.response(timeout_bits=400) is None
        await h.send(frame(CMD_SYNC, 4, Cmd.READ, b"\x00"))
        assert await h.response() == (4, Status.OK, bytes(4))
    _run(script)


def test_a_repeated_command_is_answered_again_but_not_executed_again():
    seed = 1701
    print(f"seed={seed}")
    values = [random.Random(seed).randrange(1 << 16) for _ in range(5)]
    payload = b"".join(v.to_bytes(2, "little") for v in values)

    async def script(h):
        await h.send(frame(CMD_SYNC, 9, Cmd.SEND, payload))
        first = await h.response()
        await h.send(frame(CMD_SYNC, 9, Cmd.SEND, payload))           # the response was "lost"
        assert await h.response() == first == (9, Status.OK, b"")
    assert _run(script) == values                                        # once, not twice


def test_recv_returns_the_values_up_to_tlast():
    ys = [(0x1111, 0), (0xFFFF, 0), (0x8000, 1), (0x2222, 0)]

    async def script(h):
        await h.send(frame(CMD_SYNC, 5, Cmd.RECV, bytes([10])))
        assert await h.response() == (5, Status.LAST, bytes.fromhex("1111ffff0080"))
        await h.send(frame(CMD_SYNC, 6, Cmd.RECV, bytes([10])))
        seq, status, data = await h.response(timeout_bits=5000)
        assert (seq, status, data) == (6, Status.OK, bytes.fromhex("2222"))   # ends after STREAM_WAIT
    _run(script, y_values=ys)


def test_a_stream_that_stops_taking_values_is_reported_with_the_count():
    async def script(h):
        await h.send(frame(CMD_SYNC, 8, Cmd.SEND, bytes(range(8))))
        seq, status, data = await h.response(timeout_bits=STREAM_WAIT // DIV + 2000)
        assert (seq, status) == (8, Status.STALLED) and data == bytes([2])
    # The sink takes two values, then never again.
    assert _run(script, x_ready=lambda n: n < 2) == [0x0100, 0x0302]


@pytest.mark.parametrize("code,payload", [(9, b""), (Cmd.WRITE, b"\x00\x01"), (Cmd.SEND, b"\x01"),
                                          (Cmd.RECV, b"")])
def test_a_bad_command_is_refused_not_executed(code, payload):
    async def script(h):
        await h.send(frame(CMD_SYNC, 1, code, payload))
        assert await h.response() == (1, Status.BAD_COMMAND, b"")
    assert _run(script) == []


def test_a_new_sessions_first_command_is_never_taken_for_a_repeat():
    # The board still holds seq 1 from an earlier session; the new session opens with seq 0
    # (a READ), so its own seq 1 is executed, not answered from the old session's response.
    async def script(h):
        await h.send(_write(1, [(0x00, 11)]))
        assert await h.response() == (1, Status.OK, b"")
        await h.send(frame(CMD_SYNC, 0, Cmd.READ, b"\x00"))            # a new host opens
        assert await h.response() == (0, Status.OK, (11).to_bytes(4, "little"))
        await h.send(_write(1, [(0x00, 22)]))
        assert await h.response() == (1, Status.OK, b"")
        await h.send(frame(CMD_SYNC, 2, Cmd.READ, b"\x00"))
        assert await h.response() == (2, Status.OK, (22).to_bytes(4, "little"))
        # A session that ended right after its opening: the next one's seq 0 is executed too.
        await h.send(frame(CMD_SYNC, 0, Cmd.READ, b"\x04"))
        assert await h.response() == (0, Status.OK, bytes(4))
        await h.send(frame(CMD_SYNC, 0, Cmd.READ, b"\x00"))
        assert await h.response() == (0, Status.OK, (22).to_bytes(4, "little"))   # not B's value again
    _run(script)


# ---- the host end (sparsa/link.py) against a Python model of the bridge ------------------------

class FakeBoard:
    """A transport whose far end models the bridge: frames in, register reads and writes on a
    dict, the last seq's response replayed (seq 0 never), ``drop`` responses not sent."""

    name = "fake"

    def __init__(self, regs=None, drop=0):
        self.regs, self.drop = dict(regs or {}), drop
        self.rx, self.out, self.seqs = b"", b"", []
        self.last = None

    def write(self, data):
        self.rx += data
        while (got := parse_frame(self.rx, CMD_SYNC)) is not None:
            seq, code, payload, self.rx = got
            self.seqs.append(seq)
            if self.last and self.last[0] == seq and seq != 0:
                response = self.last[1]
            else:
                if code == Cmd.READ:
                    body = b"".join(self.regs.get(a, 0).to_bytes(4, "little") for a in payload)
                else:
                    for i in range(0, len(payload), 5):
                        self.write_register(payload[i], int.from_bytes(payload[i + 1:i + 5], "little"))
                    body = b""
                response = frame(RSP_SYNC, seq, Status.OK, body)
                self.last = (seq, response)
            if self.drop:
                self.drop -= 1
            else:
                self.out += response

    def write_register(self, offset, value):
        self.regs[offset] = value

    def read(self):
        data, self.out = self.out, b""
        return data

    def close(self):
        pass


def test_a_failed_opening_is_retried_before_the_next_command():
    from sparsa.link import Link, LinkError
    board = FakeBoard(drop=2)                  # the opening and its one retry go unanswered
    link = Link(board, timeout_s=0.02, retries=1)
    with pytest.raises(LinkError, match="opening the link"):
        link.request(Cmd.READ, b"\x04", "reading B")
    assert link.request(Cmd.READ, b"\x04", "reading B") == bytes(4)
    assert board.seqs == [0, 0, 0, 1]          # the next command opened the session again first


def test_a_load_leaves_nothing_posted_and_an_abort_reaches_the_board():
    from eie_cases import random_pack
    import numpy as np
    from sparsa.link import Link, LinkRegisters
    from sparsa.runtime import LinuxBackend
    from sparsa.sw.eie.config import EIEConfig
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.eie.protocol import REG, SOC_ID, capacity_words, config_word
    print("seed=1703")
    mm = build_memory_map(random_pack([(20, 17), (9, 20)], 2, 0.3, np.random.default_rng(1703)))
    cfg = EIEConfig.reusable_for(mm)
    regs = {REG["ID"]: SOC_ID, REG["CONFIG"]: config_word(cfg.pes, cfg.macs, cfg.lstm, cfg.max_layers)}
    regs.update({REG[name]: value for name, value in capacity_words(cfg).items()})
    board = FakeBoard(regs)
    link = Link(board, timeout_s=0.05)
    backend = LinuxBackend.over(LinkRegisters(link), None, where="fake")
    backend.load(mm)
    assert link._posted == [] and board.regs[REG["N_LAYERS"]] == 2
    board.regs[REG["CTRL"]] = 0
    backend.abort()
    assert link._posted == [] and board.regs[REG["CTRL"]] == 8


class LoadPortBoard(FakeBoard):
    """FakeBoard whose LD_GO writes go to a load port (the loads it saw, from its own registers),
    and which ignores the next ``deaf`` frames entirely (a cable pulled: nothing executed)."""

    def __init__(self, regs=None, deaf=0):
        super().__init__(regs)
        self.loads, self.deaf = [], deaf

    def write(self, data):
        if self.deaf:
            self.deaf -= 1
            return
        super().write(data)

    def write_register(self, offset, value):
        from sparsa.sw.eie.protocol import REG
        self.regs[offset] = value
        if offset == REG["LD_GO"]:
            r = lambda n: self.regs.get(REG[n], 0)
            self.loads.append((r("LD_KIND"), r("LD_PE"), r("LD_ADDR"), r("LD_DATA_LO") | r("LD_DATA_HI") << 32))


def test_repeated_load_register_values_are_not_sent_again_and_every_load_arrives_intact():
    """The host skips a load register's write when the register already holds the value; the
    board's load port must still see every load of the pack's sequence, in order, and the load
    takes fewer bytes than six writes a word."""
    from eie_cases import random_pack
    import numpy as np
    from sparsa.link import Link, LinkRegisters
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.eie.protocol import ALL_PES, load_sequence, register_writes
    print("seed=1709")
    mm = build_memory_map(random_pack([(20, 17), (9, 20)], 3, 0.3, np.random.default_rng(1709)))
    board = LoadPortBoard()
    link = Link(board, timeout_s=0.05)
    regs = LinkRegisters(link)
    loads = list(load_sequence(mm))
    for load in loads:
        for name, value in register_writes(load):
            regs[name] = value
    regs.flush()
    want = [(l.kind.value, ALL_PES if l.pe is None else l.pe, l.addr, l.word) for l in loads]
    assert board.loads == want
    assert link.bytes_sent < 0.75 * (len(loads) * 6 * 5)        # 5 bytes a write, framing on top


def test_after_a_lost_write_frame_held_values_are_sent_again():
    from sparsa.link import Link, LinkError, LinkRegisters
    from sparsa.sw.eie.protocol import REG
    board = LoadPortBoard()
    link = Link(board, timeout_s=0.02, retries=1)
    regs = LinkRegisters(link)
    regs["LD_PE"] = 1
    regs.flush()
    assert board.regs[REG["LD_PE"]] == 1
    regs["LD_PE"] = 2
    board.deaf = 2                              # the frame and its one retry never arrive
    with pytest.raises(LinkError):
        regs.flush()
    assert board.regs[REG["LD_PE"]] == 1
    regs["LD_PE"] = 2                           # the same value again: it must go out this time
    regs["LD_GO"] = 1
    regs.flush()
    assert board.regs[REG["LD_PE"]] == 2 and board.loads[-1][1] == 2
