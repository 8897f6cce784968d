"""Run a pack directory on input activations (golden model, or a simulated PE array).

X is a ``.npy`` of shape (cols,) or (batch, cols): int16 values, or floats, which are
quantised with the pack's input fractional bits (round half up, saturate); a pack made from
an integer matrix has none, so it accepts only integer-valued X. Y holds the last layer's
rows as int16, or float32 real values with ``--dequantize`` (needs the last layer's
``out_frac_bits``). Engines: ``golden`` (the bit-exact numpy model of sw/eie/golden.py);
``verilator`` and ``icarus`` run the generated EIE PE array through
``sparsa.sim.eie.runner`` when that is part of the build: exactly the hardware that ``sparsa
verilog PACK`` writes and ``sparsa build PACK`` synthesises, or with ``--reusable-build`` every
size rounded up to a power of two, so that one compiled model serves many packs of similar
size (a second pack then skips the 1-2 minute Verilator build). ``--report`` writes a JSON
summary (engine, batch, layers, output checksum, time, and any engine counters).
"""

import hashlib
import importlib
import time

import numpy as np

from sparsa.cli.limits import check_input_file
from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import check_finite, check_int_range, check_outputs, load_npy, save_npy, write_json
from sparsa.sw.fixedpoint import INT16_MAX, INT16_MIN, dequantize, quantize
from sparsa.sw.eie.pack_dir import load_pack

__all__ = ["add_arguments", "run", "ENGINES", "prepare_input", "run_engine"]


def _golden(pack_dir, pack, x, report, reusable=False):
    return pack.run_golden(x), {}


def _hardware(engine):
    def run_hw(pack_dir, pack, x, report, reusable=False):
        if pack.lstm:
            from sparsa.sim.eie.runner import cli_config, run_lstm
            from sparsa.sw.eie.memmap import build_memory_map
            from sparsa.hw.eie.pe import COUNTERS
            res = run_lstm(pack, x, engine=engine, cfg=cli_config(build_memory_map(pack), reusable), progress=True)
            cyc = [int(c) for c in res["cycles"]]
            # Per layer (gates, projection), summed over the steps: cycles and every PE's
            # counters, as for an MLP. `starved` is the time a PE sat idle with nothing queued.
            stats = res["layer_stats"]          # (steps, layers, PEs, counters)
            layers = [{"cycles": int(res["layer_cycles"][:, li].sum()),
                       "per_pe": {name: stats[:, li, :, c].sum(axis=0).astype(int).tolist()
                                  for c, name in enumerate(COUNTERS)}}
                      for li in range(stats.shape[1])]
            return res["y"], {"cycles": int(sum(cyc)), "cycles_per_step": cyc,
                              "cycles_per_step_mean": float(np.mean(cyc)),
                              "per_step_layer_cycles": res["layer_cycles"].astype(int).tolist(),
                              "layers": layers,
                              "config": res["config"], "build_s": round(res["build_s"], 2),
                              "sim_s": round(res["sim_s"], 2)}
        try:
            eie_runner = importlib.import_module("sparsa.sim.eie.runner")
        except ModuleNotFoundError as e:
            if e.name != "sparsa.sim.eie.runner":      # a missing dependency of the runner is a bug
                raise
            raise UserError(f"engine '{engine}' arrives with the EIE PE array (not in this build)")
        y, rep = eie_runner.run(pack_dir, pack, x, engine=engine, report=report, reusable=reusable)
        return np.asarray(y), dict(rep or {})
    return run_hw


# engine name -> callable(pack_dir, pack, x int16, report: bool, reusable: bool) -> (y int16, report dict)
ENGINES = {"golden": _golden, "verilator": _hardware("verilator"), "icarus": _hardware("icarus")}


