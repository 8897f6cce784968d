"""Stream payload layouts shared by the EIE blocks (widths come from EIEConfig)."""

from amaranth import signed, unsigned
from amaranth.lib import data

from sparsa.sw.eie_format import ACT_BITS, CODEBOOK_BITS, V_BITS

__all__ = ["activation_layout", "column_job_layout", "entry_layout", "codebook_layout",
           "row_bits", "ACT"]

ACT = signed(ACT_BITS)


def row_bits(cfg):
    # Row positions run up to rows_pe plus one word of padding overshoot.
    return max(1, (cfg.max_rows_pe + 16 * 8 + 1).bit_length())


def activation_layout(cfg):
    """(j, x_j): what the central control broadcasts and each activation queue holds."""
    return data.StructLayout({"col": unsigned(cfg.col_bits), "x": ACT})


def column_job_layout(cfg):
    """One nonzero column for one PE: its entry range [start, end) and x_j."""
    return data.StructLayout({"start": unsigned(cfg.pointer_bits),
                              "end": unsigned(cfg.pointer_bits), "x": ACT})


def entry_layout(cfg):
    """One real (non-padding) entry for the arithmetic unit: local row, codebook index, x_j."""
    return data.StructLayout({"row": unsigned(row_bits(cfg)), "v": unsigned(V_BITS), "x": ACT})


codebook_layout = data.ArrayLayout(signed(CODEBOOK_BITS), 1 << V_BITS)
