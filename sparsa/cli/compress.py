"""Deep-compress a float model: prune, share weights (k-means), go to fixed point.

Reads a .npy weight matrix or an .npz MLP (<name>.weight / <name>.bias, e.g. a PyTorch
state_dict saved with numpy), writes a sparsa-compressed .npz for `sparsa pack`, and prints
a per-layer size and error report (also as JSON with --report). See docs/compression.md.

A CNN (a sparsa-model graph .npz from `sparsa import`, or a CNN .onnx) becomes an int8 graph
for the CNN engine: optional pruning (--density), power-of-two scales per layer from the
--calib inputs (N, C, H, W); --bits and --balance-pes do not apply. See docs/cnn.md.

examples:
  sparsa compress mlp.npz --density 0.1 --bits 4 --balance-pes 4 --calib x.npy -o mlp_c.npz
  sparsa compress cnn.npz --calib x.npy -o cnn_q.npz
"""

import contextlib
import sys
from pathlib import Path

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from sparsa.cli.limits import MAX_PES, check_input_file, check_pe_option, warn, warn_pes_above_rows
from sparsa.sw.compress.mlp import check_options, compress_model, save_compressed
from sparsa.sw.compress.report import compression_report
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import check_finite, check_outputs, load_npy, write_json
from sparsa.sw.fixedpoint import INT16_MAX
from sparsa.sw.model.importer import load_mlp

__all__ = ["add_arguments", "run", "print_report", "print_cnn_report"]

_PROGRESS_MIN_WEIGHTS = 8_000_000     # ~2 s of pruning and sharing


def add_arguments(p):
    p.add_argument("model", help="float model: .npy matrix (rows = outputs), .npz MLP, LSTM or CNN graph, "
                                 "or .onnx")
    p.add_argument("--density", type=float, default=None,
                   help="fraction of weights kept per layer, in (0, 1] (required for MLPs and LSTMs; "
                        "CNN: default 1, no pruning)")
    p.add_argument("--bits", type=int, default=None,
                   help="index bits 1..4: at most 2**bits - 1 shared values per layer (MLPs and LSTMs, required)")
    p.add_argument("--balance-pes", type=int, default=None, metavar="N",
                   help=f"load-balance-aware pruning: equal nonzeros for each of N PEs (1..{MAX_PES})")
    p.add_argument("--pad-free", action="store_true",
                   help="with --balance-pes (MLPs and LSTMs): keep, in place of every padding entry EIE's "
                        "format would need on N PEs, the largest pruned weight of its gap, and drop as many "
                        "of the smallest kept weights: the same nonzeros per PE and no padding (about 17%% "
                        "less weight memory at 11%% density)")
    p.add_argument("--calib", default=None, metavar="X.npy",
                   help="calibration inputs (n, cols of layer 0), or (n, C, H, W) for a CNN, for the "
                        "activation formats (CNN default: 64 inputs uniform in [-1, 1), seed 0)")
    p.add_argument("--no-relu", action="store_true",
                   help="no ReLU between layers (default: ReLU after every layer but the last)")
    p.add_argument("-o", "--output", required=True, metavar="OUT.npz", help="compressed model to write")
    p.add_argument("--report", default=None, metavar="R.json", help="also write the report as JSON")


def _load_calib(path, cols):
    x = load_npy(path, what="calibration data")
    if x.ndim != 2 or x.shape[1] != cols or x.shape[0] == 0:
        raise user_error(path, "calibration data", f"shape (n >= 1, {cols})", f"shape {x.shape}")
    check_finite(x, path, "calibration data")
    big = float(np.max(np.abs(x)))
    if big > INT16_MAX:
        warn("compress", f"{path}: calibration data: values up to {big:.3g} exceed int16 even with 0 fractional "
                         f"bits (|x| <= {INT16_MAX}): the input format gets 0 fractional bits and such inputs saturate")
    return x.astype(np.float64)


