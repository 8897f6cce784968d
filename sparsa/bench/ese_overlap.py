"""`sparsa bench ese-overlap`: would an overlapped ESE schedule save cycles? Measured on the RTL.

The schedule in question (issue 5): split step t into **B_t** = one layer over
``[m_{t-1}; x_t]`` holding ``W_hr`` (drained: ``y_{t-1}``) and ``W_ih`` (its gate rows left
in the accumulators), then **A_t** = ``W_hh y_{t-1}`` on top of those partial sums, drained
through the element-wise unit. ``W_ih x_t`` then runs in the projection's layer, which was
assumed to leave the PEs idle (broadcast-bound).

Building it costs hardware: a layer-table field for the first drained row, and a second
codebook per PE (``W_ih`` shares the gates' codebook, ``W_hr`` has its own, and B holds both).
This benchmark measures the cycles first, on the existing RTL, without that hardware: B and
A are packed as ordinary layers (one codebook, so the arithmetic is not the LSTM's, but the
cycle count does not depend on weight values) and each layer runs alone on a dense random
nonzero input, as the gates and projection layers of today's schedule do. B here drains its
gate rows too; those ``4H'/N`` drain cycles are subtracted, as the real B would not drain them.

It also evaluates a cycle model of one PE (:func:`pe_issue_cycles`): every column with
entries in the PE costs, per 64-bit word it touches, its issue steps, where a step retires
two real entries (the sparse-matrix reader's dual issue, ``cfg.macs == 2``; one with
``macs=1``), a word's odd last entry going out with the first of the next word, and
a word with nothing left to issue (all padding, or its only entry taken along) costs a cycle
in which the next word's first step issues. On the earlier PE (accumulators split by row
parity, neighbours of different parity paired) the mean of the model over the PEs matched
the measured ``busy`` counter within 1% (the model has no stalls, starvation or drain).

Default size: the ESE model (I=153, H=1024, P=512, 11.2%, 32 PEs); ``--quick``: I=40, H=256,
P=128 on 8 PEs, which has the same rows and nonzeros per PE and column as ESE's.
"""

import json
import time
from pathlib import Path

import numpy as np

__all__ = ["run_bench", "pe_issue_cycles", "overlap_layers", "NAME"]

NAME = "ese-overlap"


