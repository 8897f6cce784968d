"""`sparsa report`: one HTML page (plus PNG figures) about a pack and, optionally, its hardware runs.

Sections (each an ``<section id=...>``):

* ``summary``: model size, PEs, compression ratio, measured cycles;
* ``compression``: per layer, Deep Compression's stages -- dense fp32, pruned (fp32 values
  and 4-bit relative indices, padding included), weight sharing (4-bit codebook indices), and
  Huffman-coded index streams -- as ratios against dense fp32;
* ``load``: per-PE entries and padding of every layer (what load balance looks like);
* ``cycles``: measured against ideal cycles per layer (EIE's model: max(entries / PEs,
  nonzero activations)) and per-PE busy / starved / stalled counts, from ``sparsa run
  --report``;
* ``roofline``: operations per cycle against the PE count: the compute roof (2 ops per MAC,
  ``macs`` MACs per PE per cycle), the broadcast roof (one nonzero activation per cycle brings
  ``2 * real entries / nonzero activations`` ops), and the measured points.

The figures go to ``<stem>_files/`` next to the HTML; everything is written to temporary
names and renamed at the end, so a failure leaves no half-written report.
"""

import html
import json
from pathlib import Path

import numpy as np

from sparsa.sw.compress.report import storage_bits
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import atomic_dir, atomic_file, read_json
from sparsa.sw.eie.pack_dir import load_pack

__all__ = ["compression_stages", "build_report", "write_report", "SECTIONS"]

SECTIONS = ("summary", "compression", "load", "cycles", "roofline")
_FILES_MARKER = "report-data.json"


def compression_stages(layer):
    """Bits of one pack layer at each Deep Compression stage (weights only, as in the paper)."""
    size = storage_bits(layer.slices, layer.cols)
    entries = size["entries"]
    nnz = sum(int(np.count_nonzero(s.v)) for s in layer.slices)
    stages = {
        "dense fp32": layer.rows * layer.cols * 32,
        "pruned (fp32 + 4-bit index)": entries * (32 + 4) + size["pointer"],
        "+ weight sharing (4-bit)": size["eie"],
        "+ Huffman": size["huffman"],
    }
    return {"name": layer.name, "rows": layer.rows, "cols": layer.cols, "nonzeros": nnz,
            "entries": entries, "padding": entries - nnz, "bits": stages,
            "ratio": {k: stages["dense fp32"] / b for k, b in stages.items()}}


def _load_json(path, what):
    return read_json(path, what)


def build_report(pack_dir, run=None, bench=None):
    """Collect the report's data (a JSON-able dict) from a pack and optional run/bench reports."""
    pack = load_pack(pack_dir)
    data = {"pack": str(pack_dir), "pes": pack.pes, "layers": [], "run": None, "bench": None}
    for layer in pack.layers:
        rec = compression_stages(layer)
        rec["entries_per_pe"] = [int(s.entries) for s in layer.slices]
        rec["padding_per_pe"] = [int(s.padding) for s in layer.slices]
        data["layers"].append(rec)
    if run is not None:
        data["run"] = check_run(_load_json(run, "run report"), run, pack)
    if bench is not None:
        data["bench"] = check_bench(_load_json(bench, "benchmark report"), bench)
    return data


BENCH_FORMAT = "sparsa-bench-eie"
_RUN_WHAT = "a hardware run report (sparsa run --engine verilator|icarus --report R.json)"


NUM_MAX = 1e15      # counters and cycle counts: far above any real run, far below float overflow


def _num(v):
    """A JSON number a report can compute with: finite, 0..1e15 (``10**400`` is valid JSON)."""
    return isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= NUM_MAX


