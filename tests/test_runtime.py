"""The host runtime: the simulation backend on Verilator; the Linux backend against a register
file that is a plain mapped file, behind a stand-in for the SoC's register semantics (RW1C
STATUS, START/ABORT strobes) and a scripted DMA that can stall, complete in either order and fail."""

import mmap

import numpy as np
import pytest
from eie_cases import independent_golden, random_input, random_pack

from sparsa.dma import DMAError
from sparsa.runtime import Accelerator, LinuxBackend
from sparsa.sw.eie.config import EIEConfig
from sparsa.sw.eie.lstm_step import lstm_golden
from sparsa.sw.eie.memmap import build_memory_map
from sparsa.sw.eie.pack_dir import write_pack
from sparsa.sw.eie.protocol import REGISTERS, LoadKind
from sparsa.sw.errors import UserError

# Offsets and bits written out here from docs/soc.md, not imported, so a change to the
# protocol module is seen by these tests.
OFF = {r.name: r.offset for r in REGISTERS}
START, ABORT, BUSY, DONE = 1, 8, 1, 2
SPRS = 0x53505253


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


class FakeSoC:
    """The SoC's register semantics over the backend's mapped register file: ID, CONFIG and
    CAP_* of ``cfg``, STATUS = BUSY | DONE (write 1 to clear DONE), CTRL.START starts the
    ``engine`` (a FakeDma), CTRL.ABORT makes it idle; every load-port write is recorded."""

    def __init__(self, regs, cfg, ident=SPRS):
        self.regs = regs                       # the backend's MmioRegisters (a mapped file)
        self.reg = regs.reg
        self.busy = self.done = False
        self.aborts = 0
        self.writes = []
        self.engine = None
        regs["ID"] = ident
        regs["CONFIG"] = cfg.pes | cfg.macs << 16 | int(cfg.lstm) << 18 | cfg.max_layers << 24
        for name, value in (("CAP_COLS", cfg.max_cols), ("CAP_ROWS_PE", cfg.max_rows_pe),
                            ("CAP_SPM", cfg.spm_words), ("CAP_PTR", cfg.ptr_words), ("CAP_BIAS", cfg.bias_words),
                            ("CAP_ACT", cfg.act_depth), ("CAP_PTR_BITS", cfg.pointer_bits)):
            regs[name] = value

    def __getitem__(self, name):
        if name == "X_COUNT":
            return self.engine.x_count() if self.engine is not None else 0
        if name == "STATUS":
            if self.engine is not None:
                self.engine.tick()
            return self.busy * BUSY | self.done * DONE
        return self.regs[name]

    def __setitem__(self, name, value):
        self.writes.append((name, value))
        if name == "STATUS":
            self.done = self.done and not value & DONE
        elif name == "CTRL":
            if value & ABORT:
                self.aborts += 1
                self.busy = self.done = False
                if self.engine is not None:
                    self.engine.taken = 0
            elif value & START:
                self.busy, self.done = True, False
                self.engine.started()
            value &= 0b110
        self.regs[name] = value

    def finish(self, cycles):
        self.busy, self.done = False, True
        self.regs["CYCLES"] = cycles


