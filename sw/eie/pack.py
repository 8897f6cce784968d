"""Packing: weight-shared sparse layers into per-PE EIE memory images, and back.

A :class:`Pack` is a whole network ready for an EIE PE array: for every layer the codebook,
the bias, the output shift/ReLU and one :class:`~sparsa.sw.eie.format.PESlice` per PE. It is
built from an exact integer matrix (:func:`pack_matrix`) or from a compressed model written
by ``sparsa compress`` (:func:`pack_compressed`), written to a pack directory
(:func:`write_pack`, layout in docs/formats.md), read back and verified (:func:`load_pack`)
and inverted (:func:`unpack`). Word layouts all come from :mod:`sparsa.sw.eie.format`.
"""

import hashlib
import json
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from sparsa import __version__

from sparsa.sw.eie import format as ef
from sparsa.sw import images
from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import atomic_dir, check_int_range, load_npz, sha256_file
from sparsa.sw.eie.golden import GoldenLayer, run_layers

__all__ = [
    "PackLayer", "Pack", "make_layer", "pack_matrix", "pack_compressed", "unpack",
    "check_pes", "check_shift", "check_bias", "MAX_SHIFT",
    "write_pack", "load_pack", "read_manifest", "PACK_FORMAT", "PACK_VERSION",
]

MAX_SHIFT = 62          # (acc + 2**(S-1)) >> S must stay inside int64


