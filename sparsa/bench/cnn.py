"""`sparsa bench cnn`: VGG16's conv layers and the digits CNN on the CNN engine (Verilator).

**VGG16** (13 conv layers, 3x3, pad 1, stride 1; Cin and the kernel as in VGG16). A cycle-exact
RTL simulation runs at 35-60K cycles/s, so the layers are cropped: H = W = 14 (VGG16's conv5
size) and Cout = 16, i.e. two groups of 8 lanes, so that the weights are reloaded per row
tile per group as at full Cout. conv1_1 (Cin 3) is cheap enough to run larger, at 56 x 56
with its full Cout of 64 (``CROP_OVERRIDES``): cropped to 14 x 14 x 16, a group's compute is
only 3 x 196 = 588 cycles against about 200 cycles of fetches, LOADs and pipeline fill per
group, which says little about the full-size layer (four 224-pixel rows of compute per group
and row tile, 2,688 cycles) and with two groups the last SAVE, which nothing can overlap,
is a tenth of the layer. Random seeded int8 weights and inputs; the shift is the smallest that brings the 99th
percentile of |acc| within 127 (at most ~1% of outputs saturate), ReLU on. Both datapaths of
the default ``CNNConfig()`` (8 lanes) run each layer; the outputs must equal
``cnn_golden.cnn_forward`` bit for bit.

Per layer: cycles (the whole one-layer job: every instruction's fetch, loads, compute, drain
and saves, and the final END), MACs = Ho*Wo*Cout*Cin*9 (nominal, the same for both
datapaths). The "direct" datapath runs these 3x3 layers on the window convolver (9
multipliers per lane, peak 9 x lanes MACs a cycle); Winograd on its one multiplier per lane.
MAC utilisation = MACs / (multipliers x cycles) with multipliers = 9 x lanes (convolver) or
lanes (Winograd: an *effective* figure that can exceed 1), multiplier utilisation =
multiplies issued / (multipliers x cycles) with multiplies = the engine's ``mac_cycles``
counter x multipliers, and GOP/s = 2 MACs / cycles x f at
f = 150 MHz, Angel-Eye's (Going Deeper) ZC706 clock, against its 187.8 GOP/s on VGG16's conv
layers. Target: direct datapath (convolver) >= 80% MAC utilisation (against 9 x lanes) on
every 3x3 layer.

**Digits CNN**: ``train_digits_cnn(seed=0)`` -> ``compress_cnn`` calibrated on the training
images -> compile -> a batch of test images on both datapaths: cycles per image, per-layer
cycles and utilisation, accuracy, bit-exact against the golden model.

**Whole networks** (:mod:`sparsa.bench.networks`): VGG16 and ResNet-18 at full size (224 x 224) built as
ONNX, imported, calibrated to int8 and compiled for 8, 16 and 32 lanes, run on the
instruction-level model (bit-exact against the golden model) with the cycle model's cycles.

Writes ``cnn.json`` and ``cnn.md``. ``--quick``: three layers at 4x4 with Cout 8, 4 images,
and a reduced VGG16 and ResNet-18.
"""

import json
import time
from pathlib import Path

import numpy as np

__all__ = ["run_bench", "VGG16_CONV", "ANGEL_EYE", "MHZ", "vgg_layer_graph"]

# name, Cin, Cout, H (= W) of VGG16's conv layers (224 x 224 input)
VGG16_CONV = [
    ("conv1_1", 3, 64, 224), ("conv1_2", 64, 64, 224),
    ("conv2_1", 64, 128, 112), ("conv2_2", 128, 128, 112),
    ("conv3_1", 128, 256, 56), ("conv3_2", 256, 256, 56), ("conv3_3", 256, 256, 56),
    ("conv4_1", 256, 512, 28), ("conv4_2", 512, 512, 28), ("conv4_3", 512, 512, 28),
    ("conv5_1", 512, 512, 14), ("conv5_2", 512, 512, 14), ("conv5_3", 512, 512, 14),
]
# Going Deeper / Angel-Eye (Qiu et al., FPGA 2016), from /work/shared/reference/papers.md.
# How many DSPs that design used is not in papers.md, so its per-multiplier figure is bounded
# instead of guessed: the XC7Z045 has 900 DSP48E1 slices (Xilinx DS190), one 16 x 16 multiply
# each a cycle, so it used at most 900 and did at least 187.8 / 900 GOP/s per multiplier.
# Fill in "multipliers" with a cited count to get the exact ratio.
ANGEL_EYE = {"board": "ZC706 (XC7Z045)", "mhz": 150, "conv_gops": 187.8, "overall_gops": 137.0,
             "multipliers": None, "device_dsps": 900}
