"""`sparsa report` for a CNN pack: per-layer latency and DRAM bandwidth, modelled and measured.

Sections (each an ``<section id=...>``):

* ``summary``: lanes, multipliers, instructions, MACs, DRAM, the cycle model's total (and
  the measured one with ``--run``), latency at 200 and 400 MHz;
* ``layers``: per layer its op and datapath, output shape, MACs, weight and DRAM bytes, the
  cycle model's cycles (:mod:`sparsa.sw.cnn.timing`), the measured cycles of a
  ``sparsa run --engine verilator|icarus --report R.json`` run, latency at 200 MHz, MAC
  utilisation and the DRAM bandwidth it needs (bytes a cycle, GB/s at 200 MHz);
* ``bandwidth``: the figure of both (where the time goes, and what it moves).

The page and figures are written as the EIE report's (:func:`sparsa.report.write_report`).
"""

import html

import numpy as np

from sparsa.report import _CSS, _SCRIPT, _num, _save, _table
from sparsa.sw.cnn.timing import REPORT_MHZ as CLOCKS_MHZ, program_cycles
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import read_json

__all__ = ["build_cnn_report", "check_cnn_run"]

_RUN_WHAT = "a CNN run report (sparsa run PACK --engine verilator|icarus --report R.json)"


def _count(v):
    """A cycle count as a run report holds it: an integer 1..1e15."""
    return _num(v) and v >= 1 and float(v).is_integer()


def _text(v):
    """A string as it can go into a page and a figure (UTF-8, no lone surrogates)."""
    return str(v).encode("utf-8", "replace").decode("utf-8")


def check_cnn_run(rep, where, pack_layers, lanes):
    """``rep`` must be a hardware run report of this CNN pack (its ``lanes`` and its layers,
    by name): the fields the report reads, by type and size, or a one-line UserError."""
    if not isinstance(rep, dict):
        raise user_error(where, "run report", _RUN_WHAT, f"a JSON {type(rep).__name__}")
    if rep.get("kind") != "cnn":
        raise user_error(where, "kind", f"'cnn' ({_RUN_WHAT})", repr(rep.get("kind"))[:60])
    if type(rep.get("lanes")) is not int or rep["lanes"] != lanes:
        raise user_error(where, "lanes", f"{lanes} (the pack's: a run of this pack)", repr(rep.get("lanes"))[:60])
    for key, ok, what in (("engine", lambda v: isinstance(v, str) and 0 < len(v) <= 40, "the engine's name"),
                          ("batch", lambda v: type(v) is int and v >= 0, "an integer >= 0"),
                          ("cycles_per_input", lambda v: _num(v) and v >= 1, "a number >= 1")):
        if not ok(rep.get(key)):
            raise user_error(where, key, what, repr(rep.get(key))[:60])
    layers = rep.get("layers")
    n = len(pack_layers)
    if rep.get("engine") == "board" and layers is None:
        raise user_error(where, "layers", "per-layer cycles (a board run counts whole inputs only: "
                         "sparsa run --engine verilator --report R.json gives them)", "none (a board run)")
    if not isinstance(layers, list) or len(layers) != n or not all(isinstance(l, dict) for l in layers):
        found = f"{len(layers)} entries" if isinstance(layers, list) else repr(layers)[:60]
        raise user_error(where, "layers", f"{n} layer objects (the pack's layers)", found)
    for i, (l, m) in enumerate(zip(layers, pack_layers)):
        if l.get("name") != m["name"]:
            raise user_error(where, f"layers[{i}].name", f"{m['name']!r} (the pack's layer: a run of this pack)",
                             repr(l.get("name"))[:60])
        c = l.get("cycles")
        c = [c] if not isinstance(c, list) else c          # one input: a number, else one per input
        if m.get("instr_start") is not None and m.get("instr_start") == m.get("instr_end"):
            # a layer without instructions (a concat whose inputs are written in place) takes 0
            if not (c and all(_num(v) and v == 0 for v in c)):
                raise user_error(where, f"layers[{i}].cycles", "0 for a layer without instructions (one per "
                                 "input)", repr(l.get("cycles"))[:60])
        elif not (c and all(_count(v) for v in c)):
            raise user_error(where, f"layers[{i}].cycles", "a cycle count (an integer >= 1) or a list of them, "
                             "one per input (a golden-engine report has none)", repr(l.get("cycles"))[:60])
    return rep


def build_cnn_report(pack_dir, run=None):
    """The report's data (a JSON-able dict) from a CNN pack and an optional run report."""
    from sparsa.sw.cnn.pack import load_cnn_pack
    prog, cfg, man = load_cnn_pack(pack_dir)
    tm = program_cycles(prog.program)
    model = tm.layer_cycles(prog.layers)
    rep = None
    if run is not None:
        rep = check_cnn_run(read_json(run, "run report"), run, prog.layers, cfg.lanes)
    layers = []
    for i, (m, c) in enumerate(zip(prog.layers, model)):
        row = {"name": _text(m["name"]), "op": m["op"], "datapath": m["datapath"], "shape": list(m["shape"]),
               "macs": int(m["macs"]), "weight_bytes": int(m["weight_bytes"]), "dram_read": int(m["dram_read"]),
               "dram_write": int(m["dram_write"]), "model_cycles": int(c)}
        if rep is not None:
            row["measured_cycles"] = float(np.mean(rep["layers"][i]["cycles"]))      # a number or a list
        layers.append(row)
    return {"kind": "cnn", "pack": _text(pack_dir), "lanes": cfg.lanes, "multipliers": cfg.peak_multipliers,
            "datapath": man["datapath"], "instructions": prog.n_instructions, "dram_size": prog.dram_size,
            "macs": sum(l["macs"] for l in layers), "model_cycles": tm.cycles,
            "run": None if rep is None else {"engine": _text(rep["engine"]), "batch": rep["batch"],
                                             "cycles_per_input": float(rep["cycles_per_input"])},
            "layers": layers}


