"""The EIE pack manifest's schema: every field's type and range, and the consistency between fields.

A manifest is untrusted input (a user may edit one, a disk may corrupt one, an attacker may
write one). :func:`check_eie_manifest` validates it with JSON Schema (types are checked, never
coerced: ``"relu": "false"`` is a string, not a boolean) and then the relations a schema
cannot express: per-PE lists as long as ``pes``, layers that chain, the input and output sizes,
and every image path a relative name inside the pack that ``files`` lists.
"""

from pathlib import PurePosixPath

from sparsa.sw.eie import format as ef
from sparsa.sw.errors import user_error
from sparsa.sw.manifest import validate_schema

__all__ = ["EIE_MANIFEST_SCHEMA", "check_eie_manifest", "MAX_PES", "MAX_DIM"]

MAX_PES = 1024                  # the hardware generator's limit (EIEConfig)
MAX_DIM = 1 << 20               # rows or columns of one layer (EIE's largest: 25,088 columns)
MAX_SHIFT = 62                  # as sparsa.sw.eie.pack.MAX_SHIFT
FRAC = {"type": ["integer", "null"], "minimum": -64, "maximum": 64}

_int = lambda lo, hi: {"type": "integer", "minimum": lo, "maximum": hi}
_ints = lambda lo, hi: {"type": "array", "items": _int(lo, hi)}
_name = {"type": "string", "minLength": 1, "maxLength": 4096}

_LAYER = {
    "type": "object",
    "required": ["name", "rows", "cols", "nnz", "entries_per_pe", "words_per_pe", "codebook", "shift",
                 "relu", "codebook_image", "pe_images"],
    "properties": {
        "name": {"type": "string"},
        "rows": _int(1, MAX_DIM), "cols": _int(1, MAX_DIM),
        "nnz": _int(0, MAX_DIM * MAX_DIM),
        "entries_per_pe": _ints(0, 1 << 32), "padding_per_pe": _ints(0, 1 << 32),
        "rows_per_pe": _ints(0, MAX_DIM), "words_per_pe": _ints(0, 1 << 29),
        "ptr_even_words": _int(1, MAX_DIM), "ptr_odd_words": _int(1, MAX_DIM),
        "codebook": {"type": "array", "minItems": ef.CODEBOOK_SIZE, "maxItems": ef.CODEBOOK_SIZE,
                     "items": _int(-(1 << 15), (1 << 15) - 1)},
        "shift": _int(0, MAX_SHIFT),
        "relu": {"type": "boolean"},
        "in_frac_bits": FRAC, "weight_frac_bits": FRAC, "out_frac_bits": FRAC,
        "codebook_image": _name,
        "bias_images": {"type": "array", "items": _name},
        "pe_images": {"type": "array", "items": {
            "type": "object", "required": ["pe", "spm", "ptr_even", "ptr_odd", "bias"],
            "properties": {"pe": _int(0, MAX_PES - 1), "spm": _name, "ptr_even": _name, "ptr_odd": _name,
                           "bias": _name}}},
    },
}

EIE_MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["format", "version", "pes", "pointer_bits", "input", "output", "layers", "files",
                 "manifest_sha256"],
    "properties": {
        "format": {"const": "sparsa-eie-pack"},
        "version": {"const": 1},
        "pes": _int(1, MAX_PES),
        "pointer_bits": _int(ef.MIN_POINTER_BITS, 32),
        "input": {"type": "object", "required": ["cols", "frac_bits"],
                  "properties": {"cols": _int(1, MAX_DIM), "frac_bits": FRAC}},
        "output": {"type": "object", "required": ["rows"],
                   "properties": {"rows": _int(1, MAX_DIM), "frac_bits": FRAC}},
        "layers": {"type": "array", "minItems": 1, "maxItems": 1024, "items": _LAYER},
        "files": {"type": "object", "minProperties": 1,
                  "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
        "manifest_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
        "lstm": {"type": "object",
                 "required": ["inputs", "hidden", "outputs", "hidden_pad", "outputs_pad", "peep_images"],
                 "properties": {"inputs": _int(1, MAX_DIM), "hidden": _int(1, MAX_DIM), "outputs": _int(1, MAX_DIM),
                                "hidden_pad": _int(1, MAX_DIM), "outputs_pad": _int(1, MAX_DIM),
                                "peepholes": {"type": "boolean"}, "projection": {"type": "boolean"},
                                "peep_images": {"type": "array", "items": _name}}},
    },
}