MHZ = ANGEL_EYE["mhz"]
UTIL_TARGET = 0.80
FULL = {"hw": 14, "cout": 16, "images": 20, "layers": None}
QUICK = {"hw": 4, "cout": 8, "images": 4, "layers": ("conv1_1", "conv3_1", "conv5_1")}
# Layers run at a larger crop than FULL's (see the module docstring); not in --quick.
CROP_OVERRIDES = {"conv1_1": {"hw": 56, "cout": 64}}
SEED = 16


def vgg_layer_graph(cin, cout, hw, seed):
    """A one-conv integer graph (3x3, pad 1, ReLU) with random int8 weights, and its input.

    The shift is the smallest that brings the 99th percentile of |acc| (before the small bias)
    within 127. Returns
    ``(graph, x, info)``.
    """
    from sparsa.sw.cnn.golden import conv2d_int
    from sparsa.sw.model.graph import Graph
    rng = np.random.default_rng([SEED, seed])
    w = rng.integers(-127, 128, (cout, cin, 3, 3)).astype(np.int8)
    x = rng.integers(-128, 128, (cin, hw, hw)).astype(np.int8)
    acc = conv2d_int(x, w, np.zeros(cout, np.int64), 1, 1)
    shift = max(0, int(np.ceil(np.log2(max(np.percentile(np.abs(acc), 99), 1) / 127))))
    b = rng.integers(-(16 << shift), (16 << shift) + 1, cout).astype(np.int32)
    spec = {"format": "sparsa-model", "version": 1, "input": {"shape": [cin, hw, hw], "dtype": "int8"},
            "layers": [{"name": "conv", "op": "conv2d", "weight": "conv.weight", "bias": "conv.bias",
                        "stride": 1, "padding": 1, "relu": True, "shift": shift}]}
    return Graph(spec, {"conv.weight": w, "conv.bias": b}), x, {"shift": shift}


def _gops(macs, cycles):
    return 2 * macs / cycles * MHZ * 1e6 / 1e9


def _run(prog, x):
    """Run on Verilator: ``(run_program's result, wall seconds)``."""
    from sparsa.sim.cnn.runner import run_program
    t0 = time.perf_counter()
    res = run_program(prog, x, engine="verilator")
    return res, time.perf_counter() - t0


def _vgg_layer(name, cin, cout_vgg, hw_vgg, crop, cfg, idx):
    from sparsa.sw.cnn.compiler import compile_graph
    from sparsa.sw.cnn.golden import cnn_forward
    from sparsa.sw.cnn.winograd import multiplies
    hw, cout = min(hw_vgg, crop["hw"]), min(cout_vgg, crop["cout"])
    graph, x, info = vgg_layer_graph(cin, cout, hw, idx)
    ref = cnn_forward(graph, x)
    row = {"layer": name, "cin": cin, "cout": cout, "cout_vgg16": cout_vgg, "hw": hw, "hw_vgg16": hw_vgg,
           "macs": hw * hw * cout * cin * 9, "shift": info["shift"],
           "saturated": round(float(np.mean(ref == 127)), 4), "zeros": round(float(np.mean(ref == 0)), 4)}
    for dp in ("direct", "winograd"):
        prog = compile_graph(graph, cfg, dp)
        meta = prog.layers[0]
        res, dt = _run(prog, x)
        exact = bool(np.array_equal(res["y"], ref))
        if not exact:
            raise RuntimeError(f"bench cnn: {name} ({dp}) differs from the golden model "
                               f"({int(np.count_nonzero(res['y'] != ref))} of {ref.size} outputs)")
        cyc, macc = int(res["cycles"][0]), int(res["mac_cycles"][0])
        mp = meta["multipliers"]          # 9 x lanes on the window convolver, else lanes
        r = {"datapath": meta["datapath"], "multipliers": mp, "cycles": cyc,
             "layer_cycles": int(res["layer_cycles"][0, 0]),
             "mac_cycles": macc, "mac_cycles_compiler": int(meta["mac_cycles"]),
             "multiplies": macc * mp, "multiplies_model": multiplies(cin, cout, hw, hw, meta["datapath"]),
             "mac_util": round(row["macs"] / (mp * cyc), 4), "mult_util": round(macc / cyc, 4),
             "gops": round(_gops(row["macs"], cyc), 3), "gops_per_multiplier": round(_gops(row["macs"], cyc) / mp, 4),
             "row_tiles": meta["row_tiles"], "groups": meta["groups"], "instructions": meta["instr_end"] - meta["instr_start"],
             "bit_exact": exact, "sim_s": round(dt, 1)}
        if dp == "direct":
            r["meets_target"] = r["mac_util"] >= UTIL_TARGET
        row[dp] = r
        print(f"[bench cnn] {name:8s} {meta['datapath']:9s} ({mp} mult) Cin {cin:3d} Cout {cout:3d} {hw}x{hw}: {cyc:9,d} cycles, "
              f"MAC util {r['mac_util']:.3f}, mult util {r['mult_util']:.3f}, {r['gops']:.2f} GOP/s @{MHZ} MHz, "
              f"bit-exact, {dt:.1f} s", flush=True)
    return row