def check_run(rep, where, pack):
    """``rep`` must be a hardware run report of ``pack``: every field the report reads, by type
    and size (the PE and layer counts the pack's), or a one-line UserError."""
    if not isinstance(rep, dict):
        raise user_error(where, "run report", _RUN_WHAT, f"a JSON {type(rep).__name__}")
    layers = rep.get("layers")
    if not isinstance(layers, list) or not all(isinstance(l, dict) for l in layers):
        raise user_error(where, "layers", f"a list of layer objects ({_RUN_WHAT})", repr(layers)[:60])
    if not layers or not all("cycles" in l for l in layers):
        raise user_error(where, "layers[].cycles", _RUN_WHAT, "no cycle counts (a golden-engine report?)")
    if type(rep.get("pes")) is not int or rep["pes"] != pack.pes or len(layers) != len(pack.layers):
        raise user_error(where, "pes/layers", f"{pack.pes} PEs and {len(pack.layers)} layers (the pack's)",
                         f"{rep.get('pes')!r} PEs and {len(layers)} layers")
    for key in ("cycles", "cycles_per_inference"):
        if key in rep and not _num(rep[key]):
            raise user_error(where, key, "a number >= 0", repr(rep[key])[:60])
    if "config" in rep and not (isinstance(rep["config"], dict) and isinstance(rep["config"].get("macs", 1), int)):
        raise user_error(where, "config.macs", "an integer", repr(rep["config"])[:60])
    for i, l in enumerate(layers):
        for key in ("cycles", "ideal_cycles", "efficiency", "nonzero_activations"):
            if key in l and not (_num(l[key]) or (key == "efficiency" and l[key] is None)):
                raise user_error(where, f"layers[{i}].{key}", "a number >= 0", repr(l[key])[:60])
        pp = l.get("per_pe")
        if not isinstance(pp, dict):
            raise user_error(where, f"layers[{i}].per_pe", "an object of per-PE counters", repr(pp)[:60])
        for key in ("busy", "starved", "stalled", "pad") + (("macs",) if "macs" in pp else ()):
            v = pp.get(key)
            if not (isinstance(v, list) and len(v) == pack.pes and all(_num(c) for c in v)):
                raise user_error(where, f"layers[{i}].per_pe.{key}", f"{pack.pes} counts >= 0 (one per PE)",
                                 repr(v)[:60])
    return rep


def check_bench(rep, where):
    """``rep`` must be a ``sparsa bench eie`` result (``eie.json``): the fields the report reads,
    by type. Results written before the ``format`` field existed are accepted by their fields."""
    what = "a `sparsa bench eie` result (eie.json)"
    if not isinstance(rep, dict):
        raise user_error(where, "benchmark report", what, f"a JSON {type(rep).__name__}")
    fmt = rep.get("format", BENCH_FORMAT)
    if fmt != BENCH_FORMAT:
        raise user_error(where, "format", f"{BENCH_FORMAT!r} ({what})", repr(fmt)[:60])
    for key, kind in (("layers", list), ("sweeps", dict), ("summary", dict)):
        if not isinstance(rep.get(key), kind):
            found = "none" if key not in rep else f"a {type(rep[key]).__name__}"
            raise user_error(where, key, f"a JSON {'array' if kind is list else 'object'} ({what})", found)
    num = _num
    for i, row in enumerate(rep["layers"]):
        if not (isinstance(row, dict) and isinstance(row.get("layer"), str) and num(row.get("real_entries_active"))
                and num(row.get("measured_cycles"))):
            raise user_error(where, f"layers[{i}]", "an object with layer (a name), real_entries_active and "
                             "measured_cycles (numbers)", repr(row)[:60])
    sweep = rep["sweeps"].get("pes", [])
    if not isinstance(sweep, list):
        raise user_error(where, "sweeps.pes", "a list of {pes, cycles}", f"a {type(sweep).__name__}")
    for i, s in enumerate(sweep):
        if not (isinstance(s, dict) and isinstance(s.get("pes"), int) and not isinstance(s.get("pes"), bool)
                and s["pes"] >= 1 and num(s.get("cycles")) and s["cycles"] > 0):
            raise user_error(where, f"sweeps.pes[{i}]", "an object with pes >= 1 (an integer) and cycles > 0",
                             repr(s)[:60])
    return rep


