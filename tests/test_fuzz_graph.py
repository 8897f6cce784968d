"""Fuzz harness (issue 26): mutated CNN graph files against `sparsa pack`, `inspect`, `run` and
`compress`.

Each example starts from a real graph file (an integer graph for the CNN engine, or its float
twin for `sparsa compress`), applies 1-4 mutations to its JSON (:func:`mutate_json`: a field's
type or value changed or deleted, a layer duplicated, dropped or the order reversed, a list
cut or grown, an integer nudged) and 0-2 to its arrays (dtype, shape, values out of range, an
array deleted, renamed or added). The contract: exit 0 with a correct result, or exit 2 with one
line, no traceback, nothing written, the graph file untouched.

A correct result for an integer graph: the pack's compiled program, run on the instruction-level
executor, and ``sparsa run`` both give the golden model's answer for the mutated graph as
loaded from the file. For a float graph: `compress` writes an integer graph that loads and
validates. ``make test``: a bounded derandomized run; ``make fuzz``: a long one.
"""

import json
import shutil

import numpy as np
import pytest
from cnn_cases import Builder
from hypothesis import event, given, note, settings
from hypothesis import strategies as st
from test_fuzz_cli import EXAMPLES, SETTINGS, check_contract, mutate_json

from sparsa.cli import main

pytestmark = pytest.mark.xdist_group("fuzz_graph")

SEED = 31


@pytest.fixture(scope="module")
def base(tmp_path_factory):
    """A small integer graph with every op (conv with stride and padding, both pools, a residual
    add, a linear head) and a float graph of the same structure."""
    print("seed", SEED)
    rng = np.random.default_rng(SEED)
    b = Builder(rng, (3, 9, 9))
    a = b.conv(6, 3, pad=1)
    b.conv(6, 3, pad=1)
    b.add(a, b.prev, relu=True)
    b.conv(5, 3, stride=2, pad=1)
    b.pool(2, stride=1)
    b.pool(2, avg=True)
    b.linear(7)
    spec, arrays = b.spec, b.arrays
    fspec = json.loads(json.dumps(spec))
    fspec["input"]["dtype"] = "float32"
    for layer in fspec["layers"]:
        layer.pop("shift", None)
    farrays = {k: (v / 64.0).astype(np.float32) for k, v in arrays.items()}
    return {"int": (spec, arrays), "float": (fspec, farrays)}


ARRAY_OPS = ["dtype", "dtype", "shape", "range", "delete", "rename", "extra", "empty"]


@st.composite
def mutated_arrays(draw, arrays):
    arrays = dict(arrays)
    for _ in range(draw(st.integers(0, 2))):
        if not arrays:
            break
        name = draw(st.sampled_from(sorted(arrays)))
        a = arrays[name]
        op = draw(st.sampled_from(ARRAY_OPS))
        if op == "dtype":
            arrays[name] = a.astype(draw(st.sampled_from([np.float32, np.float64, np.int16, np.int32, np.int64,
                                                           np.uint8, np.bool_, np.float16])))
        elif op == "shape":
            arrays[name] = draw(st.sampled_from([a.reshape(-1), a[..., None], a[:-1] if len(a) else a,
                                                 np.concatenate([a, a[:1]]) if a.ndim else a[None]]))
        elif op == "range":
            big = draw(st.sampled_from([128, -129, 2 ** 31, 2 ** 40]))
            arrays[name] = a.astype(np.int64) + np.int64(big)
        elif op == "delete":
            del arrays[name]
        elif op == "rename":
            arrays[name + "_"] = arrays.pop(name)
        elif op == "extra":
            arrays["extra"] = np.zeros(3, np.int8)
        elif op == "empty":
            arrays[name] = a[:0]
        note(f"array {op} {name}")
    return arrays


@st.composite
def mutated_spec(draw, spec):
    """The graph's JSON with 1-4 mutations, or (a third of the time) as it is."""
    return mutate_json(draw, spec) if draw(st.integers(0, 2)) else spec


