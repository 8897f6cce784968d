"""Pack a compressed model or an integer matrix into EIE memory images for N PEs, or compile an integer CNN graph.

MODEL is a ``.npz`` written by ``sparsa compress`` (codebooks, biases, shifts and ReLUs come
from the file) or a ``.npy`` integer matrix (rows = outputs, cols = inputs) of int16 values
with at most 15 distinct nonzero values, packed exactly; ``--bias``, ``--shift`` and
``--relu`` apply to the ``.npy`` form only. The output directory holds, per layer and PE,
the sparse-matrix, pointer (even/odd bank) and bias images in .hex/.mem/.coe/.bin, the
layer codebooks and ``manifest.json`` (see docs/formats.md). It is written atomically.

A ``.npz`` holding an integer sparsa-model graph (key ``graph``, from ``sparsa compress``) is
compiled for the CNN engine instead (``--lanes``, ``--conv-datapath`` and the buffer sizes
apply; no ``--pes``): the directory gets ``program.bin`` (instructions), ``dram.bin``
(instructions and weights) and ``manifest.json`` (format ``sparsa-cnn-pack``, see
sparsa/sw/cnn_pack.py).
"""

from pathlib import Path

import numpy as np

from sparsa.cli.limits import MAX_PES, check_input_file, check_pe_option, warn_pes_above_rows
from sparsa.sw.cnn.compiler import DATAPATHS
from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import check_outputs, load_npy
from sparsa.sw.eie.pack import MAX_SHIFT, check_pes, check_shift, pack_compressed, pack_matrix
from sparsa.sw.eie.pack_dir import write_pack

__all__ = ["add_arguments", "run"]


def add_arguments(p):
    p.add_argument("model", metavar="MODEL", help="compressed model (.npz), integer CNN graph (.npz) "
                   "or integer matrix (.npy)")
    p.add_argument("--pes", type=int, metavar="N", help=f"number of PEs, 1..{MAX_PES}; required for EIE packs")
    p.add_argument("-o", "--out", required=True, metavar="DIR", help="pack directory to write")
    p.add_argument("--bias", metavar="B.npy", help=".npy only: int32 bias, one per row (default 0)")
    p.add_argument("--shift", type=int, metavar="S",
                   help=f".npy only: rounding right shift of the accumulator, 0..{MAX_SHIFT} (default 0)")
    p.add_argument("--relu", action="store_true", help=".npy only: apply ReLU to the outputs")
    p.add_argument("--balance-rows", action="store_true",
                   help="compressed MLP .npz only: renumber each hidden layer's units so that every PE "
                   "holds the same nonzeros (the next layer's columns follow; outputs unchanged bit for bit)")
    p.add_argument("--align-columns", type=int, metavar="N",
                   help="EIE packs: a column that would cross a 64-bit word it need not cross starts the next word "
                   "when at most N (0..7) lanes are left and they would hold fewer than two of its real entries; "
                   "the lanes are filled with zero entries. More memory, fewer word fetches (faster with two "
                   "multipliers a PE; sw/eie/align.py)")
    c = CNNConfig()
    p.add_argument("--lanes", type=int, metavar="P", help=f"CNN graph only: output channels in parallel, "
                   f"4, 8, 16 or 32 (default {c.lanes})")
    p.add_argument("--conv-datapath", choices=DATAPATHS, help="CNN graph only: 3x3 stride-1 convs on the "
                   "direct or the Winograd F(2x2,3x3) datapath (default direct)")
    for opt, name in (("--ibuf-bytes", "ibuf_bytes"), ("--wbuf-words", "wbuf_words"), ("--obuf-depth", "obuf_depth"),
                      ("--psum-depth", "psum_depth")):
        p.add_argument(opt, type=int, metavar="N", help=f"CNN graph only: {name} (default {getattr(c, name)})")
    p.add_argument("--weight-bits", type=int, choices=(8, 16), help="CNN graph only: bits of a lane's weight in "
                   "wbuf and DRAM; 8 halves the weight traffic (direct datapath, 8 lanes or more; default 16)")
    p.add_argument("--pair-multipliers", action="store_true", help="CNN graph only: two lanes share each 3x3 "
                   "convolver multiplier (two int8 products per DSP)")


