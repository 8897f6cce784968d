"""sparsa.axidma without a board: UdmaBuf over a fake u-dma-buf sysfs and device file, AxiDma
against a stand-in of the AXI DMA's simple-mode registers (PG021: DMACR run/reset, RW1C
DMASR with IOC and error bits, the length register that starts a transfer and reports the
received byte count), and the two behind LinuxBackend end to end."""

import mmap

import numpy as np
import pytest
from eie_cases import independent_golden, random_input, random_pack
from test_runtime import FakeSoC

from sparsa.axidma import IOC, RESET, RS, AxiDma, UdmaBuf
from sparsa.dma import DMAError
from sparsa.runtime import Accelerator, LinuxBackend
from sparsa.sw.eie.config import EIEConfig
from sparsa.sw.eie.pack_dir import write_pack
from sparsa.sw.errors import UserError


def _udmabuf(tmp_path, name, phys, size=mmap.PAGESIZE):
    d = tmp_path / "sys" / name
    d.mkdir(parents=True)
    (d / "phys_addr").write_text(f"{phys:#x}\n")
    (d / "size").write_text(f"{size}\n")
    (tmp_path / "dev").mkdir(exist_ok=True)
    (tmp_path / "dev" / name).write_bytes(bytes(size))
    return UdmaBuf(name, sysfs=tmp_path / "sys", dev=tmp_path / "dev")


class FakeDmaRegs:
    """PG021's simple-mode semantics, and the stream's far end: MM2S hands the bytes at SA to
    ``sink``; ``complete(data)`` writes ``data`` at S2MM's DA, sets IOC and the length."""

    def __init__(self, memory, reset_polls=2):
        self.memory = memory                    # physical address -> UdmaBuf
        self.r = {}
        self.reset_left, self.reset_polls = 0, reset_polls
        self.sent, self.armed = None, None
        self.writes = []

    def _buf(self, phys):
        return self.memory[phys]

    def __getitem__(self, name):
        if name == "MM2S_DMACR" and self.reset_left:
            self.reset_left -= 1
            return RESET
        return self.r.get(name, 0)

    def __setitem__(self, name, value):
        self.writes.append((name, value))
        if name == "MM2S_DMACR" and value & RESET:
            self.r.update(MM2S_DMACR=0, S2MM_DMACR=0, MM2S_DMASR=1, S2MM_DMASR=1)   # halted
            self.reset_left, self.sent, self.armed = self.reset_polls, None, None
            return
        if name.endswith("DMASR"):                        # RW1C
            self.r[name] = self.r.get(name, 0) & ~value
            return
        self.r[name] = value
        if name.endswith("_DMACR"):
            ch = name[:4]
            self.r[f"{ch}_DMASR"] = self.r.get(f"{ch}_DMASR", 0) & ~1 if value & RS else 1
        elif name == "MM2S_LENGTH":
            assert self.r.get("MM2S_DMACR", 0) & RS, "MM2S started while halted"
            self.sent = bytes(self._buf(self.r["MM2S_SA"] | self.r.get("MM2S_SA_MSB", 0) << 32)[:value])
            self.r["MM2S_DMASR"] |= IOC
        elif name == "S2MM_LENGTH":
            assert self.r.get("S2MM_DMACR", 0) & RS, "S2MM started while halted"
            self.armed = (self.r["S2MM_DA"] | self.r.get("S2MM_DA_MSB", 0) << 32, value)

    def complete(self, data):
        phys, room = self.armed
        n = min(len(data), room)
        self._buf(phys)[:n] = np.frombuffer(data[:n], np.uint8)
        self.r["S2MM_LENGTH"] = n
        self.r["S2MM_DMASR"] |= IOC


class Card:
    """The engine behind FakeSoC: on START it runs the golden model on what MM2S sent."""

    def __init__(self, soc, dmaregs, pack, short=False):
        self.soc, self.dmaregs, self.pack, self.short = soc, dmaregs, pack, short

    def x_count(self):
        """X_COUNT: what MM2S sent since the last START."""
        return len(self.dmaregs.sent) // 2 if self.dmaregs.sent else 0

    def started(self):
        y = self.pack.run_golden(np.frombuffer(self.dmaregs.sent, "<i2")).astype("<i2").tobytes()
        self.dmaregs.sent = None
        self.dmaregs.complete(y[:-2] if self.short else y)
        self.soc.finish(777)

    def tick(self):
        pass