def add_arguments(p):
    p.add_argument("pack", metavar="DIR", help="pack directory (from sparsa pack)")
    p.add_argument("-i", "--input", required=True, metavar="X.npy", help="input activations")
    p.add_argument("-o", "--out", required=True, metavar="Y.npy", help="output activations")
    p.add_argument("--engine", default="golden", metavar="ENGINE",
                   help=f"one of {', '.join(ENGINES)}, board (default golden)")
    p.add_argument("--port", metavar="PORT",
                   help="--engine board: the board's serial port (/dev/ttyUSB0; the board runs the bitstream "
                        "of sparsa build --top link, flashed with sparsa flash), or sim:ulx3s-85f / "
                        "sim:icebreaker for the simulated board (the same system on Verilator behind the same "
                        "link; the link's time measured in simulated cycles: docs/soc.md)")
    p.add_argument("--baud", type=int, metavar="N", help="--engine board: the UART's rate (default 3000000)")
    p.add_argument("--reload", action="store_true",
                   help="--engine board: load the weights even if the board reports that it holds this model "
                        "(its MODEL_ID register)")
    p.add_argument("--clock-mhz", type=float, metavar="MHZ",
                   help="--port sim:<board>: the system clock to simulate, as the build's report.json gives it "
                        "(default: the board's, 60 MHz ULX3S, 24 MHz iCEBreaker); it must divide 3 Mbaud")
    p.add_argument("--report", metavar="R.json", help="write a JSON run report")
    p.add_argument("--dequantize", action="store_true", help="write Y as float32 real values")
    p.add_argument("--reusable-build", action="store_true",
                   help="verilator/icarus, EIE packs: simulate every size rounded up to a power of two, so "
                        "that one compiled model serves many packs of similar size (default: exactly the "
                        "hardware `sparsa verilog` writes and `sparsa build` synthesises for the pack)")


def prepare_input(x, pack, where):
    """Validate ``x`` against ``pack`` and return it as int16 ((cols,) or (batch, cols))."""
    cols = pack.input_cols
    if pack.lstm and x.ndim != 2:
        raise user_error(where, "input rank", f"a sequence (T, {cols}) for an LSTM pack", f"shape {x.shape}")
    if x.ndim not in (1, 2):
        raise user_error(where, "input rank", f"(cols,) or (batch, cols) with cols = {cols}", f"shape {x.shape}")
    if x.shape[-1] != cols:
        raise user_error(where, "input length", f"{cols} values per vector (the first layer's cols)",
                         f"shape {x.shape}")
    if x.dtype.kind == "f":
        check_finite(x, where, "input")
        if pack.input_frac_bits is not None:
            return quantize(x, pack.input_frac_bits)
        if not np.all(x == np.round(x)):
            raise user_error(where, "input", "int16 values (the pack has no input frac bits to quantise floats)",
                             "non-integer floats")
    check_int_range(x, INT16_MIN, INT16_MAX, where, "input", "int16")
    return x.astype(np.int16)


def run_engine(engine, pack_dir, pack, x, report=False, reusable=False):
    if engine not in ENGINES:
        raise user_error(None, "--engine", f"one of {', '.join(ENGINES)}", repr(engine))
    return ENGINES[engine](pack_dir, pack, x, report, reusable)