def cnn_figures(data, out):
    """Per-layer cycles (model, measured) and DRAM bytes (read, written), one PNG."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    with matplotlib.rc_context({"text.parse_math": False}):      # names are text, never TeX
        return _cnn_figures(data, out, plt)


def _cnn_figures(data, out, plt):
    L = data["layers"]
    pos = np.arange(len(L))
    fig, (a, b) = plt.subplots(2, 1, figsize=(9, 5.6), sharex=True)
    w = 0.4 if data["run"] else 0.8
    a.bar(pos - (w / 2 if data["run"] else 0), [l["model_cycles"] for l in L], w, label="cycle model")
    if data["run"]:
        a.bar(pos + w / 2, [l["measured_cycles"] for l in L], w, label=f"measured ({data['run']['engine']})")
    a.set_ylabel("cycles")
    a.legend(fontsize=8)
    a.set_title("Where the time goes, and what it moves")
    b.bar(pos, [l["dram_read"] / 1e6 for l in L], 0.8, label="DRAM read (weights included)")
    b.bar(pos, [l["dram_write"] / 1e6 for l in L], 0.8, bottom=[l["dram_read"] / 1e6 for l in L],
          label="DRAM written")
    b.set_ylabel("MB")
    b.legend(fontsize=8)
    b.set_xticks(pos, [l["name"] for l in L], rotation=60, ha="right", fontsize=7)
    fig.tight_layout()
    return {"bandwidth": _save(fig, out, "bandwidth.png")}


def cnn_html(data, figs, files):
    L, run = data["layers"], data["run"]
    f0 = CLOCKS_MHZ[0]
    parts = [f"<h1>sparsa report: {html.escape(data['pack'])} (CNN engine)</h1>"]
    rows = [("lanes (multipliers)", f"{data['lanes']} ({data['multipliers']})"), ("datapath", data["datapath"]),
            ("layers", len(L)), ("instructions", f"{data['instructions']:,}"), ("MACs", f"{data['macs']:,}"),
            ("DRAM", f"{data['dram_size']:,} bytes"), ("cycles (cycle model)", f"{data['model_cycles']:,}")]
    rows += [(f"latency @{f} MHz (cycle model)", f"{data['model_cycles'] / f:,.1f} us") for f in CLOCKS_MHZ]
    if run:
        rows += [("engine", run["engine"]), ("batch", run["batch"]),
                 ("cycles per input (measured)", f"{run['cycles_per_input']:,.0f}")]
        rows += [(f"latency @{f} MHz (measured)", f"{run['cycles_per_input'] / f:,.1f} us") for f in CLOCKS_MHZ]
    parts.append('<section id="summary"><h2>Summary</h2>' + _table(("", "value"), rows) + "</section>")

    head = ("layer", "op (datapath)", "output", "MACs", "weight bytes", "DRAM read", "DRAM written",
            "cycles (model)") + (("cycles (measured)",) if run else ()) + (
        f"us @{f0} MHz", "MAC util", "bytes / cycle", f"GB/s @{f0} MHz")
    body = []
    for l in L:
        cyc = l.get("measured_cycles", l["model_cycles"])       # >= 1, or 0 for a layer without instructions
        moved = l["dram_read"] + l["dram_write"]
        rate = lambda v: f"{v:.2f}" if cyc else "-"
        body.append((l["name"], f"{l['op']} ({l['datapath'] or '-'})", "x".join(map(str, l["shape"])),
                     f"{l['macs']:,}", f"{l['weight_bytes']:,}", f"{l['dram_read']:,}", f"{l['dram_write']:,}",
                     f"{l['model_cycles']:,}") + ((f"{l['measured_cycles']:,.0f}",) if run else ()) + (
            f"{cyc / f0:,.1f}", f"{l['macs'] / (data['multipliers'] * cyc):.3f}" if l["macs"] and cyc else "",
            rate(moved / max(cyc, 1)), rate(moved / max(cyc, 1) * f0 / 1e3)))
    parts.append('<section id="layers"><h2>Per layer: latency and DRAM bandwidth</h2>'
                 '<p class="note">Latency, MAC utilisation (against 9 multipliers a lane on the window '
                 'convolver) and bandwidth use the measured cycles when a run is given, else the cycle '
                 'model\'s. The cycle model assumes a zero-wait-state DRAM; its distance from the RTL is '
                 'bounded in tests/cnn_cases.py (check_cycle_model). The engine\'s AXI port moves at most '
                 '8 bytes a cycle.</p>' + _table(head, body) + "</section>")
    parts.append('<section id="bandwidth"><h2>Cycles and DRAM traffic per layer</h2>'
                 + (f'<img src="{files}/{figs["bandwidth"]}" alt="cycles and DRAM bytes per layer">'
                    if "bandwidth" in figs else "") + "</section>")
    return ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>sparsa report</title>"
            f"<style>{_CSS}</style><script>{_SCRIPT}</script></head><body>"
            + "".join(parts) + "</body></html>\n")
