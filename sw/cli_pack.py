"""Pack a compressed model or an integer matrix into EIE memory images for N PEs.

MODEL is a ``.npz`` written by ``sparsa compress`` (codebooks, biases, shifts and ReLUs come
from the file) or a ``.npy`` integer matrix (rows = outputs, cols = inputs) of int16 values
with at most 15 distinct nonzero values, packed exactly; ``--bias``, ``--shift`` and
``--relu`` apply to the ``.npy`` form only. The output directory holds, per layer and PE,
the sparse-matrix, pointer (even/odd bank) and bias images in .hex/.mem/.coe/.bin, the
layer codebooks and ``manifest.json`` (see docs/formats.md). It is written atomically.
"""

from pathlib import Path

from .errors import user_error
from .fileio import load_npy
from .pack import MAX_SHIFT, check_pes, check_shift, pack_compressed, pack_matrix, write_pack

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="compressed model (.npz) or integer matrix (.npy)")
    p.add_argument("--pes", type=int, required=True, metavar="N", help="number of PEs (>= 1)")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="pack directory to write")
    p.add_argument("--bias", metavar="B.npy", help=".npy only: int32 bias, one per row (default 0)")
    p.add_argument("--shift", type=int, metavar="S",
                   help=f".npy only: rounding right shift of the accumulator, 0..{MAX_SHIFT} (default 0)")
    p.add_argument("--relu", action="store_true", help=".npy only: apply ReLU to the outputs")


def build(args):
    """The :class:`~sparsa.sw.pack.Pack` the arguments describe (validated, nothing written)."""
    pes = check_pes(args.pes)
    model = Path(args.model)
    kind = model.suffix.lower()
    if kind == ".npz":
        given = [o for o, v in (("--bias", args.bias), ("--shift", args.shift), ("--relu", args.relu))
                 if v not in (None, False)]
        if given:
            raise user_error(model, ", ".join(given), "no --bias/--shift/--relu with a compressed .npz "
                             "(it carries its own)", "given")
        from .fileio import load_npz
        from .lstm_pack import is_compressed_lstm, load_compressed_lstm, pack_lstm
        arrays = load_npz(model, what="compressed model")
        if is_compressed_lstm(arrays):
            return pack_lstm(load_compressed_lstm(model, arrays), pes)
        return pack_compressed(model, pes)
    if kind != ".npy":
        raise user_error(model, "MODEL", "a .npz compressed model or a .npy matrix", f"suffix '{model.suffix}'")
    shift = check_shift(0 if args.shift is None else args.shift)
    w = load_npy(model, what="weight matrix")
    bias = None if args.bias is None else load_npy(args.bias, what="bias")
    return pack_matrix(w, pes, bias, shift, args.relu, where=str(model), bias_where=str(args.bias))


def run(args):
    pack = build(args)
    man = write_pack(pack, args.out)
    total = sum(l.nnz for l in pack.layers)
    entries = sum(sum(l.entries_per_pe) for l in pack.layers)
    print(f"packed {len(pack.layers)} layer(s), {total} nonzeros -> {entries} entries on {pack.pes} PEs, "
          f"pointer_bits {pack.pointer_bits}, {len(man['files']) + 1} files -> {args.out}")
    return 0
