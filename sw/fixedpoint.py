"""Fixed-point helpers shared by compression, the golden models and the tests.

Conventions (documented in docs/formats.md):

* A value with ``f`` fractional bits is stored as the integer ``q = round(x * 2**f)``, where
  ``round`` is round-half-up (``floor(t + 0.5)``), then saturated to the container.
* A right shift by ``S > 0`` rounds: ``(a + 2**(S-1)) >> S`` with an arithmetic (flooring)
  shift, i.e. round-half-up as well.
"""

import numpy as np

__all__ = ["quantize", "dequantize", "round_shift", "saturate", "INT16_MIN", "INT16_MAX"]

INT16_MIN, INT16_MAX = -(1 << 15), (1 << 15) - 1


def saturate(a, bits=16):
    lo, hi = -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return np.clip(a, lo, hi)


def quantize(x, frac_bits, bits=16, dtype=np.int16):
    """Float to fixed point with ``frac_bits`` fractional bits: round half up, saturate."""
    q = np.floor(np.asarray(x, dtype=np.float64) * (2.0 ** frac_bits) + 0.5)
    return saturate(q, bits).astype(dtype)


def dequantize(q, frac_bits):
    return np.asarray(q, dtype=np.float64) * (2.0 ** -frac_bits)


def round_shift(acc, shift):
    """``(acc + 2**(shift-1)) >> shift`` for ``shift > 0``; ``acc`` unchanged for 0 (int64)."""
    acc = np.asarray(acc, dtype=np.int64)
    if shift <= 0:
        return acc
    return (acc + (np.int64(1) << np.int64(shift - 1))) >> np.int64(shift)
