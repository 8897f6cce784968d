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
import stat
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from sparsa.sw.errors import UserError, user_error

__all__ = [
    "atomic_file", "atomic_dir", "owned_by_manifest", "check_outputs", "remove_stale_temporaries", "load_npy", "load_npz", "save_npy", "save_npz",
    "write_json", "sha256_file", "check_finite", "check_int_range",
]


_TMP_TAG = "sparsa"


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


_NAME_MAX = 255       # bytes in one file name (Linux, macOS)
_STEM_MAX = 180       # room left for the tag, the PID and mkstemp's random part


def _stem(path):
    """The output's name as temporaries carry it: cut so that a legal 255-byte output name
    still gives a legal temporary name."""
    name = path.name
    while len(name.encode()) > _STEM_MAX:
        name = name[:-1]
    return name


def _tmp_prefix(path):
    """Hidden temporary names next to ``path`` carry our tag and PID, so that a later run can
    tell its own stale temporaries (from a killed process) from anybody else's files."""
    return f".{_stem(path)}.{_TMP_TAG}-{os.getpid()}-"


def _pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(path):
    """Delete ``.NAME.sparsa-PID-*.tmp`` / ``.NAME.sparsa-PID-old`` next to ``path`` left by a
    sparsa process that no longer runs (SIGKILL, power loss). Nothing else is touched."""
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        return
    head = f".{_stem(path)}.{_TMP_TAG}-"
    for entry in parent.iterdir():
        name = entry.name
        if not name.startswith(head) or not (name.endswith(".tmp") or name.endswith("-old")):
            continue
        pid = name[len(head):].split("-", 1)[0]
        if not pid.isdigit() or _pid_alive(int(pid)):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()


def _describe(st):
    for test, what in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISDIR, "a directory")):
        if test(st.st_mode):
            return what
    return "a file"


@contextlib.contextmanager
def atomic_file(path):
    """Yield a temporary path; when the block succeeds its content becomes ``path``.

    * A regular file (or none) is replaced by rename, so a failure leaves the old file or
      nothing; a replaced file keeps its permission bits, a new one gets ``0666 & ~umask``.
    * A symlink is followed: the file it points to is written, the link stays.
    * A character device or a FIFO (``/dev/null``, ``/dev/stdout``, a named pipe) is written
      through, never replaced. A directory, block device or socket is refused.
    """
    path = Path(path)
    if path.is_symlink():
        path = Path(os.path.realpath(path))
    st = None
    with contextlib.suppress(FileNotFoundError):
        st = os.stat(path)
    through = st is not None and (stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode))
    if st is not None and not through and not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path}: output file: expected a new or regular file, found {_describe(st)}")
    try:
        if through:
            fd, tmp = tempfile.mkstemp(prefix=f"sparsa-{os.getpid()}-", suffix=".tmp")
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            remove_stale_temporaries(path)
            fd, tmp = tempfile.mkstemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise UserError(f"{path}: output file: cannot create it ({e.strerror})") from None
    os.close(fd)
    tmp = Path(tmp)
    try:
        try:
            yield tmp
        except OSError as e:
            if e.filename is not None and Path(e.filename) != tmp:
                raise
            # Writing the temporary failed (disk full, a quota): say so of the user's path.
            raise UserError(f"{path}: output file: cannot write it ({e.strerror or e})") from None
        if through:
            with open(tmp, "rb") as src, open(path, "wb") as dst:
                shutil.copyfileobj(src, dst)
        else:
            _keep_mode_and_owner(tmp, st)
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _give_tree(root, st):
    """A replaced directory keeps its owner: the new tree is given to it, where we may."""
    if (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid()):
        return
    for p in [root, *Path(root).rglob("*")]:
        with contextlib.suppress(OSError):
            os.lchown(p, st.st_uid, st.st_gid)