CNN_OPTIONS = (("--lanes", "lanes"), ("--conv-datapath", "conv_datapath"), ("--ibuf-bytes", "ibuf_bytes"),
               ("--wbuf-words", "wbuf_words"), ("--obuf-depth", "obuf_depth"), ("--psum-depth", "psum_depth"),
               ("--weight-bits", "weight_bits"), ("--pair-multipliers", "pair_multipliers"))


def _given(args, options):
    # `is`, not `in`: 0 == False, and `--shift 0` or `--align-columns 0` is an option given.
    return [o for o, a in options if getattr(args, a, None) is not None and getattr(args, a) is not False]


def is_cnn_model(path):
    """True for a ``.npz`` with a ``graph`` key (a sparsa-model graph)."""
    path = Path(path)
    if path.suffix.lower() != ".npz" or not path.is_file():
        return False
    try:
        with np.load(path, allow_pickle=False) as z:       # lazy: only the names are read
            return isinstance(z, np.lib.npyio.NpzFile) and "graph" in z.files
    except Exception:   # unreadable: the EIE path reports it with its usual message
        return False


def build_cnn(args):
    """The compiled :class:`~sparsa.sw.cnn.compiler.Program` the arguments describe."""
    from sparsa.sw.cnn.compiler import compile_graph
    from sparsa.sw.model.graph import load_graph
    model = Path(args.model)
    given = _given(args, (("--pes", "pes"), ("--bias", "bias"), ("--shift", "shift"), ("--relu", "relu"),
                          ("--balance-rows", "balance_rows"), ("--align-columns", "align_columns")))
    if given:
        raise user_error(model, ", ".join(given), "no EIE options with a CNN graph (it is compiled for "
                         "the CNN engine: --lanes, --conv-datapath)", "given")
    datapath = args.conv_datapath or "direct"
    sizes = {name: getattr(args, name) for _, name in CNN_OPTIONS[2:6] if getattr(args, name) is not None}
    for name, v in sizes.items():
        if v < 1:
            raise user_error(None, "--" + name.replace("_", "-"), "a positive size", repr(v))
    cfg = CNNConfig.from_args(datapath=datapath, lanes=args.lanes, weight_bits=args.weight_bits,
                              pair_multipliers=args.pair_multipliers, **sizes)
    return compile_graph(load_graph(model), cfg, datapath, where=str(model))


def build(args):
    """The :class:`~sparsa.sw.eie.pack.Pack` the arguments describe (validated, nothing written)."""
    fill = getattr(args, "align_columns", None)
    if fill is not None:
        from sparsa.sw.eie.align import check_max_fill
        check_max_fill(fill, args.model)
    pack = _build_eie(args)
    return pack if not fill else _aligned(pack, fill)


def _aligned(pack, fill):
    """``pack`` with its columns aligned to words (:func:`sparsa.sw.eie.align.align_columns`)."""
    from sparsa.sw.eie.align import align_columns
    pack, report = align_columns(pack, fill)
    before, after = (sum(r[k] for r in report) for k in ("entries_before", "entries_after"))
    print(f"aligned columns (at most {fill} fill entries a column): {before:,} -> {after:,} entries "
          f"(+{100 * (after - before) / max(before, 1):.1f}%)")
    return pack