def run(args):
    from sparsa.sw.cnn.pack import is_cnn_pack
    # Before any work: no output over an input (the pack, X) or inside the pack, and both
    # outputs writable, so that a refused report never leaves Y half-done.
    check_outputs([("-o", args.out), ("--report", args.report)], [("DIR", args.pack), ("-i", args.input)])
    board_sim = args.engine == "board" and (args.port or "").startswith("sim:")
    if args.clock_mhz is not None and not board_sim:
        raise user_error(None, "--clock-mhz", "--engine board --port sim:<board> (a real board runs the clock "
                         "its bitstream was built for)", f"{args.clock_mhz:g}")
    if args.reload and args.engine != "board":
        raise user_error(None, "--reload", "--engine board (the simulation engines build the pack in)", args.engine)
    if args.baud is not None and (args.engine != "board" or board_sim or args.baud <= 0):
        found = (f"{args.baud} with --engine {args.engine}" if args.engine != "board" else
                 f"{args.baud} with --port {args.port}" if board_sim else f"{args.baud}")
        raise user_error(None, "--baud", "a rate above 0 with --engine board on a real port (sim:<board> runs at "
                         "the board's 3000000)", found)
    if is_cnn_pack(args.pack):
        if args.reload:
            raise user_error(args.pack, "--reload", "an EIE pack (a CNN pack is loaded by every board run)",
                             "a CNN pack")
        from sparsa.cli.run_cnn import run_cnn
        if getattr(args, "reusable_build", False):
            raise user_error(args.pack, "--reusable-build", "an EIE pack (a CNN pack fixes its engine's sizes)",
                             "a CNN pack")
        return run_cnn(args)
    if args.engine not in ENGINES and args.engine != "board":
        raise user_error(None, "--engine", f"one of {', '.join(ENGINES)}, board", repr(args.engine))
    if args.engine == "board" and not getattr(args, "port", None):
        raise user_error(None, "--port", "the board's serial port (e.g. /dev/ttyUSB0) or sim:<board> with "
                                         "--engine board", "none")
    pack = load_pack(args.pack)
    check_input_file(args.input, "-i", "input", kinds=".npy")
    x = prepare_input(load_npy(args.input, what="input"), pack, args.input)
    last = pack.layers[-1]
    if args.dequantize and last.out_frac_bits is None:
        raise user_error(f"{args.pack}/manifest.json", "out_frac_bits",
                         "the last layer's output scale for --dequantize", "none (packed from an integer matrix)")
    t0 = time.perf_counter()
    if x.ndim == 2 and x.shape[0] == 0:
        # An empty batch has an empty answer: no engine runs (nothing is built or simulated).
        y, extra = np.zeros((0, pack.output_rows), np.int16), ({} if args.engine == "golden" else {"cycles": 0})
    elif args.engine == "board":
        from sparsa.cli.run_board import run_board
        y, extra = run_board(args.pack, pack, x, args.port, args.baud, clock_mhz=args.clock_mhz, reload=args.reload)
    else:
        y, extra = run_engine(args.engine, args.pack, pack, x, report=bool(args.report),
                              reusable=getattr(args, "reusable_build", False))
    elapsed = time.perf_counter() - t0
    y = np.asarray(y).astype(np.int16)
    # Engines may return (1, rows) for a single vector: give Y the rank of X.
    rows = pack.output_rows
    want = (rows,) if x.ndim == 1 else (x.shape[0], rows)
    y = y.reshape(want) if y.size == int(np.prod(want)) else y
    if y.shape != want:
        raise RuntimeError(f"engine {args.engine} returned shape {y.shape}, expected {want}")
    out = dequantize(y, last.out_frac_bits).astype(np.float32) if args.dequantize else y
    save_npy(args.out, out)
    if args.report:
        extra = dict(extra or {})
        layers = [{"name": l.name, "rows": l.rows, "cols": l.cols, "nnz": l.nnz} for l in pack.layers]
        if pack.lstm:
            extra.setdefault("lstm", {k: v for k, v in pack.lstm.items() if k != "peep"})
        # A hardware engine adds per-layer cycles and per-PE counters: merge them in.
        for layer, hw in zip(layers, extra.pop("layers", [])):
            layer.update({k: v for k, v in hw.items() if k not in layer})
        write_json(args.report, {
            "engine": args.engine, "pack": str(args.pack), "pes": pack.pes,
            "batch": 1 if x.ndim == 1 else int(x.shape[0]),
            **extra,
            "layers": layers,
            "output": {"shape": list(y.shape), "dtype": "int16",
                       "sha256": hashlib.sha256(np.ascontiguousarray(y).astype("<i2").tobytes()).hexdigest(),
                       "sum": int(y.astype(np.int64).sum())},
            "time_s": elapsed,
        })
    print(f"ran {args.engine}: {x.shape} -> {y.shape} -> {args.out}")
    return 0
