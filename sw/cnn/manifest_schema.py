"""The CNN pack manifest's schema: types and ranges of every field a reader uses, and consistency.

Like the EIE manifest (:mod:`sparsa.sw.eie.manifest_schema`), a CNN manifest is untrusted
input: types are checked, never coerced (``"lanes": "8"`` is refused; the configuration's own
ranges are :class:`~sparsa.sw.cnn.config.CNNConfig`'s), and the DRAM regions it names must lie
inside the DRAM image it describes.
"""

from sparsa.sw.errors import user_error
from sparsa.sw.manifest import validate_schema

__all__ = ["CNN_MANIFEST_SCHEMA", "check_cnn_manifest", "MAX_DRAM"]

MAX_DRAM = 1 << 32          # the engine's AXI addresses are 32 bits
_int = lambda lo, hi: {"type": "integer", "minimum": lo, "maximum": hi}
_count = _int(0, 1 << 62)
_shape = {"type": "array", "minItems": 1, "maxItems": 3, "items": _int(1, 1 << 20)}
_region = {"type": "object", "required": ["addr", "shape"],
           "properties": {"addr": _int(0, MAX_DRAM - 1), "shape": _shape, "dtype": {"const": "int8"},
                          "flat": {"type": "boolean"}}}
_LAYER = {
    "type": "object",
    "required": ["index", "name", "op", "shape", "datapath", "macs", "mac_cycles", "instr_start", "instr_end",
                 "row_tiles", "groups", "dram_read", "dram_write"],
    "properties": {
        "index": _int(0, 1 << 20), "name": {"type": "string"}, "op": {"type": "string"},
        "shape": _shape, "datapath": {"type": ["string", "null"]},
        "macs": _count, "mac_cycles": _count, "instr_start": _count, "instr_end": _count,
        "row_tiles": _count, "groups": _count, "dram_read": _count, "dram_write": _count,
    },
}

CNN_MANIFEST_SCHEMA = {
    "type": "object",
    "required": ["format", "version", "config", "datapath", "instructions", "instr_bytes", "input", "output",
                 "dram_size", "layers", "files", "manifest_sha256"],
    "properties": {
        "format": {"const": "sparsa-cnn-pack"},
        "version": {"const": 1},
        "config": {"type": "object"},
        "datapath": {"enum": ["direct", "winograd"]},
        "instructions": _int(1, 1 << 24),
        "instr_bytes": {"const": 128},
        "input": _region, "output": _region,
        "dram_size": _int(1, MAX_DRAM),
        "layers": {"type": "array", "minItems": 1, "maxItems": 4096, "items": _LAYER},
        "files": {"type": "object", "required": ["program.bin", "dram.bin"],
                  "propertyNames": {"enum": ["program.bin", "dram.bin", "model.npz"]},
                  "additionalProperties": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
        "manifest_sha256": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
    },
}


def check_cnn_manifest(man, where):
    """Validate a CNN manifest dict (see the module docstring); raises a one-line UserError."""
    validate_schema(man, CNN_MANIFEST_SCHEMA, where)
    for key in ("input", "output"):
        region = man[key]
        size = 1
        for n in region["shape"]:
            size *= n
        if region["addr"] + size > man["dram_size"]:
            raise user_error(where, f"{key}.addr", f"a region inside dram_size {man['dram_size']} bytes",
                             f"{region['addr']} + {size} bytes")
    if man["datapath"] == "winograd" and man["config"].get("winograd") is False:
        raise user_error(where, "datapath", "direct for an engine built without Winograd (config.winograd "
                         "false)", "winograd")
    names = [layer["name"] for layer in man["layers"]]
    for k, layer in enumerate(man["layers"]):
        if layer["index"] != k:
            raise user_error(where, f"layers[{k}].index", f"{k} (layers in order, each once)", layer["index"])
        if names.index(layer["name"]) != k:
            raise user_error(where, f"layers[{k}].name", "a name no other layer has", repr(layer["name"]))
    ends = [(layer["instr_start"], layer["instr_end"]) for layer in man["layers"]]
    for k in range(1, len(ends)):
        if ends[k][0] < ends[k - 1][1]:
            raise user_error(where, f"layers[{k}].instr_start", f">= {ends[k - 1][1]} (layers[{k - 1}]'s end: "
                             "each instruction belongs to one layer)", ends[k][0])
    if man["instructions"] * man["instr_bytes"] > man["dram_size"]:
        raise user_error(where, "instructions", f"at most {man['dram_size'] // man['instr_bytes']} "
                         "(the program lies in the DRAM image)", man["instructions"])
