"""Unpack a pack directory back into weight and bias arrays (the exact inverse of pack).

Writes ``layer{k}.weight`` (int16, rows x cols) and ``layer{k}.bias`` (int32) to a ``.npz``.
With ``--dequantize`` the arrays are float32 real values: weights times
``2**-weight_frac_bits`` and biases times ``2**-(in_frac_bits + weight_frac_bits)``, which
needs a pack made from a compressed model (a packed ``.npy`` matrix has no scales).
"""

import numpy as np

from sparsa.sw.errors import user_error
from sparsa.sw.fileio import check_outputs, save_npz
from sparsa.sw.eie.pack import unpack
from sparsa.sw.eie.pack_dir import load_pack

__all__ = ["add_arguments", "run", "dequantize_arrays"]


def add_arguments(p):
    p.add_argument("pack", metavar="DIR", help="pack directory (from sparsa pack)")
    p.add_argument("-o", "--out", required=True, metavar="OUT.npz", help="output archive")
    p.add_argument("--dequantize", action="store_true", help="float32 real values instead of integers")


def dequantize_arrays(pack, arrays, where):
    """Scale the integer arrays of :func:`unpack` to float32 real values."""
    out = {}
    for k, layer in enumerate(pack.layers):
        if layer.weight_frac_bits is None or layer.in_frac_bits is None:
            raise user_error(where, f"layers[{k}].weight_frac_bits/in_frac_bits",
                             "fixed-point scales (a pack of a compressed model) for --dequantize",
                             "none (packed from an integer matrix)")
        wf, fx = layer.weight_frac_bits, layer.in_frac_bits
        out[f"layer{k}.weight"] = (arrays[f"layer{k}.weight"].astype(np.float64) * 2.0 ** -wf).astype(np.float32)
        out[f"layer{k}.bias"] = (arrays[f"layer{k}.bias"].astype(np.float64) * 2.0 ** -(fx + wf)).astype(np.float32)
    return out


def unpack_lstm(pack, dequantize, where):
    """An LSTM pack back to nn.LSTM state-dict names (PyTorch row order, padding removed)."""
    from sparsa.sw.eie.lstm_cell import PEEP_FRAC
    from sparsa.sw.eie.lstm_step import gate_layout
    meta = pack.lstm
    h, i, p, pp = (meta[k] for k in ("hidden", "inputs", "outputs", "outputs_pad"))
    gates, proj = pack.layers
    g, cell, real = gate_layout(h, pack.pes)
    wg = np.zeros((4 * h, p + i), np.int64)
    bias = np.zeros(4 * h, np.int64)
    dense = gates.weight().astype(np.int64)
    rows = g[real] * h + cell[real]
    wg[rows, :p] = dense[real, :p]
    wg[rows, p:] = dense[real, pp:]
    bias[rows] = gates.bias[real]
    fx, fw = gates.in_frac_bits, gates.weight_frac_bits
    if dequantize and (fx is None or fw is None):
        raise user_error(where, "lstm formats", "fixed-point scales for --dequantize", "none")
    sc_w = 2.0 ** -fw if dequantize else 1
    out = {"weight_ih_l0": wg[:, p:] * sc_w, "weight_hh_l0": wg[:, :p] * sc_w,
           "bias_ih_l0": bias * (2.0 ** -(fx + fw) if dequantize else 1), "bias_hh_l0": np.zeros(4 * h)}
    if meta["projection"]:
        out["weight_hr_l0"] = proj.weight()[:p, :h].astype(np.int64) * (2.0 ** -proj.weight_frac_bits if dequantize else 1)
    if meta["peepholes"]:
        peep = np.asarray(meta["peep"], np.int64)
        for key, gate in (("weight_ic_l0", 0), ("weight_fc_l0", 1), ("weight_oc_l0", 3)):
            v = np.zeros(h, np.int64)
            sel = real & (g == gate)
            v[cell[sel]] = peep[sel]
            out[key] = v * (2.0 ** -PEEP_FRAC if dequantize else 1)
    dt = np.float32 if dequantize else None
    return {k: (a.astype(dt) if dt else a.astype(np.int32 if k.startswith("bias") else np.int16)) for k, a in out.items()}


UNPACK_MAX_WEIGHTS = 1 << 30      # 1 G weights: 8 GiB of int64, the largest dense layer unpack writes


def run(args):
    check_outputs([("-o", args.out)], [("DIR", args.pack)])
    pack = load_pack(args.pack)
    for k, layer in enumerate(pack.layers):
        # unpack writes dense matrices: a huge sparse layer has no dense form worth writing
        if layer.rows * layer.cols > UNPACK_MAX_WEIGHTS:
            raise user_error(f"{args.pack}/manifest.json", f"layers[{k}] rows x cols",
                             f"at most {UNPACK_MAX_WEIGHTS:,} weights for a dense unpacked matrix",
                             f"{layer.rows} x {layer.cols} = {layer.rows * layer.cols:,}")
    if pack.lstm:
        save_npz(args.out, unpack_lstm(pack, args.dequantize, f"{args.pack}/manifest.json"))
        print(f"unpacked an LSTM (I={pack.lstm['inputs']}, H={pack.lstm['hidden']}, P={pack.lstm['outputs']}) "
              f"-> {args.out}")
        return 0
    arrays = unpack(pack)
    if args.dequantize:
        arrays = dequantize_arrays(pack, arrays, f"{args.pack}/manifest.json")
    save_npz(args.out, arrays)
    print(f"unpacked {len(pack.layers)} layer(s) -> {args.out}")
    return 0