def _image(man, where, field, stem):
    """An image stem must be a relative path inside the pack whose .bin the manifest lists."""
    p = PurePosixPath(stem)
    if p.is_absolute() or ".." in p.parts or "\\" in stem:
        raise user_error(where, field, "a relative path inside the pack", repr(stem)[:80])
    if f"{stem}.bin" not in man["files"]:
        raise user_error(where, field, "an image listed under 'files'", f"{stem + '.bin'!r}, not listed")


def check_eie_manifest(man, where):
    """Validate an EIE manifest dict (see the module docstring); raises a one-line UserError."""
    validate_schema(man, EIE_MANIFEST_SCHEMA, where)
    pes, layers = man["pes"], man["layers"]
    for n, ml in enumerate(layers):
        at = f"layers[{n}]"
        for key in ("entries_per_pe", "words_per_pe", "pe_images"):
            if len(ml[key]) != pes:
                raise user_error(where, f"{at}.{key}", f"{pes} entries (one per PE)", len(ml[key]))
        for key in ("padding_per_pe", "rows_per_pe", "bias_images"):
            if key in ml and len(ml[key]) != pes:
                raise user_error(where, f"{at}.{key}", f"{pes} entries (one per PE)", len(ml[key]))
        for k, (e, w) in enumerate(zip(ml["entries_per_pe"], ml["words_per_pe"])):
            if w != -(-e // ef.ENTRIES_PER_WORD):
                raise user_error(where, f"{at}.words_per_pe[{k}]", f"{-(-e // ef.ENTRIES_PER_WORD)} "
                                 f"(entries_per_pe[{k}] = {e} at {ef.ENTRIES_PER_WORD} a word)", w)
        for k, im in enumerate(ml["pe_images"]):
            if im["pe"] != k:
                raise user_error(where, f"{at}.pe_images[{k}].pe", k, im["pe"])
            for kind in ("spm", "ptr_even", "ptr_odd", "bias"):
                _image(man, where, f"{at}.pe_images[{k}].{kind}", im[kind])
        _image(man, where, f"{at}.codebook_image", ml["codebook_image"])
    lstm = man.get("lstm")
    if lstm:
        _check_lstm(man, lstm, where)
        return
    for n in range(1, len(layers)):
        if layers[n]["cols"] != layers[n - 1]["rows"]:
            raise user_error(where, f"layers[{n}].cols", f"{layers[n - 1]['rows']} (layer {n - 1}'s rows: "
                             "layers chain)", layers[n]["cols"])
    _expect(where, "input.cols", man["input"]["cols"], layers[0]["cols"], "layers[0].cols")
    _expect(where, "output.rows", man["output"]["rows"], layers[-1]["rows"], "the last layer's rows")


def _expect(where, field, found, want, why):
    if found != want:
        raise user_error(where, field, f"{want} ({why})", found)


def _check_lstm(man, lstm, where):
    """An LSTM pack: two layers, gates (4H' x (P' + I)) and projection (P' x H'), see sw/lstm/pack.py."""
    layers, pes = man["layers"], man["pes"]
    if len(layers) != 2:
        raise user_error(where, "layers", "2 layers (gates, projection) in an LSTM pack", len(layers))
    hp, pp, i = lstm["hidden_pad"], lstm["outputs_pad"], lstm["inputs"]
    _expect(where, "layers[0].rows", layers[0]["rows"], 4 * hp, "4 x lstm.hidden_pad")
    _expect(where, "layers[0].cols", layers[0]["cols"], pp + i, "lstm.outputs_pad + lstm.inputs")
    _expect(where, "layers[1].rows", layers[1]["rows"], pp, "lstm.outputs_pad")
    _expect(where, "layers[1].cols", layers[1]["cols"], hp, "lstm.hidden_pad")
    _expect(where, "input.cols", man["input"]["cols"], i, "lstm.inputs")
    _expect(where, "output.rows", man["output"]["rows"], lstm["outputs"], "lstm.outputs")
    if len(lstm["peep_images"]) != pes:
        raise user_error(where, "lstm.peep_images", f"{pes} entries (one per PE)", len(lstm["peep_images"]))
    for k, stem in enumerate(lstm["peep_images"]):
        _image(man, where, f"lstm.peep_images[{k}]", stem)