def _summary(rows, dp, P):
    macs = sum(r["macs"] for r in rows)
    cyc = sum(r[dp]["cycles"] for r in rows)
    mults = sum(r[dp]["multiplies"] for r in rows)
    peak = sum(r[dp]["multipliers"] * r[dp]["cycles"] for r in rows)     # multiplier-cycles
    mp = max(r[dp]["multipliers"] for r in rows)
    g = _gops(macs, cyc)
    s = {"macs": macs, "cycles": cyc, "multiplies": mults, "multipliers": mp,
         "mac_util": round(macs / peak, 4), "mult_util": round(mults / peak, 4), "gops": round(g, 3),
         "gops_per_multiplier": round(g / mp, 4),
         "multipliers_for_angel_eye_gops": int(np.ceil(ANGEL_EYE["conv_gops"] / (g / mp)))}
    if ANGEL_EYE["multipliers"]:
        s["per_multiplier_vs_angel_eye"] = round((g / mp) / (ANGEL_EYE["conv_gops"] / ANGEL_EYE["multipliers"]), 3)
    # Angel-Eye used at most the device's DSPs, so its per-multiplier rate is at least this,
    # and this ratio is an upper bound on ours / theirs.
    s["per_multiplier_vs_angel_eye_at_most"] = round((g / mp) / (ANGEL_EYE["conv_gops"] / ANGEL_EYE["device_dsps"]), 3)
    return s


