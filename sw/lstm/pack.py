"""Compress an LSTM for the ESE engine and pack it onto the EIE PE array.

The engine runs one LSTM step as two EIE layers on the same PE array:

1. **gates**: ``z = [W_hh | W_ih] [y_{t-1}; x_t] + b`` (4H' x (P' + I)), output in Q4.11.
   Its rows are reordered for the hardware: PE ``k``'s local row ``4l + g`` holds gate ``g``
   (i, f, g, o) of cell ``h = l * N + k``, so the output stage walks the four gates of one cell
   in four consecutive cycles and the element-wise unit (:mod:`sparsa.sw.eie.lstm_cell`) turns
   them into ``m_h`` (written at local address ``l``: exactly where the next layer's scanner
   looks for input ``h``) and the new cell state.
2. **projection**: ``y_t = W_hr m_t`` (P' x H'), output in the input format, written where
   the next step's gates layer reads ``y`` (columns 0..P'-1; ``x_t`` sits at P'..P'+I-1).

The step itself (row order, what each step runs, its golden model) is
:mod:`sparsa.sw.eie.lstm_step`.
   Without ``weight_hr_l0`` it is the identity (P = H).

H' and P' are H and P rounded up to a multiple of the PE count N; the extra cells have no
weights and stay exactly zero. One 4-bit codebook per layer (``[W_hh | W_ih]`` share one).
Pruning is load-balance-aware over the hardware row order (ESE), so every PE gets the same
number of nonzeros in each layer.

Formats: x and y share ``in_frac_bits`` F (from calibration: the largest F with
``max(|x|, |y|) * 2^F <= 2^14``; default 12, i.e. |x|, |y| < 8); ``m`` is Q0.15; each
codebook has the largest fraction that keeps the shift ``F + fw - 11`` (gates) or
``15 + fw - F`` (projection) non-negative and the values in int16.
"""

import json
from dataclasses import dataclass, replace

import numpy as np

from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import load_npz, loads_json, save_npz
from sparsa.sw.eie.pack import Pack, make_layer
from sparsa.sw.eie.lstm_cell import GATE_FRAC, PEEP_FRAC, Q
from sparsa.sw.eie.lstm_step import gate_layout, round_up
from sparsa.sw.model.lstm import LSTMWeights, lstm_forward
from sparsa.sw.compress.prune import balanced_mask, fill_padding
from sparsa.sw.compress.share import kmeans_share

__all__ = ["CompressedLSTM", "compress_lstm", "save_compressed_lstm", "load_compressed_lstm",
           "pack_lstm", "DEFAULT_IN_FRAC", "LSTM_FORMAT"]

LSTM_FORMAT = "sparsa-compressed-lstm"
DEFAULT_IN_FRAC = 12
_INT16 = (-(1 << 15), (1 << 15) - 1)


@dataclass
class CompressedLSTM:
    """Integer LSTM in PyTorch order (gates rows i, f, g, o; columns [y; x]).

    ``gate_index`` (4H, P+I) uint8 and ``gate_codebook`` (16,) int16 at 2^-gate_fw;
    ``proj_index`` (P, H) and ``proj_codebook`` at 2^-proj_fw (None: no projection);
    ``bias`` (4H,) int32 at 2^-(in_frac + gate_fw); ``peep`` (3, H) int16 Q3.12 (ic, fc, oc)
    or None.
    """
    inputs: int
    hidden: int
    outputs: int
    in_frac: int
    gate_index: np.ndarray
    gate_codebook: np.ndarray
    gate_fw: int
    bias: np.ndarray
    proj_index: np.ndarray = None
    proj_codebook: np.ndarray = None
    proj_fw: int = 0
    peep: np.ndarray = None
    source: str = ""

    def dequantized(self):
        """Float LSTMWeights of exactly the values the hardware uses."""
        h, p = self.hidden, self.outputs
        wg = self.gate_codebook.astype(np.float64)[self.gate_index] / 2.0 ** self.gate_fw
        w = LSTMWeights(w_ih=wg[:, p:], w_hh=wg[:, :p],
                        b_ih=self.bias / 2.0 ** (self.in_frac + self.gate_fw), b_hh=np.zeros(4 * h))
        if self.proj_index is not None:
            w.w_hr = self.proj_codebook.astype(np.float64)[self.proj_index] / 2.0 ** self.proj_fw
        if self.peep is not None:
            w.w_ic, w.w_fc, w.w_oc = (self.peep[k] / 2.0 ** PEEP_FRAC for k in range(3))
        return w


