"""`sparsa bench ese`: the ESE-size LSTM on the generated PE array (Verilator).

ESE (Han et al., FPGA'17): one LSTM layer with projection, I = 153 inputs, H = 1024 cells,
P = 512 outputs, 11.2% density (3,248,128 weights), 32 PEs per channel at 200 MHz: 82.7 us
(16,540 cycles) per step measured, 57.0 us theoretical (= nonzeros / 32 PEs).

Here: random weights scaled ~1/sqrt(fan-in) (gates mostly out of saturation), pruned to 11.2%
load-balanced over 32 PEs, 4-bit sharing, calibrated formats; a few steps of random inputs in
[-1, 1] on Verilator, bit-exact against the golden model; and the same compressed without
padding entries (``--pad-free``), which needs less memory but a few more cycles; at one and
two multipliers per PE (``--macs 1|2``, default both; ESE has one), with activation queues
of ``--queue-depth N`` entries (default 8, EIE's). Reports cycles per step (the
first step starts from y = 0 and is cheaper; the steady state is the mean of steps 1..), the
ideal of :func:`sparsa.sw.eie.work.ideal_cycles` (per layer, real weights in the active columns
over PEs x macs, or the nonzero activations if more; gates + projection), microseconds at
:data:`CLOCK` (ESE's 200 MHz, stated, not measured), GOP/s-equivalent (2 ops per
dense weight, as ESE counts), numpy dense and scipy sparse time per step on this CPU, and the
on-chip memory: ECP5 block RAMs with every memory in block RAM, and whether the model fits an
ECP5-85F with ``sparsa build --memories fit`` (:mod:`sparsa.boards.memplan`), at 4 to 32 PEs,
each compressed for its own PE count.
"""

import json
import time
from pathlib import Path

import numpy as np

__all__ = ["run_bench", "ESE", "memory_estimate", "random_ese_weights"]

ESE = {"inputs": 153, "hidden": 1024, "outputs": 512, "density": 0.112, "pes": 32, "mhz": 200,
       "actual_us": 82.7, "theoretical_us": 57.0}
ECP5_85F_BRAMS = 208            # DP16KD, 18 Kbit each
# The clock the microseconds assume: ESE's, not a measured Fmax (no 32-PE build is recorded;
# the full ESE model's measured build is 4 PEs at 48.07 MHz on the ULX3S-85F, README).
CLOCK = {"mhz": 200, "label": "us at 200 MHz (ESE's clock, not measured)",
         "basis": "200 MHz assumed (ESE's clock), not a measured Fmax: no 32-PE build is recorded; "
                  "the full ESE model's measured build is 4 PEs at 48.07 MHz (ULX3S-85F)"}