def pe_issue_cycles(sl, macs=2):
    """Model cycles of one PE's slice (:class:`~sparsa.sw.eie.format.PESlice`) on a dense input,
    the sparse-matrix reader's rule (full accumulator banks): over the words of the columns
    with entries, in order, a word's ``left`` is its real entries less those a step of the word
    before took along; it takes ``ceil(left / macs)`` cycles, and with ``macs=2`` its odd last
    entry takes the first of the next word along (of its column or the next). A word with
    nothing left takes one cycle, in which the next word issues its first step when it has
    real entries, so a word of padding costs no cycle of its own when real entries follow."""
    ptr, v = sl.ptr, sl.v
    words = []                         # real entries of each word of each column job
    for j in range(len(ptr) - 1):
        a, b = int(ptr[j]), int(ptr[j + 1])
        if a == b:
            continue                   # no job: an empty column costs the PE nothing
        words += [int(np.count_nonzero(v[max(a, 8 * w):min(b, 8 * w + 8)])) for w in range(a // 8, (b - 1) // 8 + 1)]
    total, taken = 0, 0
    for i, k in enumerate(words):
        left = k - taken
        nk = words[i + 1] if i + 1 < len(words) else 0
        if left > 0:
            total += -(-left // macs)
            taken = int(macs == 2 and left % 2 == 1 and nk > 0)
        else:
            total += 1
            taken = min(macs, nk)
    return total


def overlap_layers(pack):
    """The overlapped schedule's layers B and A of an LSTM pack, for cycle counting only.

    B: rows ``[W_hr (P'); W_ih in the gate rows (4H')]``, columns ``[m (H'); x (I)]``; A: the
    gate rows with ``W_hh`` (columns ``y``, P'). Both carry the gates' codebook (see the module
    docstring: the values are wrong for W_hr, the cycles are not)."""
    from sparsa.sw.eie.pack import make_layer
    gates, proj = pack.layers
    n = pack.pes
    hp, pp, inputs = pack.lstm["hidden_pad"], pack.lstm["outputs_pad"], pack.lstm["inputs"]
    gi, gj, gv = gates.coo()
    pi, pj, pv = proj.coo()
    xs = gj >= pp
    b = make_layer("B", pp + 4 * hp, hp + inputs, np.concatenate([pi, gi[xs] + pp]),
                   np.concatenate([pj, gj[xs] - pp + hp]), np.concatenate([pv, gv[xs]]), gates.codebook, n)
    a = make_layer("A", 4 * hp, pp, gi[~xs], gj[~xs], gv[~xs], gates.codebook, n)
    return b, a


def run_bench(out_dir, args):
    from sparsa.hw.eie.pe import COUNTERS
    from sparsa.bench.ese import ESE, random_ese_weights
    from sparsa.sim.eie.runner import run_memory_map
    from sparsa.sw.eie.config import EIEConfig
    from sparsa.sw.eie.memmap import build_memory_map
    from sparsa.sw.lstm.pack import compress_lstm, pack_lstm
    from sparsa.sw.eie.pack import Pack
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    quick = bool(getattr(args, "quick", False))
    e = dict(ESE)
    if quick:
        e.update(inputs=40, hidden=256, outputs=128, pes=8)
    i, h, p, n = e["inputs"], e["hidden"], e["outputs"], e["pes"]
    rng = np.random.default_rng(2017)
    comp = compress_lstm(random_ese_weights(rng, i, h, p), e["density"], 4, n)
    pack = pack_lstm(comp, n)
    gates, proj = pack.layers
    b, a = overlap_layers(pack)
    layers = {"gates": gates, "projection": proj, "B": b, "A": a}
    mms = {k: build_memory_map(Pack(pes=n, layers=[l])) for k, l in layers.items()}
    # One build serves all four runs: every size rounded up from the largest of the four.
    cfg = EIEConfig.reusable_for(*mms.values())
    print(f"[bench ese-overlap] I={i} H={h} P={p} on {n} PEs; {cfg}", flush=True)
    t0 = time.perf_counter()
    res = {}
    for k, layer in layers.items():
        # Two vectors: the second one's counts (the first pays the CLEAR pass after reset).
        x = (rng.integers(1, 4096, size=(2, layer.cols)) * rng.choice([-1, 1], size=(2, layer.cols))).astype(np.int16)
        r = run_memory_map(mms[k], x, engine="verilator", cfg=cfg, progress=True)
        stat = r["layer_stats"][1][0]                 # (PEs, counters)
        model = [pe_issue_cycles(s) for s in layer.slices]
        res[k] = {"cycles": int(r["layer_cycles"][1][0]), "drained_rows_pe": -(-layer.rows // n),
                  "model_max": int(max(model)), "model_mean": round(float(np.mean(model)), 1),
                  **{f"{c}_mean": round(float(stat[:, ci].mean()), 1) for ci, c in enumerate(COUNTERS)}}
        print(f"[bench ese-overlap] {k}: {res[k]}", flush=True)
    today = res["gates"]["cycles"] + res["projection"]["cycles"]
    overlapped = res["B"]["cycles"] - 4 * pack.lstm["hidden_pad"] // n + res["A"]["cycles"]
    result = {"model": {"inputs": i, "hidden": h, "outputs": p, "density": e["density"], "pes": n, "quick": quick},
              "layers": res, "today_cycles_per_step": today, "overlapped_cycles_per_step": overlapped,
              "overlap_saves": today - overlapped, "sim_s": round(time.perf_counter() - t0, 1)}
    (out / f"{NAME}.json").write_text(json.dumps(result, indent=2) + "\n")
    md = _markdown(result)
    (out / f"{NAME}.md").write_text(md)
    print(md)
    return result


def _markdown(r):
    m = r["model"]
    lines = [f"# Overlapped ESE schedule, measured before building it (I={m['inputs']} H={m['hidden']} "
             f"P={m['outputs']}, {m['density']:.1%}, {m['pes']} PEs, Verilator)", "",
             "| layer | cycles | drained rows/PE | busy (mean) | starved (mean) | stalled (mean) | model mean / max |",
             "|---|---|---|---|---|---|---|"]
    for k, v in r["layers"].items():
        lines.append(f"| {k} | {v['cycles']:,} | {v['drained_rows_pe']} | {v['busy_mean']:,} | {v['starved_mean']:,} "
                     f"| {v['stalled_mean']:,} | {v['model_mean']:,} / {v['model_max']:,} |")
    lines += ["", f"Today (gates + projection): **{r['today_cycles_per_step']:,}** cycles per step; "
              f"overlapped (B without its gate-row drain + A): **{r['overlapped_cycles_per_step']:,}** "
              f"(saves {r['overlap_saves']:,})."]
    return "\n".join(lines) + "\n"
