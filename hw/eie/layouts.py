"""Stream payload layouts and control signatures shared by the EIE blocks (widths come from EIEConfig)."""

from amaranth import signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import Out

from sparsa.sw.eie.format import ACT_BITS, CODEBOOK_BITS, V_BITS
from sparsa.sw.eie.protocol import LoadKind

__all__ = ["activation_layout", "column_job_layout", "slot_layout", "issue_layout",
           "codebook_layout", "row_bits", "ACT",
           "load_signature", "layer_signature", "drain_signature"]

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
    """One real (non-padding) entry for one multiplier and its accumulator bank: local row,
    codebook index and the activation x_j of its column."""
    return data.StructLayout({"valid": unsigned(1), "row": unsigned(row_bits(cfg)),
                              "v": unsigned(V_BITS), "x": ACT})


def issue_layout(cfg):
    """What the sparse-matrix reader hands the arithmetic unit in one cycle: up to ``cfg.macs``
    real entries, slot ``b`` for multiplier ``b`` and its bank of accumulators (each bank holds
    every row and the output stage sums them; with ``cfg.acc_banks == "split"`` bank ``b``
    holds the rows ``r % 2 == b``). Each slot carries its own x_j: the two entries of a step
    may come from two columns (the last of one and the first of the next)."""
    return data.StructLayout({"slot": data.ArrayLayout(slot_layout(cfg), cfg.macs)})


codebook_layout = data.ArrayLayout(signed(CODEBOOK_BITS), 1 << V_BITS)


#
# Control signatures: central control -> every PE (from the driver's side)
#

def load_signature():
    """One PE's load port: write ``data`` to memory ``kind`` at ``addr`` when ``en``."""
    return wiring.Signature({"en": Out(1), "kind": Out(LoadKind), "addr": Out(32), "data": Out(64)})


def layer_signature(cfg):
    """The current layer's table entry as a PE uses it, and the activation file it writes
    (``dest_sel`` 0: file A, 1: B); ``ew`` an LSTM gates layer, ``c_clear`` c = 0 in this run."""
    return wiring.Signature({
        "ptr_base": Out(max(1, (cfg.ptr_words - 1).bit_length())), "codebook": Out(codebook_layout),
        "shift": Out(6), "relu": Out(1), "dest_sel": Out(1), "ew": Out(1), "c_clear": Out(1),
    })


def drain_signature(cfg):
    """The output stage's control: drain local row ``row`` (bias word ``bias_addr``) when
    ``drain``; ``write`` the result into the destination file (0 in the CLEAR pass)."""
    return wiring.Signature({
        "drain": Out(1), "row": Out(row_bits(cfg)),
        "bias_addr": Out(max(1, (cfg.bias_words - 1).bit_length())), "write": Out(1),
    })
