"""`sparsa bench eie`: EIE's Table III layers on the generated PE array (Verilator).

For each layer (sizes, weight and activation densities from the EIE paper; random seeded
data), at 64 PEs and queue depth 8 (``--queue-depth N``: another depth):

* measured cycles (the array's own ``cycles`` counter for a one-layer job: broadcast and
  compute, pipeline drain, output stage; measured on the second of two identical inputs,
  since the first after a reset also spends ``max_rows_pe`` cycles clearing accumulators),
* ideal cycles = max(real weights in the active columns / (PEs x macs), nonzero activations)
  (:func:`sparsa.sw.eie.work.ideal_cycles`: no padding, every multiplier counted, so
  efficiency = ideal / measured <= 1),
* the busiest PE's bound = max(the busiest PE's real weights / macs, nonzero activations),
  which adds the rows' interleaving imbalance (also <= measured): measured / busiest PE is
  what the array's scheduling loses,
* microseconds per inference at :data:`CLOCK` (a stated clock, not a measured Fmax: no
  64-PE build is recorded), beside EIE's actual microseconds (Table III, 800 MHz ASIC),
* EIE's actual time x 800 MHz in cycles, and our/EIE cycle ratio,
* scipy.sparse CSR matvec time on this CPU for the same layer.

Every row states PEs, multipliers per PE (``macs``, ``--macs 1|2``; default both) and the
total multipliers: EIE has 64 PEs of one multiplier. ``--balance-rows`` renumbers each
layer's rows as ``sparsa pack --balance-rows`` renumbers a hidden layer's
(:mod:`sparsa.sw.eie.balance`): the same work, spread evenly over the PEs. Then (unless ``--no-sweeps``) a queue-depth sweep (1, 2, 4, 8, 16, 32) and a PE sweep (16, 32, 64, 128) on Alex-7.
Writes ``eie.json``, ``eie.md`` and PNG plots to the output directory.
"""

import json
import time
from pathlib import Path

import numpy as np

__all__ = ["TABLE3", "run_bench", "make_layer_pack"]

# name, inputs (cols), outputs (rows), weight density, activation density, EIE theor. us, actual us
TABLE3 = [
    ("Alex-6", 9216, 4096, 0.09, 0.351, 28.1, 30.3),
    ("Alex-7", 4096, 4096, 0.09, 0.353, 11.7, 12.2),
    ("Alex-8", 4096, 1000, 0.25, 0.375, 8.9, 9.9),
    ("VGG-6", 25088, 4096, 0.04, 0.183, 28.1, 34.4),
    ("VGG-7", 4096, 4096, 0.04, 0.375, 7.9, 8.7),
    ("VGG-8", 4096, 1000, 0.23, 0.411, 7.3, 8.4),
    ("NT-We", 4096, 600, 0.10, 1.00, 5.2, 8.0),
    ("NT-Wd", 600, 8791, 0.11, 1.00, 13.0, 13.9),
    ("NT-LSTM", 1201, 2400, 0.10, 1.00, 6.5, 7.5),
]
EIE_MHZ = 800
# The clock the microseconds column assumes. No open-flow build of the 64-PE array is recorded
# (README, Benchmarks: the measured Fmax is 104.31 MHz for 16 PEs, macs=2 with split accumulator
# banks, on the ULX3S-85F; the full-bank PE has not been routed there).
CLOCK = {"mhz": 200, "label": "us at 200 MHz (ESE's FPGA clock, not measured)",
         "basis": "200 MHz assumed, not a measured Fmax: no 64-PE build is recorded; "
                  "the only measured EIE-array Fmax is 104.31 MHz (16 PEs, macs=2 with split "
                  "accumulator banks, ULX3S-85F)"}


def make_layer_pack(cols, rows, wdens, adens, pes, seed):
    """A random one-layer pack with exactly round(wdens * rows * cols) nonzeros, and an input."""
    from sparsa.sw.eie.pack import Pack, make_layer
    rng = np.random.default_rng(seed)
    nnz = int(round(wdens * rows * cols))
    lin = rng.choice(rows * cols, nnz, replace=False)
    i, j = np.divmod(lin, cols)
    index = rng.integers(1, 16, nnz)
    cb = np.zeros(16, dtype=np.int16)
    cb[1:] = rng.integers(-2000, 2001, 15)
    cb[1:][cb[1:] == 0] = 1
    layer = make_layer("layer0", rows, cols, i, j, index, cb, pes, shift=12)
    x = np.zeros(cols, dtype=np.int16)
    nz = rng.choice(cols, int(round(adens * cols)), replace=False)
    x[nz] = rng.integers(1, 2000, nz.size) * rng.choice([-1, 1], nz.size)
    return Pack(pes=pes, layers=[layer]), x, (i, j, cb[index])


