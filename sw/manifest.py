"""Pack manifests (``manifest.json``): canonical JSON, the self-digest, reading and file checks.

Every pack directory, whatever the engine, carries a ``manifest.json`` that names its format
and version, lists every file with its sha256 (``files``) and covers its own content with
``manifest_sha256``. The engines' packers (:mod:`sparsa.sw.eie.pack_dir`,
:mod:`sparsa.sw.cnn.pack`) write and read theirs with these functions.
"""

import hashlib
import json
import os
import re
from pathlib import Path

from sparsa.sw.errors import UserError, user_error
from sparsa.sw.fileio import owned_by_manifest, read_json, sha256_file

__all__ = ["manifest_digest", "dumps_manifest", "read_manifest", "verify_files", "owned_pack_dir", "validate_schema",
           "EIE_PACK_FORMAT", "CNN_PACK_FORMAT", "PACK_FORMATS"]

EIE_PACK_FORMAT = "sparsa-eie-pack"
CNN_PACK_FORMAT = "sparsa-cnn-pack"
PACK_FORMATS = (EIE_PACK_FORMAT, CNN_PACK_FORMAT)
MANIFEST_MAX_BYTES = 64 << 20      # a 1024-PE pack's manifest is well under a megabyte


def owned_pack_dir(path):
    """True when ``path`` is provably a sparsa pack that ``sparsa pack -o`` may replace (either
    engine's: a manifest naming a pack format, and no file in it that the manifest does not list)."""
    return owned_by_manifest(path, PACK_FORMATS)


def manifest_digest(man):
    """sha256 of the manifest's own content (all fields but this one, canonical JSON).

    The image files are covered by ``files``; this covers the layer metadata (shift, relu,
    rows, cols, codebook, ...) that lives only in the manifest.
    """
    body = {k: v for k, v in man.items() if k != "manifest_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def dumps_manifest(obj):
    """JSON with one field per line but lists of numbers on one line (64-PE lists stay short)."""
    text = json.dumps(obj, indent=1)
    # A raw newline never occurs inside a JSON string, so only multi-line lists are joined.
    return re.sub(r"\[\n\s*([^\[\]{}\"]*?)\n\s*\]",
                  lambda m: "[" + ", ".join(t.strip() for t in m.group(1).split(",")) + "]", text) + "\n"


def read_manifest(pack_dir, *, fmt, version, fields=()):
    """Read and sanity-check ``pack_dir/manifest.json`` (no image is opened): its ``format``
    and ``version`` and the types of ``fields`` ((key, type) pairs)."""
    d = Path(pack_dir)
    if not d.exists():
        raise UserError(f"{d}: pack directory not found")
    if not d.is_dir():
        raise user_error(d, "pack", "a pack directory written by 'sparsa pack'", "a file")
    m = d / "manifest.json"
    if not os.path.lexists(m):
        raise user_error(m, "manifest", "manifest.json of a 'sparsa pack' directory", "no such file")
    man = read_json(m, "manifest", max_bytes=MANIFEST_MAX_BYTES)
    if not isinstance(man, dict) or man.get("format") != fmt:
        raise user_error(m, "format", repr(fmt), repr(man.get("format") if isinstance(man, dict) else man))
    if man.get("version") != version:
        raise user_error(m, "version", version, repr(man.get("version")))
    for key, kind in fields:
        if not isinstance(man.get(key), kind):
            raise user_error(m, key, f"a manifest field of type {kind.__name__}", repr(man.get(key))[:60])
    return man


def verify_files(d, files):
    """Check every file of ``files`` (name -> sha256) under ``d``: inside it, present, unchanged."""
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


def _expected(err):
    """What a JSON Schema error wanted, in the words of sparsa's one-line errors."""
    v, val = err.validator, err.validator_value
    return {
        "type": lambda: f"a JSON {' or '.join(val) if isinstance(val, list) else val}",
        "minimum": lambda: f"a value >= {val}", "maximum": lambda: f"a value <= {val}",
        "const": lambda: repr(val), "enum": lambda: "one of " + ", ".join(map(repr, val)),
        "minItems": lambda: f"at least {val} item(s)", "maxItems": lambda: f"at most {val} item(s)",
        "minLength": lambda: f"at least {val} character(s)", "maxLength": lambda: f"at most {val} characters",
        "pattern": lambda: f"a string matching {val}", "minProperties": lambda: f"at least {val} entry",
        "required": lambda: "the field present",
    }.get(v, lambda: err.message)()


def validate_schema(doc, schema, where):
    """Validate ``doc`` against a JSON Schema; the first error becomes a one-line UserError that
    names the file, the field's path, what was expected and what was found (types are checked,
    never coerced)."""
    import jsonschema
    # JSON Schema calls 32.0 an integer; a manifest that says 32.0 was not written by sparsa.
    strict = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
        "integer", lambda checker, x: isinstance(x, int) and not isinstance(x, bool))
    validator = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=strict)(schema)
    errors = sorted(validator.iter_errors(doc), key=lambda e: ([str(p) for p in e.path], e.validator != "type"))
    if not errors:
        return
    err = errors[0]
    field = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err.path).lstrip(".") or "manifest"
    if err.validator == "required":
        missing = err.message.split("'")[1] if "'" in err.message else err.message
        raise user_error(where, f"{field}.{missing}" if field != "manifest" else missing, "the field present", "none")
    found = repr(err.instance)
    raise user_error(where, field, _expected(err), found if len(found) <= 60 else found[:57] + "...")
