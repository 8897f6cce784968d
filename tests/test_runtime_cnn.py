"""The CNN engine's Linux runtime against a register file that is a plain mapped file, behind a
stand-in for the CNN SoC (RW1C STATUS, START, DRAM_BASE) whose engine reads and writes a
non-coherent buffer: the CPU sees the device's writes only after ``invalidate`` and the device
the CPU's only after ``flush``, as on a Zynq HP port."""

import mmap

import numpy as np
import pytest
from cnn_cases import random_graph

from sparsa.cli import main
from sparsa.runtime_cnn import CNNAccelerator, CNNLinuxBackend
from sparsa.sw.cnn.golden import cnn_forward
from sparsa.sw.cnn.pack import load_cnn_pack
from sparsa.sw.errors import UserError
from sparsa.sw.model.graph import save_graph

SCNN = 0x53434E4E
PHYS = 0x1F400000


class NonCoherentBuffer(np.ndarray):
    """``pynq.allocate``'s shape: a uint8 array with ``physical_address``, ``flush`` and
    ``invalidate``; ``dev`` is what the engine sees."""

    @classmethod
    def allocate(cls, size, phys=PHYS):
        b = np.zeros(size, np.uint8).view(cls)
        b.dev = np.zeros(size, np.uint8)
        b.physical_address = phys
        b.flushes = 0
        return b

    def flush(self):
        self.dev[:] = self
        self.flushes += 1

    def invalidate(self):
        self[:] = self.dev


class FakeCNNSoC:
    """The CNN SoC's register semantics over the backend's mapped file; START runs the golden
    model on the input the device sees at DRAM_BASE and writes the output there."""

    def __init__(self, regs, prog, graph, buffer, config=None, ident=SCNN, hang=False, abort_hangs=False,
                 buffers=None):
        self.regs, self.prog, self.graph, self.buffer, self.hang = regs, prog, graph, buffer, hang
        self.abort_hangs = abort_hangs        # a bus that never answers: ABORT cannot finish
        self.reg = regs.reg
        self.done = self.busy = False
        self.writes = []
        regs["ID"] = ident
        regs["CONFIG"] = prog.cfg.config_word if config is None else config
        for reg, value in {"IBUF_BYTES": prog.cfg.ibuf_bytes, "WBUF_WORDS": prog.cfg.wbuf_words,
                           "OBUF_DEPTH": prog.cfg.obuf_depth, "PSUM_DEPTH": prog.cfg.psum_depth,
                           **(buffers or {})}.items():
            regs[reg] = value

    def __getitem__(self, name):
        if name == "STATUS":
            return self.busy | self.done << 1
        return self.regs[name]

    def __setitem__(self, name, value):
        self.writes.append((name, value))
        if name == "STATUS":
            self.done = self.done and not value & 2
        elif name == "CTRL" and value & 2:
            self.done = False
            self.busy = self.busy and self.abort_hangs
        elif name == "CTRL" and value & 1:
            self.start()
        self.regs[name] = value

    def start(self):
        p, dev = self.prog, self.buffer.dev
        base = self.regs["DRAM_BASE"] - self.buffer.physical_address     # where the engine looks
        assert base == 0, "DRAM_BASE is not the buffer's physical address"
        assert bytes(dev[:len(p.program)]) == p.program, "the program is not in the device's view (no flush?)"
        if self.hang:
            self.busy = True
            return
        x = dev[p.input_addr:p.input_addr + int(np.prod(p.input_shape))].view(np.int8).reshape(p.input_shape)
        y = cnn_forward(self.graph, x.copy()).astype(np.int8).reshape(-1)
        dev[p.output_addr:p.output_addr + y.size] = y.view(np.uint8)
        self.regs["CYCLES"], self.regs["MAC_CYCLES"] = 5000 + int(x[0, 0, 0]) + 128, 3000
        self.done = True


@pytest.fixture(scope="module")
def cnn_pack(tmp_path_factory):
    d = tmp_path_factory.mktemp("cnnrt")
    print("seed=3")
    graph, x = random_graph(3)
    save_graph(d / "g.npz", graph)
    assert main(["pack", str(d / "g.npz"), "-o", str(d / "pk"), "--lanes", "4"]) == 0
    rng = np.random.default_rng(3)
    xs = rng.integers(-128, 128, (3,) + tuple(x.shape)).astype(np.int8)
    return d / "pk", graph, xs


def _backend(tmp_path, cnn_pack, size=None, phys=PHYS, **soc):
    pk, graph, _ = cnn_pack
    prog, _, _ = load_cnn_pack(pk)
    regfile = tmp_path / "regs.bin"
    regfile.write_bytes(bytes(mmap.PAGESIZE))
    buf = NonCoherentBuffer.allocate(size or prog.dram_size, phys)
    backend = CNNLinuxBackend(regfile, buffer=buf, timeout_s=0.05)
    backend.regs = fake = FakeCNNSoC(backend.regs, prog, graph, buf, **soc)
    return backend, fake, buf


def test_runs_a_batch_bit_exact_through_a_non_coherent_buffer(tmp_path, cnn_pack):
    pk, graph, xs = cnn_pack
    backend, fake, buf = _backend(tmp_path, cnn_pack)
    acc = CNNAccelerator(pk, backend)
    assert fake.regs["DRAM_BASE"] == PHYS and fake.regs["PROG_ADDR"] == 0
    y = acc.run(xs)
    np.testing.assert_array_equal(y, np.stack([cnn_forward(graph, x) for x in xs]))
    assert list(acc.cycles) == [5000 + int(x[0, 0, 0]) + 128 for x in xs] and list(acc.mac_cycles) == [3000] * 3
    assert buf.flushes == 1 + len(xs) and not fake.done
    np.testing.assert_array_equal(acc.run(xs[0]), cnn_forward(graph, xs[0]))      # one image, no batch axis


