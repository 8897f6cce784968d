"""Whole real networks as ONNX files, built with ``onnx.helper`` (random weights, nothing
downloaded), and their run on the CNN engine: import, int8 calibration, compile, the
instruction-level model (bit-exact against the golden model) and the cycle model.

:func:`vgg16_onnx` writes VGG16 (Simonyan and Zisserman, configuration D) exactly: 13 3x3
convolutions (pad 1) with ReLU in five blocks of 64, 128, 256, 512, 512 channels, each block
ended by a 2x2 max pool (stride 2), then fc6 (25088 -> 4096), fc7 (4096 -> 4096), each with
ReLU and Dropout, and fc8 (4096 -> 1000). ``size`` and ``width`` give the reduced versions the
RTL tests run (smaller input, fewer channels, the same operators); ``fc`` the classifier
widths. Weights are He-initialised (seeded) so that activations keep their scale through the
stack, as in a trained network.

:func:`resnet18_onnx` writes ResNet-18 as torchvision builds it and PyTorch exports it (Conv +
BatchNormalization + Relu, a padded max pool, basic blocks with Add + Relu, GlobalAveragePool,
Flatten, Gemm); the importer folds the BatchNormalizations into the convolutions and the 7x7
global average pool into the classifier.

:func:`~sparsa.bench.yolo.yolov3_tiny_onnx` (in :mod:`sparsa.bench.yolo`) writes YOLOv3-tiny
as the PyTorch port exports it (LeakyRelu, a zero Pad before the stride-1 max pool, Resize,
Concat, two output heads, which the importer joins into one flattened output).

:func:`run_network` takes such a file through the same path as ``sparsa import`` /
``compress`` / ``pack`` / ``run --engine golden``, and gives cycles from
:mod:`sparsa.sw.cnn.timing` (the cycle model checked against the RTL's counters).
"""

import dataclasses
import time

import numpy as np

from sparsa.bench.yolo import yolov3_tiny_onnx
from sparsa.sw.cnn.timing import REPORT_MHZ as CLOCKS_MHZ

__all__ = ["VGG16_BLOCKS", "vgg16_layers", "vgg16_counts", "vgg16_onnx", "resnet18_counts", "resnet18_onnx", "run_network", "network_row",
           "network_markdown"]

# (convolutions, channels) per block of VGG16 (configuration D)
VGG16_BLOCKS = ((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))


def _he(rng, shape, fan_in):
    return (rng.standard_normal(shape) * np.sqrt(2.0 / fan_in)).astype(np.float32)


def vgg16_layers(*, size=224, width=1.0, fc=(4096, 4096), classes=1000):
    """VGG16's layers for a ``size`` x ``size`` RGB input, channels scaled by ``width``:
    ``("conv", name, cin, cout, hw)`` (3x3, pad 1, ReLU, output hw x hw), ``("pool", name, hw)``
    (2x2 max, stride 2, output hw x hw) and ``("fc", name, n_in, n_out, relu)``."""
    out, c, hw = [], 3, size
    for b, (convs, ch) in enumerate(VGG16_BLOCKS, 1):
        ch = max(1, int(round(ch * width)))
        for k in range(1, convs + 1):
            out.append(("conv", f"conv{b}_{k}", c, ch, hw))
            c = ch
        hw //= 2
        out.append(("pool", f"pool{b}", hw))
    f, widths = c * hw * hw, list(fc) + [classes]
    for i, n in enumerate(widths):
        out.append(("fc", f"fc{6 + i}", f, n, i < len(widths) - 1))
        f = n
    return out


def vgg16_counts(**kw):
    """``(parameters, MACs)`` of :func:`vgg16_layers` (same keywords)."""
    params = macs = 0
    for layer in vgg16_layers(**kw):
        if layer[0] == "conv":
            _, _, cin, cout, hw = layer
            params += cout * cin * 9 + cout
            macs += cout * cin * 9 * hw * hw
        elif layer[0] == "fc":
            params += layer[2] * layer[3] + layer[3]
            macs += layer[2] * layer[3]
    return params, macs


