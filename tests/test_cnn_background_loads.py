"""LOADs beside computes (flag BG): the instruction-level model's rules, the compiler pass that
moves LOADs, and what it buys on the cycle model. The RTL runs programs with them in
``test_cnn_rtl.py`` and ``test_cnn_networks.py`` (every compiled program there has some: see
``test_compiled_programs_queue_loads_beside_computes``)."""

import numpy as np
import pytest

from sparsa.sw.cnn.config import CNNConfig
from sparsa.sw.cnn.executor import CNNExecError, execute
from sparsa.sw.cnn.isa import LOAD_QUEUE, Flag, Op, Target, encode_program
from sparsa.sw.cnn.overlap import background_loads

CFG = CNNConfig(lanes=4, ibuf_bytes=2048, wbuf_words=512, obuf_depth=256, psum_depth=128)
A, B, OUT1, OUT2 = 0x1000, 0x1040, 0x2000, 0x2040


def load(dram, buf, bg=False, target=Target.IBUF, length=64):
    return dict(op=Op.LOAD, target=target, dram=dram, count=1, length=length, buf=buf,
                flags=Flag.BG if bg else 0)


def copy_pool(buf, obase):
    """POOL k=1: the 8 x 8 channel at ibuf ``buf`` to obuf bank 0 at ``obase``."""
    return dict(op=Op.POOL, count=1, k=1, step=1, gh=8, gw=8, y0=0, x0=0, row0=0, H=8, W=8, buf=buf,
                bstride=64, wo=8, out_rows=8, ostride=64, obase=obase)


def save(obase, dram):
    return dict(op=Op.SAVE, count=1, dram=dram, dstride=64, length=64, buf=obase, ostride=64)


def run(instrs):
    rng = np.random.default_rng(5)
    dram = np.zeros(0x3000, dtype=np.uint8)
    dram[A:A + 128] = rng.integers(0, 256, 128)
    execute(encode_program(instrs), dram, CFG)
    return dram


def test_a_queued_load_feeds_the_next_compute():
    dram = run([load(A, 0), load(B, 1024, bg=True), copy_pool(0, 0), save(0, OUT1),
                copy_pool(1024, 128), save(128, OUT2)])
    np.testing.assert_array_equal(dram[OUT1:OUT1 + 64], dram[A:A + 64])
    np.testing.assert_array_equal(dram[OUT2:OUT2 + 64], dram[B:B + 64])


def test_a_compute_that_reads_what_its_queued_load_writes_is_refused():
    # the queued LOAD overlaps the compute's input by one byte (ibuf 63)
    with pytest.raises(CNNExecError, match="instruction 2 .*queued"):
        run([load(A, 0), load(B, 63, bg=True), copy_pool(0, 0), save(0, OUT1)])


def test_a_conv_that_reads_weights_its_queued_load_writes_is_refused():
    conv = dict(op=Op.CONV, count=1, k=1, step=1, gh=8, gw=8, y0=0, x0=0, row0=0, H=8, W=8, buf=0,
                bstride=64, wo=8, out_rows=8, obase=0, wbase=256)
    wload = load(A, 256, bg=True, target=Target.WBUF, length=8)
    with pytest.raises(CNNExecError, match="queued"):
        run([load(A, 0), wload, conv])
    run([load(A, 0), dict(wload, buf=257), conv, save(0, OUT1)])      # the next word: fine


@pytest.mark.parametrize("between", ["save", "end"])
def test_only_loads_may_come_between_a_queued_load_and_its_compute(between):
    extra = [save(0, OUT1), copy_pool(1024, 0)] if between == "save" else []
    with pytest.raises(CNNExecError, match="only LOADs may come between"):
        run([load(A, 0), copy_pool(0, 0), load(B, 1024, bg=True)] + extra)


def test_the_load_queue_holds_two_and_no_bias():
    assert LOAD_QUEUE == 2
    three = [load(B, 1024 + 64 * i, bg=True) for i in range(3)]
    with pytest.raises(CNNExecError, match="more than 2 LOADs with flag BG"):
        run([load(A, 0)] + three + [copy_pool(0, 0)])
    with pytest.raises(CNNExecError, match="only IBUF and WBUF"):
        run([load(A, 0, bg=True, target=Target.BIAS, length=16), copy_pool(0, 0)])


def test_a_foreground_load_may_not_overwrite_a_queued_one():
    with pytest.raises(CNNExecError, match="queued before it"):
        run([load(B, 1024, bg=True), load(A, 1060), copy_pool(0, 0)])


# The pass (sw/cnn/overlap.py) on hand-made instruction lists

def layer(instrs, n=0):
    for f in instrs:
        f["layer"] = n
    return instrs


def ops(instrs):
    return [(f["op"].name, f.get("buf"), bool(f.get("flags", 0) & Flag.BG)) for f in instrs]