def ideal_cycles(pack, x, macs):
    """(ideal, EIE's padded model, entries, real entries, nonzero activations, busiest PE's
    bound) of a one-layer pack on one input at ``macs`` multipliers per PE
    (:func:`sparsa.sw.eie.work.layer_work`)."""
    from sparsa.sw.eie.work import layer_work
    (w,) = layer_work(pack, x, macs)
    return (w["ideal_cycles"], w["eie_model_cycles"], sum(w["entries_per_pe"]), sum(w["real_per_pe"]),
            w["nonzero_activations"], w["busiest_pe_cycles"])


def _balanced_case(pack, x, coo):
    """A case whose layer's rows are renumbered as ``sparsa pack --balance-rows`` renumbers a
    hidden layer's (the same work: same nonzeros, same activations); its golden output is the
    original one, renumbered (checked here)."""
    from sparsa.sw.eie.balance import balanced_layer
    from sparsa.sw.eie.golden import layer_forward
    from sparsa.sw.eie.pack import Pack
    layer, order = balanced_layer(pack.layers[0], pack.pes)
    balanced = Pack(pes=pack.pes, layers=[layer])
    y, y_bal = layer_forward(pack.golden_layers()[0], x), layer_forward(balanced.golden_layers()[0], x)
    if not np.array_equal(y_bal[order], y):
        raise AssertionError("balanced layer's outputs are not the original ones renumbered")
    return balanced, x, coo


def _aligned_case(pack, x, coo, fill):
    """A case laid out as ``sparsa pack --align-columns fill`` lays it out (the same layer, the
    same outputs); returns it and its entries before and after."""
    from sparsa.sw.eie.align import align_columns
    aligned, (rep,) = align_columns(pack, fill)
    return (aligned, x, coo), rep


def _prepared(case, balance, fill):
    """A case balanced and aligned as the layer table's are (``--balance-rows``, ``--align-columns``)."""
    case = _balanced_case(*case) if balance else case
    return _aligned_case(*case, fill)[0] if fill else case


def macs_list(args):
    """The ``--macs`` values to run (default both, 1 then 2)."""
    m = getattr(args, "macs", None)
    return [1, 2] if m is None else [int(m)] if isinstance(m, int) else sorted({int(v) for v in m})


def scipy_time(coo, rows, cols, x, repeat=20):
    import scipy.sparse as sp
    i, j, v = coo
    a = sp.csr_matrix((v.astype(np.float32), (i, j)), shape=(rows, cols))
    xf = x.astype(np.float32)
    a @ xf
    t = time.perf_counter()
    for _ in range(repeat):
        a @ xf
    return (time.perf_counter() - t) / repeat


def _config_for(packs, pes, queue_depth, macs):
    from sparsa.sw.eie.config import EIEConfig
    from sparsa.sw.eie.memmap import build_memory_map
    mms = [build_memory_map(p) for p in packs]
    return EIEConfig.for_pack(*mms, queue_depth=queue_depth, macs=macs), mms


def _run(cfg, mm, x):
    """Run x twice; report the second run (the first after a reset also clears accumulators)."""
    from sparsa.sim.eie.runner import run_memory_map
    res = run_memory_map(mm, np.vstack([x, x]), engine="verilator", cfg=cfg, progress=True)
    for key in ("y", "cycles", "layer_cycles", "layer_stats"):
        res[key] = res[key][1:]
    res["y"] = res["y"][0]
    return res