def vgg16_onnx(path, *, size=224, width=1.0, fc=(4096, 4096), classes=1000, seed=0):
    """Write VGG16 (see :func:`vgg16_layers`) to ``path`` as ONNX (opset 13): Conv + Relu,
    MaxPool, Flatten, Gemm + Relu + Dropout, Gemm, as a PyTorch export writes it.

    Returns ``{"gop": giga-operations (2 per MAC) per inference, "params": weights}``.
    """
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    nodes, inits = [], []

    def init(name, arr):
        inits.append(numpy_helper.from_array(arr, name))

    x = "input"
    for layer in vgg16_layers(size=size, width=width, fc=fc, classes=classes):
        kind, n = layer[:2]
        if kind == "conv":
            cin, cout = layer[2:4]
            init(n + ".w", _he(rng, (cout, cin, 3, 3), cin * 9))
            init(n + ".b", np.zeros(cout, np.float32))
            nodes += [helper.make_node("Conv", [x, n + ".w", n + ".b"], [n], name=n, kernel_shape=[3, 3],
                                       pads=[1, 1, 1, 1]),
                      helper.make_node("Relu", [n], [n + ".relu"], name=n + "_relu")]
            x = n + ".relu"
        elif kind == "pool":
            nodes.append(helper.make_node("MaxPool", [x], [n], name=n, kernel_shape=[2, 2], strides=[2, 2]))
            x = n
        else:
            f, out, relu = layer[2:]
            if x.startswith("pool"):
                nodes.append(helper.make_node("Flatten", [x], ["flat"], name="flatten", axis=1))
                x = "flat"
            init(n + ".w", _he(rng, (out, f), f))
            init(n + ".b", np.zeros(out, np.float32))
            nodes.append(helper.make_node("Gemm", [x, n + ".w", n + ".b"], [n], name=n, transB=1))
            x = n
            if relu:
                nodes += [helper.make_node("Relu", [n], [n + ".relu"], name=n + "_relu"),
                          helper.make_node("Dropout", [n + ".relu"], [n + ".drop"], name=n + "_drop")]
                x = n + ".drop"
    graph = helper.make_graph(nodes, "vgg16", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                             [1, 3, size, size])],
                              [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, classes])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    params, macs = vgg16_counts(size=size, width=width, fc=fc, classes=classes)
    return {"gop": 2 * macs / 1e9, "params": params}


RESNET18_STAGES = ((64, 1), (128, 2), (256, 2), (512, 2))   # (channels, first block's stride)


def resnet18_counts(*, size=224, width=1.0, classes=1000):
    """``(parameters, MACs)`` of :func:`resnet18_onnx` (parameters as PyTorch counts them:
    convolution and classifier weights and biases, BatchNorm scale and shift)."""
    params = macs = 0
    ch = lambda c: max(1, int(round(c * width)))

    def conv(cin, cout, k, hw):
        nonlocal params, macs
        params += cout * cin * k * k + 2 * cout          # + BatchNorm
        macs += cout * cin * k * k * hw * hw

    hw = (size + 6 - 7) // 2 + 1
    conv(3, ch(64), 7, hw)
    hw = (hw + 2 - 3) // 2 + 1
    c = ch(64)
    for cs, stride in RESNET18_STAGES:
        for blk in range(2):
            s = stride if blk == 0 else 1
            out_hw = (hw + 2 - 3) // s + 1
            conv(c, ch(cs), 3, out_hw)
            conv(ch(cs), ch(cs), 3, out_hw)
            if s != 1 or c != ch(cs):
                conv(c, ch(cs), 1, out_hw)
            c, hw = ch(cs), out_hw
    params += c * classes + classes
    macs += c * classes
    return params, macs


