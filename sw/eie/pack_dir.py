"""The EIE pack directory: a :class:`~sparsa.sw.eie.pack.Pack` written as memory images and a
manifest (:func:`write_pack`), and read back and verified (:func:`load_pack`).

Layout in docs/formats.md: ``layer<k>/codebook.*`` and ``layer<k>/pe<NNN>.{spm,ptr_even,ptr_odd,bias}.*``
in every image format of :mod:`sparsa.sw.images`, ``lstm/pe<NNN>.peep.*`` for LSTMs, and
``manifest.json`` (:mod:`sparsa.sw.manifest`). Word layouts come from :mod:`sparsa.sw.eie.format`.
"""

import hashlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from sparsa import __version__
from sparsa.sw import images
from sparsa.sw.eie import format as ef
from sparsa.sw.eie.manifest_schema import check_eie_manifest
from sparsa.sw.eie.pack import Pack, PackLayer
from sparsa.sw.errors import user_error
from sparsa.sw.fileio import atomic_dir
from sparsa.sw.manifest import EIE_PACK_FORMAT, dumps_manifest, manifest_digest, owned_pack_dir, verify_files
from sparsa.sw.manifest import read_manifest as _read_manifest

__all__ = ["write_pack", "load_pack", "read_manifest", "PACK_FORMAT", "PACK_VERSION", "IMAGE_KINDS"]

PACK_FORMAT = EIE_PACK_FORMAT
PACK_VERSION = 1
IMAGE_KINDS = ("spm", "ptr_even", "ptr_odd", "bias")
# Creating a file costs ~0.35 ms here (ext4), and open/write/sha256 release the GIL: a few
# threads overlap the ~1000 files of a 64-PE layer. 4 beat 1 and 2 in A/B runs of bench pack.
WRITE_THREADS = 4

def _layout():
    """The word layouts, as numbers a reader can check (the definitions are in sw/eie/format.py)."""
    return {
        # Frozen with pack format version 1: packs stay byte-identical across the move of the
        # format module to sw/eie/format.py. The numbers below are what a reader checks.
        "defined_in": "sw/eie_format.py",
        "row_interleave": "row i -> PE i % pes, local row i // pes",
        "entry_bits": ef.ENTRY_BITS,
        "entry_v_bits": [ef.V_BITS - 1, 0],
        "entry_z_bits": [ef.ENTRY_BITS - 1, ef.V_BITS],
        "padding_entry": {"v": 0, "z": ef.PAD_Z},
        "spm_word_bits": ef.WORD_BITS,
        "entries_per_word": ef.ENTRIES_PER_WORD,
        "entry_in_word": "entry e -> word e // 8, bits [8*(e%8)+7 : 8*(e%8)]",
        "pointer_banks": "ptr_even = p[0], p[2], ...; ptr_odd = p[1], p[3], ...; p has cols + 1 entries",
        "codebook_size": ef.CODEBOOK_SIZE,
        "codebook_bits": ef.CODEBOOK_BITS,
        "bias_bits": ef.BIAS_BITS,
        "activation_bits": ef.ACT_BITS,
    }

def _widths(pointer_bits):
    return {"spm": ef.WORD_BITS, "ptr_even": pointer_bits, "ptr_odd": pointer_bits,
            "bias": ef.BIAS_BITS, "codebook": ef.CODEBOOK_BITS, "peep": 16}

def _pe_images(layer, k):
    """The words of PE ``k``'s four images of ``layer``."""
    s = layer.slices[k]
    even, odd = ef.pointer_banks(s.ptr)
    return {"spm": ef.entries_to_words(s.v, s.z), "ptr_even": even, "ptr_odd": odd,
            "bias": layer.bias[k::layer.pes]}