def memory_estimate(cfg, count=None):
    """On-chip memory of one PE array: bits, ECP5 DP16KD blocks with nothing moved out of block
    RAM (memories under 1 Kbit counted as LUT RAM, as yosys maps them), and the
    ``--memories fit`` plan for an ECP5-85F (block RAM and LUT RAM, or why it does not fit).
    ``count(mem)``: blocks per memory (default the aspect-ratio estimate, memplan.blocks)."""
    from sparsa.boards.memplan import LOAD_ONLY, blocks, pe_memories, plan
    from sparsa.hw.eie.layouts import row_bits
    from sparsa.sw.errors import UserError
    count = count or (lambda m: blocks(m, "ecp5"))
    rows, bits, brams = [], 0, 0
    for m in pe_memories(cfg):
        n = count(m) if m.bits >= 1024 else 0
        rows.append({"memory": m.name, "width": m.width, "depth": m.depth, "bits_per_pe": m.bits, "brams_per_pe": n})
        bits += m.bits * cfg.pes
        brams += n * cfg.pes
    try:
        p = plan(cfg, "ecp5", ECP5_85F_BRAMS, count=count, roms=LOAD_ONLY)
        fit = {"fits": True, "brams": p["blocks"], "lutram_kbit": p["lutram_bits"] // 1024,
               "lutram": [k for k, v in p["styles"].items() if v == "distributed"],
               "logic_kbit": p["logic_bits"] // 1024, "logic": [k for k, v in p["styles"].items() if v == "logic"]}
    except UserError as e:
        fit = {"fits": False, "why": str(e).split(": ", 1)[-1]}
    return {"per_pe": rows, "total_bits": bits, "total_kib": round(bits / 8192, 1), "ecp5_brams": brams,
            "ecp5_85f_brams": ECP5_85F_BRAMS, "fits_ecp5_85f": fit["fits"], "fit_plan": fit,
            "row_bits": row_bits(cfg)}


def _cpu_times(w, steps=20):
    """numpy dense and scipy sparse time per LSTM step (the three matrix products + element-wise)."""
    import scipy.sparse as sp
    wg = np.hstack([w.w_hh, w.w_ih]).astype(np.float32)
    wp = w.w_hr.astype(np.float32)
    sg, spp = sp.csr_matrix(wg), sp.csr_matrix(wp)
    b = (w.b_ih + w.b_hh).astype(np.float32)
    h = w.hidden
    x = np.random.default_rng(0).uniform(-1, 1, (steps, w.inputs)).astype(np.float32)

    def run(mg, mp):
        y = np.zeros(w.outputs, np.float32)
        c = np.zeros(h, np.float32)
        t0 = time.perf_counter()
        for xt in x:
            z = mg @ np.concatenate([y, xt]) + b
            i, f = 1 / (1 + np.exp(-z[:h])), 1 / (1 + np.exp(-z[h:2 * h]))
            c = f * c + i * np.tanh(z[2 * h:3 * h])
            y = mp @ (1 / (1 + np.exp(-z[3 * h:])) * np.tanh(c))
        return (time.perf_counter() - t0) / steps

    run(wg, wp)
    return run(wg, wp), run(sg, spp)


def random_ese_weights(rng, i, h, p):
    """Random LSTMP weights with peepholes, ~N(0, 1/fan-in)."""
    from sparsa.sw.model.lstm import LSTMWeights
    s_in, s_h = 1 / np.sqrt(i + p), 1 / np.sqrt(h)
    # Pruning to 11.2% keeps the largest weights, so scale the kept ones down to keep the gate
    # pre-activations in the sigmoid's active range.
    return LSTMWeights(w_ih=rng.normal(size=(4 * h, i)) * s_in * 0.5, w_hh=rng.normal(size=(4 * h, p)) * s_in * 0.5,
                       b_ih=rng.normal(size=4 * h) * 0.1, b_hh=np.zeros(4 * h),
                       w_hr=rng.normal(size=(p, h)) * s_h, w_ic=rng.normal(size=h) * 0.1,
                       w_fc=rng.normal(size=h) * 0.1, w_oc=rng.normal(size=h) * 0.1)


def run_bench(out_dir, args):
    from sparsa.sim.eie.runner import run_lstm
    from sparsa.sw.eie.config import EIEConfig
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.fixedpoint import quantize
    from sparsa.sw.eie.lstm_step import lstm_golden
    from sparsa.sw.lstm.pack import compress_lstm, pack_lstm
    from sparsa.sw.eie.work import lstm_work
    from sparsa.bench.eie import macs_list
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    quick = bool(getattr(args, "quick", False))
    e = dict(ESE)
    if quick:
        e.update(inputs=40, hidden=128, outputs=64)
    i, h, p, n = e["inputs"], e["hidden"], e["outputs"], e["pes"]
    rng = np.random.default_rng(2017)
    w = random_ese_weights(rng, i, h, p)
    steps = 3
    depth = getattr(args, "queue_depth", None) or 8          # activation queue depth (EIE's 8)
    x = rng.uniform(-1, 1, (steps, i))
    print(f"[bench ese] compressing I={i} H={h} P={p} to {e['density']:.1%} over {n} PEs ...", flush=True)
    fill = getattr(args, "align_columns", None) or 0

    def laid_out(pk):
        """``pk`` with its columns aligned as ``sparsa pack --align-columns fill`` aligns them."""
        from sparsa.sw.eie.align import align_columns
        return align_columns(pk, fill)[0] if fill else pk
    t0 = time.perf_counter()
    comp = compress_lstm(w, e["density"], 4, n, calib=x)
    pack = laid_out(pack_lstm(comp, n))
    t_comp = time.perf_counter() - t0
    comp_pf = compress_lstm(w, e["density"], 4, n, calib=x, pad_free=True)
    pack_pf = laid_out(pack_lstm(comp_pf, n))
    xq = quantize(x, comp.in_frac)
    xq_pf = quantize(x, comp_pf.in_frac)
    mm = build_memory_map(pack)
    nnz = sum(sum(l.entries_per_pe) for l in pack.layers)
    nnz_real = int(np.count_nonzero(comp.gate_index)) + int(np.count_nonzero(comp.proj_index))
    dense_weights = 4 * h * (i + p) + p * h
    ese_cycles = e["actual_us"] * e["mhz"]
    runs = {}
    for macs in macs_list(args):
        cfg = EIEConfig.reusable_for(mm).replace(macs=macs, queue_depth=depth)
        print(f"[bench ese] macs={macs}: {cfg}", flush=True)
        t0 = time.perf_counter()
        res = run_lstm(pack, xq, engine="verilator", cfg=cfg, progress=True)
        t_sim = time.perf_counter() - t0
        exact = bool(np.array_equal(res["y"], lstm_golden(pack, xq)))
        cyc = [int(c) for c in res["cycles"]]
        print(f"[bench ese] macs={macs}: the same model compressed with --pad-free", flush=True)
        res_pf = run_lstm(pack_pf, xq_pf, engine="verilator",
                          cfg=EIEConfig.reusable_for(pack_pf).replace(macs=macs, queue_depth=depth), progress=True)
        exact = exact and bool(np.array_equal(res_pf["y"], lstm_golden(pack_pf, xq_pf)))
        cyc_pf = [int(c) for c in res_pf["cycles"]]
        # The ideal of each step (sw/eie/work.py): per layer max(real weights in the active
        # columns / (PEs x macs), nonzero activations), gates + projection.
        ideal_steps = [sum(l["ideal_cycles"] for l in st) for st in lstm_work(pack, xq, macs)]
        # Steady state: from step 1 on (step 0 starts from y = 0, so its W_hh columns are idle).
        mean = float(np.mean(cyc[1:]))
        ideal = float(np.mean(ideal_steps[1:]))
        from sparsa.hw.eie.pe import COUNTERS
        # Where the cycles of step 1 go, per layer (PE means): busy = issued at least one entry,
        # starved = idle with an empty queue, stalled = its full queue held up the broadcast.
        st = res["layer_stats"][min(1, steps - 1)]          # (layers, PEs, counters)
        runs[macs] = {
            "pes": n, "macs": macs, "multipliers": n * macs,
            "cycles_per_step": cyc, "cycles_per_step_steady": round(mean, 1),
            "pad_free_cycles_per_step": cyc_pf,
            "pad_free_cycles_per_step_steady": round(float(np.mean(cyc_pf[1:])), 1),
            "layer_cycles_per_step": res["layer_cycles"].astype(int).tolist(),
            "layer_pe_counters_step1": [{c: round(float(st[li, :, ci].mean()), 1) for ci, c in enumerate(COUNTERS)}
                                        for li in range(st.shape[0])],
            "ideal_cycles_per_step": [round(v, 1) for v in ideal_steps],
            "ideal_cycles": round(ideal, 1), "efficiency": round(ideal / mean, 3),
            "ratio_vs_ese": round(mean / ese_cycles, 3),
            "us_per_step": round(mean / CLOCK["mhz"], 2),
            "gops_dense_equivalent": round(2 * dense_weights / (mean / (CLOCK["mhz"] * 1e6)) / 1e9, 1),
            "gops_sparse": round(2 * nnz_real / (mean / (CLOCK["mhz"] * 1e6)) / 1e9, 1),
            "bit_exact": exact, "sim_s": round(t_sim, 1),
            "targets": {"fewer_cycles_than_ese": mean < ese_cycles,
                        "issue27_cycles": mean <= (11600 if macs == 1 else 6700)},
        }
        print(f"[bench ese] macs={macs}: {mean:.0f} cycles a step (steady), ideal {ideal:.0f}, "
              f"efficiency {ideal / mean:.3f}, exact={exact}", flush=True)
    dense_s, sparse_s = _cpu_times(w)
    # Memory for the exact sizes (not the power-of-two simulation build), at this and fewer PEs.
    # Blocks as yosys maps each memory in the board harness (memories only the load port
    # writes are ROMs there), the count `sparsa build --memories fit` plans with.
    from sparsa.boards.memplan import harness_count
    print("[bench ese] counting block RAMs with yosys", flush=True)
    count = harness_count("ecp5")
    mem = memory_estimate(EIEConfig.for_pack(mm), count)
    mem_by_pes = {}
    for k in (4, 8, 16, 32):
        ck = comp_pf if k == n else compress_lstm(w, e["density"], 4, k, calib=x, pad_free=True)
        pk = laid_out(pack_lstm(ck, k))
        mk = memory_estimate(EIEConfig.for_pack(pk), count)
        # The same with the accumulator banks split by row parity (`--acc-banks split`): half
        # the accumulator memory, fewer pairs for the two multipliers.
        ms = memory_estimate(EIEConfig.for_pack(pk, acc_banks="split"), count)
        mem_by_pes[k] = {"ecp5_brams": mk["ecp5_brams"], "total_kib": mk["total_kib"],
                         "fits_ecp5_85f": mk["fits_ecp5_85f"], "fit_plan": mk["fit_plan"],
                         "split_banks": {"ecp5_brams": ms["ecp5_brams"], "total_kib": ms["total_kib"],
                                         "fits_ecp5_85f": ms["fits_ecp5_85f"], "fit_plan": ms["fit_plan"]}}
    mem["by_pes"] = mem_by_pes
    padding = {"standard": sum(sum(l.padding_per_pe) for l in pack.layers),
               "pad_free": sum(sum(l.padding_per_pe) for l in pack_pf.layers)}
    result = {
        "model": {"inputs": i, "hidden": h, "outputs": p, "density": e["density"], "dense_weights": dense_weights,
                  "nonzeros": nnz_real, "pes": n, "peepholes": True, "quick": quick},
        "queue_depth": depth, "align_columns": fill,
        "clock": CLOCK, "ese": {"pes": 32, "macs": 1, "multipliers": 32, "mhz": e["mhz"]},
        "steps": steps, "runs": runs,
        "ese_actual_cycles": round(ese_cycles), "ese_actual_us": e["actual_us"],
        "ese_theoretical_cycles": round(e["theoretical_us"] * e["mhz"]), "ese_theoretical_us": e["theoretical_us"],
        "numpy_dense_us_per_step": round(dense_s * 1e6, 1), "scipy_sparse_us_per_step": round(sparse_s * 1e6, 1),
        "bit_exact": all(r["bit_exact"] for r in runs.values()), "memory": mem,
        "entries_with_padding": nnz, "padding_entries": padding, "compress_s": round(t_comp, 1),
    }
    (out / "ese.json").write_text(json.dumps(result, indent=2) + "\n")
    md = _markdown(result)
    (out / "ese.md").write_text(md)
    print(md)
    return result


def _fit_text(p):
    if not p["fits"]:
        return "no: " + p["why"]
    return (f"yes: {p['brams']} blocks, {p['lutram_kbit']} Kbit LUT RAM ({', '.join(p['lutram']) or 'none'}), "
            f"{p['logic_kbit']} Kbit of ROM in logic ({', '.join(p['logic']) or 'none'})")


def _markdown(r):
    m = r["model"]
    runs = list(r["runs"].values())
    lines = [f"# sparsa ESE benchmark (LSTM I={m['inputs']} H={m['hidden']} P={m['outputs']}, "
             f"{m['density']:.1%} dense, {m['pes']} PEs, queue depth {r.get('queue_depth', 8)}"
             + (f", columns aligned (`--align-columns {r['align_columns']}`)" if r.get("align_columns") else "")
             + ", Verilator)", "",
             "ideal = per layer max(real weights in the active columns / (PEs x macs), nonzero activations), "
             "gates + projection (sw/eie/work.py). ESE: 32 PEs x 1 multiplier a channel, 200 MHz.",
             f"Clock for us: {r['clock']['basis']}.", "",
             "| metric | " + " | ".join(f"sparsa {x['pes']} PEs, macs={x['macs']} ({x['multipliers']} multipliers)"
                                     for x in runs) + " | ESE (KU060, 32 multipliers) |",
             "|---|" + "---|" * (len(runs) + 1)]

    def row(name, f, ese=""):
        lines.append(f"| {name} | " + " | ".join(f(x) for x in runs) + f" | {ese} |")

    row("cycles per step (each step)", lambda x: ", ".join(f"{c:,}" for c in x["cycles_per_step"]))
    row("  gates layer / projection layer (step 1)", lambda x: " / ".join(f"{c:,}" for c in x["layer_cycles_per_step"][1]))
    row("  PE busy / starved / stalled, gates; projection (step 1, mean)",
        lambda x: "; ".join(" / ".join(f"{c[k]:,.0f}" for k in ("busy", "starved", "stalled"))
                            for c in x["layer_pe_counters_step1"]))
    row("cycles per step, steady state (steps 1..)", lambda x: f"{x['cycles_per_step_steady']:,.0f}",
        f"{r['ese_actual_cycles']:,} measured, {r['ese_theoretical_cycles']:,} theoretical")
    row("  the same compressed with --pad-free", lambda x: f"{x['pad_free_cycles_per_step_steady']:,.0f}")
    row("ideal (steady state)", lambda x: f"{x['ideal_cycles']:,.0f}")
    row("efficiency (ideal / measured)", lambda x: f"{x['efficiency']:.3f}")
    row("sparsa / ESE cycles", lambda x: f"{x['ratio_vs_ese']:.3f}")
    row(r["clock"]["label"].replace("us", "us per step", 1), lambda x: f"{x['us_per_step']}",
        f"{r['ese_actual_us']} measured, {r['ese_theoretical_us']} theoretical")
    row(f"GOP/s dense-equivalent at {r['clock']['mhz']} MHz", lambda x: f"{x['gops_dense_equivalent']}")
    row("bit-exact vs golden", lambda x: "yes" if x["bit_exact"] else "NO")
    lines += ["", "| metric | value |", "|---|---|"]
    rows = [("nonzeros (real)", f"{m['nonzeros']:,}"),
            ("numpy dense, us per step (this CPU)", f"{r['numpy_dense_us_per_step']}"),
            ("scipy sparse, us per step (this CPU)", f"{r['scipy_sparse_us_per_step']}"),
            ("padding entries, standard / --pad-free", " / ".join(f"{r['padding_entries'][k]:,}" for k in ("standard", "pad_free"))),
            ("on-chip memory", f"{r['memory']['total_kib']} KiB"),
            ("ECP5 DP16KD blocks, nothing moved (as yosys maps each memory)", f"{r['memory']['ecp5_brams']} of {r['memory']['ecp5_85f_brams']}"),
            ("  the same with --pad-free at 4 / 8 / 16 / 32 PEs",
             " / ".join(str(v["ecp5_brams"]) for v in r["memory"]["by_pes"].values())),
            *((f"fits an ECP5-85F at {k} PEs (--pad-free, --memories fit)", _fit_text(v["fit_plan"]))
              for k, v in r["memory"]["by_pes"].items()),
            ("  with --acc-banks split (accumulators split by row parity): blocks at 4 / 8 / 16 / 32 PEs",
             " / ".join(str(v["split_banks"]["ecp5_brams"]) for v in r["memory"]["by_pes"].values())),
            *((f"fits an ECP5-85F at {k} PEs (--pad-free, --memories fit, --acc-banks split)",
               _fit_text(v["split_banks"]["fit_plan"])) for k, v in r["memory"]["by_pes"].items())]
    lines += [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines) + "\n"
