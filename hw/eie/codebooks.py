"""The layers' codebooks, as the array holds them for its PEs.

Every PE multiplies by ``codebook[v]`` of the current layer, so the array broadcasts the
current layer's 16 entries to all PEs. Two ways to hold the layers' codebooks
(``EIEConfig.codebooks``):

* ``"registers"`` (:class:`CodebookRegisters`): every layer's 16 entries in flip-flops, the
  current layer's picked by a multiplexer on the layer index. No latency at a layer's start;
  ``max_layers`` x 256 flip-flops and a 256-bit-wide multiplexer.
* ``"memory"`` (:class:`CodebookMemory`): every layer's entries in one memory (a block RAM), and
  only the current layer's 16 in flip-flops, copied from the memory at the layer's start (18
  cycles: one entry a cycle, a cycle of read latency, a cycle to hand over). For small FPGAs: on the iCE40 UP5K
  the two-layer digits MLP's codebooks and their multiplexer were the logic cells that did not
  fit.

Both take the load port's ``CODEBOOK`` writes (entry ``e`` of layer ``l`` at address
``l * 16 + e``) and give the same entries to the PEs.
"""

from amaranth import *
from amaranth.lib import wiring
from amaranth.lib.memory import Memory
from amaranth.lib.wiring import In, Out

from sparsa.sw.eie.protocol import CODEBOOK_STRIDE

from sparsa.hw.eie.layouts import codebook_layout

__all__ = ["CodebookRegisters", "CodebookMemory", "codebook_store"]

ENTRIES = 16
assert CODEBOOK_STRIDE == ENTRIES     # the memory's address is the load address


def _signature(layers):
    return {
        # The load port's CODEBOOK writes.
        "ld_en": In(1), "ld_addr": In(32), "ld_data": In(16),
        "layer": In(range(max(2, layers + 1))),
        # Pulse to bring the current layer's entries into `current`; `ready` when they are there.
        "fetch": In(1), "ready": Out(1),
        "current": Out(codebook_layout),
    }


def _init(memory_map, layers):
    entries = memory_map.layers if memory_map is not None else []
    return [[int(entries[li].codebook[e]) if li < len(entries) else 0 for e in range(ENTRIES)]
            for li in range(layers)]


class CodebookRegisters(wiring.Component):
    """Every layer's codebook in flip-flops (module docstring); ``current`` follows ``layer`` in
    the same cycle and ``ready`` is always 1."""

    FETCH_CYCLES = 0

    def __init__(self, layers, memory_map=None):
        self.layers, self._init = layers, _init(memory_map, layers)
        super().__init__(_signature(layers))

    def elaborate(self, platform):
        m = Module()
        # reset_less like the memories: a reset in the middle of a run keeps the loaded model.
        books = [[Signal(signed(16), init=self._init[li][e], reset_less=True, name=f"layer{li}_cb{e}")
                  for e in range(ENTRIES)] for li in range(self.layers)]
        with m.If(self.ld_en):
            for li in range(self.layers):
                for e in range(ENTRIES):
                    with m.If(self.ld_addr == li * CODEBOOK_STRIDE + e):
                        m.d.sync += books[li][e].eq(self.ld_data)
        for e in range(ENTRIES):
            m.d.comb += self.current[e].eq(Array([books[li][e] for li in range(self.layers)])[self.layer])
        m.d.comb += self.ready.eq(1)
        return m


class CodebookMemory(wiring.Component):
    """Every layer's codebook in a memory, the current one in flip-flops (module docstring).
    With ``fetch`` in cycle t, ``ready`` is 0 in cycles t + 1 .. t + 17 and 1 again from
    t + :attr:`FETCH_CYCLES` on, with ``layer``'s entries in ``current``; ``layer`` must hold
    still meanwhile, and ``ready`` in cycle t itself still describes the previous fetch."""

    FETCH_CYCLES = ENTRIES + 2

    def __init__(self, layers, memory_map=None):
        self.layers, self._init = layers, _init(memory_map, layers)
        super().__init__(_signature(layers))

    def elaborate(self, platform):
        m = Module()
        depth = self.layers * ENTRIES
        m.submodules.mem = mem = Memory(shape=signed(16), depth=depth,
                                        init=[v for book in self._init for v in book])
        wr = mem.write_port()
        rd = mem.read_port()                  # synchronous: data a cycle after the address
        m.d.comb += [wr.addr.eq(self.ld_addr), wr.data.eq(self.ld_data),
                     wr.en.eq(self.ld_en & (self.ld_addr < depth))]
        cur = [Signal(signed(16), reset_less=True, name=f"cur_cb{e}") for e in range(ENTRIES)]
        for e in range(ENTRIES):
            m.d.comb += self.current[e].eq(cur[e])
        # i: the entry whose address goes out this cycle; entry i - 1 arrives from the memory.
        i = Signal(range(ENTRIES + 2), init=ENTRIES + 1)
        m.d.comb += [rd.addr.eq(self.layer * ENTRIES + i[:4]), self.ready.eq(i == ENTRIES + 1)]
        with m.If(self.fetch):
            m.d.sync += i.eq(0)
        with m.Elif(i != ENTRIES + 1):
            m.d.sync += i.eq(i + 1)
            with m.Switch(i):
                for e in range(ENTRIES):
                    with m.Case(e + 1):
                        m.d.sync += cur[e].eq(rd.data)
        return m


def codebook_store(cfg, memory_map=None):
    """The codebook store ``cfg.codebooks`` names, for ``cfg.max_layers`` layers."""
    cls = CodebookMemory if cfg.codebooks == "memory" else CodebookRegisters
    return cls(cfg.max_layers, memory_map)