def _keep_mode_and_owner(tmp, st):
    """A replaced file keeps its permission bits (never set-user/group-ID: new content does
    not inherit them) and, where we may, its owner; a new one gets ``0666 & ~umask``."""
    if st is None:
        os.chmod(tmp, 0o666 & ~_umask())
        return
    if (st.st_uid, st.st_gid) != (os.geteuid(), os.getegid()):
        with contextlib.suppress(OSError):
            os.chown(tmp, st.st_uid, st.st_gid)
    os.chmod(tmp, stat.S_IMODE(st.st_mode) & 0o1777 & ~(stat.S_ISUID | stat.S_ISGID))


def _inside(a, b):
    """True when path ``a`` is ``b`` or lies inside directory ``b`` (symlinks resolved)."""
    a, b = Path(os.path.realpath(a)), Path(os.path.realpath(b))
    return a == b or b in a.parents


def check_outputs(outputs, inputs=(), *, dirs=()):
    """Refuse, before any work, a command whose outputs cannot all be written: an output that
    is an input, holds one (an output directory) or lies inside an input directory, two
    outputs at one path, a file output (any label not in ``dirs``) that is a directory, block
    device or socket, or a name too long for the file system. ``outputs`` and ``inputs`` are
    ``(label, path)`` pairs, the label being the option that named the path."""
    outputs = [(label, Path(p)) for label, p in outputs if p is not None]
    inputs = [(label, Path(p)) for label, p in inputs if p is not None]
    for label, po in outputs:
        # The nearest existing ancestor must be a directory (a file there would fail the write
        # after other outputs were written).
        anc = po.parent if str(po.parent) else Path(".")
        while not os.path.lexists(anc) and anc != anc.parent:
            anc = anc.parent
        if os.path.lexists(anc) and not os.path.isdir(anc):
            raise UserError(f"{po}: {label}: expected a path under a directory, found {anc} is "
                            f"{_describe(os.stat(anc)) if os.path.exists(anc) else 'a dangling symlink'}")
        if len(po.name.encode()) > _NAME_MAX:
            raise UserError(f"{str(po)[:80]}...: {label}: expected a file name of at most {_NAME_MAX} bytes, "
                            f"found {len(po.name.encode())}")
        if label not in dirs and os.path.exists(po):
            st = os.stat(po)
            if not (stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode) or stat.S_ISFIFO(st.st_mode)):
                raise UserError(f"{po}: {label}: expected a new or regular file, found {_describe(st)}")
    for i, (lo, po) in enumerate(outputs):
        for li, pi in inputs:
            if _inside(pi, po) or _inside(po, pi):
                how = ("the same path" if _inside(pi, po) and _inside(po, pi) else
                       "the input inside it" if _inside(pi, po) else "it inside the input")
                raise UserError(f"{po}: {lo}: expected a path apart from the input {li} ({pi}), found "
                                f"{how}; refusing to overwrite the input")
        for lo2, po2 in outputs[i + 1:]:
            if _inside(po, po2) or _inside(po2, po):
                raise UserError(f"{po}: {lo}: expected a path apart from the output {lo2} ({po2}), found "
                                f"the same path; one would overwrite the other")


def owned_by_manifest(path, formats, *, marker="manifest.json"):
    """True when directory ``path`` is provably a sparsa output: its ``marker`` is JSON naming
    one of ``formats`` with an integer version, and every file in it is the marker or listed in
    the marker's ``files``. Anything else (a user's folder that happens to hold a
    manifest.json, a pack with a file added by hand) is not ours to delete."""
    path = Path(path)
    try:
        man = read_json(path / marker)
    except UserError:
        return False
    if not isinstance(man, dict) or man.get("format") not in formats or type(man.get("version")) is not int:
        return False
    listed = man.get("files") if isinstance(man.get("files"), dict) else {}
    for entry in path.rglob("*"):
        if entry.is_symlink() or not (entry.is_dir() or entry.is_file()):
            return False
        if entry.is_file() and entry.relative_to(path).as_posix() not in listed and entry.name != marker:
            return False
    return True


