"""CNN pack directories: a compiled integer graph (:mod:`sparsa.sw.cnn.compiler`) on disk.

``sparsa pack cnn.npz -o DIR`` writes (atomically)::

    program.bin     the instruction stream (DRAM address 0)
    model.npz       the integer graph it was compiled from (the golden model runs it)
    dram.bin        the initial DRAM before the input: instructions then weights
    manifest.json   {"format": "sparsa-cnn-pack", "version": 1, "config": CNNConfig fields,
                     "datapath", "instructions", "input"/"output": {"addr", "shape"},
                     "dram_size", "layers": per-layer metadata, "files": {name: sha256},
                     "manifest_sha256"}

To run: DRAM = ``dram.bin`` zero-extended to ``dram_size``, the int8 input (C, H, W) at
``input.addr``; start the engine at address 0; read the output at ``output.addr``.
:func:`load_cnn_pack` rebuilds the :class:`~sparsa.sw.cnn.compiler.Program` (files verified).
"""

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

from sparsa import __version__

from sparsa.sw.cnn.compiler import Program
from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.isa import INSTR_BYTES
from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import atomic_dir, read_json, sha256_file
from sparsa.sw.cnn.manifest_schema import check_cnn_manifest
from sparsa.sw.manifest import CNN_PACK_FORMAT, dumps_manifest, manifest_digest, owned_pack_dir, read_manifest

__all__ = ["CNN_PACK_FORMAT", "CNN_PACK_VERSION", "write_cnn_pack", "load_cnn_pack",
           "read_cnn_manifest", "is_cnn_pack", "cnn_table"]

CNN_PACK_VERSION = 1
FILES = ("program.bin", "dram.bin")


def save_graph_to(f, graph):
    """The integer graph as ``.npz`` bytes into file object ``f`` (the pack's model.npz)."""
    import numpy as np
    arrays = dict(graph.arrays)
    arrays["graph"] = np.array(json.dumps(graph.spec))
    np.savez_compressed(f, **arrays)


def manifest_of(prog, files=None):
    """The manifest dict of a :class:`Program` (``files``: name -> sha256)."""
    man = {
        "format": CNN_PACK_FORMAT, "version": CNN_PACK_VERSION, "sparsa_version": __version__,
        "config": asdict(prog.cfg), "datapath": prog.datapath,
        "instructions": prog.n_instructions, "instr_bytes": INSTR_BYTES,
        "input": {"addr": prog.input_addr, "shape": list(prog.input_shape), "dtype": "int8"},
        "output": {"addr": prog.output_addr, "shape": list(prog.output_shape), "dtype": "int8",
                   "flat": prog.output_flat},
        "dram_size": prog.dram_size, "image_bytes": len(prog.image),
        "macs": sum(m["macs"] for m in prog.layers),
        "mac_cycles": sum(m["mac_cycles"] for m in prog.layers),
        "layers": prog.layers,
        "files": dict(files or {}),
    }
    man["manifest_sha256"] = manifest_digest(man)
    return man


def write_cnn_pack(prog, out_dir, *, inputs=()):
    """Write ``prog`` as a CNN pack directory (atomically); returns the manifest dict. An existing
    ``out_dir`` is replaced only if it is a sparsa pack holding none of ``inputs``."""
    blobs = {"program.bin": prog.program, "dram.bin": prog.image}
    if prog.graph is not None:
        import io
        buf = io.BytesIO()
        save_graph_to(buf, prog.graph)
        blobs["model.npz"] = buf.getvalue()
    with atomic_dir(out_dir, owned=owned_pack_dir, inputs=inputs) as tmp:
        for name, data in blobs.items():
            (tmp / name).write_bytes(data)
        man = manifest_of(prog, {n: hashlib.sha256(d).hexdigest() for n, d in blobs.items()})
        (tmp / "manifest.json").write_text(dumps_manifest(man))
    return man


def is_cnn_pack(pack_dir):
    """True when ``pack_dir/manifest.json`` says it is a CNN pack (no other check)."""
    try:
        man = read_json(Path(pack_dir) / "manifest.json")
    except UserError:
        return False
    return isinstance(man, dict) and man.get("format") == CNN_PACK_FORMAT


def read_cnn_manifest(pack_dir):
    """Read a CNN pack's ``manifest.json`` and validate it (:mod:`sparsa.sw.cnn.manifest_schema`,
    then its own digest); no other file is opened."""
    man = read_manifest(pack_dir, fmt=CNN_PACK_FORMAT, version=CNN_PACK_VERSION)
    m = Path(pack_dir) / "manifest.json"
    check_cnn_manifest(man, m)
    CNNConfig.from_dict(man["config"], m)          # the configuration's own types and ranges
    if man["manifest_sha256"] != manifest_digest(man):
        raise user_error(m, "manifest_sha256", "the digest of the manifest's content",
                         "a mismatch: the manifest changed after packing")
    return man


