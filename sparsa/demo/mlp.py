"""End-to-end demo: train, deep-compress and run an MLP on the 8x8 digits (golden model + generated Verilog),
then a small digits CNN in int8 on the generated CNN engine (:mod:`sparsa.demo.cnn`, OUT/cnn).

Trains a ReLU MLP on scikit-learn's bundled digits (offline), prunes it to 10% density with
retraining (ESE load balance over --pes PEs), shares weights in 4 bits with centroid tuning,
picks fixed-point formats from the training split, then classifies the held-out split with
the bit-exact golden EIE model. Writes OUT/report.json, OUT/model.npz (sparsa-compressed),
OUT/float.npz (the float model), OUT/calib.npy and, when the packer is available, OUT/pack.
"""

import time
from pathlib import Path

import numpy as np

from sparsa.sw.compress.mlp import save_compressed, to_fixed_point
from sparsa.sw.compress.report import compression_report
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import save_npy, save_npz, write_json
from sparsa.sw.fixedpoint import quantize
from sparsa.sw.eie.golden import GoldenLayer, run_layers
from sparsa.sw.compress.retrain import RetrainConfig, accuracy, deep_compress_mlp
from sparsa.sw.model.digits import load_data

__all__ = ["run_demo", "golden_predict"]


def golden_predict(model, x):
    """Classes predicted by the golden EIE model: quantized input, int16 logits, argmax.

    The layers are built directly from the compressed arrays (``codebook[index]``, bias,
    shift, ReLU), exactly what the hardware computes.
    """
    layers = [GoldenLayer.from_dense(layer.codebook.astype(np.int64)[layer.index], layer.bias,
                                     layer.shift, layer.relu) for layer in model.layers]
    logits = run_layers(layers, quantize(x, model.input_frac_bits))
    return np.argmax(logits, axis=1)


def _config(args):
    if args.quick:
        return RetrainConfig(hidden=(64,), float_epochs=8, schedule=(0.3, args.density), prune_epochs=3,
                             share_epochs=3, bits=args.bits, pes=args.pes, seed=args.seed)
    return RetrainConfig(hidden=(128,), float_epochs=60, schedule=(0.5, 0.3, 0.2, args.density),
                         prune_epochs=25, share_epochs=25, bits=args.bits, pes=args.pes, seed=args.seed)


def _check(args):
    if args.pes < 1:
        raise user_error(None, "--pes", "an integer >= 1", args.pes)
    if not 0.0 < args.density <= 1.0:
        raise user_error(None, "--density", "a fraction in (0, 1]", args.density)
    if not 1 <= args.bits <= 4:
        raise user_error(None, "--bits", "an integer in 1..4", args.bits)


def run_demo(args, *, progress=True):
    """Run the whole demo; returns the report dict (also written to OUT/report.json)."""
    _check(args)
    out = Path(args.out)
    t = {}
    t0 = time.perf_counter()
    x_tr, x_te, y_tr, y_te = load_data(args.seed)
    cfg = _config(args)
    res = deep_compress_mlp(x_tr, y_tr, cfg, progress=progress)
    t["train_prune_share_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    model = to_fixed_point(res.layers, res.shared, cfg.bits, calib=x_tr, source="sklearn digits MLP")
    pred = golden_predict(model, x_te)
    t["fixed_point_and_golden_s"] = time.perf_counter() - t0
    comp = compression_report(model, res.float_layers, args.pes)
    report = {
        "dataset": "sklearn digits 8x8 (1797 samples), 80/20 stratified split",
        "seed": args.seed, "hidden": list(cfg.hidden), "pes": args.pes, "bits": cfg.bits,
        "float_accuracy": accuracy(res.float_layers, x_te, y_te),
        "shared_float_accuracy": accuracy(res.layers, x_te, y_te),
        "compressed_accuracy": float(np.mean(pred == y_te)),
        "weight_density": comp["total"]["density"],
        "compression_ratio": comp["total"]["compression_ratio"],
        "compression_ratio_huffman": comp["total"]["compression_ratio_huffman"],
        "test_samples": int(y_te.size),
        "history": res.history, "compression": comp, "timings_s": t,
    }
    save_npz(out / "float.npz", {f"{l.name}.{k}": getattr(l, k) for l in res.float_layers for k in ("weight", "bias")})
    save_npy(out / "calib.npy", x_tr)
    save_compressed(out / "model.npz", model)
    report["pack"] = _write_pack(out / "model.npz", out / "pack", args.pes)
    if getattr(args, "engine", "golden") != "golden" and report["pack"]:
        t0 = time.perf_counter()
        report.update(_run_hardware(report["pack"], model, x_te, y_te, args.engine, out / "run.json"))
        t["hardware_sim_s"] = time.perf_counter() - t0
    if report["pack"]:
        from sparsa.report import build_report, write_report
        html_path, _ = write_report(build_report(report["pack"], run=report.get("hardware_run_report")),
                                    out / "report.html")
        report["html_report"] = str(html_path)
    t0 = time.perf_counter()
    from sparsa.demo.cnn import run_cnn_demo
    report["cnn"] = run_cnn_demo(out / "cnn", seed=args.seed, engine=getattr(args, "engine", "golden"),
                                 quick=args.quick)
    t["cnn_demo_s"] = time.perf_counter() - t0
    write_json(out / "report.json", report)
    return report


def _run_hardware(pack_dir, model, x_te, y_te, engine, run_json):
    """The held-out split on the generated Verilog; logits must equal the golden model's.
    The run report (cycles, per-PE counters, ideal cycles) goes to ``run_json``."""
    from sparsa.sim.eie import runner as eie_runner
    from sparsa.sw.eie.pack_dir import load_pack
    pack = load_pack(pack_dir)
    xq = quantize(x_te, model.input_frac_bits)
    y, rep = eie_runner.run(pack_dir, pack, xq, engine=engine)
    hw = np.atleast_2d(y)
    gold = pack.run_golden(xq)
    write_json(run_json, rep)
    return {
        "hardware_engine": engine,
        "hardware_accuracy": float(np.mean(np.argmax(hw, axis=1) == y_te)),
        "hardware_mismatches": int(np.count_nonzero(np.any(hw != gold, axis=1))),
        "cycles_per_inference": float(rep["cycles_per_inference"]),
        "hardware_build_s": round(rep["build_s"], 1),
        "hardware_run_report": str(run_json),
    }


def _write_pack(model_path, pack_dir, pes):
    """Pack the compressed model for the EIE engine; returns the pack directory (str)."""
    from sparsa.sw.eie.pack import pack_compressed
    from sparsa.sw.eie.pack_dir import write_pack
    write_pack(pack_compressed(model_path, pes), pack_dir)
    return str(pack_dir)