def resnet18_onnx(path, *, size=224, width=1.0, classes=1000, seed=0):
    """Write ResNet-18 (He et al., as torchvision builds it) to ``path`` as ONNX (opset 13), as a
    PyTorch export writes it: Conv (no bias) + BatchNormalization (random statistics) + Relu;
    a 3x3 max pool, stride 2, pad 1; four stages of two basic blocks (64, 128, 256, 512
    channels, scaled by ``width``; the first block of stages 2-4 has stride 2 and a 1x1
    convolution + BatchNormalization on its shortcut); Add + Relu; GlobalAveragePool,
    Flatten, Gemm. Returns ``{"gop", "params"}`` as :func:`vgg16_onnx`."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    ch = lambda c: max(1, int(round(c * width)))

    def init(name, arr):
        inits.append(numpy_helper.from_array(np.asarray(arr, np.float32), name))

    def conv_bn(x, name, cin, cout, k, stride, relu):
        init(name + ".w", _he(rng, (cout, cin, k, k), cin * k * k))
        nodes.append(helper.make_node("Conv", [x, name + ".w"], [name], name=name, kernel_shape=[k, k],
                                      strides=[stride, stride], pads=[k // 2] * 4))
        bn = [name + ".bn." + f for f in ("scale", "bias", "mean", "var")]
        for f, arr in zip(bn, (rng.uniform(0.5, 1.5, cout), rng.normal(0, 0.1, cout),
                               rng.normal(0, 0.1, cout), rng.uniform(0.5, 1.5, cout))):
            init(f, arr)
        nodes.append(helper.make_node("BatchNormalization", [name] + bn, [name + ".bn"], name=name + "_bn"))
        if not relu:
            return name + ".bn"
        nodes.append(helper.make_node("Relu", [name + ".bn"], [name + ".relu"], name=name + "_relu"))
        return name + ".relu"

    x = conv_bn("input", "conv1", 3, ch(64), 7, 2, True)
    nodes.append(helper.make_node("MaxPool", [x], ["maxpool"], name="maxpool", kernel_shape=[3, 3],
                                  strides=[2, 2], pads=[1, 1, 1, 1]))
    x, c = "maxpool", ch(64)
    for st, (cs, stride) in enumerate(RESNET18_STAGES, 1):
        for blk in range(2):
            s, n = (stride if blk == 0 else 1), f"layer{st}_{blk}"
            y = conv_bn(x, n + "_conv1", c, ch(cs), 3, s, True)
            y = conv_bn(y, n + "_conv2", ch(cs), ch(cs), 3, 1, False)
            short = conv_bn(x, n + "_down", c, ch(cs), 1, s, False) if s != 1 or c != ch(cs) else x
            nodes += [helper.make_node("Add", [y, short], [n + "_add"], name=n + "_add"),
                      helper.make_node("Relu", [n + "_add"], [n + "_out"], name=n + "_relu")]
            x, c = n + "_out", ch(cs)
    init("fc.w", _he(rng, (classes, c), c))
    init("fc.b", rng.normal(0, 0.01, classes))
    nodes += [helper.make_node("GlobalAveragePool", [x], ["gap"], name="avgpool"),
              helper.make_node("Flatten", ["gap"], ["flat"], name="flatten", axis=1),
              helper.make_node("Gemm", ["flat", "fc.w", "fc.b"], ["fc"], name="fc", transB=1)]
    graph = helper.make_graph(nodes, "resnet18", [helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                                                                [1, 3, size, size])],
                              [helper.make_tensor_value_info("fc", TensorProto.FLOAT, [1, classes])], inits)
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]), str(path))
    params, macs = resnet18_counts(size=size, width=width, classes=classes)
    return {"gop": 2 * macs / 1e9, "params": params}


def load_cycles(prog, tm):
    """Per layer of ``prog``, the cycles its LOAD instructions hold the engine (from the
    retirement of the instruction before each LOAD to its own, fetch included; a LOAD beside
    a compute, flag BG, holds it for its fetch only), as the cycle model ``tm`` counts them."""
    from sparsa.sw.cnn.isa import Op, decode_program
    ops = [f["op"] for f in decode_program(prog.program)]
    at = lambda i: tm.retire[i - 1] if i > 0 else 0
    return [sum(at(i + 1) - at(i) for i in range(m["instr_start"], m["instr_end"]) if ops[i] == Op.LOAD)
            for m in prog.layers]


def run_network(onnx_path, cfg, *, calib=2, seed=0, datapath="direct", check=True, log=None):
    """Import ``onnx_path``, calibrate int8 on ``calib`` random inputs (uniform in [-1, 1),
    seeded), compile for ``cfg`` and run one random input on the instruction-level model.

    Returns a dict: ``program`` (the compiled :class:`~sparsa.sw.cnn.compiler.Program`),
    ``x`` (the int8 input), ``y`` (the engine's output), ``cycles`` (cycle model),
    ``layer_cycles``, ``mac_cycles`` (the engine's counter), ``macs``, ``dram_read`` and
    ``dram_write`` (bytes per inference, weights included), ``seconds`` per stage. With
    ``check`` the output is compared with the golden model (``cnn_forward``) and a mismatch
    raises ``AssertionError``.
    """
    from sparsa.sw.cnn.compiler import compile_graph
    from sparsa.sw.cnn.compress import compress_cnn, quantize_input
    from sparsa.sw.cnn.golden import cnn_forward
    from sparsa.sw.cnn.timing import program_cycles
    from sparsa.sw.model.importer import import_model

    say = log or (lambda msg: None)
    secs = {}
    t = time.perf_counter()
    model = import_model(onnx_path)
    secs["import"] = time.perf_counter() - t
    rng = np.random.default_rng(seed)
    shape = model.graph.input_shape
    t = time.perf_counter()
    say(f"calibrating on {calib} inputs")
    g = compress_cnn(model.graph, rng.uniform(-1, 1, (calib,) + shape), where=str(onnx_path))
    secs["calibrate"] = time.perf_counter() - t
    t = time.perf_counter()
    prog = compile_graph(g, cfg, datapath, where=str(onnx_path))
    secs["compile"] = time.perf_counter() - t
    x = quantize_input(g, rng.uniform(-1, 1, shape))
    t = time.perf_counter()
    say(f"running {prog.n_instructions:,} instructions on the instruction-level model")
    y, stats = prog.run(x)
    secs["model"] = time.perf_counter() - t
    if check:
        t = time.perf_counter()
        gold = cnn_forward(g, x)
        secs["golden"] = time.perf_counter() - t
        if not np.array_equal(y, gold):
            raise AssertionError(f"{onnx_path}: the instruction-level model differs from the golden model "
                                 f"in {int((y != gold).sum())} of {y.size} outputs")
    tm = program_cycles(prog.program)
    return {"program": prog, "graph": g, "x": x, "y": y, "cycles": tm.cycles,
            "layer_cycles": tm.layer_cycles(prog.layers), "layer_load_cycles": load_cycles(prog, tm),
            "mac_cycles": stats.mac_cycles, "macs": sum(m["macs"] for m in prog.layers),
            "dram_read": sum(m["dram_read"] for m in prog.layers),
            "dram_write": sum(m["dram_write"] for m in prog.layers), "seconds": secs}


# The seed's Aristotle chart (papers.md): VGG16 on the Zynq-7020 in about 360 ms at 200 MHz
# (~86 GOP/s, Angel-Eye class); the chart's exact bars are garbled in the talk's text.
SEED_VGG16 = {"ms": 360, "mhz": 200, "device": "Zynq-7020", "note": "seed's Aristotle chart, Angel-Eye class"}
# Xilinx's DPU (PG338 / UG1354, papers.md): ResNet-18 at 32-64% of the DPU's peak
DPU_RESNET18 = "Xilinx DPU: 32-64% of its peak (MAC util)"
# The seed's chart has a YOLO Tiny bar (an older YOLO than v3-tiny) whose number is garbled
SEED_YOLO = "seed's YOLO Tiny bar: number garbled in the talk's text"


def network_row(name, onnx_path, cfg, gop, **kw):
    """One whole-network row of ``sparsa bench cnn``: cycles (cycle model), ms at 200 and
    400 MHz, MAC utilisation against the engine's peak (9 multipliers a lane on the window
    convolver), DRAM bytes per inference, and per layer the same figures."""
    r = run_network(onnx_path, cfg, **kw)
    prog = r["program"]
    mult = cfg.peak_multipliers
    layers = [{"layer": m["name"], "op": m["op"], "datapath": m["datapath"], "shape": m["shape"],
               "macs": int(m["macs"]), "cycles": int(c), "dram_read": int(m["dram_read"]),
               "dram_write": int(m["dram_write"]), "weight_bytes": int(m["weight_bytes"]), "load_cycles": int(lc)}
              for m, c, lc in zip(prog.layers, r["layer_cycles"], r["layer_load_cycles"])]
    # LOADs not beside a compute run in turn with it; were each layer's LOADs hidden behind
    # the rest of its work (or the rest behind them), it would take max(LOADs, the rest):
    # a bound on what background LOADs could give, not a model of any hardware.
    overlap = sum(max(l["load_cycles"], l["cycles"] - l["load_cycles"]) for l in layers)
    overlap += int(r["cycles"]) - sum(l["cycles"] for l in layers)       # outside every layer
    return {"network": name, "gop": round(gop, 3), "lanes": cfg.lanes, "multipliers": mult,
            "cycles": int(r["cycles"]), **{f"ms_at_{f}mhz": round(r["cycles"] / (f * 1e3), 1) for f in CLOCKS_MHZ},
            "mac_util": round(r["macs"] / (mult * r["cycles"]), 4), "macs": int(r["macs"]),
            "dram_read": int(r["dram_read"]), "dram_write": int(r["dram_write"]),
            "instructions": prog.n_instructions, "bit_exact_vs_golden": True,
            "load_cycles": sum(l["load_cycles"] for l in layers), "cycles_if_loads_overlapped": overlap,
            "seconds": {k: round(v, 1) for k, v in r["seconds"].items()}, "layers": layers}


def network_markdown(rows):
    """The whole-network table (and each network's per-layer split) as Markdown."""
    lines = ["## Whole networks (instruction-level model, cycle model)", "",
             "Each network is built as ONNX with its exact architecture (random He-initialised "
             "weights), imported, calibrated to int8 on random inputs, compiled and run on the "
             "instruction-level model, bit-exact against the golden model. Cycles come from the "
             "cycle model (`sparsa.sw.cnn.timing`), checked against the RTL's counters on reduced "
             "networks, with a zero-wait-state DRAM: a real DDR adds its latency once per read row "
             "and written burst. MAC util = MACs / (multipliers x cycles), multipliers = 9 x lanes (the window "
             "convolver). ms at 200 MHz (Zynq-7020-sized) and 400 MHz (ZU2CG, the seed's Aristotle "
             "V2) are cycles / clock: sparsa has built neither at that clock.", "",
             "| network | GOP | engine (multipliers) | cycles | ms @200 MHz | ms @400 MHz | MAC util | "
             "DRAM MB read / written | seed's figure |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        seed = (f"{SEED_VGG16['ms']} ms @{SEED_VGG16['mhz']} MHz ({SEED_VGG16['device']}, {SEED_VGG16['note']})"
                if r["network"] == "VGG16" else DPU_RESNET18 if r["network"] == "ResNet-18"
                else SEED_YOLO if r["network"] == "YOLOv3-tiny" else "")
        lines.append(f"| {r['network']} | {r['gop']:.2f} | {r.get('engine', r['lanes'])} ({r['multipliers']}) | "
                     f"{r['cycles']:,} | "
                     f"{r['ms_at_200mhz']:,.1f} | {r['ms_at_400mhz']:,.1f} | {r['mac_util']:.3f} | "
                     f"{r['dram_read'] / 1e6:,.1f} / {r['dram_write'] / 1e6:,.1f} | {seed} |")
    # per layer: the Zynq-7020-sized engine (the last of ENGINES) only; every row's are in the JSON
    for r in rows:
        if r.get("engine", ENGINES[-1][0]) != ENGINES[-1][0]:
            continue
        lines += ["", f"### {r['network']}, {r.get('engine', r['lanes'])}: per layer", ""]
        if "load_cycles" in r:
            b = r["cycles_if_loads_overlapped"]
            lines += [f"LOADs hold the engine for {r['load_cycles']:,} of its {r['cycles']:,} cycles (a LOAD "
                      "beside a compute, flag BG, for its fetch only; the others run in turn with compute). "
                      "Were each layer's LOADs hidden behind the rest of its work, it would take at least "
                      f"{b:,} cycles ({b / 200e3:,.1f} ms at 200 MHz): a bound, not a model of any hardware.", ""]
        lines += ["| layer | op (datapath) | output | MACs | cycles | LOAD cycles | MAC util | weight MB | DRAM MB read |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for l in r["layers"]:
            util = f"{l['macs'] / (r['multipliers'] * l['cycles']):.3f}" if l["macs"] else ""
            lines.append(f"| {l['layer']} | {l['op']} ({l['datapath'] or '-'}) | {'x'.join(map(str, l['shape']))} | "
                         f"{l['macs']:,} | {l['cycles']:,} | {l.get('load_cycles', 0):,} | {util} | "
                         f"{l['weight_bytes'] / 1e6:.2f} | "
                         f"{l['dram_read'] / 1e6:.2f} |")
    return "\n".join(lines) + "\n"


# Whole networks `sparsa bench cnn` runs: (name, vgg16_onnx keywords) at full size, and the
# reduced version --quick runs instead; each on these engine sizes (lanes).
FULL_NETWORKS = [("VGG16", "vgg16", {}), ("ResNet-18", "resnet18", {}), ("YOLOv3-tiny", "yolov3_tiny", {})]
QUICK_NETWORKS = [("VGG16 (32x32, channels / 4, fc 256)", "vgg16",
                   {"size": 32, "width": 0.25, "fc": (256, 256), "classes": 10}),
                  ("ResNet-18 (64x64, channels / 8)", "resnet18", {"size": 64, "width": 0.125, "classes": 10}),
                  ("YOLOv3-tiny (96x96, channels / 8, 3 classes)", "yolov3_tiny",
                   {"size": 96, "width": 0.125, "classes": 3})]
# The engines every network runs on: (label, CNNConfig fields). The first three are the
# engine `sparsa pack` builds (no Winograd datapath: the networks run on the direct one and
# the convolver) at three widths, with int16 weight words and one multiplier a lane and tap; the last
# is the largest that yosys fits in a Zynq-7020 (and a ZU2CG): 32 lanes with int8 weight
# words and two lanes a convolver multiplier, wbuf and psum cut to fit its 140 BRAM36
# (`sparsa bench cnn-resources` gives each one's DSPs, BRAMs and LUTs).
ENGINES = (("8 lanes", {"lanes": 8, "winograd": False}), ("16 lanes", {"lanes": 16, "winograd": False}),
           ("32 lanes", {"lanes": 32, "winograd": False}),
           ("32 lanes, int8 weights, paired multipliers, wbuf 4096, psum 1024",
            {"lanes": 32, "winograd": False, "weight_bits": 8, "pair_multipliers": True, "wbuf_words": 4096,
             "psum_depth": 1024}))


def bench_networks(quick=False, engines=ENGINES):
    """Rows of :func:`network_row` for every network and engine (see above)."""
    import tempfile
    from pathlib import Path

    from sparsa.sw.cnn.config import CNNConfig
    rows = []
    with tempfile.TemporaryDirectory(prefix="sparsa-networks-") as tmp:
        for name, builder, kw in (QUICK_NETWORKS if quick else FULL_NETWORKS):
            path = Path(tmp) / "net.onnx"
            t = time.perf_counter()
            info = {"vgg16": vgg16_onnx, "resnet18": resnet18_onnx, "yolov3_tiny": yolov3_tiny_onnx}[builder](path, **kw)
            print(f"[bench cnn] {name}: ONNX written ({info['params']:,} weights, {info['gop']:.2f} GOP) "
                  f"in {time.perf_counter() - t:.1f} s", flush=True)
            for label, fields in engines:
                row = network_row(name, path, CNNConfig(**fields), info["gop"],
                                  log=lambda m: print(f"[bench cnn] {name}, {label}: {m}", flush=True))
                row["engine"], row["config"] = label, dataclasses.asdict(CNNConfig(**fields))
                rows.append(row)
                print(f"[bench cnn] {name}, {label}: {row['cycles']:,} cycles, {row['ms_at_200mhz']:,.1f} ms "
                      f"@200 MHz, MAC util {row['mac_util']:.3f}, bit-exact vs golden", flush=True)
    return rows


def run_bench(out_dir, args):
    """``sparsa bench cnn-networks``: only the whole-network table (``cnn-networks.json`` and
    ``.md``); ``sparsa bench cnn`` includes it too."""
    import json
    from pathlib import Path

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    quick = bool(getattr(args, "quick", False))
    rows = bench_networks(quick)
    result = {"quick": quick, "seed_vgg16": SEED_VGG16, "networks": rows}
    md = "# sparsa CNN engine: whole networks\n\n" + network_markdown(rows)
    (out / "cnn-networks.json").write_text(json.dumps(result, indent=2) + "\n")
    (out / "cnn-networks.md").write_text(md)
    print(md)
    return result
