"""``cell_update`` (sw/eie/lstm_cell.py) bit for bit against a plain-Python-integer reference.

The reference below is written from the specification in the module's docstring and
docs/ese.md, not from the code: the tables are rebuilt with ``math`` from their stated
geometry (64 segments over [-8, 8) and [-4, 4) in Q4.11, ends rounded to Q0.15 and clamped to
the output format), every rounding is ``rnd(a, s) = (a + 2**(s-1)) >> s`` on Python ints
(``>>`` floors) and every saturation a min/max. Seeded random inputs, the format edges and
planted ties (values exactly half an LSB before each rounding shift) are compared.
"""

import math

import numpy as np
import pytest

from sparsa.sw.eie.lstm_cell import cell_update

SEGMENTS = 64


def rnd(a, s):
    return (a + (1 << (s - 1))) >> s


def sat(a, bits):
    return max(-(1 << (bits - 1)), min((1 << (bits - 1)) - 1, a))


def make_table(fn, lo_real, hi_real, out_lo, out_hi):
    """(lo, seg_shift, ends) of a 64-segment table over [lo_real, hi_real) in Q4.11."""
    width = (hi_real - lo_real) * 2048 // SEGMENTS          # Q4.11 units per segment
    shift = width.bit_length() - 1
    if 1 << shift != width:         # the hardware indexes segments by a shift
        raise ValueError(f"segment width {width} is not a power of two")
    lo = lo_real * 2048
    ends = [max(out_lo, min(out_hi, round(fn((lo + k * width) / 2048) * 32768)))
            for k in range(SEGMENTS + 1)]
    return lo, shift, ends


SIG = make_table(lambda x: 1 / (1 + math.exp(-x)), -8, 8, 0, 32767)
TANH = make_table(math.tanh, -4, 4, -32767, 32767)


def lookup(table, z):
    lo, s, ends = table
    z = max(lo, min(lo + (SEGMENTS << s) - 1, z))           # clamp to the table's range
    u = z - lo
    k, r = u >> s, u & ((1 << s) - 1)
    return ends[k] + (((ends[k + 1] - ends[k]) * r) >> s)


def ref_cell(zi, zf, zg, zo, c, w_ic, w_fc, w_oc):
    """The docstring's sequence on one cell, Python ints only. Returns (m, c')."""
    peep = 12 + 15 - 11                                       # Q3.12 * Q8.15 -> Q4.11
    i = lookup(SIG, sat(zi + rnd(w_ic * c, peep), 16))
    f = lookup(SIG, sat(zf + rnd(w_fc * c, peep), 16))
    g = lookup(TANH, zg)
    c2 = sat(rnd(f * c + i * g, 15), 24)
    o = lookup(SIG, sat(zo + rnd(w_oc * c2, peep), 16))
    m = sat(rnd(o * lookup(TANH, sat(rnd(c2, 4), 16)), 15), 16)
    return m, c2


def compare(rows):
    """rows: list of (zi, zf, zg, zo, c, w_ic, w_fc, w_oc) tuples of Python ints."""
    cols = [np.array([r[k] for r in rows], dtype=np.int64) for k in range(8)]
    m, c2 = cell_update(*cols)
    want = [ref_cell(*r) for r in rows]
    assert m.tolist() == [w[0] for w in want]
    assert c2.tolist() == [w[1] for w in want]
    return want


def test_reference_tables_hit_the_documented_points():
    # sigmoid(0) = 1/2 and tanh(0) = 0 exactly; both clamp at the format's ends.
    assert lookup(SIG, 0) == 16384 and lookup(TANH, 0) == 0
    # Outside [-8, 8) and [-4, 4) the input clamps to the table's first and last points.
    assert lookup(SIG, 32767) == lookup(SIG, 8 * 2048 - 1) and lookup(SIG, -32768) == lookup(SIG, -8 * 2048)
    assert lookup(TANH, 32767) == lookup(TANH, 4 * 2048 - 1)
    assert lookup(SIG, -8 * 2048) == round(32768 / (1 + math.exp(8))) == 11
    assert lookup(TANH, -32768) == lookup(TANH, -4 * 2048) == round(math.tanh(-4) * 32768)