def _write(path, spec, arrays):
    np.savez(path, graph=np.array(json.dumps(spec)), **arrays)


def _int_ok(g, pk, x, y):
    """exit 0 of pack and run: the compiled program and the run both equal the golden model of
    the graph as the file holds it."""
    from sparsa.sw.cnn.golden import cnn_forward
    from sparsa.sw.cnn.pack import load_cnn_pack
    from sparsa.sw.model.graph import load_graph

    def ok(_stdout):
        graph = load_graph(g)
        xs = np.load(x)
        want = cnn_forward(graph, xs)
        prog, _, _ = load_cnn_pack(pk)
        for xb, wb in zip(xs, want):
            got, _ = prog.run(xb)
            assert np.array_equal(got.reshape(wb.shape), wb)
        if y is not None:
            assert np.array_equal(np.load(y).reshape(want.shape), want)
    return ok


@settings(SETTINGS, max_examples=4 * EXAMPLES)       # a graph example takes a few ms
@given(data=st.data())
def test_fuzz_mutated_graph(base, tmp_path_factory, data):
    kind = data.draw(st.sampled_from(["int", "int", "float"]), label="kind")
    spec0, arrays0 = base[kind]
    spec = data.draw(mutated_spec(spec0), label="spec")
    arrays = data.draw(mutated_arrays(arrays0), label="arrays")
    tmp = tmp_path_factory.mktemp("graph", numbered=True)
    g = tmp / "g.npz"
    _write(g, spec, arrays)
    if kind == "float":
        rc, _ = check_contract(["compress", g, "--density", "0.5", "-o", tmp / "c.npz"], [g],
                               [tmp / "c.npz"])
        event(f"compress exit {rc}")
        if rc == 0:
            from sparsa.sw.cnn.golden import validate_int_graph
            from sparsa.sw.model.graph import load_graph
            validate_int_graph(load_graph(tmp / "c.npz"), "c.npz")
        shutil.rmtree(tmp)
        return
    pk = tmp / "pk"
    rc, _ = check_contract(["pack", g, "--lanes", "4", "-o", pk], [g], [pk])
    event(f"pack exit {rc}")
    if rc == 0:
        from sparsa.sw.model.graph import load_graph
        shape = load_graph(g).input_shape
        x = tmp / "x.npy"
        np.save(x, np.random.default_rng(SEED).integers(-128, 128, (2, *shape)).astype(np.int8))
        _int_ok(g, pk, x, None)("")
        check_contract(["inspect", pk], [pk, g], [])
        check_contract(["run", pk, "-i", x, "-o", tmp / "y.npy"], [pk, g, x], [tmp / "y.npy"],
                       ok=_int_ok(g, pk, x, tmp / "y.npy"))
    shutil.rmtree(tmp)


@pytest.mark.parametrize("kind", ["int", "float"])
def test_fuzz_graph_unmutated_files_pass(base, tmp_path, kind):
    """The harness's baseline: the graphs as written pack, run and compress."""
    spec, arrays = base[kind]
    g = tmp_path / "g.npz"
    _write(g, spec, arrays)
    if kind == "float":
        assert main(["compress", str(g), "--density", "0.5", "-o", str(tmp_path / "c.npz")]) == 0
        return
    assert main(["pack", str(g), "--lanes", "4", "-o", str(tmp_path / "pk")]) == 0
    np.save(tmp_path / "x.npy", np.random.default_rng(SEED).integers(-128, 128, (2, 3, 9, 9)).astype(np.int8))
    rc, _ = check_contract(["run", tmp_path / "pk", "-i", tmp_path / "x.npy", "-o", tmp_path / "y.npy"],
                           [g], [tmp_path / "y.npy"], ok=_int_ok(g, tmp_path / "pk", tmp_path / "x.npy",
                                                                 tmp_path / "y.npy"))
    assert rc == 0