@contextlib.contextmanager
def _layer_progress(layers):
    """A per-layer progress bar (stderr, transient) for models big enough to take seconds.

    Measured: 21 million weights take ~4 s to prune and share; below 8 million no bar is shown.
    """
    total = sum(l.weight.size for l in layers)
    with Progress(TextColumn("pruning + sharing"), BarColumn(), TextColumn("{task.completed}/{task.total} layers"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=True,
                  disable=total < _PROGRESS_MIN_WEIGHTS) as bar:
        task = bar.add_task("layers", total=len(layers))
        yield lambda layer: bar.advance(task)


def _run_lstm(args, arrays):
    """An nn.LSTM state dict: balanced pruning per matrix, sharing, the ESE fixed-point formats."""
    from sparsa.sw.model.lstm import lstm_forward, lstm_from_arrays
    from sparsa.sw.lstm.pack import compress_lstm, save_compressed_lstm
    w = lstm_from_arrays(arrays, args.model)
    calib = _load_calib(args.calib, w.inputs) if args.calib else None
    comp = compress_lstm(w, args.density, args.bits, args.balance_pes, calib=calib, source=str(args.model),
                         pad_free=args.pad_free)
    deq = comp.dequantized()
    rel = lambda a, b: float(np.sqrt(np.sum((a - b) ** 2)) / max(np.sqrt(np.sum(b ** 2)), 1e-300))
    report = {"source": str(args.model), "kind": "lstm", "inputs": w.inputs, "hidden": w.hidden,
              "outputs": w.outputs, "peepholes": w.w_ic is not None, "density_target": args.density,
              "bits": args.bits, "pes": args.balance_pes or 1, "in_frac_bits": comp.in_frac,
              "gate_weight_frac_bits": comp.gate_fw, "proj_weight_frac_bits": comp.proj_fw,
              "gate_nonzeros": int(np.count_nonzero(comp.gate_index)),
              "gate_weight_rel_rms": rel(np.hstack([deq.w_hh, deq.w_ih]), np.hstack([w.w_hh, w.w_ih]))}
    if w.w_hr is not None:
        report["proj_nonzeros"] = int(np.count_nonzero(comp.proj_index))
        report["proj_weight_rel_rms"] = rel(deq.w_hr, w.w_hr)
    # What the format adds on the PEs the model was balanced for (with --pad-free: ~0).
    from sparsa.sw.lstm.pack import pack_lstm
    report["padding_entries"] = sum(sum(l.padding_per_pe) for l in pack_lstm(comp, args.balance_pes or 1).layers)
    if calib is not None:
        report["output_rel_rms_on_calib"] = rel(lstm_forward(deq, calib), lstm_forward(w, calib))
    save_compressed_lstm(args.output, comp)
    if args.report:
        write_json(args.report, report)
    width = max(len(k) for k in report)
    for k, v in report.items():
        print(f"{k:{width}s}  {v:.4f}" if isinstance(v, float) else f"{k:{width}s}  {v}")
    print(f"wrote {args.output}" + (f" and {args.report}" if args.report else ""))
    return 0


def _require_eie_options(args, kind):
    """--density and --bits are required for the EIE (MLP) and ESE (LSTM) compressors."""
    for opt, value, limit in (("--density", args.density, "a fraction in (0, 1]"),
                              ("--bits", args.bits, "an integer in 1..4")):
        if value is None:
            raise user_error(None, opt, f"{limit} (required for an {kind} model)", "none given")


def _load_cnn_calib(path, graph):
    x = load_npy(path, what="calibration data")
    if x.ndim != 4 or x.shape[1:] != graph.input_shape or x.shape[0] == 0:
        raise user_error(path, "calibration data", f"shape (n >= 1, {', '.join(map(str, graph.input_shape))})",
                         f"shape {x.shape}")
    check_finite(x, path, "calibration data")
    return x.astype(np.float64)


def _run_cnn(args, graph):
    """A float CNN graph -> an int8 graph for the CNN engine (sw/cnn/compress.py)."""
    from sparsa.sw.cnn.compress import DEFAULT_CALIB_COUNT, compress_cnn, default_calib, quant_error
    from sparsa.sw.model.graph import save_graph
    for opt, value in (("--bits", args.bits), ("--balance-pes", args.balance_pes), ("--pad-free", args.pad_free or None)):
        if value is not None:
            raise user_error(None, opt, "not given for a CNN (int8 weights, no weight sharing or PE balancing)",
                             value)
    if args.no_relu:
        raise user_error(None, "--no-relu", "not given for a CNN (its layers say where the ReLUs are)", "given")
    if args.calib:
        calib = _load_cnn_calib(args.calib, graph)
    else:
        calib = default_calib(graph)
        print(f"note: no --calib: calibrating on {DEFAULT_CALIB_COUNT} inputs uniform in [-1, 1) (seed 0); "
              "give real inputs for real formats")
    qgraph = compress_cnn(graph, calib, density=args.density, where=str(args.model),
                          calib_where=str(args.calib) if args.calib else None)
    quant = qgraph.spec["quant"]
    report = {"source": str(args.model), "kind": "cnn", "density_target": args.density,
              "calibrated": bool(args.calib), "calibration_inputs": len(calib),
              "input_frac_bits": quant["input_frac"], "output_frac_bits": quant["output_frac"],
              "output_rel_rms_on_calib": quant_error(qgraph, graph, calib[:256]),
              "layers": quant["layers"]}
    save_graph(args.output, qgraph)
    if args.report:
        write_json(args.report, report)
    print_cnn_report(report)
    print(f"wrote {args.output}" + (f" and {args.report}" if args.report else ""))
    return 0


def print_cnn_report(report, console=None):
    """The per-layer formats of a compressed CNN as a rich table."""
    console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 132)
    table = Table(title="CNN int8 compression (dynamic fixed point: value = q * 2**-frac)")
    for col in ("layer", "op", "output", "weights", "density", "fx/fw/fy", "shift", "w err"):
        table.add_column(col, justify="left" if col in ("layer", "op") else "right")
    for r in report["layers"]:
        shape = "x".join(map(str, r["shape"]))
        if "weight_frac" in r:
            table.add_row(r["name"], r["op"], shape, str(r["weights"]), f"{r['density']:.4f}",
                          f"{r['in_frac']}/{r['weight_frac']}/{r['out_frac']}", str(r["shift"]),
                          f"{r['weight_rel_rms']:.4f}")
        else:
            table.add_row(r["name"], r["op"], shape, "", "", f"-/-/{r['out_frac']}", "", "")
    console.print(table)
    console.print(f"input frac bits {report['input_frac_bits']}, output frac bits {report['output_frac_bits']}; "
                  f"output rel. RMS error on {min(report['calibration_inputs'], 256)} calibration input(s): "
                  f"{report['output_rel_rms_on_calib']:.4f}")
    for r in report["layers"]:
        if r.get("note"):
            console.print(f"note: layer {r['name']}: {r['note']}")
        if r.get("bias_saturated"):
            console.print(f"warning: layer {r['name']}: {r['bias_saturated']} bias value(s) saturated to int32")
        if "nonzeros" in r and not r["nonzeros"]:
            console.print(f"warning: layer {r['name']}: keeps no weights")


