"""Benchmark: pack a VGG-size sparse layer (encode, then write every image + manifest).

The layer is 25088 x 4096 (VGG's fc6) at 4 % density, about 4.1 million nonzeros with
random codebook indices 1..15, generated directly as coordinates (a dense matrix of that
size would itself cost 100 MB and a second). It is packed for 64 PEs. ``encode`` is
:func:`~sparsa.sw.eie.pack.make_layer` (sorting, padding, pointers); ``write`` is
:func:`~sparsa.sw.eie.pack.write_pack` (all four image formats, sha256 of every file, the
manifest, the atomic rename). Each is timed over several repeats and the best and median
are reported; the target is a total under 2 s. ``--quick`` packs a 4096 x 1024 layer.
"""

import platform
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from sparsa.sw.fileio import atomic_file, write_json
from sparsa.sw.eie.pack import Pack, make_layer
from sparsa.sw.eie.pack_dir import load_pack, write_pack

__all__ = ["NAME", "run_bench", "random_layer_coo"]

NAME = "pack"
FULL = dict(rows=25088, cols=4096, density=0.04, pes=64, repeats=3)
QUICK = dict(rows=4096, cols=1024, density=0.04, pes=64, repeats=2)
TARGET_S = 2.0
SEED = 20160618          # EIE's ISCA date


def random_layer_coo(rows, cols, density, seed):
    """Bernoulli(density) coordinates of a (rows, cols) matrix plus random indices 1..15.

    Gaps between consecutive nonzeros (in column-major order) are geometric, so this costs
    O(nnz), not O(rows * cols).
    """
    rng = np.random.default_rng(seed)
    n = rows * cols
    gaps = rng.geometric(density, size=int(n * density * 1.05) + 64)
    pos = np.cumsum(gaps) - 1
    pos = pos[pos < n]
    j, i = np.divmod(pos, rows)
    v = rng.integers(1, 16, size=pos.size, dtype=np.uint8)
    return i, j, v


def _loadavg():
    try:
        return round(__import__("os").getloadavg()[0], 2)
    except OSError:
        return None


def _codebook():
    cb = np.zeros(16, dtype=np.int16)
    cb[1:] = np.arange(-7, 8) * 64
    return cb


def run_bench(out_dir, args):
    cfg = QUICK if getattr(args, "quick", False) else FULL
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    rows, cols, pes = cfg["rows"], cfg["cols"], cfg["pes"]
    t0 = time.perf_counter()
    i, j, v = random_layer_coo(rows, cols, cfg["density"], SEED)
    t_gen = time.perf_counter() - t0
    enc, wr, cpu = [], [], []
    scratch = Path(tempfile.mkdtemp(prefix=".bench-pack.", dir=out_dir))
    try:
        for r in range(cfg["repeats"]):
            c0 = time.process_time()
            t0 = time.perf_counter()
            layer = make_layer("fc6", rows, cols, i, j, v, _codebook(), pes)
            pack = Pack(pes=pes, layers=[layer])
            t1 = time.perf_counter()
            man = write_pack(pack, scratch / f"pack{r}")
            t2 = time.perf_counter()
            cpu.append(time.process_time() - c0)
            enc.append(t1 - t0)
            wr.append(t2 - t1)
        files = man["files"]
        nbytes = sum((scratch / "pack0" / f).stat().st_size for f in files)
        t0 = time.perf_counter()
        back = load_pack(scratch / "pack0", verify=True)
        t_load = time.perf_counter() - t0
        # Round trip check, outside the timings: same coordinates and indices back.
        bi, bj, bv = back.layers[0].coo()
        key_in = np.sort((j * rows + i) * 16 + v)
        key_out = np.sort((bj * rows + bi) * 16 + bv)
        round_trip = bool(np.array_equal(key_in, key_out))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    tot = [a + b for a, b in zip(enc, wr)]
    result = {
        "benchmark": NAME, "quick": cfg is QUICK,
        "machine": {"cpu_count": __import__("os").cpu_count(), "python": platform.python_version(),
                    "numpy": np.__version__},
        "layer": {"rows": rows, "cols": cols, "density": cfg["density"], "nnz": int(i.size),
                  "pes": pes, "seed": SEED},
        "entries": int(sum(layer.entries_per_pe)), "padding": int(sum(layer.padding_per_pe)),
        "pointer_bits": pack.pointer_bits, "files": len(files) + 1, "bytes_written": int(nbytes),
        "repeats": cfg["repeats"],
        "generate_s": t_gen,
        "encode_s": {"best": min(enc), "median": float(np.median(enc)), "all": enc},
        "write_s": {"best": min(wr), "median": float(np.median(wr)), "all": wr},
        "total_s": {"best": min(tot), "median": float(np.median(tot)), "all": tot},
        "total_cpu_s": {"best": min(cpu), "median": float(np.median(cpu)), "all": cpu},
        "load_average_1min": _loadavg(),
        "load_verify_s": t_load,
        "round_trip_ok": round_trip,
        "target_total_s": TARGET_S,
        "meets_target": float(np.median(tot)) < TARGET_S,
    }
    write_json(out_dir / f"{NAME}.json", result)
    md = [
        f"# sparsa bench pack{' (quick)' if result['quick'] else ''}",
        "",
        f"Layer {rows} x {cols}, density {cfg['density']:.0%}, {i.size:,} nonzeros, {pes} PEs, "
        f"seed {SEED}; {result['entries']:,} entries ({result['padding']:,} padding), "
        f"{result['files']} files, {nbytes / 1e6:.1f} MB.",
        "",
        "| step | best (s) | median (s) |",
        "|---|---|---|",
        f"| encode | {min(enc):.3f} | {np.median(enc):.3f} |",
        f"| write (4 formats + sha256 + manifest) | {min(wr):.3f} | {np.median(wr):.3f} |",
        f"| **total** | **{min(tot):.3f}** | **{np.median(tot):.3f}** |",
        f"| total CPU time (all threads) | {min(cpu):.3f} | {np.median(cpu):.3f} |",
        f"| load + verify (not in total) | {t_load:.3f} | |",
        "",
        f"All totals (s): {', '.join(f'{t:.3f}' for t in tot)}; the first run is cold (fresh "
        "allocations fault their pages in), the rest reuse the allocator's memory.",
        "",
        f"Target: total < {TARGET_S} s -> {'met' if result['meets_target'] else 'NOT met'} "
        f"(median of {cfg['repeats']}). Round trip: {'exact' if round_trip else 'MISMATCH'}. "
        f"1-minute load average {result['load_average_1min']} on {result['machine']['cpu_count']} cores "
        "(wall times grow when other jobs share the machine; CPU time much less).",
        "",
    ]
    with atomic_file(out_dir / f"{NAME}.md") as tmp:
        tmp.write_text("\n".join(md))
    print("\n".join(md))
    return result
