"""Fuzz harness (issue 26): CLI argument combinations for pack/unpack/inspect/run/verilog/report.

Also the shared part of the fuzz harnesses (tests/test_fuzz_*.py): the hypothesis settings and
the contract check. The contract: exit 0 with a correct result, or exit 2 with one error line,
no traceback, nothing written and nothing of the user's touched.

``make test`` runs a bounded, derandomized number of examples (deterministic in CI);
``make fuzz`` (``HYPOTHESIS_PROFILE=fuzz``) runs many more with fresh random seeds.
"""

import copy
import hashlib
import io
import os
import shutil
import traceback
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, note, settings
from hypothesis import strategies as st

from sparsa.cli import main

FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"
EXAMPLES = int(os.environ.get("SPARSA_FUZZ_EXAMPLES", 3000 if FUZZ else 60))

SETTINGS = settings(max_examples=EXAMPLES, deadline=None, derandomize=not FUZZ, database=None,
                    print_blob=FUZZ,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                           HealthCheck.data_too_large, HealthCheck.filter_too_much])


def tree_digest(root):
    """{relative path: sha256} of every file under ``root`` (or of the file ``root``)."""
    root = Path(root)
    if not root.exists():
        return None
    if root.is_file():
        return {".": hashlib.sha256(root.read_bytes()).hexdigest()}
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def run_cli(argv):
    """``sparsa argv`` in-process: (exit status, stdout, stderr). An exception escaping
    ``main`` is a contract violation: it fails the test with the traceback and the argv."""
    out, err = io.StringIO(), io.StringIO()
    try:
        with redirect_stdout(out), redirect_stderr(err):
            rc = main([str(a) for a in argv])
    except SystemExit as e:         # argparse: one error line, status 2
        rc = e.code if isinstance(e.code, int) else 2
    except BaseException:
        raise AssertionError(f"sparsa {' '.join(map(str, argv))}: crashed:\n{traceback.format_exc()}") from None
    return rc, out.getvalue(), err.getvalue()


def check_contract(argv, inputs, outputs, ok=None):
    """Run the CLI and assert the contract: exit 0 (then ``ok(stdout)`` may check the result),
    or exit 2 with one error line, no traceback, no output written and no input touched.

    ``inputs``: paths that must be byte-identical afterwards; ``outputs``: paths that must not
    exist after a refusal (they must not exist before either). Returns (rc, stderr).
    """
    before = {str(p): tree_digest(p) for p in inputs}
    for p in outputs:
        assert not Path(p).exists(), f"test bug: output {p} exists before the run"
    rc, out, err = run_cli(argv)
    cmd = "sparsa " + " ".join(map(str, argv))
    assert "Traceback" not in err, f"{cmd}: traceback on stderr:\n{err}"
    assert {str(p): tree_digest(p) for p in inputs} == before, f"{cmd}: an input was modified"
    if rc == 0:
        if ok is not None:
            ok(out)
        return rc, err
    assert rc == 2, f"{cmd}: exit {rc}, expected 0 or 2\n{err}"
    lines = [l for l in err.strip().splitlines() if l.strip()]
    errors = [l for l in lines if ": error: " in l]
    # One error line, argument errors included (no usage block); before it at most progress
    # ("[build] ...") and warning/note lines.
    assert len(errors) == 1, f"{cmd}: expected one error line, found:\n{err}"
    others = [l for l in lines if l is not errors[0] and not l.startswith(("[", "warning:", "note:"))]
    assert not others, f"{cmd}: expected one error line and nothing else, found:\n{err}"
    for p in outputs:
        assert not Path(p).exists(), f"{cmd}: refused (exit 2) but wrote {p}"
    leftovers = [q.name for p in outputs for q in Path(p).parent.glob(f".{Path(p).name}*")]
    assert not leftovers, f"{cmd}: refused but left temporaries {leftovers}"
    return rc, err