@pytest.mark.parametrize("peepholes", [False, True])
def test_cell_update_bit_exact_on_seeded_random_inputs(peepholes):
    seed = 2200 + peepholes
    print("seed", seed)
    rng = np.random.default_rng(seed)
    n = 4000
    z = rng.integers(-32768, 32768, (4, n))
    z[:, : n // 2] //= 4                                      # half of them off the clamps
    c = rng.integers(-(1 << 23), 1 << 23, n)
    c[: n // 2] //= 64                                        # |c| of a few units, as in use
    w = rng.integers(-32768, 32768, (3, n)) if peepholes else np.zeros((3, n), np.int64)
    compare(list(zip(*z.tolist(), c.tolist(), *w.tolist())))


def test_cell_update_bit_exact_at_the_format_edges():
    zs = [-32768, -32767, -1, 0, 1, 32767]
    cs = [-(1 << 23), -(1 << 23) + 1, -1, 0, 1, (1 << 23) - 1]
    ws = [-32768, 0, 32767]
    rows = [(a, b, g, o, c, w, -w, w)
            for a in zs[::2] for b in zs[1::2] for g in zs for o in (zs[0], zs[-1]) for c in cs for w in ws]
    want = compare(rows)
    c2 = [c for _, c in want]
    assert min(c2) == -(1 << 23) and max(c2) == (1 << 23) - 1  # c' saturates both ways


def test_peephole_product_tie_rounds_half_up():
    # w * c = +-2**15 is exactly half of the 2**16 step: rnd gives +1 and 0 (and +-3 * 2**15
    # gives 2 and -1). zg = 8000 makes g large, so the LSB the tie moves i by shows in c'.
    g_in = 8000
    want = compare([(0, 0, g_in, 0, 1 << 15, 1, 0, 0), (0, 0, g_in, 0, -(1 << 15), 1, 0, 0),
                    (0, 0, g_in, 0, 3 << 15, 1, 1, 1), (0, 0, g_in, 0, -(3 << 15), 1, 1, 1)])
    g = lookup(TANH, g_in)
    # First row by hand: zi' = 1, f = sigmoid(0) = 16384, c' = rnd(16384 * 2**15 + i * g, 15).
    i1 = lookup(SIG, 1)
    assert i1 != lookup(SIG, 0)
    assert want[0][1] == ((1 << 29) + i1 * g + (1 << 14)) >> 15
    assert want[1][1] == (-(1 << 29) + 16384 * g + (1 << 14)) >> 15


def test_cell_state_tie_rounds_half_up():
    # Plant f * c + i * g = q * 2**15 + 2**14 exactly: f odd, solve c modulo 2**15.
    seed = 2210
    print("seed", seed)
    rng = np.random.default_rng(seed)
    rows = []
    while len(rows) < 40:
        zi, zf, zg, zo = (int(v) for v in rng.integers(-20000, 20000, 4))
        f, i, g = lookup(SIG, zf), lookup(SIG, zi), lookup(TANH, zg)
        if f % 2 == 0:
            continue
        c0 = ((1 << 14) - i * g) * pow(f, -1, 1 << 15) % (1 << 15)
        c = c0 + (int(rng.integers(-200, 200)) << 15)
        assert (f * c + i * g) % (1 << 15) == 1 << 14
        rows.append((zi, zf, zg, zo, c, 0, 0, 0))
    want = compare(rows)
    assert any(c < 0 for _, c in want) and any(c > 0 for _, c in want)


def test_tanh_input_tie_and_output_tie_round_half_up():
    # f = sigmoid(0) = 16384 and g = tanh(0) = 0 make c' = rnd(c / 2, 0) = c // 2 for even c.
    # (1) c' = 16 q + 8: rnd(c', 4) is a tie. (2) o * tanh(z) = q * 2**15 + 2**14 for an odd o
    # and a reachable tanh value, reached through c' = 16 z.
    rows = [(0, 0, 0, zo, 2 * (16 * q + 8), 0, 0, 0)
            for q in (-1000, -2, -1, 0, 1, 999) for zo in (-3000, 0, 3000)]
    # o * t = 2**14 (mod 2**15) when o = 2**a * odd and t = 2**(14 - a) * odd.
    def val2(v):
        return (v & -v).bit_length() - 1 if v else 99
    tanh_at = {}
    for z in range(-32768, 32768):
        tanh_at.setdefault(lookup(TANH, z), z)
    found = 0
    for zo in range(-8000, 8000, 13):
        o = lookup(SIG, zo)
        for tv, z in tanh_at.items():
            if val2(o) + val2(tv) == 14:
                assert (o * tv) % (1 << 15) == 1 << 14
                rows.append((0, 0, 0, zo, 32 * z, 0, 0, 0))
                found += 1
                break
    assert found >= 4, found
    for r in rows:
        assert ref_cell(*r)[1] == r[4] // 2
    compare(rows)