def run_bench(out_dir, args):
    from sparsa.hw.eie.pe import COUNTERS
    from sparsa.sw.eie.golden import layer_forward
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    quick = bool(getattr(args, "quick", False))
    pes = 64
    depth = getattr(args, "queue_depth", None) or 8
    layers = TABLE3 if not quick else [t for t in TABLE3 if t[0] in ("Alex-7", "NT-We")]
    print(f"[bench eie] generating {len(layers)} layers at {pes} PEs ...", flush=True)
    cases = [make_layer_pack(c, r, wd, ad, pes, seed=k) for k, (_, c, r, wd, ad, _, _) in enumerate(layers)]
    balance = bool(getattr(args, "balance_rows", False))
    if balance:
        cases = [_balanced_case(*case) for case in cases]
    fill = getattr(args, "align_columns", None) or 0
    growth, encoded = [None] * len(cases), [pack for pack, _, _ in cases]
    if fill:
        cases, growth = zip(*(_aligned_case(*case, fill) for case in cases))
    rows_out, configs = [], {}
    result = {"format": "sparsa-bench-eie", "version": 1, "pes": pes, "queue_depth": depth, "clock": CLOCK,
              "balance_rows": balance, "align_columns": fill,
              "eie": {"pes": 64, "macs": 1, "multipliers": 64, "mhz": EIE_MHZ},
              "configs": configs, "layers": rows_out, "sweeps": {}, "summary": {}}
    for macs in macs_list(args):
        cfg, mms = _config_for([p for p, _, _ in cases], pes, depth, macs)
        configs[macs] = cfg.__dict__ if hasattr(cfg, "__dict__") else str(cfg)
        print(f"[bench eie] one build for all layers, macs={macs}: {cfg}", flush=True)
        for (name, cols, rows, wd, ad, th_us, act_us), (pack, x, coo), mm, grown, plain in zip(
                layers, cases, mms, growth, encoded):
            t0 = time.perf_counter()
            res = _run(cfg, mm, x)
            want = layer_forward(pack.golden_layers()[0], x)
            exact = bool(np.array_equal(res["y"], want))
            measured = int(res["cycles"][0])
            ideal, eie_model, entries, real, nact, busiest = ideal_cycles(pack, x, macs)
            # EIE's padded model of the encoder's layout: EIE would not spend cycles on the fill.
            eie_model = ideal_cycles(plain, x, macs)[1] if grown else eie_model
            stats = res["layer_stats"][0, 0]
            eie_cycles = act_us * EIE_MHZ
            row = {
                "layer": name, "pes": pes, "macs": macs, "multipliers": pes * macs,
                "inputs": cols, "outputs": rows, "weight_density": wd,
                "activation_density": ad, "nonzero_activations": nact,
                "entries_active": entries, "real_entries_active": real,
                "measured_cycles": measured, "ideal_cycles": round(ideal, 1),
                "ideal_bound": "broadcast" if nact >= real / (pes * macs) else "multipliers",
                "eie_model_cycles": round(eie_model, 1),
                "efficiency": round(ideal / measured, 3),
                "busiest_pe_cycles": round(busiest, 1), "efficiency_vs_busiest_pe": round(busiest / measured, 3),
                "us": round(measured / CLOCK["mhz"], 2), "clock_mhz": CLOCK["mhz"],
                "eie_actual_us": act_us, "eie_theoretical_us": th_us,
                "eie_actual_cycles": round(eie_cycles), "eie_theoretical_cycles": round(th_us * EIE_MHZ),
                "ratio_vs_eie": round(measured / eie_cycles, 3),
                "max_pe_busy": int(stats[:, COUNTERS.index("busy")].max()),
                "stall_cycles_max": int(stats[:, COUNTERS.index("stalled")].max()),
                "padding_skipped": int(stats[:, COUNTERS.index("pad")].sum()),
                "spm_words_max_pe": max(pack.layers[0].words_per_pe),
                **({"entries_unaligned": grown["entries_before"], "entries_aligned": grown["entries_after"]}
                   if grown else {}),
                "bit_exact": exact,
                "scipy_csr_us": round(scipy_time(coo, rows, cols, x) * 1e6, 1),
                "sim_s": round(time.perf_counter() - t0, 1),
            }
            rows_out.append(row)
            print(f"[bench eie] macs={macs} {name:8s} measured {measured:6d}  ideal {ideal:8.1f}"
                  f"  eff {row['efficiency']:.3f}  busiest PE {busiest:8.1f} ({row['efficiency_vs_busiest_pe']:.3f})  EIE {eie_cycles:6.0f}  ratio {row['ratio_vs_eie']:.3f}"
                  f"  exact={exact}", flush=True)
            _write(result, out)         # partial results survive an interrupted run

    if not quick and not getattr(args, "no_sweeps", False):
        sweeps = result["sweeps"]
        k7 = [t[0] for t in TABLE3].index("Alex-7")
        name, cols, rows, wd, ad = TABLE3[k7][:5]
        sweeps["queue_depth"], sweeps["pes"] = [], []
        for macs in macs_list(args):
            pack, x, _ = _prepared(make_layer_pack(cols, rows, wd, ad, 64, seed=k7), balance, fill)
            ideal = ideal_cycles(pack, x, macs)[0]
            for qd in (1, 2, 4, 8, 16, 32):
                c, (mm,) = _config_for([pack], 64, qd, macs)
                cyc = int(_run(c, mm, x)["cycles"][0])
                sweeps["queue_depth"].append({"macs": macs, "queue_depth": qd, "cycles": cyc,
                                              "efficiency": round(ideal / cyc, 3)})
                print(f"[bench eie] macs={macs} Alex-7 queue depth {qd:3d}: {cyc} cycles", flush=True)
                _write(result, out)
            first = None
            for n in (16, 32, 64, 128):
                pack, x, _ = _prepared(make_layer_pack(cols, rows, wd, ad, n, seed=k7), balance, fill)
                c, (mm,) = _config_for([pack], n, 8, macs)
                cyc = int(_run(c, mm, x)["cycles"][0])
                first = first or cyc
                sweeps["pes"].append({"macs": macs, "pes": n, "multipliers": n * macs, "cycles": cyc,
                                      "efficiency": round(ideal_cycles(pack, x, macs)[0] / cyc, 3),
                                      "speedup_vs_16": round(first / cyc, 2)})
                print(f"[bench eie] macs={macs} Alex-7 {n:3d} PEs: {cyc} cycles", flush=True)
                _write(result, out)
    md = _write(result, out)
    _plots(result, out)
    print(md)
    return result