# Values a field may be changed to: every JSON type, boundary and absurd numbers.
NUMBERS = st.one_of(st.integers(-3, 70), st.sampled_from([0, -1, 1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 1023, 1024,
                                                          1025, 2 ** 31, 2 ** 63, 10 ** 30, -(2 ** 63)]),
                    st.floats(allow_nan=False, allow_infinity=False, width=32), st.just(1.0), st.just(2.5))
SCALARS = st.one_of(NUMBERS, st.booleans(), st.none(), st.text(max_size=12),
                    st.sampled_from(["", "..", "/etc/passwd", "../x", "layer0/pe000.spm", "hex", "sparsa-eie-pack",
                                     "sparsa-model", "input", "conv2d", "linear", "add", "maxpool2d", "avgpool2d",
                                     "int8", "float32", "l0", "l0.w"]))
VALUES = st.one_of(SCALARS, st.lists(SCALARS, max_size=4), st.dictionaries(st.text(max_size=5), SCALARS, max_size=3))


def _paths(obj, prefix=()):
    """Every (path, value) in a JSON tree (dict keys and list indices)."""
    yield prefix, obj
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _parent(man, path):
    node = man
    for k in path[:-1]:
        node = node[k]
    return node


def _like(value):
    """Values of the same JSON type as ``value``, near the edges a loader must check."""
    if isinstance(value, bool):
        return st.one_of(st.booleans(), st.sampled_from(["false", "true", 0, 1, None]))
    if isinstance(value, int):
        return st.one_of(st.integers(-2, 4), st.integers(value - 2, value + 2), NUMBERS)
    if isinstance(value, str):
        return SCALARS.filter(lambda v: isinstance(v, str))
    if isinstance(value, list):
        return st.lists(st.one_of(st.integers(-1, 20), SCALARS), max_size=5)
    return VALUES


def mutate_json(draw, obj, keep=(), boring=()):
    """A deep copy of the JSON tree ``obj`` with 1-4 mutations: a field's type or value changed,
    a field deleted, an entry of ``layers`` duplicated, dropped or the list reversed, a list cut
    short or grown, an integer nudged. Top-level keys in ``keep`` are left alone; those in
    ``boring`` are picked only when nothing else is left."""
    obj = copy.deepcopy(obj)
    for _ in range(draw(st.integers(1, 4))):
        if not isinstance(obj, dict):
            break
        paths = [p for p, _ in _paths(obj) if p and p[0] not in keep]
        if not paths:
            break
        interesting = [p for p in paths if p[0] not in boring] or paths
        path = draw(st.sampled_from(interesting))
        op = draw(st.sampled_from(["set", "set", "set", "delete", "dup_layer", "drop_layer", "swap_layers",
                                   "shorten", "grow", "nudge"]))
        parent, key = _parent(obj, path), path[-1]
        layers = obj.get("layers") if isinstance(obj.get("layers"), list) else None
        if op == "set":
            parent[key] = draw(_like(parent[key]) if draw(st.booleans()) else VALUES)
        elif op == "delete":
            del parent[key]
        elif op == "dup_layer" and layers:
            i = draw(st.integers(0, len(layers) - 1))
            layers.insert(i, copy.deepcopy(layers[i]))
        elif op == "drop_layer" and layers:
            layers.pop(draw(st.integers(0, len(layers) - 1)))
        elif op == "swap_layers" and layers and len(layers) > 1:
            layers.reverse()
        elif op == "shorten" and isinstance(parent[key], list) and parent[key]:
            parent[key] = parent[key][:-1]
        elif op == "grow" and isinstance(parent[key], list):
            parent[key] = parent[key] + parent[key][-1:] if parent[key] else [0]
        elif op == "nudge" and isinstance(parent[key], int) and not isinstance(parent[key], bool):
            parent[key] += draw(st.sampled_from([-1, 1, 7, -100]))
        note(f"{op} {'.'.join(map(str, path))}")
    return obj


#
# The CLI fuzzer
#