def _digits(cfg, n_images):
    from sparsa.sw.cnn.compiler import compile_graph
    from sparsa.sw.cnn.compress import compress_cnn, quantize_input
    from sparsa.sw.cnn.golden import cnn_forward
    from sparsa.sw.model.digits import digits_images
    from sparsa.sw.model.digits_cnn import train_digits_cnn
    from sparsa.sw.model.graph import graph_forward
    print("[bench cnn] digits CNN: training (seed 0), compressing ...", flush=True)
    fgraph, float_acc = train_digits_cnn(seed=0)
    x_tr, x_te, _, y_te = digits_images(0)
    igraph = compress_cnn(fgraph, calib=x_tr)
    xq_all = quantize_input(igraph, x_te)
    gold_all = cnn_forward(igraph, xq_all)
    xq, y, gold = xq_all[:n_images], y_te[:n_images], gold_all[:n_images]
    out = {"images": n_images, "float_test_accuracy": round(float_acc, 4),
           "golden_test_accuracy": round(float(np.mean(np.argmax(gold_all, axis=1) == y_te)), 4),
           "test_images": int(len(y_te)),
           "float_accuracy": round(float(np.mean(np.argmax(graph_forward(fgraph, x_te[:n_images]), axis=1) == y)), 4),
           "golden_accuracy": round(float(np.mean(np.argmax(gold, axis=1) == y)), 4)}
    for dp in ("direct", "winograd"):
        prog = compile_graph(igraph, cfg, dp)
        res, dt = _run(prog, xq)
        exact = bool(np.array_equal(res["y"], gold))
        if not exact:
            raise RuntimeError(f"bench cnn: digits CNN ({dp}) differs from the golden model")
        lc = res["layer_cycles"].mean(axis=0)
        layers = []
        for m, c in zip(prog.layers, lc):
            layers.append({"layer": m["name"], "op": m["op"], "shape": m["shape"], "datapath": m["datapath"],
                           "multipliers": m["multipliers"],
                           "macs": int(m["macs"]), "mac_cycles": int(m["mac_cycles"]), "cycles": round(float(c), 1),
                           "mac_util": round(m["macs"] / (m["multipliers"] * c), 4) if m["macs"] else None,
                           "mult_util": round(m["mac_cycles"] / c, 4) if m["macs"] else None})
        cyc = float(np.mean(res["cycles"]))
        macs = sum(m["macs"] for m in prog.layers)
        # whole net against the engine's peak: 9 x lanes when a layer runs on the convolver
        mp = max(m["multipliers"] for m in prog.layers)
        mults = sum(m["mac_cycles"] * m["multipliers"] for m in prog.layers)
        out[dp] = {"cycles_per_image": round(cyc, 1), "overhead_cycles": round(float(np.mean(res["overhead_cycles"])), 1),
                   "multipliers": mp, "macs": macs, "mac_util": round(macs / (mp * cyc), 4),
                   "mult_util": round(mults / (mp * cyc), 4),
                   "mac_cycles_match_compiler": bool(np.all(res["mac_cycles"] == sum(m["mac_cycles"] for m in prog.layers))),
                   "us_per_image_at_150mhz": round(cyc / MHZ, 2), "images_per_s_at_150mhz": round(MHZ * 1e6 / cyc),
                   "accuracy": round(float(np.mean(np.argmax(res["y"], axis=1) == y)), 4),
                   "bit_exact": exact, "sim_s": round(dt, 1), "layers": layers}
        print(f"[bench cnn] digits {dp:8s}: {cyc:,.0f} cycles per image, accuracy {out[dp]['accuracy']:.3f} "
              f"on {n_images} images, bit-exact, {dt:.1f} s", flush=True)
    return out


def run_bench(out_dir, args):
    from sparsa.sim.cnn.runner import build_cnn
    from sparsa.sw.cnn.config import CNNConfig
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    quick = bool(getattr(args, "quick", False))
    crop = QUICK if quick else FULL
    cfg = CNNConfig()
    P = cfg.lanes
    t0 = time.perf_counter()
    build_cnn(cfg, "verilator", progress=True)
    t_build = time.perf_counter() - t0
    rows = []
    for idx, (name, cin, cout, hw) in enumerate(VGG16_CONV):
        if crop["layers"] is None or name in crop["layers"]:
            layer_crop = crop if quick else {**crop, **CROP_OVERRIDES.get(name, {})}
            rows.append(_vgg_layer(name, cin, cout, hw, layer_crop, cfg, idx))
    digits = _digits(cfg, crop["images"])
    from sparsa.bench.networks import bench_networks
    networks = bench_networks(quick)
    direct = [r["direct"] for r in rows]
    result = {
        "config": {"lanes": P, "ibuf_bytes": cfg.ibuf_bytes, "wbuf_words": cfg.wbuf_words,
                   "obuf_depth": cfg.obuf_depth, "winograd": cfg.winograd, "convolver": cfg.convolver,
                   "psum_depth": cfg.psum_depth},
        "quick": quick, "mhz": MHZ, "angel_eye": ANGEL_EYE, "util_target": UTIL_TARGET,
        "crop": {"hw": crop["hw"], "cout": crop["cout"], "layers": list(crop["layers"] or [r["layer"] for r in rows]),
                 "overrides": {} if quick else CROP_OVERRIDES},
        "vgg16": rows,
        "vgg16_total": {"direct": _summary(rows, "direct", P), "winograd": _summary(rows, "winograd", P)},
        "digits": digits,
        "networks": networks,
        "bit_exact": all(r[dp]["bit_exact"] for r in rows for dp in ("direct", "winograd"))
        and digits["direct"]["bit_exact"] and digits["winograd"]["bit_exact"],
        "targets": {"direct_mac_util_ge_80pct_all_layers": all(r["meets_target"] for r in direct),
                    "layers_meeting": sum(r["meets_target"] for r in direct), "layers": len(direct)},
        "build_s": round(t_build, 1),
    }
    (out / "cnn.json").write_text(json.dumps(result, indent=2) + "\n")
    md = _markdown(result)
    (out / "cnn.md").write_text(md)
    print(md)
    return result