class FakeDma:
    """The DMA contract, scripted on a tick that advances on every STATUS read and every
    ``recv_done``: ``order`` 'done_first' (DONE at tick 1, the receive at tick 4), 'dma_first'
    (the other way), 'stall_engine' (DONE never comes), 'stall_dma' (the receive never
    completes) or 'error' (the DMA reports an error). The input reaches the engine (X_COUNT)
    ``input_reads`` X_COUNT reads after the send; 'stall_input' stops it at half."""

    SCHEDULE = {"done_first": (1, 4), "dma_first": (4, 1), "stall_engine": (None, 1), "stall_dma": (1, None),
                "error": (1, None), "stall_input": (1, 4)}

    def __init__(self, soc, pack, order="done_first", input_reads=0):
        self.soc, self.pack, self.order = soc, pack, order
        self.resets = 0
        self.x = self.y = self.run = None
        self.input_reads, self.taken, self.reads = input_reads, 0, 0

    def send(self, data):
        self.x = np.frombuffer(data, "<i2").copy()
        self.reads = 0

    def x_count(self):
        """X_COUNT: the values of the last send the engine has taken."""
        if self.x is not None and self.taken == 0:
            self.reads += 1
            if self.reads > self.input_reads:
                self.taken = len(self.x) // 2 if self.order == "stall_input" else len(self.x)
        return self.taken

    def start_recv(self, nbytes):
        self.nbytes, self.y, self.run = nbytes, None, None

    def started(self):
        assert self.x is not None and self.y is None, "START before the input was sent / receive armed"
        assert self.taken == len(self.x), f"START with {self.taken} of {len(self.x)} input values in the engine"
        self.result = self.pack.run_golden(self.x).astype("<i2").tobytes()
        self.taken, self.x = 0, None
        assert len(self.result) == self.nbytes
        self.run = 0

    def tick(self):
        if self.run is None:
            return
        self.run += 1
        engine_at, dma_at = self.SCHEDULE[self.order]
        if self.run == engine_at:
            self.soc.finish(1000 + self.run)
        if self.run == dma_at:
            self.y = self.result

    def recv_done(self):
        self.tick()
        if self.order == "error":
            raise DMAError("AXI DMA recvchannel: the channel reports an error")
        return self.y is not None

    def recv_data(self):
        assert self.soc.done and self.y is not None, "recv_data before DONE and the receive"
        return self.y

    def reset(self):
        self.resets += 1
        self.run = None


def _linux(tmp_path, pack, order="done_first", cfg=None, ident=SPRS, timeout_s=1.0, input_reads=0):
    regfile = tmp_path / "regs.bin"
    regfile.write_bytes(bytes(mmap.PAGESIZE))
    backend = LinuxBackend(regfile, timeout_s=timeout_s)
    soc = FakeSoC(backend.regs, cfg or EIEConfig.reusable_for(pack), ident)
    backend.regs = soc
    backend.dma = soc.engine = FakeDma(soc, pack, order, input_reads)
    return backend, soc, regfile