def _setup(tmp_path, seed=901, short=False):
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = random_pack([(20, 17), (9, 20)], 2, 0.3, rng)
    write_pack(pack, tmp_path / "pk")
    inbuf, outbuf = _udmabuf(tmp_path, "udmabuf0", 0x1F000000), _udmabuf(tmp_path, "udmabuf1", 0x1F100000)
    regs = FakeDmaRegs({0x1F000000: inbuf, 0x1F100000: outbuf})
    dma = AxiDma("/dev/mem", 0x40400000, inbuf, outbuf, regs=regs)
    regfile = tmp_path / "regs.bin"
    regfile.write_bytes(bytes(mmap.PAGESIZE))
    backend = LinuxBackend(regfile, dma=dma)
    soc = FakeSoC(backend.regs, EIEConfig.reusable_for(pack))
    backend.regs = soc
    soc.engine = Card(soc, regs, pack, short)
    return pack, random_input(17, rng, batch=3), backend, regs


def test_udmabuf_maps_the_buffer_with_its_physical_address(tmp_path):
    buf = _udmabuf(tmp_path, "udmabuf0", 0x3F000000)
    assert buf.physical_address == 0x3F000000 and buf.size == mmap.PAGESIZE and buf.dtype == np.uint8
    buf[:4] = [1, 2, 3, 4]
    buf.flush()
    assert (tmp_path / "dev" / "udmabuf0").read_bytes()[:4] == bytes([1, 2, 3, 4])


def test_a_missing_udmabuf_is_a_one_line_error(tmp_path):
    with pytest.raises(UserError, match=r"udmabuf7: u-dma-buf: expected phys_addr and size .* named udmabuf7"):
        UdmaBuf("udmabuf7", sysfs=tmp_path, dev=tmp_path)


def test_linux_backend_runs_bit_exact_over_the_register_level_dma(tmp_path):
    pack, x, backend, regs = _setup(tmp_path)
    acc = Accelerator(tmp_path / "pk", backend=backend)
    np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))
    assert list(acc.cycles) == [777] * 3
    # Both channels were reset, then set running, before any transfer (PG021 order).
    names = [n for n, _ in regs.writes]
    assert names[:3] == ["MM2S_DMACR", "MM2S_DMACR", "S2MM_DMACR"]
    assert regs.writes[1:3] == [("MM2S_DMACR", RS), ("S2MM_DMACR", RS)]


def test_a_short_packet_is_a_dma_error(tmp_path):
    _, x, backend, _ = _setup(tmp_path, 902, short=True)
    acc = Accelerator(tmp_path / "pk", backend=backend)
    with pytest.raises(DMAError, match=r"received 16 bytes, expected 18 \(tlast early or late\)"):
        acc.run(x)


@pytest.mark.parametrize("bit,name", [(1 << 5, "DMASlvErr"), (1 << 6, "DMADecErr"), (1 << 4, "DMAIntErr")])
def test_error_bits_are_dma_errors_that_abort(tmp_path, bit, name):
    _, x, backend, regs = _setup(tmp_path, 903)
    acc = Accelerator(tmp_path / "pk", backend=backend)
    backend.regs.engine.started = lambda: regs.r.__setitem__("S2MM_DMASR", regs.r["S2MM_DMASR"] | bit)
    with pytest.raises(DMAError, match=f"S2MM_DMASR 0x[0-9a-f]+: {name}"):
        acc.run(x)
    assert backend.regs.aborts == 2 and ("MM2S_DMACR", RESET) in regs.writes[-3:]    # the load's, the error's


def test_a_reset_that_never_completes_is_a_dma_error(tmp_path):
    inbuf = _udmabuf(tmp_path, "udmabuf0", 0x1F000000)
    regs = FakeDmaRegs({}, reset_polls=10 ** 6)
    dma = AxiDma("/dev/mem", 0x40400000, inbuf, inbuf, regs=regs)
    assert regs.writes == []                 # nothing written before the runtime's checks
    with pytest.raises(DMAError, match=r"soft reset \(MM2S_DMACR.Reset\) did not complete"):
        dma.reset()


def test_the_dma_base_comes_from_address_map_json(tmp_path):
    (tmp_path / "address_map.json").write_text(
        '{"engine": "eie", "cells": {"accel": {"base": 1124073472}, "dma": {"base": 1077936128}}}')
    mem = tmp_path / "mem"
    mem.write_bytes(bytes(mmap.PAGESIZE))
    inbuf = _udmabuf(tmp_path, "udmabuf0", 0x1F000000)
    from sparsa.mmio import register_base
    assert register_base(tmp_path / "address_map.json", "eie", "EIE SoC", cell="dma") == 0x40400000
    with pytest.raises(Exception, match="0x40400000|offset"):      # the base is past this small file
        AxiDma.from_address_map(tmp_path / "address_map.json", inbuf, inbuf, mem=mem)