@contextlib.contextmanager
def atomic_dir(path, *, owned, inputs=()):
    """Yield a temporary directory next to ``path``; swap it in for ``path`` on success.

    An existing ``path`` is replaced only once the new directory is complete, and only if it
    is empty or ``owned(path)`` proves it an earlier output of the same kind (see
    :func:`owned_by_manifest`), and it holds none of ``inputs``: sparsa never deletes a user's
    file or directory it did not write. A file, symlink, device or FIFO at ``path`` is refused.
    """
    path = Path(path)
    if path.is_symlink() or (os.path.lexists(path) and not path.is_dir()):
        what = "a symlink" if path.is_symlink() else _describe(os.stat(path))
        raise UserError(f"{path}: output directory: expected a new or earlier output directory, "
                        f"found {what}; refusing to replace it")
    for label, p in inputs:
        if p is not None and _inside(p, path):
            raise UserError(f"{path}: output directory: expected a directory apart from the inputs, "
                            f"found the input {label} {p} inside it; refusing to replace it")
    if path.is_dir() and any(path.iterdir()) and not owned(path):
        raise UserError(f"{path}: output directory: expected a new, empty or earlier sparsa output "
                        f"directory, found a directory with other files; refusing to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(path), suffix=".tmp", dir=path.parent))
    try:
        yield tmp
        # A replaced directory keeps its permission bits (a private 0700 pack stays private).
        os.chmod(tmp, stat.S_IMODE(os.stat(path).st_mode) & 0o1777 if path.is_dir() else 0o777 & ~_umask())
        if path.is_dir():
            _give_tree(tmp, os.stat(path))
        if path.exists():
            old = path.with_name(f"{_tmp_prefix(path)}old")
            os.replace(path, old)
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


OUTPUT_DIR_MARKER = ".sparsa-output.json"


def claim_output_dir(path, kind, label="-o"):
    """Make ``path`` the output directory of a command that writes several files into it
    (``sparsa demo``, ``sparsa bench``), before any work: a new or empty directory, or one an
    earlier run of the same ``kind`` marked as its own; a directory of the user's (any other
    files, no marker) is refused, never written into."""
    path = Path(path)
    marker = path / OUTPUT_DIR_MARKER
    if os.path.lexists(path) and (path.is_symlink() or not path.is_dir()):
        what = "a symlink" if path.is_symlink() else _describe(os.stat(path))
        raise UserError(f"{path}: {label}: expected an output directory, found {what}")
    if path.is_dir() and any(path.iterdir()):
        try:
            ours = read_json(marker).get("kind") == kind
        except (UserError, AttributeError):
            ours = False
        if not ours:
            raise UserError(f"{path}: {label}: expected a new, empty or earlier 'sparsa {kind}' output directory, "
                            f"found a directory with other files; refusing to write into it (choose another {label})")
    path.mkdir(parents=True, exist_ok=True)
    if not marker.exists():
        write_json(marker, {"format": "sparsa-output-dir", "version": 1, "kind": kind})


JSON_MAX_BYTES = 256 << 20     # no sparsa JSON file (manifest, report, graph) comes near this


def loads_json(text, where, field):
    """Parse JSON ``text`` or raise a one-line UserError (malformed, or nested too deeply for
    Python's parser: ``[[[[...`` a hundred thousand deep is text, not a traceback)."""
    try:
        return json.loads(text)
    except (ValueError, UnicodeDecodeError) as e:
        raise user_error(where, field, "JSON", f"unparsable text ({str(e)[:80]})") from None
    except RecursionError:
        raise user_error(where, field, "JSON nested at most a few hundred levels deep",
                         "deeper nesting") from None


def read_json(path, field="file", *, max_bytes=JSON_MAX_BYTES):
    """Read the JSON file ``path``: a regular file (not a device, FIFO or directory, which
    could be read without end) of at most ``max_bytes``, parsed by :func:`loads_json`."""
    path = Path(path)
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise user_error(path, field, "an existing JSON file", "no such file") from None
    except OSError as e:
        raise user_error(path, field, "a readable JSON file", e.strerror) from None
    if not stat.S_ISREG(st.st_mode):
        raise user_error(path, field, "a regular JSON file", _describe(st))
    if st.st_size > max_bytes:
        raise user_error(path, field, f"at most {max_bytes:,} bytes", f"{st.st_size:,} bytes")
    try:
        text = path.read_bytes()
    except OSError as e:
        raise user_error(path, field, "a readable JSON file", e.strerror) from None
    return loads_json(text, path, field)


def _check_exists(path):
    path = Path(path)
    if not path.exists():
        raise UserError(f"{path}: file not found")
    if path.is_dir():
        raise UserError(f"{path}: expected a file, found a directory")
    return path


def _declared_bytes(f):
    """``(shape, bytes)`` a .npy stream's header declares (None when it has no numpy header),
    read without loading the data: a 128-byte file may claim a terabyte."""
    try:
        version = np.lib.format.read_magic(f)
        read = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}
        shape, _, dtype = read[version](f, max_header_size=1 << 20) if version in read else (None, 0, None)
    except (ValueError, KeyError, TypeError, EOFError, OSError):
        return None
    if shape is None or dtype.hasobject:
        return None
    return shape, int(np.prod(shape, dtype=np.float64)) * dtype.itemsize