def _summary(rows):
    s = {}
    for macs in sorted({r["macs"] for r in rows}):
        rs = [r for r in rows if r["macs"] == macs]
        s[macs] = {"layers": len(rs), "min_efficiency": min(r["efficiency"] for r in rs),
                   "mean_efficiency": round(float(np.mean([r["efficiency"] for r in rs])), 3),
                   "all_faster_than_eie": all(r["ratio_vs_eie"] <= 1 for r in rs),
                   "all_bit_exact": all(r["bit_exact"] for r in rs)}
    return s


def _write(result, out):
    result["summary"] = _summary(result["layers"])
    (out / "eie.json").write_text(json.dumps(result, indent=2, default=str) + "\n")
    md = _markdown(result)
    (out / "eie.md").write_text(md)
    return md


def _markdown(r):
    lines = [f"# sparsa EIE benchmark ({r['pes']} PEs, queue depth {r['queue_depth']}, Verilator)", "",
             *(["Rows balanced: each layer's rows renumbered as `sparsa pack --balance-rows` renumbers a hidden "
                "layer's (same nonzeros, same activations; the outputs are the same values, renumbered).", ""]
               if r.get("balance_rows") else []),
             *([f"Columns aligned: each layer laid out as `sparsa pack --align-columns {r['align_columns']}` lays it out "
                "(a column that would cross a word it need not cross starts the next word when at most "
                f"{r['align_columns']} lanes are left and they would hold fewer than two of its real entries). "
                "Entries stored, unaligned -> aligned: "
                + "; ".join(f"{l['layer']} +{100 * (l['entries_aligned'] / l['entries_unaligned'] - 1):.1f}%"
                            for l in r["layers"] if l["macs"] == r["layers"][0]["macs"]) + ".", ""]
               if r.get("align_columns") else []),
             "ideal = max(real weights in the active columns / (PEs x macs), nonzero activations): "
             "no padding, every multiplier counted (sw/eie/work.py). busiest PE = max(the busiest PE's real weights "
             "/ macs, nonzero activations): the imbalance of the rows' interleaving included, also a lower bound; "
             "measured / busiest PE is what scheduling loses. EIE: 64 PEs x 1 multiplier, 800 MHz.",
             f"Clock for us: {r['clock']['basis']}.", "",
             f"| layer | PEs | macs | multipliers | size (in x out) | W dens | A dens | measured | ideal | bound "
             f"| efficiency | busiest PE | eff. vs busiest PE | {r['clock']['label']} | EIE actual us | EIE actual cycles | ours/EIE cycles "
             f"| scipy CSR us | exact |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for x in r["layers"]:
        lines.append(f"| {x['layer']} | {x['pes']} | {x['macs']} | {x['multipliers']} | {x['inputs']} x {x['outputs']} | "
                     f"{x['weight_density']:.0%} | {x['activation_density']:.1%} | {x['measured_cycles']} | "
                     f"{x['ideal_cycles']:.0f} | {x['ideal_bound']} | {x['efficiency']:.3f} | "
                     f"{x['busiest_pe_cycles']:.0f} | {x['efficiency_vs_busiest_pe']:.3f} | {x['us']} | "
                     f"{x['eie_actual_us']} | {x['eie_actual_cycles']} | {x['ratio_vs_eie']:.3f} | "
                     f"{x['scipy_csr_us']} | {'yes' if x['bit_exact'] else 'NO'} |")
    lines.append("")
    for macs, s in r["summary"].items():
        lines.append(f"macs={macs} ({r['pes'] * int(macs)} multipliers): min efficiency {s['min_efficiency']:.3f}, "
                     f"mean {s['mean_efficiency']:.3f}; fewer cycles than EIE on every layer: "
                     f"{s['all_faster_than_eie']}; bit-exact: {s['all_bit_exact']}")
    lines.append("")
    sw = r["sweeps"]
    if sw.get("queue_depth"):
        lines += ["## Alex-7 queue-depth sweep (64 PEs)", "", "| macs | depth | cycles | efficiency |", "|---|---|---|---|"]
        lines += [f"| {q['macs']} | {q['queue_depth']} | {q['cycles']} | {q['efficiency']:.3f} |" for q in sw["queue_depth"]]
        lines.append("")
    if sw.get("pes"):
        lines += ["## Alex-7 PE sweep (queue depth 8)", "", "| PEs | macs | multipliers | cycles | efficiency | speed-up vs 16 |",
                  "|---|---|---|---|---|---|"]
        lines += [f"| {q['pes']} | {q['macs']} | {q['multipliers']} | {q['cycles']} | {q['efficiency']:.3f} | "
                  f"{q['speedup_vs_16']} |" for q in sw["pes"]]
    return "\n".join(lines) + "\n"


def _plots(r, out):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    rows = [x for x in r["layers"] if x["macs"] == min(y["macs"] for y in r["layers"])]
    names = [x["layer"] for x in rows]
    pos = np.arange(len(names))
    fig, ax = plt.subplots(figsize=(9, 4))
    ax.bar(pos - 0.27, [x["ideal_cycles"] for x in rows], 0.27, label="ideal (real work / multipliers)")
    ax.bar(pos, [x["measured_cycles"] for x in rows], 0.27, label="sparsa measured")
    ax.bar(pos + 0.27, [x["eie_actual_cycles"] for x in rows], 0.27, label="EIE actual")
    ax.set_xticks(pos, names, rotation=30)
    ax.set_ylabel("cycles")
    ax.set_title(f"EIE Table III layers, 64 PEs, macs={rows[0]['macs']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "eie_cycles.png", dpi=110)
    plt.close(fig)
    if r["sweeps"].get("pes"):
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.5))
        for m in sorted({x["macs"] for x in r["sweeps"]["queue_depth"]}):
            q = [x for x in r["sweeps"]["queue_depth"] if x["macs"] == m]
            a1.plot([x["queue_depth"] for x in q], [x["cycles"] for x in q], "o-", label=f"macs={m}")
        a1.legend()
        a1.set_xscale("log", base=2)
        a1.set_xlabel("queue depth")
        a1.set_ylabel("cycles (Alex-7)")
        for m in sorted({x["macs"] for x in r["sweeps"]["pes"]}):
            p = [x for x in r["sweeps"]["pes"] if x["macs"] == m]
            a2.plot([x["pes"] for x in p], [x["speedup_vs_16"] for x in p], "o-", label=f"measured, macs={m}")
        a2.plot([x["pes"] for x in p], [x["pes"] / 16 for x in p], "--", label="linear")
        a2.set_xscale("log", base=2)
        a2.set_xlabel("PEs")
        a2.set_ylabel("speed-up vs 16 PEs")
        a2.legend()
        fig.tight_layout()
        fig.savefig(out / "eie_sweeps.png", dpi=110)
        plt.close(fig)