def load_cnn_pack(pack_dir, verify=True):
    """``(program, cfg, manifest)`` from a CNN pack directory; ``program`` is a
    :class:`~sparsa.sw.cnn.compiler.Program` (``.program``, ``.dram_image(x)``,
    ``.read_output(dram)``, ``.layers``). With ``verify`` every file's sha256 is checked."""
    d = Path(pack_dir)
    man = read_cnn_manifest(d)
    for name in FILES:
        path = d / name
        if name not in man["files"] or not path.is_file():
            raise user_error(path, "file", "present (listed in manifest.json)", "missing")
        if verify:
            got = sha256_file(path)
            if got != man["files"][name]:
                raise user_error(path, "sha256", f"{man['files'][name][:16]}... (as packed)",
                                 f"{got[:16]}...: the file changed after packing")
    cfg = CNNConfig.from_dict(man["config"], d / "manifest.json")
    program = (d / "program.bin").read_bytes()
    image = (d / "dram.bin").read_bytes()
    if image[:len(program)] != program:
        raise user_error(d / "dram.bin", "start", "the instruction stream of program.bin", "other bytes")
    graph = None
    if "model.npz" in man["files"]:
        from sparsa.sw.model.graph import load_graph
        path = d / "model.npz"
        if not path.is_file():
            raise user_error(path, "file", "present (listed in manifest.json)", "missing")
        if verify and sha256_file(path) != man["files"]["model.npz"]:
            raise user_error(path, "sha256", "the digest recorded at packing", "another: the file changed after packing")
        graph = load_graph(path)
        # The manifest's shapes must be the model's: else the engine would run the model's
        # program on an input laid out for another shape.
        if tuple(man["input"]["shape"]) != tuple(graph.input_shape):
            raise user_error(d / "manifest.json", "input.shape", f"{list(graph.input_shape)} (model.npz's input)",
                             man["input"]["shape"])
        if len(man["layers"]) != len(graph.layers):
            raise user_error(d / "manifest.json", "layers", f"{len(graph.layers)} layers (model.npz's)",
                             len(man["layers"]))
    prog = Program(graph=graph, cfg=cfg, datapath=man["datapath"], program=program, image=image,
                   dram_size=man["dram_size"], input_addr=man["input"]["addr"],
                   input_shape=tuple(man["input"]["shape"]), output_addr=man["output"]["addr"],
                   output_shape=tuple(man["output"]["shape"]), output_flat=bool(man["output"].get("flat")),
                   layers=man["layers"])
    return prog, cfg, man


def cnn_table(man):
    """Rows for ``sparsa inspect``: per layer, and the ideal cycles of the compute."""
    lanes = man["config"]["lanes"]
    rows = []
    for m in man["layers"]:
        util = m["macs"] / (m["mac_cycles"] * lanes) if m["mac_cycles"] else None
        rows.append({"layer": m["index"], "name": m["name"], "op": m["op"],
                     "shape": "x".join(map(str, m["shape"])), "datapath": m["datapath"] or "",
                     "instructions": m["instr_end"] - m["instr_start"], "row_tiles": m["row_tiles"],
                     "groups": m["groups"], "macs": m["macs"], "mac_cycles": m["mac_cycles"],
                     "macs_per_mult": util, "dram_read": m["dram_read"], "dram_write": m["dram_write"]})
    return {"lanes": lanes, "config": man["config"], "datapath": man["datapath"], "layers": rows,
            "total": {k: sum(r[k] for r in rows) for k in ("instructions", "macs", "mac_cycles",
                                                           "dram_read", "dram_write")}}


def print_cnn(table):
    import sys

    from rich.console import Console
    from rich.table import Table
    con = Console(width=None if sys.stdout.isatty() else 160)
    cfg = table["config"]
    t = Table(title=f"CNN pack: {table['lanes']} lanes, ibuf {cfg['ibuf_bytes']} B, wbuf {cfg['wbuf_words']} words, "
                    f"obuf {cfg['obuf_depth']}, conv datapath {table['datapath']}; ideal cycles = MAC cycles")
    cols = ("layer", "op", "shape", "datapath", "instructions", "tiles x groups", "MACs", "MAC cycles",
            "MACs / multiply", "DRAM read", "DRAM write")
    for c in cols:
        t.add_column(c, justify="right")
    for r in table["layers"]:
        t.add_row(f"{r['layer']} {r['name']}", r["op"], r["shape"], r["datapath"], f"{r['instructions']:,}",
                  f"{r['row_tiles']} x {r['groups']}", f"{r['macs']:,}", f"{r['mac_cycles']:,}",
                  "" if r["macs_per_mult"] is None else f"{r['macs_per_mult']:.3f}",
                  f"{r['dram_read']:,}", f"{r['dram_write']:,}")
    tot = table["total"]
    t.add_row("total", "", "", "", f"{tot['instructions']:,}", "", f"{tot['macs']:,}", f"{tot['mac_cycles']:,}",
              "", f"{tot['dram_read']:,}", f"{tot['dram_write']:,}")
    con.print(t)
