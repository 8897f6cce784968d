"""Unpack a pack directory back into weight and bias arrays (the exact inverse of pack).

Writes ``layer{k}.weight`` (int16, rows x cols) and ``layer{k}.bias`` (int32) to a ``.npz``.
With ``--dequantize`` the arrays are float32 real values: weights times
``2**-weight_frac_bits`` and biases times ``2**-(in_frac_bits + weight_frac_bits)``, which
needs a pack made from a compressed model (a packed ``.npy`` matrix has no scales).
"""

import numpy as np

from .errors import user_error
from .fileio import save_npz
from .pack import load_pack, unpack

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


def run(args):
    pack = load_pack(args.pack)
    arrays = unpack(pack)
    if args.dequantize:
        arrays = dequantize_arrays(pack, arrays, f"{args.pack}/manifest.json")
    save_npz(args.out, arrays)
    print(f"unpacked {len(pack.layers)} layer(s) -> {args.out}")
    return 0