@dataclass
class PackLayer:
    """One layer of a :class:`Pack`.

    Attributes
    ----------
    name : str
    rows, cols : int
        Outputs and inputs.
    codebook : int16 array (16,)
        Shared weight values; ``codebook[0] == 0``.
    bias : int32 array (rows,)
    shift : int
        Rounding right shift of the accumulator (0..62).
    relu : bool
    slices : list of PESlice
        One per PE (row ``i`` belongs to PE ``i % pes``).
    nnz : int
        Stored (non-padding) entries.
    out_frac_bits, in_frac_bits, weight_frac_bits : int or None
        Fixed-point scales when the layer came from a compressed model.
    """
    name: str
    rows: int
    cols: int
    codebook: np.ndarray
    bias: np.ndarray
    shift: int
    relu: bool
    slices: list
    nnz: int
    out_frac_bits: int = None
    in_frac_bits: int = None
    weight_frac_bits: int = None

    @property
    def pes(self):
        return len(self.slices)

    @property
    def entries_per_pe(self):
        """Entries per PE, padding included."""
        return [s.entries for s in self.slices]

    @property
    def padding_per_pe(self):
        return [s.padding for s in self.slices]

    @property
    def real_per_pe(self):
        """Stored nonzeros (entries that are not padding) per PE."""
        return [s.entries - s.padding for s in self.slices]

    @property
    def rows_per_pe(self):
        return [ef.rows_of_pe(self.rows, self.pes, k) for k in range(self.pes)]

    @property
    def words_per_pe(self):
        """64-bit sparse-matrix words per PE."""
        return [-(-s.entries // ef.ENTRIES_PER_WORD) for s in self.slices]

    def coo(self):
        """``(i, j, index)`` of every stored entry (decoded from the slices)."""
        return ef.decode_layer_coo(self.slices, self.rows, self.cols)

    def golden(self):
        """This layer as a :class:`~sparsa.sw.eie.golden.GoldenLayer` (from the decoded slices)."""
        i, j, v = self.coo()
        values = self.codebook.astype(np.int64)[v]
        return GoldenLayer.from_coo(self.rows, self.cols, i, j, values, self.bias, self.shift, self.relu)

    def weight(self):
        """Dense int16 (rows, cols) weights."""
        i, j, v = self.coo()
        w = np.zeros((self.rows, self.cols), dtype=np.int16)
        w[i, j] = self.codebook[v]
        return w


@dataclass
class Pack:
    """A network packed for ``pes`` PEs.

    Attributes
    ----------
    pes : int
    layers : list of PackLayer
    pointer_bits : int
        Pointer word width; computed from the largest per-PE entry count when omitted.
    input_frac_bits : int or None
        Fractional bits of the input activations (None for a matrix packed exactly).
    lstm : dict or None
        For an LSTM (see :mod:`sparsa.sw.lstm.pack`): its sizes and the peephole words.
    """
    pes: int
    layers: list
    pointer_bits: int = None
    input_frac_bits: int = None
    lstm: dict = None
    _golden: list = field(default=None, init=False, repr=False, compare=False)

    def __post_init__(self):
        need = ef.pointer_bits_for(max([0] + [e for l in self.layers for e in l.entries_per_pe]))
        if self.pointer_bits is None:
            self.pointer_bits = need
        elif self.pointer_bits < need:
            raise ValueError(f"pointer_bits {self.pointer_bits} cannot address {need}-bit pointers")

    @property
    def input_cols(self):
        return self.lstm["inputs"] if self.lstm else self.layers[0].cols

    @property
    def output_rows(self):
        return self.lstm["outputs"] if self.lstm else self.layers[-1].rows

    def golden_layers(self):
        """The layers as :class:`GoldenLayer` objects, built from the decoded slices (cached)."""
        if self._golden is None:
            self._golden = [l.golden() for l in self.layers]
        return self._golden

    def run_golden(self, x):
        """Bit-exact forward pass of int16 ``x`` ((cols,) or (batch, cols)) -> int16.

        For an LSTM pack ``x`` is a sequence (T, inputs) and the result (T, outputs)."""
        if self.lstm:
            from sparsa.sw.lstm.pack import lstm_golden
            return lstm_golden(self, x)
        return run_layers(self.golden_layers(), x)


#
# Validation shared by the API and the CLIs
#

def check_pes(pes, where="--pes"):
    if isinstance(pes, bool) or not isinstance(pes, (int, np.integer)) or pes < 1:
        raise user_error(None, where, "a PE count >= 1", repr(pes))
    return int(pes)


def check_shift(shift, where="--shift"):
    if isinstance(shift, bool) or not isinstance(shift, (int, np.integer)) or not 0 <= shift <= MAX_SHIFT:
        raise user_error(None, where, f"a shift in 0..{MAX_SHIFT}", repr(shift))
    return int(shift)


def check_bias(bias, rows, where="bias", field_="bias"):
    """Validate a per-row bias (None = zeros) and return it as int32."""
    if bias is None:
        return np.zeros(rows, dtype=np.int32)
    b = np.asarray(bias)
    if b.dtype.kind not in "biuf":
        raise user_error(where, field_, "a numeric array", f"dtype {b.dtype}")
    if b.shape != (rows,):
        raise user_error(where, f"{field_} shape", f"({rows},) (one value per output row)", str(b.shape))
    check_int_range(b, ef.BIAS_MIN, ef.BIAS_MAX, where, field_, "int32")
    return b.astype(np.int32)


def make_layer(name, rows, cols, i, j, index, codebook, pes, bias=None, shift=0, relu=False, **frac):
    """Encode one layer from coordinates and codebook indices (1..15) of its nonzeros."""
    codebook = np.asarray(codebook, dtype=np.int16)
    slices = ef.encode_layer_coo(rows, cols, i, j, index, pes)
    return PackLayer(name=name, rows=int(rows), cols=int(cols), codebook=codebook,
                     bias=check_bias(bias, rows), shift=int(shift), relu=bool(relu),
                     slices=slices, nnz=int(np.size(i)), **frac)


def pack_matrix(int_matrix, pes, bias=None, shift=0, relu=False, *, where="matrix", bias_where="bias"):
    """Pack an integer weight matrix exactly.

    ``int_matrix`` (rows, cols) must hold int16 values with at most 15 distinct nonzeros; its
    sorted distinct nonzero values become codebook entries 1..n (the rest stay 0). ``where``
    and ``bias_where`` name the sources in error messages.
    """
    pes = check_pes(pes)
    shift = check_shift(shift)
    w = np.asarray(int_matrix)
    if w.dtype.kind not in "biuf":
        raise user_error(where, "weights", "a numeric array", f"dtype {w.dtype}")
    if w.ndim != 2:
        raise user_error(where, "weight matrix rank", "2 dimensions (rows, cols)", f"shape {w.shape}")
    if 0 in w.shape:
        raise user_error(where, "weight matrix shape", "at least 1 row and 1 column", str(w.shape))
    check_int_range(w, ef.ACT_MIN, ef.ACT_MAX, where, "weights", "int16")
    i, j = np.nonzero(w)
    vals = w[i, j].astype(np.int64)
    distinct = np.unique(vals)
    if distinct.size > ef.CODEBOOK_SIZE - 1:
        raise user_error(where, "distinct nonzero weight values",
                         f"at most {ef.CODEBOOK_SIZE - 1} (4-bit codebook, index 0 = zero)", distinct.size)
    codebook = np.zeros(ef.CODEBOOK_SIZE, dtype=np.int16)
    codebook[1:distinct.size + 1] = distinct
    index = np.searchsorted(distinct, vals) + 1
    bias = check_bias(bias, w.shape[0], bias_where)
    layer = make_layer("layer0", *w.shape, i, j, index, codebook, pes, bias, shift, relu)
    return Pack(pes=pes, layers=[layer])


def _meta_int(where, field_, value, lo, hi, allow_none=False):
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise user_error(where, field_, f"an integer in {lo}..{hi}", repr(value))
    return value


def pack_compressed(path_or_arrays, pes):
    """Pack a compressed model (the ``.npz`` of ``sparsa compress``, or its arrays as a dict)."""
    pes = check_pes(pes)
    if isinstance(path_or_arrays, (str, Path)):
        where = str(path_or_arrays)
        arrays = load_npz(path_or_arrays, what="compressed model")
    else:
        where, arrays = "compressed model", dict(path_or_arrays)
    if "meta" not in arrays:
        raise user_error(where, "meta", "a 'meta' entry (a .npz written by 'sparsa compress'; "
                         "compress a float model first)", "none")
    try:
        meta = json.loads(str(np.asarray(arrays["meta"])[()]))
    except (ValueError, TypeError) as e:
        raise user_error(where, "meta", "a JSON string", f"unparsable text ({e})")
    if not isinstance(meta, dict) or meta.get("format") != "sparsa-compressed":
        raise user_error(where, "meta.format", "'sparsa-compressed'",
                         repr(meta.get("format") if isinstance(meta, dict) else meta))
    if meta.get("version") != 1:
        raise user_error(where, "meta.version", "1", repr(meta.get("version")))
    specs = meta.get("layers")
    if not isinstance(specs, list) or not specs:
        raise user_error(where, "meta.layers", "a non-empty list", repr(specs))
    layers, prev_rows = [], None
    for k, spec in enumerate(specs):
        f = f"layer{k}"
        try:
            rows, cols = int(spec["rows"]), int(spec["cols"])
        except (KeyError, TypeError, ValueError):
            raise user_error(where, f"meta.layers[{k}]", "rows and cols", repr(spec))
        if prev_rows is not None and cols != prev_rows:
            raise user_error(where, f"meta.layers[{k}].cols", f"{prev_rows} (the previous layer's rows)", cols)
        prev_rows = rows
        for key in (f"{f}.index", f"{f}.codebook", f"{f}.bias"):
            if key not in arrays:
                raise user_error(where, key, "an array", "none")
        index = arrays[f"{f}.index"]
        if index.shape != (rows, cols) or index.dtype.kind not in "iu":
            raise user_error(where, f"{f}.index", f"integer array of shape ({rows}, {cols})",
                             f"{index.dtype} {index.shape}")
        check_int_range(index, 0, ef.CODEBOOK_SIZE - 1, where, f"{f}.index", "4-bit codebook index")
        codebook = arrays[f"{f}.codebook"]
        if codebook.shape != (ef.CODEBOOK_SIZE,) or codebook.dtype.kind not in "iuf":
            raise user_error(where, f"{f}.codebook", f"shape ({ef.CODEBOOK_SIZE},)", f"{codebook.dtype} {codebook.shape}")
        check_int_range(codebook, ef.ACT_MIN, ef.ACT_MAX, where, f"{f}.codebook", "int16")
        if codebook[0] != 0:
            raise user_error(where, f"{f}.codebook[0]", "0 (index 0 is the pruned weight)", int(codebook[0]))
        shift = _meta_int(where, f"meta.layers[{k}].shift", spec.get("shift", 0), 0, MAX_SHIFT)
        frac = {n: _meta_int(where, f"meta.layers[{k}].{n}", spec.get(n), -64, 64, allow_none=True)
                for n in ("in_frac_bits", "weight_frac_bits", "out_frac_bits")}
        i, j = np.nonzero(index)
        layers.append(make_layer(str(spec.get("name", f)), rows, cols, i, j, index[i, j], codebook, pes,
                                 check_bias(arrays[f"{f}.bias"], rows, where, f"{f}.bias"),
                                 shift, bool(spec.get("relu", False)), **frac))
    fx0 = _meta_int(where, "meta.input_frac_bits", meta.get("input_frac_bits"), -64, 64, allow_none=True)
    return Pack(pes=pes, layers=layers, input_frac_bits=fx0)


def unpack(pack):
    """The exact weights and biases: ``{"layer{k}.weight": int16 (rows, cols), "layer{k}.bias": int32}``."""
    out = {}
    for k, layer in enumerate(pack.layers):
        out[f"layer{k}.weight"] = layer.weight()
        out[f"layer{k}.bias"] = np.asarray(layer.bias, dtype=np.int32).copy()
    return out

#
# The pack directory
#

PACK_FORMAT = "sparsa-eie-pack"
PACK_VERSION = 1
IMAGE_KINDS = ("spm", "ptr_even", "ptr_odd", "bias")
# Creating a file costs ~0.35 ms here (ext4), and open/write/sha256 release the GIL: a few
# threads overlap the ~1000 files of a 64-PE layer. 4 beat 1 and 2 in A/B runs of bench pack.
WRITE_THREADS = 4


def _layout():
    """The word layouts, as numbers a reader can check (the definitions are in eie_format.py)."""
    return {
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


def write_pack(pack, out_dir, formats=None):
    """Write ``pack`` as a pack directory (atomically); returns the manifest dict.

    Every image is written in each of ``formats`` (default all of :data:`images.FORMATS`);
    ``manifest.json`` lists them all with their sha256 (hashed from memory, not re-read).
    """
    formats = tuple(formats or images.FORMATS)
    widths = _widths(pack.pointer_bits)
    pe_digits = max(3, len(str(pack.pes - 1)))
    man_layers = []
    jobs = []               # futures of (name, sha256), in file order
    with atomic_dir(out_dir) as tmp, ThreadPoolExecutor(WRITE_THREADS) as pool:
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
        manifest["manifest_sha256"] = _manifest_digest(manifest)
        (tmp / "manifest.json").write_text(_dumps(manifest))
    return manifest


def _manifest_digest(man):
    """sha256 of the manifest's own content (all fields but this one, canonical JSON).

    The image files are covered by ``files``; this covers the layer metadata (shift, relu,
    rows, cols, codebook, ...) that lives only in the manifest.
    """
    body = {k: v for k, v in man.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def _dumps(obj):
    """JSON with one field per line but lists of numbers on one line (64-PE lists stay short)."""
    text = json.dumps(obj, indent=1)
    # A raw newline never occurs inside a JSON string, so only multi-line lists are joined.
    return re.sub(r"\[\n\s*([^\[\]{}\"]*?)\n\s*\]",
                  lambda m: "[" + ", ".join(t.strip() for t in m.group(1).split(",")) + "]", text) + "\n"


_EIE_MANIFEST_FIELDS = (("pes", int), ("pointer_bits", int), ("layers", list), ("files", dict), ("input", dict))


def read_manifest(pack_dir, *, fmt=None, version=None, fields=_EIE_MANIFEST_FIELDS):
    """Read and sanity-check ``pack_dir/manifest.json`` (no image is opened): its ``format``
    and ``version`` (an EIE pack's by default) and the types of ``fields`` ((key, type) pairs)."""
    fmt = PACK_FORMAT if fmt is None else fmt
    version = PACK_VERSION if version is None else version
    d = Path(pack_dir)
    if not d.exists():
        raise UserError(f"{d}: pack directory not found")
    if not d.is_dir():
        raise user_error(d, "pack", "a pack directory written by 'sparsa pack'", "a file")
    m = d / "manifest.json"
    if not m.is_file():
        raise user_error(m, "manifest", "manifest.json of a 'sparsa pack' directory", "no such file")
    try:
        man = json.loads(m.read_text())
    except (ValueError, UnicodeDecodeError) as e:
        raise user_error(m, "manifest", "JSON", f"unparsable text ({str(e)[:80]})")
    if not isinstance(man, dict) or man.get("format") != fmt:
        raise user_error(m, "format", repr(fmt), repr(man.get("format") if isinstance(man, dict) else man))
    if man.get("version") != version:
        raise user_error(m, "version", version, repr(man.get("version")))
    for key, kind in fields:
        if not isinstance(man.get(key), kind):
            raise user_error(m, key, f"a manifest field of type {kind.__name__}", repr(man.get(key))[:60])
    return man


def _verify(d, files):
    for name, digest in files.items():
        path = d / name
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise user_error(d / "manifest.json", "files", "paths inside the pack", repr(name))
        if not path.is_file():
            raise user_error(path, "file", "present (listed in manifest.json)", "missing")
        got = sha256_file(path)
        if got != digest:
            raise user_error(path, "sha256", f"{digest[:16]}... (as packed)",
                             f"{got[:16]}...: the file changed after packing")


def load_pack(pack_dir, verify=True):
    """Read a pack directory back into a :class:`Pack` (from its ``.bin`` images).

    With ``verify`` every file listed in the manifest is checked against its sha256 first.
    """
    d = Path(pack_dir)
    man = read_manifest(d)
    mpath = d / "manifest.json"
    if verify:
        want = man.get("manifest_sha256")
        if want is not None and want != _manifest_digest(man):
            raise user_error(mpath, "manifest_sha256", f"{str(want)[:16]}... (as packed)",
                             "a different digest: manifest.json changed after packing")
        _verify(d, man["files"])
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
