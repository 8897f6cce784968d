"""Verilog generation for the EIE PE array."""

import contextlib

from amaranth.back import rtlil, verilog
from amaranth.hdl import _nir

from sparsa.sw.eie.config import EIEConfig
from sparsa.hw.eie.pe import ProcessingElement
from sparsa.hw.eie.top import EIEArray

__all__ = ["TOPLEVEL", "generate_verilog", "fast_memory_init"]

TOPLEVEL = "eie_top"


def _emit_memory_fast(self, cell_idx, cell):
    """Replacement for ``rtlil.ModuleEmitter.emit_memory``.

    Amaranth 0.5 builds a memory's initial contents one ``Net`` per bit (about 25 us a bit):
    a 64-PE array with 8K-word sparse-matrix memories took 7 minutes to convert, nearly all
    of it here. This writes the same ``$meminit_v2`` constant as one string, and leaves out the
    cell when the contents are all zero (memories power up as zero in Verilator and in FPGA
    block RAMs; sparsa never reads a word it has not written or loaded).
    """
    init = list(cell.init)
    if not any(init):
        return
    memory_info = self.memories[cell_idx]
    width = cell.width
    mask = (1 << width) - 1
    bits = "".join(format(row & mask, f"0{width}b") for row in reversed(init))
    self.builder.cell("$meminit_v2", ports={
        "ADDR": self.sigspec(),
        "DATA": f"{len(bits)}'{bits}",
        "EN": self.sigspec(_nir.Value.ones(width)),
    }, parameters={
        "MEMID": memory_info.memid,
        "ABITS": 0,
        "WIDTH": width,
        "WORDS": cell.depth,
        "PRIORITY": 0,
    }, src_loc=cell.src_loc)


@contextlib.contextmanager
def fast_memory_init():
    """Use :func:`_emit_memory_fast` for the conversions inside the ``with`` block.

    This patches a private Amaranth method (``rtlil.ModuleEmitter.emit_memory``, reading
    ``self.memories[i].memid`` and ``_nir.Value``); checked against Amaranth 0.5.10. Measured
    there (issue 22, 2 shared cores): a 16-PE array with a pack as initial contents (1033-word
    sparse-matrix memories, 1.04 Mbit of spm contents; ``verilog.convert(EIEArray(cfg, mm))``)
    spent 26.7 s of 82 s in the stock ``emit_memory`` and 0.06 s of 37 s in this one; the
    Verilog simulates the same. It still pays; re-measure (and drop it if the stock path has
    caught up) when moving to Amaranth 0.6, where the private names may change.
    """
    saved = rtlil.ModuleEmitter.emit_memory
    rtlil.ModuleEmitter.emit_memory = _emit_memory_fast
    try:
        yield
    finally:
        rtlil.ModuleEmitter.emit_memory = saved


def generate_verilog(cfg: EIEConfig, memory_map=None, name=TOPLEVEL):
    """Verilog text of an :class:`EIEArray`; with ``memory_map`` the memories are initialised.

    Without initial contents every PE is the same, so the PE is generated once as module
    ``sparsa_eie_pe`` and instantiated N times (Verilator then compiles it once, too).
    """
    with fast_memory_init():
        if memory_map is not None:
            return verilog.convert(EIEArray(cfg, memory_map), name=name, emit_src=False)
        top = verilog.convert(EIEArray(cfg, shared_pe=True), name=name, emit_src=False)
        pe = verilog.convert(ProcessingElement(cfg), name=EIEArray.PE_MODULE, emit_src=False)
        return top + "\n" + pe
