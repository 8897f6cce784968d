"""Show the per-layer and per-PE load of a pack directory, with predicted cycles.

Cycle model (dense input: every activation nonzero, so every PE walks its whole entry
stream for every column; PEs wait for the slowest one at the end of a layer):

* EIE-style: one cycle per entry, padding included (Han et al. ISCA'16: a padding entry
  occupies an arithmetic slot). A PE needs ``entries`` cycles.
* sparsa-style: padding nearly free: one cycle per real entry (a padding entry only
  advances the row address and is consumed alongside the entry after it). A PE needs
  ``entries - padding`` cycles.

A layer takes the maximum over its PEs; ``ideal`` is the real entries spread evenly
(``ceil(nnz / pes)``) and ``imbalance`` is max/mean of the per-PE cycles. Only the
manifest is read (no image is opened or verified). ``--json`` prints the same numbers.

A CNN pack (``sparsa pack`` of an integer graph) shows per layer its instructions, tiles,
MACs, ideal MAC cycles (``lanes`` multiplies each) and DRAM traffic instead.
"""

import json
import sys

import numpy as np

from sparsa.sw.eie.pack_dir import read_manifest

__all__ = ["add_arguments", "run", "load_table"]


def add_arguments(p):
    p.add_argument("pack", metavar="DIR", help="pack directory (from sparsa pack)")
    p.add_argument("--json", action="store_true", help="print the table as JSON instead")
    p.add_argument("--summary", action="store_true", help="only the per-layer table (no per-PE rows)")


def _ratio(a):
    mean = float(np.mean(a)) if len(a) else 0.0
    return float(np.max(a)) / mean if mean else 1.0


def load_table(man):
    """Per-layer and per-PE loads and predicted cycles from a manifest dict."""
    pes = int(man["pes"])
    layers = []
    for n, ml in enumerate(man["layers"]):
        ent = np.asarray(ml["entries_per_pe"], dtype=np.int64)
        pad = np.asarray(ml["padding_per_pe"], dtype=np.int64)
        real = ent - pad
        layers.append({
            "layer": n, "name": ml["name"], "rows": ml["rows"], "cols": ml["cols"], "nnz": ml["nnz"],
            "entries": int(ent.sum()), "padding": int(pad.sum()),
            "cycles_eie": int(ent.max()), "cycles_sparsa": int(real.max()),
            "cycles_ideal": -(-int(ml["nnz"]) // pes),
            "imbalance_eie": _ratio(ent), "imbalance_sparsa": _ratio(real),
            "pes": [{"pe": k, "rows": int(ml["rows_per_pe"][k]), "real": int(real[k]),
                     "padding": int(pad[k]), "entries": int(ent[k]),
                     "cycles_eie": int(ent[k]), "cycles_sparsa": int(real[k])} for k in range(pes)],
        })
    return {"pes": pes, "pointer_bits": man["pointer_bits"], "model": "dense input; see sparsa inspect --help",
            "layers": layers,
            "total": {"cycles_eie": sum(l["cycles_eie"] for l in layers),
                      "cycles_sparsa": sum(l["cycles_sparsa"] for l in layers)}}


def _print(table, summary):
    from rich.console import Console
    from rich.table import Table
    # Off a terminal rich assumes 80 columns and would squeeze the table; give it room.
    con = Console(width=None if sys.stdout.isatty() else 160)
    t = Table(title=f"{table['pes']} PEs, pointer_bits {table['pointer_bits']}, dense-input cycle model")
    for c in ("layer", "rows x cols", "nnz", "entries", "padding", "cycles EIE", "cycles sparsa",
              "ideal", "imbalance EIE", "imbalance sparsa"):
        t.add_column(c, justify="right")
    for l in table["layers"]:
        t.add_row(f"{l['layer']} {l['name']}", f"{l['rows']} x {l['cols']}", f"{l['nnz']:,}",
                  f"{l['entries']:,}", f"{l['padding']:,}", f"{l['cycles_eie']:,}", f"{l['cycles_sparsa']:,}",
                  f"{l['cycles_ideal']:,}", f"{l['imbalance_eie']:.3f}", f"{l['imbalance_sparsa']:.3f}")
    tot = table["total"]
    t.add_row("total", "", "", "", "", f"{tot['cycles_eie']:,}", f"{tot['cycles_sparsa']:,}", "", "", "")
    con.print(t)
    if summary:
        return
    for l in table["layers"]:
        pt = Table(title=f"layer {l['layer']} ({l['name']}) per PE")
        for c in ("PE", "rows", "real", "padding", "entries", "cycles EIE", "cycles sparsa"):
            pt.add_column(c, justify="right")
        for p in l["pes"]:
            pt.add_row(*(f"{p[c]:,}" for c in ("pe", "rows", "real", "padding", "entries",
                                                "cycles_eie", "cycles_sparsa")))
        con.print(pt)


def run(args):
    from sparsa.sw.cnn.pack import cnn_table, is_cnn_pack, print_cnn, read_cnn_manifest
    if is_cnn_pack(args.pack):
        table = cnn_table(read_cnn_manifest(args.pack))
        if args.json:
            print(json.dumps(table, indent=1))
        else:
            print_cnn(table)
        return 0
    table = load_table(read_manifest(args.pack))
    if args.json:
        print(json.dumps(table, indent=1))
    else:
        _print(table, args.summary)
    return 0
