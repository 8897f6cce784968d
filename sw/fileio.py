"""Reading user files with clear errors, and writing outputs atomically.

Every output sparsa writes goes through :func:`atomic_file` or :func:`atomic_dir`: the data
is written under a temporary name in the destination's directory and renamed into place
only when complete, so a failed command never leaves a half-written file behind.
"""

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from sparsa.sw.errors import UserError, user_error

__all__ = [
    "atomic_file", "atomic_dir", "load_npy", "load_npz", "save_npy", "save_npz",
    "write_json", "sha256_file", "check_finite", "check_int_range",
]


@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary path next to ``path``; rename it onto ``path`` on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


@contextlib.contextmanager
def atomic_dir(path, *, marker="manifest.json"):
    """Yield a temporary directory next to ``path``; swap it in for ``path`` on success.

    An existing ``path`` is replaced only once the new directory is complete, and only if it
    is empty or an earlier output of the same kind (it holds ``marker``): sparsa never
    deletes a user's file or directory it did not write.
    """
    path = Path(path)
    if path.is_file() or path.is_symlink():
        raise UserError(f"{path}: output directory: expected a new or earlier output directory, "
                        f"found an existing file")
    if path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise UserError(f"{path}: output directory: expected a new, empty or earlier output "
                        f"directory (with {marker}), found a directory with other files; "
                        f"refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        if path.exists():
            old = path.with_name(f".{path.name}.old-{os.getpid()}")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_exists(path):
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if path.is_dir():
        raise UserError(f"{path}: expected a file, found a directory")
    return path


def load_npy(path, *, what="array"):
    """Load a ``.npy`` file, refusing pickles and non-numpy content with a clear error."""
    path = _check_exists(path)
    try:
        arr = np.load(path, allow_pickle=False)
    except PermissionError:
        raise UserError(f"{path}: cannot read file (permission denied)")
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: {what}: expected a numpy .npy file, found unreadable content ({_short(e)})")
    if isinstance(arr, np.lib.npyio.NpzFile):
        arr.close()
        raise UserError(f"{path}: {what}: expected a .npy array, found a .npz archive")
    if arr.dtype.kind not in "biuf":
        raise user_error(path, what, "a numeric array", f"dtype {arr.dtype}")
    return arr


def load_npz(path, *, what="archive"):
    """Load every array of a ``.npz`` file into an ordered dict (file order kept)."""
    path = _check_exists(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            if not isinstance(z, np.lib.npyio.NpzFile):
                raise UserError(f"{path}: {what}: expected a .npz archive, found a single .npy array")
            return {k: z[k] for k in z.files}
    except UserError:
        raise
    except PermissionError:
        raise UserError(f"{path}: cannot read file (permission denied)")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise UserError(f"{path}: {what}: expected a numpy .npz archive, found unreadable content ({_short(e)})")


def _short(e):
    s = str(e).splitlines()[0] if str(e) else type(e).__name__
    return s[:120]


def save_npy(path, arr):
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, arr)


def save_npz(path, arrays, *, compressed=True):
    with atomic_file(path) as tmp:
        with open(tmp, "wb") as f:
            (np.savez_compressed if compressed else np.savez)(f, **arrays)


def write_json(path, obj):
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def check_finite(arr, where, field):
    if arr.dtype.kind == "f" and not np.all(np.isfinite(arr)):
        bad = int(np.size(arr) - np.count_nonzero(np.isfinite(arr)))
        raise user_error(where, field, "finite values", f"{bad} NaN/inf value(s)")


def check_int_range(arr, lo, hi, where, field, kind="int16"):
    """Require integer-valued ``arr`` within [lo, hi]."""
    if arr.size == 0:
        return
    if arr.dtype.kind == "f":
        check_finite(arr, where, field)
        if not np.all(arr == np.round(arr)):
            raise user_error(where, field, f"integer values ({kind})", "non-integer values")
    amin, amax = arr.min(), arr.max()
    if amin < lo or amax > hi:
        bad = amin if amin < lo else amax
        raise user_error(where, field, f"values in [{lo}, {hi}] ({kind})", f"{int(bad)}")