# ---- figures ----------------------------------------------------------------------------------

def _figures(data, out):
    import matplotlib
    matplotlib.use("Agg")
    matplotlib.rcParams["text.parse_math"] = False      # layer names are text: "$x$" is not TeX
    import matplotlib.pyplot as plt
    figs = {}
    names = [l["name"] for l in data["layers"]]
    pos = np.arange(len(names))

    fig, ax = plt.subplots(figsize=(8, 3.6))
    stages = list(data["layers"][0]["ratio"])[1:]
    w = 0.8 / len(stages)
    for k, st in enumerate(stages):
        ax.bar(pos + (k - (len(stages) - 1) / 2) * w, [l["ratio"][st] for l in data["layers"]], w, label=st)
    ax.set_xticks(pos, names)
    ax.set_ylabel("compression vs dense fp32 (x)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title("Compression by stage")
    fig.tight_layout()
    figs["compression"] = _save(fig, out, "compression.png")

    n = len(data["layers"])
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.9 * n + 0.6), squeeze=False)
    for ax, l in zip(axes[:, 0], data["layers"]):
        ent = np.array(l["entries_per_pe"])
        pad = np.array(l["padding_per_pe"])
        pe = np.arange(ent.size)
        ax.bar(pe, ent - pad, label="real entries")
        ax.bar(pe, pad, bottom=ent - pad, label="padding")
        ax.set_ylabel(l["name"])
        if ent.size and ent.mean() > 0:
            ax.axhline(ent.mean(), color="k", lw=0.8, ls="--")
    axes[0, 0].legend(fontsize=8, loc="upper right")
    axes[-1, 0].set_xlabel("PE")
    from matplotlib.ticker import MaxNLocator
    for ax in axes[:, 0]:
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.suptitle("Entries per PE (dashed: mean)")
    fig.tight_layout()
    figs["load"] = _save(fig, out, "load.png")

    run = data["run"]
    if run:
        fig, (a1, a2) = plt.subplots(1, 2, figsize=(9, 3.6))
        meas = [l.get("cycles", 0) for l in run["layers"]]
        ideal = [l.get("ideal_cycles", 0) for l in run["layers"]]
        a1.bar(pos - 0.2, ideal, 0.4, label="ideal")
        a1.bar(pos + 0.2, meas, 0.4, label="measured")
        a1.set_xticks(pos, names)
        a1.set_ylabel("cycles (whole batch)")
        a1.legend(fontsize=8)
        a1.set_title("Measured vs ideal")
        pe = np.arange(run["pes"])
        bottom = np.zeros(run["pes"])
        for key in ("busy", "starved", "stalled"):
            vals = np.sum([l["per_pe"][key] for l in run["layers"]], axis=0)
            a2.bar(pe, vals, bottom=bottom, label=key)
            bottom += vals
        a2.set_xlabel("PE")
        a2.set_ylabel("cycles (all layers)")
        a2.legend(fontsize=8)
        a2.set_title("Per-PE busy / starved / stalled")
        fig.tight_layout()
        figs["cycles"] = _save(fig, out, "cycles.png")

        fig, ax = plt.subplots(figsize=(7, 4))
        macs = int(run.get("config", {}).get("macs", 1)) if isinstance(run.get("config"), dict) else 1
        ns = 2.0 ** np.arange(0, max(3, int(np.log2(run["pes"])) + 4))
        ax.plot(ns, 2 * macs * ns, "k-", label=f"compute roof ({macs} MAC/PE/cycle)")
        for l, name in zip(run["layers"], names):
            real = sum(l["per_pe"].get("macs", l["per_pe"]["busy"]))
            acts = l.get("nonzero_activations") or 0
            if acts:
                ax.plot(ns, np.minimum(2 * macs * ns, 2 * real / acts), ls="--", lw=0.8,
                        label=f"{name}: bound (broadcast {2 * real / acts:.0f} ops/cycle)")
            if l.get("cycles"):
                ax.plot([run["pes"]], [2 * real / l["cycles"]], "o", ms=7, label=f"{name}: measured")
        bench = data["bench"]
        if bench and bench.get("sweeps", {}).get("pes"):
            ref = next((x for x in bench["layers"] if x["layer"] == "Alex-7"), None)
            if ref:
                sw = bench["sweeps"]["pes"]
                ax.plot([s["pes"] for s in sw], [2 * ref["real_entries_active"] / s["cycles"] for s in sw],
                        "s-", label="another model: Alex-7 PE sweep (sparsa bench eie)")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("PEs")
        ax.set_ylabel("ops per cycle (2 per MAC)")
        ax.legend(fontsize=7)
        ax.set_title("Roofline: ops/cycle vs PE count")
        fig.tight_layout()
        figs["roofline"] = _save(fig, out, "roofline.png")
    return figs


