"""Verilog generation for the CNN engine."""

from amaranth.back import verilog

from sparsa.hw.eie.verilog import fast_memory_init
from sparsa.hw.cnn.engine import CNNEngine

__all__ = ["TOPLEVEL", "generate_verilog"]

TOPLEVEL = "sparsa_cnn"


def generate_verilog(cfg, name=TOPLEVEL):
    """Verilog text of :class:`CNNEngine` for ``cfg`` (buffers start empty: no init cells)."""
    with fast_memory_init():
        return verilog.convert(CNNEngine(cfg), name=name, emit_src=False)