def _prune_share(w, density, bits, pes, hw_rows, pad_free=False):
    """Balanced pruning in the hardware row layout (without padding entries if ``pad_free``),
    then k-means sharing.

    ``hw_rows[R]`` is the row of ``w`` at hardware row R, or -1 for a padding row."""
    hw = np.zeros((hw_rows.size, w.shape[1]))
    real = hw_rows >= 0
    hw[real] = w[hw_rows[real]]
    # The budget is the real matrix's: padding rows are empty and take none of it.
    mask_hw = balanced_mask(hw, density * w.size / hw.size, pes)
    if pad_free:
        mask_hw = fill_padding(hw, mask_hw, pes)
    mask = np.zeros(w.shape, dtype=bool)
    mask[hw_rows[real]] = mask_hw[real]
    return kmeans_share(w, mask, bits)


def compress_lstm(w, density, bits, pes=None, *, calib=None, source="", pad_free=False):
    """Prune (balanced over ``pes`` PEs), share and quantize ``w`` (:class:`LSTMWeights`).

    ``pad_free``: move the budget of EIE's padding entries into real weights
    (:func:`~sparsa.sw.compress.prune.fill_padding`), so the pack on ``pes`` PEs has no padding."""
    from sparsa.sw.compress.mlp import act_frac_bits, quantize_codebook, weight_frac_bits
    h, i, p = w.hidden, w.inputs, w.outputs
    n = pes or 1
    # Balance over the gate rows in hardware order (padding cells take no budget).
    g, cell, real = gate_layout(h, n)
    cg, ig = _prune_share(np.hstack([w.w_hh, w.w_ih]), density, bits, n, np.where(real, g * h + cell, -1),
                          pad_free)
    proj = None
    if w.w_hr is not None:
        prow = np.arange(round_up(p, n))
        proj = _prune_share(w.w_hr, density, bits, n, np.where(prow < p, prow, -1), pad_free)
    # Formats.
    shared = replace(w, w_ih=cg[ig][:, p:], w_hh=cg[ig][:, :p], w_hr=proj[0][proj[1]] if proj else None)
    if calib is not None:
        y = lstm_forward(shared, calib)
        f_in = act_frac_bits(max(float(np.max(np.abs(calib))), float(np.max(np.abs(y)))))
    else:
        f_in = DEFAULT_IN_FRAC
    # The shifts F + fw - 11 (gates) and 15 + fw - F (projection) must not be negative.
    b = w.b_ih + w.b_hh
    fw_g = max(GATE_FRAC - f_in, weight_frac_bits(cg, b, f_in, source))
    bias = np.clip(np.round(b * 2.0 ** (f_in + fw_g)), -(1 << 31), (1 << 31) - 1).astype(np.int32)
    comp = CompressedLSTM(inputs=i, hidden=h, outputs=p, in_frac=f_in, gate_index=ig.astype(np.uint8),
                          gate_codebook=quantize_codebook(cg, fw_g)[0], gate_fw=fw_g, bias=bias, source=source)
    if proj:
        fw_p = max(f_in - Q, weight_frac_bits(proj[0], np.zeros(1), Q, source))
        comp.proj_index, comp.proj_codebook, comp.proj_fw = (proj[1].astype(np.uint8),
                                                             quantize_codebook(proj[0], fw_p)[0], fw_p)
    if w.w_ic is not None:
        comp.peep = np.clip(np.round(np.stack([w.w_ic, w.w_fc, w.w_oc]) * 2.0 ** PEEP_FRAC), *_INT16).astype(np.int16)
    return comp


# ---- the compressed .npz -------------------------------------------------------------------------

_ARRAYS = ("gate_index", "gate_codebook", "bias", "proj_index", "proj_codebook", "peep")
_META = ("inputs", "hidden", "outputs", "in_frac", "gate_fw", "proj_fw")


def save_compressed_lstm(path, comp):
    meta = {"format": LSTM_FORMAT, "version": 1, "source": comp.source, **{k: int(getattr(comp, k)) for k in _META}}
    arrays = {k: getattr(comp, k) for k in _ARRAYS if getattr(comp, k) is not None}
    arrays["meta"] = np.array(json.dumps(meta))
    save_npz(path, arrays)