def _build_eie(args):
    model = Path(args.model)
    given = _given(args, CNN_OPTIONS)
    if given:
        raise user_error(model, ", ".join(given), "CNN options only with an integer CNN graph (.npz with "
                         "a 'graph' key)", "given for an EIE pack")
    if args.pes is None:
        raise user_error(model, "--pes", "a PE count for an EIE pack", "none given")
    pes = check_pes(check_pe_option(args.pes))
    kind = model.suffix.lower()
    if kind == ".npz":
        given = [o for o, v in (("--bias", args.bias), ("--shift", args.shift), ("--relu", args.relu))
                 if v not in (None, False)]
        if given:
            raise user_error(model, ", ".join(given), "no --bias/--shift/--relu with a compressed .npz "
                             "(it carries its own)", "given")
        from sparsa.sw.fileio import load_npz
        from sparsa.sw.lstm.pack import is_compressed_lstm, load_compressed_lstm, pack_lstm
        arrays = load_npz(model, what="compressed model")
        if is_compressed_lstm(arrays):
            if getattr(args, "balance_rows", False):
                raise user_error(model, "--balance-rows", "an MLP (an LSTM's rows are laid out by gate and "
                                 "unit for the element-wise unit)", "an LSTM")
            return pack_lstm(load_compressed_lstm(model, arrays), pes)
        pack = pack_compressed(model, pes)
        return _balanced(pack, model) if getattr(args, "balance_rows", False) else pack
    if kind != ".npy":
        raise user_error(model, "MODEL", "a .npz compressed model or a .npy matrix", f"suffix '{model.suffix}'")
    if getattr(args, "balance_rows", False):
        raise user_error(model, "--balance-rows", "a compressed MLP .npz with a hidden layer", "a one-layer matrix")
    shift = check_shift(0 if args.shift is None else args.shift)
    w = load_npy(model, what="weight matrix")
    bias = None if args.bias is None else load_npy(check_input_file(args.bias, "--bias", "bias", kinds=".npy"),
                                                   what="bias")
    return pack_matrix(w, pes, bias, shift, args.relu, where=str(model), bias_where=str(args.bias))


def _balanced(pack, model):
    """``pack`` with its hidden layers' units renumbered (:func:`sparsa.sw.eie.balance.balance_rows`)."""
    from sparsa.sw.eie.balance import balance_rows
    if len(pack.layers) < 2:
        raise user_error(model, "--balance-rows", "a model with a hidden layer (one that feeds another)",
                         "1 layer")
    pack, report = balance_rows(pack)
    for r in report:
        if r["hidden"]:
            print(f"balanced rows of {r['layer']}: busiest PE {r['busiest_before']:,} -> {r['busiest_after']:,} "
                  f"nonzeros (mean {r['mean']:,.1f})")
    return pack


def run(args):
    inputs = [("MODEL", args.model), ("--bias", getattr(args, "bias", None))]
    check_outputs([("-o", args.out)], inputs, dirs=("-o",))
    check_input_file(args.model, "MODEL", "model")
    check_pe_option(getattr(args, "pes", None))
    if is_cnn_model(args.model):
        from sparsa.sw.cnn.pack import write_cnn_pack
        prog = build_cnn(args)
        man = write_cnn_pack(prog, args.out, inputs=inputs)
        print(f"compiled {len(prog.layers)} layer(s) for {prog.cfg.lanes} lanes ({prog.datapath} conv "
              f"datapath): {prog.n_instructions} instructions, {man['macs']:,} MACs in {man['mac_cycles']:,} "
              f"MAC cycles, DRAM {prog.dram_size:,} bytes, {len(man['files']) + 1} files -> {args.out}")
        from sparsa.sw.cnn.timing import REPORT_MHZ, program_cycles
        cyc, mhz = program_cycles(prog.program).cycles, REPORT_MHZ[0]
        print(f"cycle model: {cyc:,} cycles an input ({cyc / (mhz * 1e3):,.3f} ms at {mhz} MHz, zero-wait-state DRAM; "
              f"`sparsa run --engine verilator --report R.json` counts them on the RTL)")
        return 0
    pack = build(args)
    warn_pes_above_rows("pack", "--pes", pack.pes, max(l.rows for l in pack.layers), where=args.model)
    man = write_pack(pack, args.out, inputs=inputs)
    total = sum(l.nnz for l in pack.layers)
    entries = sum(sum(l.entries_per_pe) for l in pack.layers)
    print(f"packed {len(pack.layers)} layer(s), {total} nonzeros -> {entries} entries on {pack.pes} PEs, "
          f"pointer_bits {pack.pointer_bits}, {len(man['files']) + 1} files -> {args.out}")
    return 0
