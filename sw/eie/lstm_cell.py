"""Fixed-point LSTM arithmetic for the ESE engine: the element-wise unit's exact integer model.

Formats (two's complement integers; "Qm.f" = f fractional bits):

=================  ======================  ====================================================
quantity           format                  notes
=================  ======================  ====================================================
gate pre-activ. z  int16, Q4.11            the gates layer's output stage (bias, shift, sat)
sigmoid(z)         0..32767, Q0.15         64-segment piecewise-linear table over [-8, 8)
tanh(z)            -32767..32767, Q0.15    64-segment piecewise-linear table over [-4, 4)
cell state c       int24, Q8.15            saturated to [-2^23, 2^23 - 1] (|c| < 256)
peephole w         int16, Q3.12            ``weight_ic/fc/oc``
m = o * tanh(c)    int16, Q0.15            the projection layer's input
=================  ======================  ====================================================

A table lookup: clamp z to the table's range, ``u = z - lo``; segment ``k = u >> s`` and
offset ``r = u & (2^s - 1)``; ``y = base[k] + ((slope[k] * r) >> s)`` with ``>>`` an
arithmetic (floor) shift. ``base[k]`` is the function at the segment's left end rounded to
Q0.15 and ``slope[k] = base[k + 1] - base[k]`` (``base[64]`` at the right end), so the
approximation is continuous. Measured max error against float64: see ``PWL_MAX_ERROR``.

Per cell, in the order the gates arrive (i, f, g, o), with ``rnd(a, s) = (a + 2^(s-1)) >> s``::

    zi' = sat16(zi + rnd(w_ic * c, 16))     i = sigmoid(zi')        (12 + 15 - 11 = 16)
    zf' = sat16(zf + rnd(w_fc * c, 16))     f = sigmoid(zf')
    g  = tanh(zg)
    c' = sat24(rnd(f * c + i * g, 15))
    zo' = sat16(zo + rnd(w_oc * c', 16))    o = sigmoid(zo')
    m  = sat16(rnd(o * tanh(sat16(rnd(c', 4))), 15))
"""

import numpy as np

__all__ = ["GATE_FRAC", "Q", "PEEP_FRAC", "C_BITS", "SIG_TABLE", "TANH_TABLE", "sigmoid_q", "tanh_q",
           "cell_update", "PWL_MAX_ERROR"]

GATE_FRAC = 11
Q = 15
PEEP_FRAC = 12
C_BITS = 24
SEGMENTS = 64


def _rnd(a, s):
    return (a + (1 << (s - 1))) >> s


def _sat(a, bits):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(a, lo, hi)


class PWLTable:
    """A 64-segment piecewise-linear table over [lo, lo + 64 * 2^shift) in Q4.11 input units."""

    def __init__(self, fn, lo, shift, out_lo, out_hi):
        self.lo, self.shift = lo, shift
        self.hi = lo + (SEGMENTS << shift) - 1
        xs = (lo + (np.arange(SEGMENTS + 1) << shift)) / (1 << GATE_FRAC)
        ends = np.clip(np.round(fn(xs) * (1 << Q)), out_lo, out_hi).astype(np.int64)
        self.base = ends[:-1]
        self.slope = ends[1:] - ends[:-1]

    def __call__(self, z):
        z = np.clip(np.asarray(z, dtype=np.int64), self.lo, self.hi)
        u = z - self.lo
        k = u >> self.shift
        r = u & ((1 << self.shift) - 1)
        return self.base[k] + ((self.slope[k] * r) >> self.shift)


SIG_TABLE = PWLTable(lambda x: 1 / (1 + np.exp(-x)), lo=-8 << GATE_FRAC, shift=GATE_FRAC - 2,
                     out_lo=0, out_hi=(1 << Q) - 1)
TANH_TABLE = PWLTable(np.tanh, lo=-4 << GATE_FRAC, shift=GATE_FRAC - 3,
                      out_lo=-(1 << Q) + 1, out_hi=(1 << Q) - 1)


def sigmoid_q(z):
    """Q4.11 -> Q0.15 sigmoid (see the module docstring)."""
    return SIG_TABLE(z)


def tanh_q(z):
    """Q4.11 -> Q0.15 tanh."""
    return TANH_TABLE(z)


def _max_error():
    z = np.arange(-(1 << 15), 1 << 15)
    x = z / (1 << GATE_FRAC)
    return {"sigmoid": float(np.max(np.abs(sigmoid_q(z) / (1 << Q) - 1 / (1 + np.exp(-x))))),
            "tanh": float(np.max(np.abs(tanh_q(z) / (1 << Q) - np.tanh(x))))}


PWL_MAX_ERROR = _max_error()


def cell_update(zi, zf, zg, zo, c, w_ic=0, w_fc=0, w_oc=0):
    """One step of the element-wise unit on int arrays (one value per cell); returns (m, c')."""
    z = [np.asarray(a, dtype=np.int64) for a in (zi, zf, zg, zo)]
    c = np.asarray(c, dtype=np.int64)
    w_ic, w_fc, w_oc = (np.asarray(w, dtype=np.int64) for w in (w_ic, w_fc, w_oc))
    peep = PEEP_FRAC + Q - GATE_FRAC
    i = sigmoid_q(_sat(z[0] + _rnd(w_ic * c, peep), 16))
    f = sigmoid_q(_sat(z[1] + _rnd(w_fc * c, peep), 16))
    g = tanh_q(z[2])
    c_new = _sat(_rnd(f * c + i * g, Q), C_BITS)
    o = sigmoid_q(_sat(z[3] + _rnd(w_oc * c_new, peep), 16))
    tc = tanh_q(_sat(_rnd(c_new, Q - GATE_FRAC), 16))
    m = _sat(_rnd(o * tc, Q), 16)
    return m, c_new