@pytest.mark.parametrize("order", ["done_first", "dma_first"])
def test_linux_backend_runs_whichever_of_done_and_the_dma_comes_first(tmp_path, order):
    pack, x = _pack(tmp_path, 802)
    backend, soc, regfile = _linux(tmp_path, pack, order)
    acc = Accelerator(tmp_path / "pk", backend=backend)
    # The load went through the LD_* registers: replay them into per-kind tables and compare
    # with the memory map (the last write is layer 1's codebook entry 15).
    ld = {}
    cur = {}
    for name, value in soc.writes:
        cur[name] = value
        if name == "LD_GO":
            ld[(cur["LD_KIND"], cur["LD_PE"], cur["LD_ADDR"])] = cur["LD_DATA_LO"] | cur["LD_DATA_HI"] << 32
    mm = build_memory_map(pack)
    assert cur["LD_KIND"] == LoadKind.CODEBOOK.value and cur["LD_ADDR"] == 1 * 16 + 15
    assert cur["LD_PE"] == 0xFFFFFFFF
    for k in range(mm.pes):
        for a, w in enumerate(mm.spm[k]):
            assert ld[(LoadKind.SPM.value, k, a)] == int(w) & (1 << 64) - 1
    assert soc.regs["N_LAYERS"] == 2
    y = acc.run(x)
    np.testing.assert_array_equal(y, independent_golden(pack, x))
    assert len(acc.cycles) == 3 and all(c in (1001, 1004) for c in acc.cycles)
    assert np.fromfile(regfile, dtype="<u4")[OFF["Y_COUNT"] // 4] == 9
    # One abort, the load's (it stops whatever the device was doing); none in the runs.
    assert soc.aborts == 1 and backend.dma.resets == 1 and not soc.done


def _loaded(tmp_path, seed, order, **kw):
    """A backend with the pack loaded, its abort and reset counts back at 0."""
    pack, x = _pack(tmp_path, seed)
    backend, soc, _ = _linux(tmp_path, pack, order, **kw)
    acc = Accelerator(tmp_path / "pk", backend=backend)
    soc.aborts = backend.dma.resets = 0
    soc.writes.clear()
    return pack, x, acc, backend, soc


@pytest.mark.parametrize("order,missing", [("stall_engine", "DONE from the engine"), ("stall_dma", "the DMA's receive")])
def test_the_timeout_fires_and_aborts_engine_and_dma(tmp_path, order, missing):
    _, x, acc, backend, soc = _loaded(tmp_path, 803, order, timeout_s=0.05)
    with pytest.raises(TimeoutError, match=f": {missing} did not come within 0.05 s"):
        acc.run(x)
    assert soc.aborts == 1 and backend.dma.resets == 1
    assert ("CTRL", ABORT) in soc.writes and not soc.busy


def test_a_dma_error_aborts_and_is_raised(tmp_path):
    _, x, acc, backend, soc = _loaded(tmp_path, 804, "error")
    with pytest.raises(DMAError):
        acc.run(x)
    assert soc.aborts == 1 and backend.dma.resets == 1


def test_start_waits_until_the_engine_has_the_whole_input(tmp_path):
    # The send completes long before the input reaches the engine (converters, FIFOs): START
    # must wait for X_COUNT (the fake refuses a START with part of the input).
    pack, x, acc, backend, soc = _loaded(tmp_path, 810, "done_first", input_reads=25)
    np.testing.assert_array_equal(acc.run(x), independent_golden(pack, x))
    assert soc.aborts == 0


def test_an_input_that_never_fully_arrives_times_out_saying_how_much_came(tmp_path):
    pack, x, acc, backend, soc = _loaded(tmp_path, 811, "stall_input", timeout_s=0.05)
    with pytest.raises(TimeoutError, match=r"regs.bin: the engine took 8 of 17 input values within 0.05 s"):
        acc.run(x)
    assert soc.aborts == 1 and backend.dma.resets == 1 and not any(w == ("CTRL", START) for w in soc.writes)
    # The next job first aborts again (late beats of the abandoned input, converters flushed),
    # before it sends anything; then it runs clean.
    backend.dma.order, soc.writes[:] = "done_first", []
    np.testing.assert_array_equal(acc.run(x[:1]), independent_golden(pack, x[:1]))
    assert soc.writes[:2] == [("STATUS", DONE), ("CTRL", ABORT)] and soc.aborts == 2


def test_a_failed_send_leaves_nothing_armed(tmp_path):
    _, x, acc, backend, soc = _loaded(tmp_path, 812, "done_first")

    def refuse(data):
        raise DMAError("send refused")
    backend.dma.send = refuse
    with pytest.raises(DMAError, match="send refused"):
        acc.run(x)
    assert soc.aborts == 1 and backend.dma.resets == 1 and not any(w == ("CTRL", START) for w in soc.writes)


def test_input_left_over_from_an_aborted_transfer_is_cleared_before_the_next_input(tmp_path):
    pack, x, acc, backend, soc = _loaded(tmp_path, 813, "done_first")
    backend.dma.x, backend.dma.taken = np.zeros(5, "<i2"), 5        # late beats of an abandoned send
    np.testing.assert_array_equal(acc.run(x[:1]), independent_golden(pack, x[:1]))
    assert soc.writes[1] == ("CTRL", ABORT)                          # after clearing DONE, before the send


def test_more_input_than_was_sent_is_a_dma_error(tmp_path):
    _, x, acc, backend, soc = _loaded(tmp_path, 814, "done_first")
    backend.dma.x_count = lambda: 18
    with pytest.raises(DMAError, match=r"X_COUNT: expected 17 input values, found 18"):
        acc.run(x)
    assert soc.aborts == 2         # the stray-input clear, then the abort


def test_a_wrong_id_is_refused_before_any_write(tmp_path):
    pack, _ = _pack(tmp_path, 805)
    backend, soc, _ = _linux(tmp_path, pack, ident=0x00010002)
    with pytest.raises(UserError, match=r"regs.bin: ID register: expected 0x53505253 .* found 0x00010002: "
                                        r"wrong device or base address; nothing was written"):
        Accelerator(tmp_path / "pk", backend=backend)
    assert soc.writes == []


@pytest.mark.parametrize("field,value,message", [
    ("spm_words", 1, r"sparse-matrix words per PE: expected at most 1 \(as built\), found \d+ \(too large by \d+\)"),
    ("pes", 4, r"pes: expected 4 \(as built\), found 2"),
    ("max_layers", 1, r"layers: expected at most 1 \(as built\), found 2 \(too large by 1\)"),
])
def test_a_pack_the_bitstream_cannot_hold_is_refused_before_any_write(tmp_path, field, value, message):
    pack, _ = _pack(tmp_path, 806)
    cfg = EIEConfig.reusable_for(pack)
    small = cfg.replace(**{field: value}, **({"pointer_bits": 16} if field == "spm_words" else {}))
    backend, soc, _ = _linux(tmp_path, pack, cfg=small)
    with pytest.raises(UserError, match=r"pk on the device at .*regs.bin.*" + message):
        Accelerator(tmp_path / "pk", backend=backend)
    assert soc.writes == []


def test_the_load_first_resets_the_dma_and_aborts_the_engine(tmp_path):
    # Whatever the device was doing (a busy run, a half-sent stream) stops before the load.
    pack, _ = _pack(tmp_path, 807)
    backend, soc, _ = _linux(tmp_path, pack)
    soc.busy = True
    Accelerator(tmp_path / "pk", backend=backend)
    assert soc.writes[0] == ("CTRL", ABORT) and backend.dma.resets == 1


def test_linux_backend_without_dma_says_what_is_missing(tmp_path):
    pack, x = _pack(tmp_path, 808)
    backend, _, _ = _linux(tmp_path, pack)
    backend.dma = None
    acc = Accelerator(tmp_path / "pk", backend=backend)
    with pytest.raises(UserError, match="AXI DMA"):
        acc.run(x)


def test_the_backend_closes_its_registers_and_dma_as_a_context_manager(tmp_path):
    (tmp_path / "regs.bin").write_bytes(bytes(mmap.PAGESIZE))

    class Closable:
        closed = False

        def close(self):
            self.closed = True
    dma = Closable()
    with LinuxBackend(tmp_path / "regs.bin", dma=dma) as backend:
        backend.regs["Y_COUNT"] = 5
    assert dma.closed and np.fromfile(tmp_path / "regs.bin", "<u4")[OFF["Y_COUNT"] // 4] == 5
    with pytest.raises(ValueError):                   # the mapping is gone
        backend.regs._mm.read(4)


def test_unmappable_register_path_is_a_clear_error(tmp_path):
    (tmp_path / "tiny").write_bytes(b"\0" * 16)
    with pytest.raises(UserError, match="tiny: registers: expected a mappable"):
        LinuxBackend(tmp_path / "tiny")


def _sysfs(tmp_path, names):
    for i, name in enumerate(names):
        d = tmp_path / "sys" / f"uio{i}"
        (d / "maps" / "map0").mkdir(parents=True)
        (d / "name").write_text(name + "\n")
        (d / "maps" / "map0" / "size").write_text("0x10000\n")
    (tmp_path / "dev").mkdir()
    return tmp_path / "sys", tmp_path / "dev"


@pytest.mark.parametrize("make,found", [
    (lambda p: None, r"found No such file or directory \(no such device: load the overlay or driver first\)"),
    (lambda p: p.mkdir(), r"found Is a directory"),
])
def test_a_register_path_that_does_not_open_is_a_one_line_error(tmp_path, make, found):
    make(tmp_path / "uio9")
    with pytest.raises(UserError, match=r"uio9: registers: expected a device or file to open read-write, " + found):
        LinuxBackend(tmp_path / "uio9")


def test_a_pcie_cards_address_map_points_to_the_xdma_backend(tmp_path):
    (tmp_path / "address_map.json").write_text(
        '{"engine": "eie", "host": "pcie-xdma", "cells": {"accel": {"base": 0, "range": 65536}}}')
    with pytest.raises(UserError, match=r"address_map.json: host: expected a Zynq tree's map .* found 'pcie-xdma'"
                                        r".*xdma_backend"):
        LinuxBackend.from_address_map(tmp_path / "address_map.json", mem=tmp_path / "nothing")


def test_the_device_is_found_by_its_uio_name(tmp_path):
    sysfs, dev = _sysfs(tmp_path, ["axi_dma", "sparsa_soc"])
    (dev / "uio1").write_bytes(bytes(mmap.PAGESIZE))
    (dev / "uio0").write_bytes(bytes(mmap.PAGESIZE))
    backend = LinuxBackend(sysfs=sysfs, dev=dev)
    assert backend.regs.path == str(dev / "uio1")


def test_an_exact_uio_name_wins_over_a_longer_one_and_two_longer_ones_are_ambiguous(tmp_path):
    sysfs, dev = _sysfs(tmp_path, ["sparsa_dma", "sparsa"])
    (dev / "uio1").write_bytes(bytes(mmap.PAGESIZE))
    assert LinuxBackend(sysfs=sysfs, dev=dev).regs.path == str(dev / "uio1")
    sysfs, dev = _sysfs(tmp_path / "b", ["sparsa_dma", "sparsa_soc"])
    with pytest.raises(UserError, match=r"UIO device: expected one named 'sparsa', found 2: uio0, uio1 \(pass the"):
        LinuxBackend(sysfs=sysfs, dev=dev)


def test_no_uio_device_of_that_name_lists_what_is_there(tmp_path):
    sysfs, dev = _sysfs(tmp_path, ["axi_dma", "gpio"])
    with pytest.raises(UserError, match=r"UIO device: expected one named 'sparsa', found uio0 'axi_dma', uio1 'gpio'"):
        LinuxBackend(sysfs=sysfs, dev=dev)


def test_the_backend_maps_the_base_address_map_json_records(tmp_path):
    mem = tmp_path / "mem"
    mem.write_bytes(bytes(3 * mmap.PAGESIZE))
    words = np.memmap(mem, dtype="<u4", mode="r+")
    words[2 * mmap.PAGESIZE // 4] = SPRS                     # ID at the second page
    words.flush()
    (tmp_path / "address_map.json").write_text(
        '{"engine": "eie", "cells": {"accel": {"base": %d, "range": 65536}}}' % (2 * mmap.PAGESIZE))
    backend = LinuxBackend.from_address_map(tmp_path / "address_map.json", mem=mem)
    assert backend.regs["ID"] == SPRS


@pytest.mark.parametrize("text,message", [
    ('{"engine": "eie", "cells": {"accel": {"base": 4097}}}', r"cells.accel.base: expected a 4 KiB-aligned .* found 4097"),
    ('{"engine": "eie", "cells": {"accel": {"base": "0x43c00000"}}}', r"cells.accel.base: .* found '0x43c00000'"),
    ('{"engine": "cnn", "cells": {"accel": {"base": 0}}}', r"engine: expected 'eie' .* found 'cnn'"),
    ('{"cells": {}}', r"expected a sparsa address_map.json with cells.accel.base, found KeyError"),
    ("not json", r"expected a sparsa address_map.json with cells.accel.base, found JSONDecodeError"),
])
def test_a_bad_address_map_is_a_one_line_error(tmp_path, text, message):
    (tmp_path / "address_map.json").write_text(text)
    with pytest.raises(UserError, match=r"address_map.json: " + message):
        LinuxBackend.from_address_map(tmp_path / "address_map.json", mem=tmp_path / "nothing")


def test_an_lstm_pack_loads_its_peepholes(tmp_path):
    # LSTM builds keep the peephole weights in a per-PE memory (LoadKind.PEEP): a reload over
    # LD_* must write every one of them, or the cell would run on stale peepholes.
    from test_lstm import random_lstm
    from sparsa.sw.lstm.pack import compress_lstm, pack_lstm
    print("seed=809")
    rng = np.random.default_rng(809)
    w = random_lstm(rng, 6, 10, 4, peepholes=True)
    pack = pack_lstm(compress_lstm(w, 0.3, 4, 4, calib=rng.uniform(-1, 1, (8, 6))), 2)
    write_pack(pack, tmp_path / "pk")
    backend, soc, _ = _linux(tmp_path, pack)
    Accelerator(tmp_path / "pk", backend=backend)
    loads, cur = {}, {}
    for name, value in soc.writes:
        cur[name] = value
        if name == "LD_GO":
            loads[(cur["LD_KIND"], cur["LD_PE"], cur["LD_ADDR"])] = cur["LD_DATA_LO"] | cur["LD_DATA_HI"] << 32
    mm = build_memory_map(pack)
    assert mm.peep is not None and sum(p.size for p in mm.peep) > 0
    for k, peep in enumerate(mm.peep):
        for a, v in enumerate(peep):
            assert loads[(LoadKind.PEEP.value, k, a)] == int(v) & (1 << 64) - 1, (k, a)


class FakeLstmDma(FakeDma):
    """An LSTM step per START: x_t is read back from the ACT loads written since the last START
    (PE k, address a holds input (a - x_base) * N + k; step 0 also zeroes y_{-1} below x_base),
    and y_t is the golden model over the steps so far."""

    def __init__(self, soc, pack):
        super().__init__(soc, pack)
        self.steps, self.mark = [], 0

    def x_count(self):
        return 0

    def started(self):
        assert self.y is None, "START before the receive was armed"
        meta, n = self.pack.lstm, self.pack.pes
        x_base, cur, act = meta["outputs_pad"] // n, {}, {}
        for name, value in self.soc.writes[self.mark:]:
            cur[name] = value
            if name == "LD_GO" and cur["LD_KIND"] == LoadKind.ACT.value:
                act[(cur["LD_PE"], cur["LD_ADDR"])] = cur["LD_DATA_LO"]
        self.mark = len(self.soc.writes)
        first = not self.steps
        assert bool(self.soc.writes[-1][1] & 2) == first, "LSTM_CLEAR on step 0 only"
        if first:
            assert all(act[(k, a)] == 0 for a in range(x_base) for k in range(n)), "y_{-1} not zeroed"
        xt = [act[(j % n, x_base + j // n)] for j in range(meta["inputs"])]
        self.steps.append(np.array(xt, np.uint16).astype(np.int16))
        y = lstm_golden(self.pack, np.array(self.steps))[-1]
        self.result = np.pad(y, (0, meta["outputs_pad"] - len(y))).astype("<i2").tobytes()
        assert len(self.result) == self.nbytes
        self.run = 0


def test_an_lstm_pack_runs_step_by_step_on_the_linux_backend(tmp_path):
    from test_lstm import _hw_case
    print("seed=815")
    pack, xq = _hw_case(815, 5, 9, 3, 2, peep=True, steps=4)
    write_pack(pack, tmp_path / "pk")
    backend, soc, _ = _linux(tmp_path, pack)
    backend.dma = soc.engine = FakeLstmDma(soc, pack)
    acc = Accelerator(tmp_path / "pk", backend=backend)
    np.testing.assert_array_equal(acc.run(xq), lstm_golden(pack, xq))
    assert len(acc.cycles) == 4 and soc.regs["N_LAYERS"] == 2


@pytest.mark.xdist_group("lstm_verilator")
def test_sim_backend_runs_an_lstm_pack_as_a_sequence(tmp_path):
    from test_lstm import _hw_case
    print("seed=11")
    pack, xq = _hw_case(11, 5, 8, 4, 2, bias=False, steps=5)     # test_lstm's first case: its build
    write_pack(pack, tmp_path / "pk")
    acc = Accelerator(tmp_path / "pk")
    np.testing.assert_array_equal(acc.run(xq), lstm_golden(pack, xq))
    assert acc.cycles.shape == (5,)


def test_an_input_of_the_wrong_length_is_refused_before_anything_runs(tmp_path):
    _, x, acc, backend, soc = _loaded(tmp_path, 816, "done_first")
    with pytest.raises(UserError, match=r"x: expected int16 of shape \(cols,\) or \(batch, cols\) with cols = 17 "
                                        r"\(the pack's input length\), found shape \(3, 16\)"):
        acc.run(x[:, :16])
    assert soc.writes == []