def test_the_pass_moves_the_next_tiles_loads_above_the_compute():
    prog = layer([load(A, 0), copy_pool(0, 0), save(0, OUT1), load(B, 1024), copy_pool(1024, 128), save(128, OUT2)])
    got = ops(background_loads(prog, CFG))
    assert got == [("LOAD", 0, False), ("LOAD", 1024, True), ("POOL", 0, False), ("SAVE", 0, False),
                   ("POOL", 1024, False), ("SAVE", 128, False)]
    assert run(background_loads(layer([load(A, 0), copy_pool(0, 0), save(0, OUT1), load(B, 1024),
                                       copy_pool(1024, 128), save(128, OUT2)]), CFG)) is not None


def test_the_pass_leaves_a_load_that_overwrites_the_computes_input():
    prog = layer([load(A, 0), copy_pool(0, 0), save(0, OUT1), load(B, 32), copy_pool(32, 128)])
    assert not any(f.get("flags", 0) & Flag.BG for f in background_loads(prog, CFG))


def test_the_pass_keeps_layers_bias_and_the_queue_depth():
    # a LOAD of the next layer stays in it
    prog = layer([load(A, 0), copy_pool(0, 0)]) + layer([load(B, 1024), copy_pool(1024, 0)], 1)
    assert not any(f.get("flags", 0) & Flag.BG for f in background_loads(prog, CFG))
    # BIAS never moves; of three free LOADs only LOAD_QUEUE move
    prog = layer([load(A, 0), copy_pool(0, 0), load(A, 0, target=Target.BIAS, length=16)]
                 + [load(B, 1024 + 64 * i) for i in range(3)] + [copy_pool(1024, 0)])
    out = background_loads(prog, CFG)
    assert [f["buf"] for f in out if f.get("flags", 0) & Flag.BG] == [1024, 1088]
    assert out.index(next(f for f in out if f["op"] == Op.POOL)) == 3


def test_the_pass_does_not_reorder_loads_to_the_same_bytes_or_read_past_a_save():
    # LOAD x may not jump a LOAD y that writes the same bytes (y's would land last)
    # (y, 0..127, overlaps the compute's input and stays; x, 100..107, does not, but overlaps y)
    prog = layer([load(A, 0), copy_pool(0, 0), load(A, 0, length=128), load(B, 100, length=8), copy_pool(0, 0)])
    assert not any(f.get("flags", 0) & Flag.BG for f in background_loads(prog, CFG))
    prog[3]["buf"] = 128                   # x next to y: it moves
    assert [f["buf"] for f in background_loads(prog, CFG) if f.get("flags", 0) & Flag.BG] == [128]
    # nor read DRAM that a SAVE it jumps writes
    prog = layer([load(A, 0), copy_pool(0, 0), save(0, B), load(B, 1024), copy_pool(1024, 0)])
    assert not any(f.get("flags", 0) & Flag.BG for f in background_loads(prog, CFG))


# On the RTL (the Verilator build of test_cnn_rtl.py)

def bg_loads(prog):
    from sparsa.sw.cnn.isa import decode_program
    return sum(1 for f in decode_program(prog.program) if f["op"] == Op.LOAD and f["flags"] & Flag.BG)


@pytest.mark.xdist_group("cnn_verilator")
def test_loads_beside_computes_save_rtl_cycles_and_change_no_result():
    """One random graph compiled twice, with LOADs beside computes and without: both are
    bit-exact on every layer, and the RTL's cycles drop by what the cycle model says (within
    its 0.5%)."""
    from cnn_cases import check_cycle_model, random_graph, run_every_layer_on_rtl
    from sparsa.sw.cnn.compiler import compile_graph
    from sparsa.sw.cnn.timing import program_cycles
    from test_cnn_rtl import HW
    print("seed", 1)
    graph, x = random_graph(1)
    runs = {}
    for bg in (True, False):
        prog = compile_graph(graph, HW, "direct", background=bg)
        assert (bg_loads(prog) > 0) == bg
        res = run_every_layer_on_rtl(prog, graph, x)
        check_cycle_model(prog, res, rel=0.005, layer_rel=0.01)
        runs[bg] = (program_cycles(prog.program).cycles, int(res["cycles"][0]))
    (model_bg, rtl_bg), (model_fg, rtl_fg) = runs[True], runs[False]
    print(f"RTL cycles: {rtl_fg:,} with every LOAD in turn, {rtl_bg:,} with LOADs beside computes")
    assert rtl_bg < rtl_fg
    assert abs((rtl_fg - rtl_bg) - (model_fg - model_bg)) <= 0.005 * rtl_fg


def test_compiled_programs_queue_loads_beside_computes():
    """The RTL tests' programs do exercise flag BG (on both datapaths)."""
    from cnn_cases import random_graph
    from sparsa.sw.cnn.compiler import compile_graph
    from test_cnn_rtl import HW
    for datapath in ("direct", "winograd"):
        graph, _ = random_graph(0)
        assert bg_loads(compile_graph(graph, HW, datapath)) > 0


def test_the_pass_does_not_queue_two_loads_to_the_same_bytes():
    # both would be free of the compute's input, but the second overwrites the first
    prog = layer([load(A, 0), copy_pool(0, 0), load(B, 1024), load(A, 1056), copy_pool(1024, 0)])
    out = background_loads(prog, CFG)
    assert [f["buf"] for f in out if f.get("flags", 0) & Flag.BG] == [1024]
    run(out + [save(0, OUT1)])                  # and the model takes the program