def run(args):
    check_outputs([("-o", args.output), ("--report", args.report)], [("MODEL", args.model), ("--calib", args.calib)])
    check_input_file(args.model, "MODEL", "model", kinds=".npy/.npz (or an .onnx model)")
    if args.calib is not None:
        check_input_file(args.calib, "--calib", "calibration data", kinds=".npy")
    # Range checks first (with neutral stand-ins for options not given); which options a model
    # needs is checked once its kind is known.
    check_options(1.0 if args.density is None else args.density, 1 if args.bits is None else args.bits,
                  args.balance_pes, args.pad_free)
    check_pe_option(args.balance_pes, "--balance-pes")
    if Path(args.output).suffix.lower() != ".npz":
        raise user_error(None, "-o", "an output path ending in .npz", args.output)
    suffix = Path(args.model).suffix.lower()
    if suffix == ".npz":
        from sparsa.sw.fileio import load_npz
        from sparsa.sw.model.lstm import LSTM_KEYS
        arrays = load_npz(args.model, what="model")
        if "graph" in arrays:
            from sparsa.sw.model.graph import load_graph
            return _run_cnn(args, load_graph(args.model))
        if arrays and all(k in LSTM_KEYS for k in arrays):
            _require_eie_options(args, "LSTM")
            return _run_lstm(args, arrays)
        if any(a.ndim == 4 for a in arrays.values()):
            raise user_error(args.model, "model", "an MLP, an LSTM or a sparsa-model CNN graph",
                             "a Conv2d state dict; convert it with `sparsa import MODEL.npz --input-shape C,H,W "
                             "-o graph.npz` first")
    elif suffix == ".onnx":
        from sparsa.sw.model.importer import load_onnx
        imported = load_onnx(args.model)
        if imported.kind == "lstm":
            _require_eie_options(args, "LSTM")
            return _run_lstm(args, imported.lstm.arrays())
        if imported.kind == "cnn":
            return _run_cnn(args, imported.graph)
    _require_eie_options(args, "MLP")
    layers = load_mlp(args.model, relu=not args.no_relu)
    warn_pes_above_rows("compress", "--balance-pes", args.balance_pes, max(l.weight.shape[0] for l in layers),
                        where=args.model)
    calib = _load_calib(args.calib, layers[0].cols) if args.calib else None
    with _layer_progress(layers) as on_layer:
        model = compress_model(layers, args.density, args.bits, pes=args.balance_pes,
                               calib=calib, source=str(args.model), on_layer=on_layer, pad_free=args.pad_free)
    report = compression_report(model, layers, args.balance_pes or 1)
    empty = [r["name"] for r in report["layers"] if not r["nonzeros"]]
    if empty:
        whole = len(empty) == len(report["layers"])
        warn("compress", f"--density {args.density:g} keeps no weights in "
                         f"{'any layer (an all-zero model: every output is its bias)' if whole else 'layer(s) ' + ', '.join(empty) + ' (their outputs are their biases)'}")
    report.update(source=str(args.model), density_target=args.density, bits=args.bits,
                  calibrated=calib is not None)
    # Compute everything first, then write: a failure above leaves no output behind.
    save_compressed(args.output, model)
    if args.report:
        write_json(args.report, report)
    print_report(report)
    print(f"wrote {args.output}" + (f" and {args.report}" if args.report else ""))
    return 0