def write_pack(pack, out_dir, formats=None, *, inputs=()):
    """Write ``pack`` as a pack directory (atomically); returns the manifest dict.

    Every image is written in each of ``formats`` (default all of :data:`images.FORMATS`);
    ``manifest.json`` lists them all with their sha256 (hashed from memory, not re-read).
    An existing ``out_dir`` is replaced only if it is a sparsa pack holding none of ``inputs``
    (``(label, path)`` pairs): see :func:`sparsa.sw.fileio.atomic_dir`.
    """
    formats = tuple(formats or images.FORMATS)
    widths = _widths(pack.pointer_bits)
    pe_digits = max(3, len(str(pack.pes - 1)))
    man_layers = []
    jobs = []               # futures of (name, sha256), in file order
    with atomic_dir(out_dir, owned=owned_pack_dir, inputs=inputs) as tmp, ThreadPoolExecutor(WRITE_THREADS) as pool:
        def write_one(stem, words, bits):
            out = []
            for fmt, data in images.render_all(words, bits, formats).items():
                name = f"{stem}.{fmt}"
                (tmp / name).write_bytes(data)
                out.append((name, hashlib.sha256(data).hexdigest()))
            return out

        def put(stem, words, bits):
            jobs.append(pool.submit(write_one, stem, words, bits))

        for n, layer in enumerate(pack.layers):
            ldir = f"layer{n}"
            (tmp / ldir).mkdir()
            put(f"{ldir}/codebook", layer.codebook, widths["codebook"])
            pe_images = []
            for k in range(pack.pes):
                stems = {kind: f"{ldir}/pe{k:0{pe_digits}d}.{kind}" for kind in IMAGE_KINDS}
                for kind, words in _pe_images(layer, k).items():
                    put(stems[kind], words, widths[kind])
                pe_images.append({"pe": k, **stems})
            man_layers.append({
                "name": layer.name, "rows": layer.rows, "cols": layer.cols, "nnz": layer.nnz,
                "entries_per_pe": layer.entries_per_pe, "padding_per_pe": layer.padding_per_pe,
                "rows_per_pe": layer.rows_per_pe, "words_per_pe": layer.words_per_pe,
                "ptr_even_words": (layer.cols + 2) // 2, "ptr_odd_words": (layer.cols + 1) // 2,
                "codebook": [int(c) for c in layer.codebook], "shift": layer.shift, "relu": layer.relu,
                "in_frac_bits": layer.in_frac_bits, "weight_frac_bits": layer.weight_frac_bits,
                "out_frac_bits": layer.out_frac_bits,
                "codebook_image": f"{ldir}/codebook", "bias_images": [p["bias"] for p in pe_images],
                "pe_images": pe_images,
            })
        lstm_man = None
        if pack.lstm:
            # LSTM (sparsa.sw.lstm.pack): sizes, and each PE's peephole words (one per gates row).
            (tmp / "lstm").mkdir()
            lstm_man = {k: v for k, v in pack.lstm.items() if k != "peep"}
            lstm_man["peep_images"] = []
            for k in range(pack.pes):
                stem = f"lstm/pe{k:0{pe_digits}d}.peep"
                put(stem, np.asarray(pack.lstm["peep"])[k::pack.pes], widths["peep"])
                lstm_man["peep_images"].append(stem)
        try:
            files = dict(item for job in jobs for item in job.result())
        except BaseException:
            pool.shutdown(cancel_futures=True)      # then atomic_dir removes the partial tree
            raise
        manifest = {
            "format": PACK_FORMAT, "version": PACK_VERSION, "sparsa_version": __version__,
            "pes": pack.pes, "pointer_bits": pack.pointer_bits,
            "formats": list(formats), "image_bits": widths, "layout": _layout(),
            "input": {"cols": pack.input_cols, "frac_bits": pack.input_frac_bits},
            "output": {"rows": pack.output_rows, "frac_bits": pack.layers[-1].out_frac_bits},
            "layers": man_layers,
            "files": files,
        }
        if lstm_man:
            manifest["lstm"] = lstm_man
        manifest["manifest_sha256"] = manifest_digest(manifest)
        (tmp / "manifest.json").write_text(dumps_manifest(manifest))
    return manifest

def read_manifest(pack_dir):
    """Read an EIE pack's ``manifest.json`` and validate it (types, ranges, consistency, every
    image listed: :mod:`sparsa.sw.eie.manifest_schema`) and its own digest; no image is opened."""
    man = _read_manifest(pack_dir, fmt=PACK_FORMAT, version=PACK_VERSION)
    mpath = Path(pack_dir) / "manifest.json"
    check_eie_manifest(man, mpath)
    if man["manifest_sha256"] != manifest_digest(man):
        raise user_error(mpath, "manifest_sha256", f"{man['manifest_sha256'][:16]}... (as packed)",
                         "a different digest: manifest.json changed after packing")
    return man

def _last_local_row(s):
    """The highest local row a slice's real entries reach (-1 when it has none): each entry
    advances the row by its zero count + 1, from the top of its column."""
    if s.entries == 0:
        return -1
    loc = ef.slice_positions(s)[1][s.v != 0]
    return int(loc.max()) if loc.size else -1


