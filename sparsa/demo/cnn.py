"""The CNN half of ``sparsa demo``: a digits CNN, int8, on the generated CNN engine.

Trains the small CNN of :mod:`sparsa.sw.model.digits_cnn` on the 8x8 digits (numpy, seconds),
compresses it to int8 dynamic fixed point calibrated on the training split, compiles it for
the engine with the Winograd F(2x2,3x3) datapath, classifies the held-out split with the golden
model and, unless the engine is ``golden``, with the generated Verilog, whose outputs must equal
the golden model's on every image. Writes OUT/float.npz, OUT/int8.npz, OUT/pack and OUT/run.json.
"""

import time
from pathlib import Path

import numpy as np

__all__ = ["run_cnn_demo"]


def run_cnn_demo(out, *, seed=0, engine="verilator", quick=False, datapath="winograd"):
    from sparsa.sw.cnn.compiler import compile_graph
    from sparsa.sw.cnn.compress import compress_cnn, quantize_input
    from sparsa.sw.cnn.golden import cnn_forward
    from sparsa.sw.cnn.config import CNNConfig
    from sparsa.sw.model.digits import digits_images
    from sparsa.sw.model.digits_cnn import train_digits_cnn
    from sparsa.sw.cnn.pack import write_cnn_pack
    from sparsa.sw.fileio import write_json
    from sparsa.sw.model.graph import save_graph
    out = Path(out)
    t = {}
    t0 = time.perf_counter()
    x_tr, x_te, y_tr, y_te = digits_images(seed)
    fgraph, float_acc = train_digits_cnn(seed=seed, epochs=5 if quick else 20)
    t["train_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    igraph = compress_cnn(fgraph, calib=x_tr.astype(np.float32), where="digits CNN")
    xq = quantize_input(igraph, x_te.astype(np.float32))
    gold = cnn_forward(igraph, xq)
    t["compress_golden_s"] = time.perf_counter() - t0
    save_graph(out / "float.npz", fgraph)
    save_graph(out / "int8.npz", igraph)
    prog = compile_graph(igraph, CNNConfig(winograd=datapath == "winograd"), datapath, where="digits CNN")
    write_cnn_pack(prog, out / "pack")
    rep = {
        "model": "1x8x8 -> conv3x3(8) -> pool -> conv3x3(16) -> pool -> fc(10)",
        "datapath": datapath, "lanes": prog.cfg.lanes,
        "float_accuracy": float(float_acc),
        "int8_accuracy": float(np.mean(np.argmax(gold, axis=1) == y_te)),
        "test_samples": int(y_te.size), "macs_per_inference": int(sum(m["macs"] for m in prog.layers)),
        "pack": str(out / "pack"),
    }
    if engine != "golden":
        from sparsa.sim.cnn.runner import run_program
        t0 = time.perf_counter()
        res = run_program(prog, xq, engine=engine)
        t["hardware_sim_s"] = time.perf_counter() - t0
        hw = res["y"]
        cycles = float(np.mean(res["cycles"]))
        layer_cycles = res["layer_cycles"].mean(axis=0)
        rep.update({
            "hardware_engine": engine,
            "hardware_accuracy": float(np.mean(np.argmax(hw, axis=1) == y_te)),
            "hardware_mismatches": int(np.count_nonzero(np.any(hw != gold, axis=1))),
            "cycles_per_inference": cycles,
            "mac_utilisation": rep["macs_per_inference"] / (prog.cfg.lanes * cycles),
            "layers": [{"name": m["name"], "op": m["op"], "datapath": m["datapath"], "macs": m["macs"],
                        "cycles": float(c),
                        "mac_utilisation": float(m["macs"] / (prog.cfg.lanes * c)) if m["macs"] else None}
                       for m, c in zip(prog.layers, layer_cycles)],
        })
        write_json(out / "run.json", rep)
    rep["timings_s"] = t
    return rep