pytestmark = pytest.mark.xdist_group("fuzz_cli")


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Inputs of every kind the commands take, good and bad."""
    from test_pack import compressed_arrays
    d = tmp_path_factory.mktemp("fuzzcli")
    rng = np.random.default_rng(21)
    print("seed", 21)
    np.savez(d / "m.npz", **compressed_arrays(rng, [10, 9, 5]))
    w = ((rng.random((12, 8)) < 0.3) * rng.choice([-3, 1, 500], (12, 8))).astype(np.int16)
    np.save(d / "w.npy", w)
    np.save(d / "b.npy", np.arange(12, dtype=np.int32))
    np.save(d / "x10.npy", rng.integers(-100, 100, (3, 10)).astype(np.int16))
    np.save(d / "x8.npy", rng.integers(-100, 100, (8,)).astype(np.int16))
    np.save(d / "x0.npy", np.zeros((0, 10), np.int16))
    np.save(d / "xf.npy", rng.standard_normal((2, 10)).astype(np.float32))
    np.save(d / "xnan.npy", np.full((1, 10), np.nan, np.float32))
    np.save(d / "x3d.npy", np.zeros((1, 2, 10), np.int16))
    np.save(d / "wf.npy", rng.standard_normal((12, 8)))
    (d / "j.json").write_text('{"format": "sparsa-bench-eie"}')
    (d / "j.npy").write_text("[1, 2, 3]")
    (d / "junk.npz").write_bytes(b"PK\x03\x04 not really a zip")
    (d / "empty.npy").write_bytes(b"")
    (d / "adir").mkdir()
    assert main(["pack", str(d / "m.npz"), "--pes", "3", "-o", str(d / "pk")]) == 0
    assert main(["pack", str(d / "w.npy"), "--pes", "2", "-o", str(d / "pkw")]) == 0
    return d


INTS = st.one_of(st.integers(-3, 40), st.sampled_from([0, 1, 1023, 1024, 1025, 2 ** 31, 10 ** 20, -(10 ** 20)]))
TEXT = st.one_of(st.sampled_from(["", "-", "--", "x", "1e3", "nan", "0x10", "1.5", " 3", "eie_top", "bad name;",
                                  "module", "a$b", "_x"]), st.text(max_size=8))
VALUE = st.one_of(INTS.map(str), TEXT)

INPUT_NAMES = ["m.npz", "w.npy", "b.npy", "x10.npy", "x8.npy", "x0.npy", "xf.npy", "xnan.npy", "x3d.npy", "wf.npy",
               "j.json", "j.npy", "junk.npz", "empty.npy", "adir", "pk", "pkw", "missing.npy", "missing_dir"]

# command -> (positional input kinds, options: name -> "flag" | "int" | "float" | "in" | "text" | "out")
COMMANDS = {
    "pack": (["in"], {"--pes": "int", "--bias": "in", "--shift": "int", "--relu": "flag", "--lanes": "int",
                      "--conv-datapath": "text", "--wbuf-words": "int", "-o": "outdir"}),
    "unpack": (["in"], {"-o": "out", "--dequantize": "flag"}),
    "inspect": (["in"], {"--json": "flag", "--summary": "flag"}),
    "run": (["in"], {"-i": "in", "-o": "out", "--engine": "engine", "--report": "out", "--dequantize": "flag"}),
    "verilog": (["in?"], {"-o": "out", "--pes": "int", "--max-cols": "int", "--max-rows-pe": "int",
                          "--spm-words": "int", "--ptr-words": "int", "--bias-words": "int", "--max-layers": "int",
                          "--queue-depth": "int", "--macs": "int", "--channels": "int", "--name": "text",
                          "--no-init": "flag"}),
    "report": (["in"], {"-o": "html", "--run": "in", "--bench": "in"}),
}
# Keep generated Verilog small: the fuzzer checks the argument handling, not yosys's speed.
_VERILOG_CAP = {"--pes": 4, "--max-cols": 64, "--max-rows-pe": 64, "--spm-words": 256, "--ptr-words": 64,
                "--bias-words": 64, "--max-layers": 4, "--queue-depth": 16}


@st.composite
def argvs(draw, d, tmp):
    cmd = draw(st.sampled_from(sorted(COMMANDS)))
    positional, options = COMMANDS[cmd]
    argv, outs = [cmd], []
    for kind in positional:
        if kind.endswith("?") and draw(st.booleans()):
            continue
        argv.append(d / draw(st.sampled_from(INPUT_NAMES)))
    names = draw(st.lists(st.sampled_from(sorted(options)), max_size=6, unique=True))
    required = [o for o in ("-o", "-i") if o in options and (draw(st.integers(0, 9)) > 0)]
    for opt in dict.fromkeys(names + required):
        kind = options[opt]
        if kind == "flag":
            argv.append(opt)
            continue
        if kind == "int":
            v = draw(INTS)
            if cmd == "verilog" and opt in _VERILOG_CAP and v > _VERILOG_CAP[opt] and v < 2 ** 24:
                v = _VERILOG_CAP[opt]       # big but valid sizes only cost yosys time
            value = str(v) if draw(st.integers(0, 9)) else draw(VALUE)
        elif kind == "in":
            value = d / draw(st.sampled_from(INPUT_NAMES))
        elif kind == "engine":
            value = draw(st.sampled_from(["golden", "golden", "nope", ""]))
        elif kind in ("out", "outdir", "html"):
            suffix = {"out": draw(st.sampled_from([".npy", ".npz", ".v", ".json", ""])), "outdir": "",
                      "html": draw(st.sampled_from([".html", ".txt"]))}[kind]
            value = tmp / f"out{len(outs)}{suffix}"
            if draw(st.integers(0, 9)) == 0:      # an existing file (overwritten: fine unless an input) or dir
                src = d / draw(st.sampled_from(INPUT_NAMES))   # a copy: the fixture files stay as they are
                value = tmp / f"existing{len(argv)}{src.suffix}"
                if src.is_dir():
                    shutil.copytree(src, value)
                elif src.exists():
                    shutil.copy(src, value)
                value = ("output", value)
            else:
                outs.append(value)
        else:
            value = draw(VALUE)
        argv += [opt, value]
    # The command's inputs are what it must not touch: every fixture path not given as an output.
    given_out = [v[1] for v in argv if isinstance(v, tuple)]
    argv = [v[1] if isinstance(v, tuple) else v for v in argv]
    inputs = [v for v in argv if isinstance(v, Path) and v not in given_out and v not in outs and v.exists()]
    return argv, outs, inputs


def _option(argv, name):
    return argv[argv.index(name) + 1] if name in argv else None


def _result_ok(argv):
    """For exit 0: the result is right (run: the golden model's answer; pack/unpack: readable)."""
    def ok(stdout):
        cmd = argv[0]
        if cmd == "run":
            from sparsa.cli.run import prepare_input
            from sparsa.sw.eie.pack_dir import load_pack
            pack = load_pack(argv[1])
            x = prepare_input(np.load(_option(argv, "-i")), pack, "x")
            y = np.load(_option(argv, "-o"))
            want = pack.run_golden(x) if len(x) else np.zeros((0, pack.output_rows), np.int16)
            if "--dequantize" not in argv:
                assert np.array_equal(y, np.asarray(want).reshape(y.shape)) and y.dtype == np.int16
            assert y.shape == ((pack.output_rows,) if x.ndim == 1 else (len(x), pack.output_rows))
        elif cmd == "pack":
            from sparsa.sw.eie.pack_dir import load_pack
            assert load_pack(_option(argv, "-o")).pes == int(_option(argv, "--pes"))
        elif cmd == "unpack":
            np.load(_option(argv, "-o")).close()
        elif cmd == "verilog":
            assert "endmodule" in Path(_option(argv, "-o")).read_text()
    return ok


@SETTINGS
@given(data=st.data())
def test_fuzz_cli_arguments(files, tmp_path_factory, data):
    tmp = tmp_path_factory.mktemp("cli", numbered=True)
    argv, outs, inputs = data.draw(argvs(files, tmp), label="argv")
    note("sparsa " + " ".join(map(str, argv)))
    check_contract(argv, inputs, outs, ok=_result_ok(argv))
