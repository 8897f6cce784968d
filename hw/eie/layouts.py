"""Stream payload layouts shared by the EIE blocks (widths come from EIEConfig)."""

from amaranth import signed, unsigned
from amaranth.lib import data

from sparsa.sw.eie.format import ACT_BITS, CODEBOOK_BITS, V_BITS

__all__ = ["activation_layout", "column_job_layout", "slot_layout", "issue_layout",
           "codebook_layout", "row_bits", "ACT"]

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


def slot_layout(cfg):
    """One real (non-padding) entry for one accumulator bank: local row and codebook index."""
    return data.StructLayout({"valid": unsigned(1), "row": unsigned(row_bits(cfg)),
                              "v": unsigned(V_BITS)})


def issue_layout(cfg):
    """What the sparse-matrix reader hands the arithmetic unit in one cycle: up to ``cfg.macs``
    real entries of one column, slot ``b`` holding the entry whose local row is ``b`` modulo
    ``cfg.macs`` (so each accumulator bank takes at most one entry a cycle), and x_j."""
    return data.StructLayout({"slot": data.ArrayLayout(slot_layout(cfg), cfg.macs), "x": ACT})


codebook_layout = data.ArrayLayout(signed(CODEBOOK_BITS), 1 << V_BITS)
