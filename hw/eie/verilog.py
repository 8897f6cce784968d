"""Verilog generation for the EIE PE array."""

from amaranth.back import verilog

from .config import EIEConfig
from .top import EIEArray

__all__ = ["TOPLEVEL", "generate_verilog"]

TOPLEVEL = "eie_top"


def generate_verilog(cfg: EIEConfig, memory_map=None, name=TOPLEVEL):
    """Verilog text of an :class:`EIEArray`; with ``memory_map`` the memories are initialised."""
    return verilog.convert(EIEArray(cfg, memory_map), name=name, emit_src=False)