def load_pack(pack_dir, verify=True):
    """Read a pack directory back into a :class:`Pack` (from its ``.bin`` images).

    The manifest is always validated (schema, digest, every image listed); with ``verify``
    every file listed is also checked against its sha256 first.
    """
    d = Path(pack_dir)
    man = read_manifest(d)
    mpath = d / "manifest.json"
    if verify:
        verify_files(d, man["files"])
    try:
        pes, pbits = int(man["pes"]), int(man["pointer_bits"])
        widths = _widths(pbits)
        layers = []
        for n, ml in enumerate(man["layers"]):
            rows, cols = int(ml["rows"]), int(ml["cols"])

            def read(stem, kind, count, signed=False):
                path = d / f"{stem}.bin"
                if not path.is_file():
                    raise user_error(path, "image", "present", "missing")
                words = images.parse_bin(path.read_bytes(), widths[kind], signed)
                if words.size != count:
                    raise user_error(path, f"{kind} words", count, words.size)
                return words

            codebook = read(ml["codebook_image"], "codebook", ef.CODEBOOK_SIZE, True).astype(np.int16)
            bias = np.zeros(rows, dtype=np.int32)
            slices = []
            for k, im in enumerate(ml["pe_images"]):
                n_ent = int(ml["entries_per_pe"][k])
                words = read(im["spm"], "spm", int(ml["words_per_pe"][k]))
                v, z = ef.words_to_entries(words, n_ent)
                ptr = np.empty(cols + 1, dtype=np.int64)
                ptr[0::2] = read(im["ptr_even"], "ptr_even", (cols + 2) // 2)
                ptr[1::2] = read(im["ptr_odd"], "ptr_odd", (cols + 1) // 2)
                if ptr[0] != 0 or ptr[-1] != n_ent or np.any(np.diff(ptr) < 0):
                    raise user_error(d / f"{im['ptr_even']}.bin", "pointers",
                                     f"non-decreasing from 0 to {n_ent}", "an inconsistent pointer list")
                bias[k::pes] = read(im["bias"], "bias", ef.rows_of_pe(rows, pes, k), True)
                slices.append(ef.PESlice(ptr=ptr, v=v.astype(np.uint8), z=z.astype(np.uint8)))
            if len(slices) != pes:
                raise user_error(mpath, f"layers[{n}].pe_images", f"{pes} entries", len(slices))
            for k, sl in enumerate(slices):
                # Every entry's zero counts must keep it inside its PE's rows (an image swapped
                # for another PE's, or edited z values, would index past them).
                last, local = _last_local_row(sl), ef.rows_of_pe(rows, pes, k)
                if last >= local:
                    raise user_error(d / f"{ml['pe_images'][k]['spm']}.bin", f"layers[{n}] sparse-matrix image of PE {k}",
                                     f"entries within the PE's {local} of the layer's {rows} rows",
                                     f"an entry at local row {last}")
            nnz = sum(s.entries - s.padding for s in slices)
            if nnz != int(ml["nnz"]):
                raise user_error(mpath, f"layers[{n}].nnz", f"{nnz} (counted in the images)", ml["nnz"])
            layers.append(PackLayer(
                name=str(ml["name"]), rows=rows, cols=cols, codebook=codebook, bias=bias,
                shift=int(ml["shift"]), relu=bool(ml["relu"]), slices=slices, nnz=nnz,
                out_frac_bits=ml.get("out_frac_bits"), in_frac_bits=ml.get("in_frac_bits"),
                weight_frac_bits=ml.get("weight_frac_bits")))
        lstm = None
        if man.get("lstm"):
            lstm = {k: v for k, v in man["lstm"].items() if k != "peep_images"}
            rows0 = layers[0].rows
            peep = np.zeros(rows0, dtype=np.int16)
            for k, stem in enumerate(man["lstm"]["peep_images"]):
                peep[k::pes] = read(stem, "peep", ef.rows_of_pe(rows0, pes, k), True)
            lstm["peep"] = peep
        return Pack(pes=pes, layers=layers, pointer_bits=pbits,
                    input_frac_bits=man["input"].get("frac_bits"), lstm=lstm)
    except (KeyError, TypeError, ValueError, IndexError) as e:
        raise user_error(mpath, "manifest", f"a consistent {PACK_FORMAT} v{PACK_VERSION} manifest",
                         f"{type(e).__name__}: {str(e)[:100]}")
