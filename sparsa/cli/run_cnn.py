"""``sparsa run`` for CNN packs (``sparsa pack cnn.npz``): golden model or the simulated engine.

X is a ``.npy`` of shape (C, H, W) or (B, C, H, W): int8 values, or floats, which are
quantised at the graph's input fractional bits (from ``sparsa compress``). Y has the last
layer's shape ((out,) per input after a ``linear``), int8, or float32 real values with
``--dequantize``. Engines: ``golden`` (:func:`sparsa.sw.cnn.golden.cnn_forward` on the pack's
model.npz), ``verilator`` and ``icarus`` (the generated engine with an AXI RAM as DRAM), and
``board`` (the board's CNN system over its USB UART, or simulated: :mod:`sparsa.cli.run_board_cnn`).
The report gives total cycles and, per layer, cycles, MACs and MAC utilisation
(MACs / (lanes x cycles)).
"""

import hashlib
import time

import numpy as np

from sparsa.cli.limits import check_input_file
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import check_finite, check_int_range, load_npy, save_npy, write_json

__all__ = ["run_cnn", "prepare_cnn_input"]

ENGINES = ("golden", "verilator", "icarus")


def prepare_cnn_input(x, prog, where):
    shape = tuple(prog.input_shape)
    if x.shape not in (shape,) and not (x.ndim == 4 and x.shape[1:] == shape):
        raise user_error(where, "input shape", f"{shape} or (B,) + {shape} (the graph's input)", f"{x.shape}")
    if x.dtype.kind == "f":
        check_finite(x, where, "input")
        quant = (prog.graph.spec.get("quant") if prog.graph is not None else None) or {}
        if "input_frac" in quant:
            from sparsa.sw.cnn.compress import quantize_input
            return quantize_input(prog.graph, x)
        if not np.all(x == np.round(x)):
            raise user_error(where, "input", "int8 values (the graph has no input scale to quantise floats)",
                             "non-integer floats")
    check_int_range(x, -128, 127, where, "input", "int8")
    return x.astype(np.int8)


def run_cnn(args):
    from sparsa.sw.cnn.pack import load_cnn_pack
    if args.engine not in ENGINES and args.engine != "board":
        raise user_error(None, "--engine", f"one of {', '.join(ENGINES)}, board", repr(args.engine))
    if args.engine == "board" and not getattr(args, "port", None):
        raise user_error(None, "--port", "the board's serial port (e.g. /dev/ttyUSB0) or sim:<board> with "
                                         "--engine board", "none")
    prog, cfg, man = load_cnn_pack(args.pack)
    check_input_file(args.input, "-i", "input", kinds=".npy")
    x = prepare_cnn_input(load_npy(args.input, what="input"), prog, args.input)
    quant = (prog.graph.spec.get("quant") if prog.graph is not None else None) or {}
    if args.dequantize and "output_frac" not in quant:
        raise user_error(f"{args.pack}/model.npz", "quant.output_frac",
                         "the output scale for --dequantize (a graph from sparsa compress)", "none")
    t0 = time.perf_counter()
    extra = {}
    if x.ndim == 4 and x.shape[0] == 0:
        # An empty batch has an empty answer: no engine runs (nothing is built or simulated).
        y = np.zeros((0,) + (tuple(prog.output_shape) if not prog.output_flat
                             else (int(np.prod(prog.output_shape)),)), np.int8)
        if args.engine != "golden":
            extra = {"cycles": [], "layers": []}
    elif args.engine == "golden":
        if prog.graph is None:
            raise user_error(f"{args.pack}/manifest.json", "files", "a model.npz for the golden engine",
                             "none (packed without the graph)")
        from sparsa.sw.cnn.golden import cnn_forward
        y = cnn_forward(prog.graph, x)
    elif args.engine == "board":
        from sparsa.cli.run_board_cnn import run_board_cnn
        y, extra = run_board_cnn(args.pack, prog, x, args.port, args.baud, clock_mhz=args.clock_mhz)
    else:
        from sparsa.sim.cnn.runner import run_program
        res = run_program(prog, x, engine=args.engine)
        y = res["y"]
        lanes = cfg.lanes
        lc = res["layer_cycles"]
        layers = []
        # utilisation against the multipliers of the layer's datapath (9 x lanes on the 3x3
        # window convolver, lanes otherwise); the whole run against the engine's peak
        mults = [m.get("multipliers") or lanes for m in prog.layers]
        peak = max(mults + [lanes])
        for i, meta in enumerate(prog.layers):
            cyc = [int(c) for c in lc[:, i]]
            mean = float(np.mean(cyc))
            layers.append({"name": meta["name"], "op": meta["op"], "datapath": meta["datapath"],
                           "cycles": cyc[0] if len(cyc) == 1 else cyc, "macs": meta["macs"],
                           "multipliers": mults[i],
                           "mac_utilisation": round(meta["macs"] / (mults[i] * mean), 4) if mean else None})
        cycles = [int(c) for c in res["cycles"]]
        extra = {"cycles": cycles[0] if x.ndim == 3 else cycles,
                 "cycles_per_input": float(np.mean(cycles)),
                 "mac_cycles": [int(c) for c in res["mac_cycles"]],
                 "mac_utilisation": round(sum(m["macs"] for m in prog.layers) / (peak * float(np.mean(cycles))), 4),
                 "overhead_cycles": int(res["overhead_cycles"][0]), "layers": layers}
    elapsed = time.perf_counter() - t0
    y = np.asarray(y).astype(np.int8)
    out = y
    if args.dequantize:
        from sparsa.sw.cnn.compress import dequantize_output
        out = dequantize_output(prog.graph, y).astype(np.float32)
    save_npy(args.out, out)
    if args.report:
        write_json(args.report, {
            "engine": args.engine, "pack": str(args.pack), "kind": "cnn", "lanes": cfg.lanes,
            "datapath": prog.datapath, "batch": 1 if x.ndim == 3 else int(x.shape[0]), **extra,
            "output": {"shape": list(y.shape), "dtype": "int8",
                       "sha256": hashlib.sha256(np.ascontiguousarray(y).tobytes()).hexdigest(),
                       "sum": int(y.astype(np.int64).sum())},
            "time_s": elapsed,
        })
    print(f"ran {args.engine}: {x.shape} -> {y.shape} -> {args.out}")
    return 0