def _markdown(r):
    P, f = r["config"]["lanes"], r["mhz"]
    ae = r["angel_eye"]
    crop = r["crop"]
    lines = [f"# sparsa CNN benchmark (CNN engine, {P} lanes, Verilator)", "",
             f"direct = the 3x3 window convolver ({9 * P} multipliers: 9 per lane); Winograd = "
             f"F(2x2,3x3) on one multiplier per lane ({P}).", "",
             f"VGG16 conv layers (3x3, pad 1, stride 1), cropped to H = W = {crop['hw']} and Cout = "
             f"{crop['cout']} ({crop['cout'] // P} group{'s' if crop['cout'] > P else ''} of {P} lanes)"
             + "".join(f"; {n} at {o['hw']}x{o['hw']}, Cout {o['cout']}" for n, o in crop.get("overrides", {}).items())
             + "; Cin as in VGG16. "
             f"Random seeded int8 "
             f"data. Cycles are the whole one-layer job (fetch, loads, compute, drain, saves). "
             f"MAC util = MACs / (multipliers x cycles): {9 * P} for direct, {P} for Winograd, whose figure is "
             f"effective (it does 16 multiplies per 36 MACs); "
             f"mult util = multiplies issued / (multipliers x cycles). GOP/s = 2 x MACs / cycles x {f} MHz "
             f"(Angel-Eye's ZC706 clock; its 187.8 GOP/s is for the full-size layers in 16-bit fixed point). "
             f"Target: direct MAC util >= {r['util_target']:.0%}.", "",
             "| layer | Cin | Cout run (VGG16) | HxW run (VGG16) | MACs | direct cycles | direct MAC util | "
             ">= 80% | Winograd cycles | Winograd MAC util (eff.) | Winograd mult util | multiplies direct / Winograd | "
             f"GOP/s direct / Winograd @{f} MHz | bit-exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in r["vgg16"]:
        d, w = x["direct"], x["winograd"]
        wdp = "" if w["datapath"] == "winograd" else f" ({w['datapath']})"
        lines.append(
            f"| {x['layer']} | {x['cin']} | {x['cout']} ({x['cout_vgg16']}) | {x['hw']}x{x['hw']} "
            f"({x['hw_vgg16']}x{x['hw_vgg16']}) | {x['macs']:,} | {d['cycles']:,} | {d['mac_util']:.3f} | "
            f"{'yes' if d['meets_target'] else 'NO'} | {w['cycles']:,}{wdp} | {w['mac_util']:.3f} | {w['mult_util']:.3f} | "
            f"{d['multiplies']:,} / {w['multiplies']:,} | {d['gops']:.2f} / {w['gops']:.2f} | "
            f"{'yes' if d['bit_exact'] and w['bit_exact'] else 'NO'} |")
    t = r["vgg16_total"]
    lines += ["", f"## VGG16 (cropped) totals vs Angel-Eye ({ae['board']}, {ae['mhz']} MHz)", "",
              "| | direct | Winograd | Angel-Eye |", "|---|---|---|---|"]
    d, w = t["direct"], t["winograd"]
    ae_per = (f"{ae['conv_gops'] / ae['multipliers']:.3f}" if ae["multipliers"] else
              f">= {ae['conv_gops'] / ae['device_dsps']:.3f} (187.8 GOP/s on at most the XC7Z045's {ae['device_dsps']} DSPs)")
    rows = [("cycles", f"{d['cycles']:,}", f"{w['cycles']:,}", ""),
            ("MAC util (Winograd: effective)", f"{d['mac_util']:.3f}", f"{w['mac_util']:.3f}", ""),
            ("multiplier util", f"{d['mult_util']:.3f}", f"{w['mult_util']:.3f}", ""),
            ("multiplies", f"{d['multiplies']:,}", f"{w['multiplies']:,}", ""),
            (f"GOP/s @{f} MHz", f"{d['gops']:.2f}", f"{w['gops']:.2f}", f"{ae['conv_gops']} (VGG16 conv layers)"),
            ("GOP/s per multiplier", f"{d['gops_per_multiplier']:.3f}", f"{w['gops_per_multiplier']:.3f}", ae_per),
            ("multipliers for 187.8 GOP/s at this rate", f"{d['multipliers_for_angel_eye_gops']:,}",
             f"{w['multipliers_for_angel_eye_gops']:,}", "")]
    if "per_multiplier_vs_angel_eye" in d:
        rows.append(("GOP/s per multiplier / Angel-Eye's", f"{d['per_multiplier_vs_angel_eye']:.3f}",
                     f"{w['per_multiplier_vs_angel_eye']:.3f}", "1"))
    else:
        rows.append(("GOP/s per multiplier / Angel-Eye's (upper bound)", f"<= {d['per_multiplier_vs_angel_eye_at_most']:.3f}",
                     f"<= {w['per_multiplier_vs_angel_eye_at_most']:.3f}", "1"))
    lines += [f"| {a} | {b} | {c} | {e} |" for a, b, c, e in rows]
    tg = r["targets"]
    lines += ["", f"Direct MAC util >= {r['util_target']:.0%}: {tg['layers_meeting']} of {tg['layers']} layers "
              f"({'met' if tg['direct_mac_util_ge_80pct_all_layers'] else 'NOT met'} on every layer)."]

    g = r["digits"]
    lines += ["", f"## Digits CNN end to end ({g['images']} test images, batch on Verilator)", "",
              "| | direct | Winograd |", "|---|---|---|"]
    d, w = g["direct"], g["winograd"]
    rows = [("cycles per image", f"{d['cycles_per_image']:,.0f}", f"{w['cycles_per_image']:,.0f}"),
            (f"us per image @{f} MHz", f"{d['us_per_image_at_150mhz']}", f"{w['us_per_image_at_150mhz']}"),
            ("MAC util (whole net)", f"{d['mac_util']:.3f}", f"{w['mac_util']:.3f}"),
            ("multiplier util (whole net)", f"{d['mult_util']:.3f}", f"{w['mult_util']:.3f}"),
            ("accuracy (engine)", f"{d['accuracy']:.3f}", f"{w['accuracy']:.3f}"),
            ("accuracy (golden int8 / float, same images)", f"{g['golden_accuracy']:.3f} / {g['float_accuracy']:.3f}", ""),
            (f"accuracy (golden int8 / float, all {g['test_images']} test images)",
             f"{g['golden_test_accuracy']:.3f} / {g['float_test_accuracy']:.3f}", ""),
            ("bit-exact vs golden", "yes" if d["bit_exact"] else "NO", "yes" if w["bit_exact"] else "NO")]
    lines += [f"| {a} | {b} | {c} |" for a, b, c in rows]
    lines += ["", "MAC util per layer against that layer's multipliers (9 x lanes on the convolver, lanes "
              "otherwise); whole net against the engine's peak (9 x lanes).", "",
              "| layer | op | output shape | MACs | direct cycles | direct MAC util | Winograd datapath | "
              "Winograd cycles | Winograd MAC util | Winograd mult util |", "|---|---|---|---|---|---|---|---|---|---|"]
    fmt = lambda v: "" if v is None else f"{v:.3f}"
    for a, b in zip(d["layers"], w["layers"]):
        lines.append(f"| {a['layer']} | {a['op']} ({a['datapath'] or '-'}) | {'x'.join(map(str, a['shape']))} | {a['macs']:,} | "
                     f"{a['cycles']:,.0f} | {fmt(a['mac_util'])} | {b['datapath'] or ''} | {b['cycles']:,.0f} | "
                     f"{fmt(b['mac_util'])} | {fmt(b['mult_util'])} |")
    lines += ["", f"All outputs bit-exact vs golden: {'yes' if r['bit_exact'] else 'NO'}."]
    if r.get("networks"):
        from sparsa.bench.networks import network_markdown
        lines += ["", network_markdown(r["networks"])]
    return "\n".join(lines) + "\n"