def test_a_wrong_id_or_engine_configuration_is_refused_before_any_write(tmp_path, cnn_pack):
    pk = cnn_pack[0]
    backend, fake, _ = _backend(tmp_path, cnn_pack, ident=0x53505253)
    with pytest.raises(UserError, match=r"ID register: expected 0x53434e4e .* found 0x53505253: wrong device"):
        CNNAccelerator(pk, backend)
    backend, fake, _ = _backend(tmp_path, cnn_pack, config=0x1)
    with pytest.raises(UserError, match=r"engine configuration: expected CONFIG 0x[0-9a-f]+ .* found 0x1 on the device"):
        CNNAccelerator(pk, backend)
    assert fake.writes == []


@pytest.mark.parametrize("reg, field", [("IBUF_BYTES", "ibuf_bytes"), ("WBUF_WORDS", "wbuf_words"),
                                        ("OBUF_DEPTH", "obuf_depth"), ("PSUM_DEPTH", "psum_depth")])
def test_an_engine_with_other_buffer_sizes_is_refused_before_any_write(tmp_path, cnn_pack, reg, field):
    # Same lanes and datapaths (CONFIG matches), one buffer 8 larger: the program's addresses
    # and tiling are for the pack's sizes, so the runtime refuses rather than run it.
    pk = cnn_pack[0]
    want = getattr(load_cnn_pack(pk)[0].cfg, field)
    backend, fake, _ = _backend(tmp_path, cnn_pack, buffers={reg: want + 8})
    with pytest.raises(UserError, match=rf"engine {field}: expected {want} .* found {want + 8} in {reg} on the device"):
        CNNAccelerator(pk, backend)
    assert fake.writes == []


def test_a_buffer_too_small_or_misaligned_is_refused(tmp_path, cnn_pack):
    pk = cnn_pack[0]
    need = load_cnn_pack(pk)[0].dram_size
    backend, fake, _ = _backend(tmp_path, cnn_pack, size=need - 100)
    with pytest.raises(UserError, match=f"DRAM buffer: expected at least {need} bytes, found {need - 100} "
                                        r"\(too small by 100\)"):
        CNNAccelerator(pk, backend)
    backend, fake, _ = _backend(tmp_path, cnn_pack, phys=PHYS + 0x800)
    with pytest.raises(UserError, match=r"physical_address: expected 4 KiB aligned.* found 0x1f400800"):
        CNNAccelerator(pk, backend)
    # Aligned, below 4 GiB, but the pack's bytes would run past it (DRAM_BASE is 32 bits).
    backend, fake, _ = _backend(tmp_path, cnn_pack, phys=(1 << 32) - 4096)
    with pytest.raises(UserError, match=rf"with the pack's {need} bytes below 4 GiB .* found 0xfffff000"):
        CNNAccelerator(pk, backend)
    assert fake.writes == []


def test_the_timeout_fires_and_aborts_the_run(tmp_path, cnn_pack):
    pk, graph, xs = cnn_pack
    backend, fake, _ = _backend(tmp_path, cnn_pack, hang=True)
    acc = CNNAccelerator(pk, backend)
    with pytest.raises(TimeoutError, match=r"no DONE within 0.05 s \(STATUS 0x1\); the run was aborted "
                                           r"\(CTRL.ABORT\) and the engine is idle"):
        acc.run(xs)
    assert fake.writes[-1] == ("CTRL", 2) and not fake.busy
    # The engine answers again: the next runs are exact.
    fake.hang = False
    np.testing.assert_array_equal(acc.run(xs), np.stack([cnn_forward(graph, x) for x in xs]))


def test_a_run_left_in_flight_is_aborted_before_a_load_or_a_run(tmp_path, cnn_pack):
    pk, graph, xs = cnn_pack
    backend, fake, _ = _backend(tmp_path, cnn_pack)
    acc = CNNAccelerator(pk, backend)
    fake.busy = True                       # another process's run, still going
    CNNAccelerator(pk, backend)
    assert ("CTRL", 2) in fake.writes and not fake.busy
    fake.busy = True
    np.testing.assert_array_equal(acc.run(xs[0]), cnn_forward(graph, xs[0]))


def test_an_abort_that_never_finishes_says_to_reload_the_bitstream(tmp_path, cnn_pack):
    pk, _, xs = cnn_pack
    backend, fake, _ = _backend(tmp_path, cnn_pack, hang=True, abort_hangs=True)
    acc = CNNAccelerator(pk, backend)
    with pytest.raises(TimeoutError, match=r"no DONE within 0.05 s .*; CTRL.ABORT did not clear BUSY either "
                                           r"\(the engine's bus does not answer\): reload the bitstream"):
        acc.run(xs)
    with pytest.raises(UserError, match=r"before a load, found BUSY, and CTRL.ABORT did not clear it .* reload the bitstream"):
        CNNAccelerator(pk, backend)
    # A run must not take the hung run's late DONE for its own: refused, nothing written.
    before = bytes(backend.buffer)
    with pytest.raises(UserError, match=r"before a run, found BUSY, and CTRL.ABORT did not clear it .* nothing was written"):
        acc.run(xs)
    assert bytes(backend.buffer) == before
