"""The host runtime: the simulation backend on Verilator; the Linux backend against a register
file that is a plain mapped file, with a stand-in for the board's DMA and engine."""

import mmap

import numpy as np
import pytest
from eie_cases import independent_golden, random_input, random_pack

from sparsa.sw.eie.protocol import REGISTERS, LoadKind
from sparsa.sw.errors import UserError
from sparsa.sw.eie.pack_dir import write_pack
from sparsa.runtime import Accelerator, LinuxBackend

REG = {n: o for n, o, _, _ in REGISTERS}


def _pack(tmp_path, seed):
    print(f"seed={seed}")
    rng = np.random.default_rng(seed)
    pack = random_pack([(20, 17), (9, 20)], 2, 0.3, rng)
    write_pack(pack, tmp_path / "pk")
    return pack, random_input(17, rng, batch=3)


@pytest.mark.xdist_group("eie_verilator")
def test_sim_backend_runs_the_pack_bit_exact(tmp_path):
    pack, x = _pack(tmp_path, 801)
    acc = Accelerator(tmp_path / "pk")
    np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))
    assert acc.cycles.shape == (3,) and np.all(acc.cycles > 0)


class FakeBoard:
    """Stands in for the DMA and the engine: the outputs are the golden model's, DONE and
    CYCLES are set in the register file the way the SoC wrapper sets them."""

    def __init__(self, regfile, pack):
        self.regs = np.memmap(regfile, dtype="<u4", mode="r+", shape=(64,))
        self.pack = pack
        self.x = None

    def send(self, data):
        self.x = np.frombuffer(data, "<i2")

    def recv(self, nbytes):
        assert self.regs[REG["CTRL"] // 4] & 1, "recv before START"
        y = self.pack.run_golden(self.x)
        self.regs[REG["CYCLES"] // 4] = 1234
        self.regs[REG["STATUS"] // 4] = 2
        self.regs.flush()
        assert nbytes == 2 * y.size
        return y.astype("<i2").tobytes()


def test_linux_backend_against_a_mapped_register_file(tmp_path):
    pack, x = _pack(tmp_path, 802)
    regfile = tmp_path / "regs.bin"
    regfile.write_bytes(bytes(mmap.PAGESIZE))
    board = FakeBoard(regfile, pack)
    backend = LinuxBackend(regfile, dma=board)
    acc = Accelerator(tmp_path / "pk", backend=backend)
    regs = np.fromfile(regfile, dtype="<u4")
    # The load went through the LD_* registers: the last write is layer 1's codebook entry 15.
    assert regs[REG["LD_KIND"] // 4] == LoadKind.CODEBOOK.value
    assert regs[REG["LD_ADDR"] // 4] == 1 * 16 + 15
    assert regs[REG["LD_PE"] // 4] == 0xFFFFFFFF
    assert regs[REG["N_LAYERS"] // 4] == 2
    y = acc.run(x)
    np.testing.assert_array_equal(y, independent_golden(pack, x))
    assert list(acc.cycles) == [1234] * 3
    assert np.fromfile(regfile, dtype="<u4")[REG["Y_COUNT"] // 4] == 9


def test_linux_backend_without_dma_says_what_is_missing(tmp_path):
    pack, x = _pack(tmp_path, 803)
    regfile = tmp_path / "regs.bin"
    regfile.write_bytes(bytes(mmap.PAGESIZE))
    acc = Accelerator(tmp_path / "pk", backend=LinuxBackend(regfile))
    with pytest.raises(UserError, match="AXI DMA"):
        acc.run(x)


def test_unmappable_register_path_is_a_clear_error(tmp_path):
    (tmp_path / "tiny").write_bytes(b"\0" * 16)
    with pytest.raises(UserError, match="tiny: registers: expected a mappable"):
        LinuxBackend(tmp_path / "tiny")