def is_compressed_lstm(arrays):
    if "meta" not in arrays:
        return False
    try:
        return loads_json(str(arrays["meta"]), "", "meta").get("format") == LSTM_FORMAT
    except (UserError, AttributeError):
        return False


def load_compressed_lstm(path, arrays=None):
    arrays = arrays if arrays is not None else load_npz(path, what="compressed LSTM")
    meta = loads_json(str(arrays["meta"]), path, "meta")
    if not isinstance(meta, dict):
        raise user_error(path, "meta", "a JSON object", type(meta).__name__)
    for k in _META:
        if not isinstance(meta.get(k), int):
            raise user_error(path, f"meta.{k}", "an integer", repr(meta.get(k)))
    comp = CompressedLSTM(**{k: meta[k] for k in _META}, source=meta.get("source", ""),
                          gate_index=arrays.get("gate_index"), gate_codebook=arrays.get("gate_codebook"),
                          bias=arrays.get("bias"), proj_index=arrays.get("proj_index"),
                          proj_codebook=arrays.get("proj_codebook"), peep=arrays.get("peep"))
    h, i, p = comp.hidden, comp.inputs, comp.outputs
    for key, shape in (("gate_index", (4 * h, p + i)), ("gate_codebook", (16,)), ("bias", (4 * h,))):
        a = getattr(comp, key)
        if a is None or a.shape != shape:
            raise user_error(path, key, f"shape {shape}", "missing" if a is None else f"shape {a.shape}")
    if int(comp.gate_index.max(initial=0)) > 15:
        raise user_error(path, "gate_index", "values 0..15", int(comp.gate_index.max()))
    return comp


# ---- packing -------------------------------------------------------------------------------------

def pack_lstm(comp, pes):
    """Lay ``comp`` out on ``pes`` PEs as a two-layer :class:`~sparsa.sw.eie.pack.Pack` with ``lstm`` set."""
    h, i, p, n = comp.hidden, comp.inputs, comp.outputs, pes
    hp, pp = round_up(h, n), round_up(p, n)
    g, cell, real = gate_layout(h, n)
    src_row = np.where(real, g * h + np.minimum(cell, h - 1), 0)
    # Gates layer: hardware rows, columns [y (P' slots); x (I)].
    idx = np.zeros((4 * hp, pp + i), dtype=np.uint8)
    idx[real, :p] = comp.gate_index[src_row[real], :p]
    idx[real, pp:] = comp.gate_index[src_row[real], p:]
    bias = np.zeros(4 * hp, dtype=np.int32)
    bias[real] = comp.bias[src_row[real]]
    r, c = np.nonzero(idx)
    gates = make_layer("gates", 4 * hp, pp + i, r, c, idx[r, c], comp.gate_codebook, n, bias=bias,
                       shift=comp.in_frac + comp.gate_fw - GATE_FRAC, relu=False,
                       in_frac_bits=comp.in_frac, weight_frac_bits=comp.gate_fw, out_frac_bits=GATE_FRAC)
    if comp.proj_index is not None:
        pidx = np.zeros((pp, hp), dtype=np.uint8)
        pidx[:p, :h] = comp.proj_index
        cb, fw = comp.proj_codebook, comp.proj_fw
    else:   # identity: y = m, one codebook entry 1.0
        fw = max(0, comp.in_frac - Q)
        pidx = np.zeros((pp, hp), dtype=np.uint8)
        pidx[np.arange(h), np.arange(h)] = 1
        cb = np.zeros(16, dtype=np.int16)
        cb[1] = 1 << fw
    r, c = np.nonzero(pidx)
    proj = make_layer("projection", pp, hp, r, c, pidx[r, c], cb, n, shift=Q + fw - comp.in_frac, relu=False,
                      in_frac_bits=Q, weight_frac_bits=fw, out_frac_bits=comp.in_frac)
    peep = np.zeros(4 * hp, dtype=np.int16)
    if comp.peep is not None:
        for gate, row in ((0, 0), (1, 1), (3, 2)):       # i <- w_ic, f <- w_fc, o <- w_oc
            sel = real & (g == gate)
            peep[sel] = comp.peep[row, cell[sel]]
    pack = Pack(pes=n, layers=[gates, proj], input_frac_bits=comp.in_frac)
    pack.lstm = {"inputs": i, "hidden": h, "outputs": p, "hidden_pad": hp, "outputs_pad": pp,
                 "peepholes": comp.peep is not None, "projection": comp.proj_index is not None,
                 "peep": peep}
    return pack