def _fmt(x, spec):
    return "-" if x is None else format(x, spec)


def print_report(report, console=None):
    """Print the per-layer report as a rich table (plain text when not on a terminal)."""
    # Off a terminal rich assumes 80 columns, which would wrap the table: give it room.
    console = console or Console(highlight=False, width=None if sys.stdout.isatty() else 132)
    table = Table(title=f"Deep Compression (EIE format, {report['pes']} PE(s))")
    for col in ("layer", "shape", "density", "shared", "bits/nz", "ratio", "ratio+huff",
                "err all", "err kept", "fx/fw/fy/S"):
        table.add_column(col, justify="left" if col == "layer" else "right")
    for r in report["layers"]:
        table.add_row(r["name"], f"{r['rows']}x{r['cols']}", f"{r['density']:.4f}", str(r["shared_values"]),
                      _fmt(r["bits_per_nonzero"], ".2f"), f"{r['compression_ratio']:.1f}x",
                      f"{r['compression_ratio_huffman']:.1f}x", f"{r['weight_rel_rms_all']:.3f}",
                      f"{r['weight_rel_rms_kept']:.3f}",
                      f"{r['in_frac_bits']}/{r['weight_frac_bits']}/{r['out_frac_bits']}/{r['shift']}")
    t = report["total"]
    table.add_row("total", f"{t['weights']} w", f"{t['density']:.4f}", "", _fmt(t["bits_per_nonzero"], ".2f"),
                  f"{t['compression_ratio']:.1f}x", f"{t['compression_ratio_huffman']:.1f}x",
                  f"{t['weight_rel_rms_all']:.3f}", "", "")
    console.print(table)
    for r in report["layers"]:
        if not r["nonzeros"]:
            console.print(f"warning: layer {r['name']}: keeps no weights (density * size < 1)")
        if r["bias_saturated"]:
            console.print(f"warning: layer {r['name']}: {r['bias_saturated']} bias value(s) saturated to int32")
        if r["codebook_nudged"]:
            console.print(f"note: layer {r['name']}: {r['codebook_nudged']} shared value(s) rounded to 0, "
                          "kept at 1 LSB")