def _check_declared(path, what, shape, declared, held):
    if declared > held:
        raise user_error(path, what, f"data for the header's shape {tuple(shape)} ({declared:,} bytes)",
                         f"{held:,} bytes: the header lies or the file is cut short")


def _check_entry_size(path, what, z, key):
    name = key if key in z.zip.namelist() else f"{key}.npy"
    info = z.zip.getinfo(name)
    with z.zip.open(info) as f:
        claim = _declared_bytes(f)
        if claim is not None:
            _check_declared(path, f"{what} array {key!r}", claim[0], claim[1], info.file_size - f.tell())


def load_npy(path, *, what="array"):
    """Load a ``.npy`` file, refusing pickles and non-numpy content with a clear error."""
    path = _check_exists(path)
    try:
        with open(path, "rb") as f:
            claim = _declared_bytes(f)
            if claim is not None:
                _check_declared(path, what, claim[0], claim[1], os.fstat(f.fileno()).st_size - f.tell())
        arr = np.load(path, allow_pickle=False)
    except PermissionError:
        raise UserError(f"{path}: cannot read file (permission denied)")
    except (ValueError, OSError, EOFError) as e:
        raise UserError(f"{path}: {what}: expected a numpy .npy file, found {_content(path, e)}")
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
        z = np.load(path, allow_pickle=False)
        if not isinstance(z, np.lib.npyio.NpzFile):
            raise UserError(f"{path}: {what}: expected a .npz archive, found a single .npy array")
        with z:
            for k in z.files:
                _check_entry_size(path, what, z, k)
            return {k: z[k] for k in z.files}
    except UserError:
        raise
    except PermissionError:
        raise UserError(f"{path}: cannot read file (permission denied)")
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as e:
        raise UserError(f"{path}: {what}: expected a numpy .npz archive, found {_content(path, e)}")


def _content(path, e):
    """What a file numpy could not load holds, in words: numpy's own message for a file with no
    numpy header is about pickles, which says nothing to a user who gave it a JSON file."""
    try:
        with open(path, "rb") as f:
            head = f.read(64)
    except OSError:
        return f"unreadable content ({_short(e)})"
    text = head.lstrip()
    if head.startswith(b"\x93NUMPY") or head.startswith(b"PK"):
        return f"a damaged numpy file ({_short(e)})"
    if text[:1] in (b"{", b"["):
        return "a JSON file"
    if not head:
        return "an empty file"
    if all(32 <= c < 127 or c in (9, 10, 13) for c in head):
        return "a text file"
    return "binary data without a numpy header"


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