def _save(fig, out, name):
    import matplotlib.pyplot as plt
    fig.savefig(out / name, dpi=100)
    plt.close(fig)
    return name


# ---- HTML -------------------------------------------------------------------------------------

_CSS = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:980px;color:#222}
table{border-collapse:collapse;margin:.6em 0}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.note{color:#666}section{margin-bottom:2em}"""

# Marks the page once every figure has loaded (a browser test reads the attribute).
_SCRIPT = """window.addEventListener('load', function () {
  var imgs = document.images, ok = 0;
  for (var i = 0; i < imgs.length; i++) if (imgs[i].complete && imgs[i].naturalWidth > 0) ok++;
  document.body.setAttribute('data-images', ok + '/' + imgs.length);
});"""


def _table(head, rows):
    h = "".join(f"<th>{html.escape(str(c))}</th>" for c in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f"<table><tr>{h}</tr>{body}</table>"


def _img(figs, files, key, alt):
    return f'<img src="{files}/{figs[key]}" alt="{html.escape(alt)}">' if key in figs else ""


def _html(data, figs, files):
    L = data["layers"]
    tot = {k: sum(l["bits"][k] for l in L) for k in L[0]["bits"]}
    run = data["run"]
    parts = [f"<h1>sparsa report: {html.escape(data['pack'])}</h1>"]

    rows = [("PEs", data["pes"]), ("layers", len(L)),
            ("weights", f"{sum(l['rows'] * l['cols'] for l in L):,}"),
            ("nonzeros", f"{sum(l['nonzeros'] for l in L):,}"),
            ("compression (EIE format)", f"{tot['dense fp32'] / tot['+ weight sharing (4-bit)']:.1f}x"),
            ("compression with Huffman", f"{tot['dense fp32'] / tot['+ Huffman']:.1f}x")]
    if run:
        rows += [("engine", run.get("engine", "?")), ("batch", run.get("batch", "?")),
                 ("cycles (whole run)", f"{run.get('cycles', 0):,}"),
                 ("cycles per inference", f"{run.get('cycles_per_inference', 0):.1f}")]
    parts.append('<section id="summary"><h2>Summary</h2>' + _table(("", "value"), rows) + "</section>")

    stages = list(L[0]["bits"])
    rows = [(l["name"], f"{l['rows']}x{l['cols']}", f"{l['nonzeros'] / (l['rows'] * l['cols']):.4f}",
             l["padding"]) + tuple(f"{l['ratio'][s]:.1f}x" for s in stages[1:]) for l in L]
    rows.append(("total", "", "", sum(l["padding"] for l in L))
                + tuple(f"{tot['dense fp32'] / tot[s]:.1f}x" for s in stages[1:]))
    parts.append('<section id="compression"><h2>Compression breakdown</h2>'
                 '<p class="note">Weights only (biases excluded, as in Deep Compression); ratios against '
                 'dense fp32. Pruned: fp32 values with 4-bit relative indices, padding entries and '
                 'pointers included. Weight sharing: 4-bit codebook indices plus a 16-entry codebook. '
                 'Huffman: the index and relative-index streams Huffman-coded.</p>'
                 + _table(("layer", "shape", "density", "padding") + tuple(stages[1:]), rows)
                 + _img(figs, files, "compression", "compression by stage") + "</section>")

    rows = []
    for l in L:
        e = np.array(l["entries_per_pe"])
        rows.append((l["name"], e.min(), f"{e.mean():.1f}", e.max(),
                     f"{e.max() / e.mean():.3f}" if e.mean() else "-", sum(l["padding_per_pe"])))
    parts.append('<section id="load"><h2>Per-PE load</h2>'
                 '<p class="note">Entries (real and padding) each PE stores; a PE holding more than the '
                 'mean is the one the others wait for. Load-balance-aware pruning '
                 '(<code>--balance-pes</code>) evens the real entries out.</p>'
                 + _table(("layer", "min", "mean", "max", "max / mean", "padding"), rows)
                 + _img(figs, files, "load", "entries per PE") + "</section>")

    if run:
        rows = []
        for l, name in zip(run["layers"], (x["name"] for x in L)):
            pp = l["per_pe"]
            rows.append((name, f"{l.get('cycles', 0):,}", f"{l.get('ideal_cycles', 0):,.1f}",
                         f"{l['efficiency']:.3f}" if l.get("efficiency") else "-",
                         sum(pp.get("macs", pp["busy"])), max(pp["stalled"]), max(pp["starved"]),
                         sum(pp["pad"])))
        body = (_table(("layer", "measured", "ideal", "efficiency", "MACs", "max stalled", "max starved",
                        "padding skipped"), rows) + _img(figs, files, "cycles", "measured vs ideal cycles"))
        roof = _img(figs, files, "roofline", "roofline")
    else:
        body = roof = ('<p class="note">No hardware run given: run <code>sparsa run DIR -i X.npy -o Y.npy '
                       '--engine verilator --report R.json</code> and pass <code>--run R.json</code>.</p>')
    parts.append('<section id="cycles"><h2>Cycles: measured vs ideal, stalls and starvation</h2>'
                 '<p class="note">Ideal = max(entries in the active columns / PEs, nonzero activations), '
                 'EIE\'s model. Stalled: cycles a PE\'s full queue held up the broadcast; starved: '
                 'cycles with nothing to do.</p>' + body + "</section>")
    parts.append('<section id="roofline"><h2>Roofline: operations per cycle vs PEs</h2>'
                 '<p class="note">The array cannot beat either roof: its MACs (compute) or the '
                 'broadcast of one nonzero activation per cycle, which brings on average '
                 '(real entries / nonzero activations) MACs.</p>' + roof + "</section>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>sparsa report</title>"
            f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>"
            + "".join(parts) + "</body></html>\n")


def _owned_files_dir(path):
    """An earlier report's figures directory: its data file, and nothing but PNG figures."""
    path = Path(path)
    return (path / _FILES_MARKER).is_file() and all(
        f.is_file() and not f.is_symlink() and (f.name == _FILES_MARKER or f.suffix == ".png") for f in path.iterdir())


def write_report(data, out_html, figures=None, render=None):
    """Write ``out_html`` and its figures directory ``<stem>_files`` (atomically, both);
    ``figures(data, dir)`` and ``render(data, figs, files)`` default to the EIE pack's."""
    figures, render = figures or _figures, render or _html
    out_html = Path(out_html)
    if out_html.suffix.lower() not in (".html", ".htm"):
        raise user_error(None, "-o", "an output path ending in .html", str(out_html))
    files_dir = out_html.with_name(out_html.stem + "_files")
    with atomic_dir(files_dir, owned=_owned_files_dir) as tmp:
        figs = figures(data, Path(tmp))
        (Path(tmp) / _FILES_MARKER).write_text(json.dumps(data, indent=1, default=str) + "\n")
        text = render(data, figs, files_dir.name)
        with atomic_file(out_html) as tmp_html:
            Path(tmp_html).write_text(text)
    return out_html, files_dir
