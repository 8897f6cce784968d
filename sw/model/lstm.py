"""One-layer LSTM (optionally with projection and diagonal peepholes) as PyTorch stores it, and
its float64 reference.

Keys (the ``state_dict()`` of ``nn.LSTM(input_size=I, hidden_size=H, proj_size=P)``, saved with
numpy): ``weight_ih_l0`` (4H, I), ``weight_hh_l0`` (4H, P or H), ``bias_ih_l0`` and
``bias_hh_l0`` (4H, optional), ``weight_hr_l0`` (P, H, optional: without it P = H). Gate order
i, f, g, o. Optional peepholes ``weight_ic_l0``, ``weight_fc_l0``, ``weight_oc_l0`` (H,).

Step (PyTorch / ESE semantics)::

    z   = W_ih x_t + b_ih + W_hh y_{t-1} + b_hh          split into i, f, g, o
    i   = sigmoid(z_i + w_ic * c_{t-1});  f = sigmoid(z_f + w_fc * c_{t-1});  g = tanh(z_g)
    c_t = f * c_{t-1} + i * g
    o   = sigmoid(z_o + w_oc * c_t)
    m_t = o * tanh(c_t);  y_t = W_hr m_t (or m_t without projection)
"""

from dataclasses import dataclass

import numpy as np

from sparsa.sw.errors import user_error
from sparsa.sw.fileio import check_finite

__all__ = ["LSTMWeights", "lstm_from_arrays", "lstm_forward", "LSTM_KEYS"]

LSTM_KEYS = ("weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0", "weight_hr_l0",
             "weight_ic_l0", "weight_fc_l0", "weight_oc_l0")


@dataclass
class LSTMWeights:
    """Float64 LSTM weights; ``w_hr`` is None without projection, peepholes None without them."""
    w_ih: np.ndarray
    w_hh: np.ndarray
    b_ih: np.ndarray
    b_hh: np.ndarray
    w_hr: np.ndarray = None
    w_ic: np.ndarray = None
    w_fc: np.ndarray = None
    w_oc: np.ndarray = None

    @property
    def hidden(self):
        return self.w_ih.shape[0] // 4

    @property
    def inputs(self):
        return self.w_ih.shape[1]

    @property
    def outputs(self):
        return self.hidden if self.w_hr is None else self.w_hr.shape[0]

    def arrays(self):
        """The state-dict arrays (float32, PyTorch's names)."""
        out = {"weight_ih_l0": self.w_ih, "weight_hh_l0": self.w_hh,
               "bias_ih_l0": self.b_ih, "bias_hh_l0": self.b_hh}
        for key, val in (("weight_hr_l0", self.w_hr), ("weight_ic_l0", self.w_ic),
                         ("weight_fc_l0", self.w_fc), ("weight_oc_l0", self.w_oc)):
            if val is not None:
                out[key] = val
        return {k: np.asarray(v, dtype=np.float32) for k, v in out.items()}


def _get(arrays, key, shape, where, required=True):
    if key not in arrays:
        if required:
            raise user_error(where, key, f"an array of shape {shape}", "no such key")
        return None
    a = arrays[key]
    if a.dtype.kind not in "biuf" or a.shape != shape:
        raise user_error(where, key, f"a float array of shape {shape}", f"{a.dtype} {a.shape}")
    check_finite(a, where, key)
    return a.astype(np.float64)


def lstm_from_arrays(arrays, where=""):
    """Check a state dict (names and shapes) and return :class:`LSTMWeights`."""
    for key in arrays:
        if key not in LSTM_KEYS:
            raise user_error(where, f"array '{key}'", f"only {', '.join(LSTM_KEYS)}", "another name")
    if "weight_ih_l0" not in arrays:
        raise user_error(where, "weight_ih_l0", "an array of shape (4H, I)", "no such key")
    w_ih = arrays["weight_ih_l0"]
    if w_ih.ndim != 2 or w_ih.shape[0] % 4 or w_ih.shape[0] == 0:
        raise user_error(where, "weight_ih_l0", "shape (4H, I)", f"shape {w_ih.shape}")
    h4, i = w_ih.shape
    h = h4 // 4
    p = arrays["weight_hr_l0"].shape[0] if "weight_hr_l0" in arrays and arrays["weight_hr_l0"].ndim == 2 else h
    w = LSTMWeights(
        w_ih=_get(arrays, "weight_ih_l0", (h4, i), where),
        w_hh=_get(arrays, "weight_hh_l0", (h4, p), where),
        b_ih=_get(arrays, "bias_ih_l0", (h4,), where, False),
        b_hh=_get(arrays, "bias_hh_l0", (h4,), where, False),
        w_hr=_get(arrays, "weight_hr_l0", (p, h), where, False),
        w_ic=_get(arrays, "weight_ic_l0", (h,), where, False),
        w_fc=_get(arrays, "weight_fc_l0", (h,), where, False),
        w_oc=_get(arrays, "weight_oc_l0", (h,), where, False))
    w.b_ih = np.zeros(h4) if w.b_ih is None else w.b_ih
    w.b_hh = np.zeros(h4) if w.b_hh is None else w.b_hh
    return w


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def lstm_forward(w, x, *, h0=None, c0=None):
    """Run the LSTM over x (T, I) in float64 from zero state; returns y (T, P)."""
    x = np.asarray(x, dtype=np.float64)
    h = w.hidden
    y = np.zeros(w.outputs) if h0 is None else np.asarray(h0, dtype=np.float64)
    c = np.zeros(h) if c0 is None else np.asarray(c0, dtype=np.float64)
    zero = np.zeros(h)
    w_ic = zero if w.w_ic is None else w.w_ic
    w_fc = zero if w.w_fc is None else w.w_fc
    w_oc = zero if w.w_oc is None else w.w_oc
    out = []
    for xt in x:
        z = w.w_ih @ xt + w.b_ih + w.w_hh @ y + w.b_hh
        zi, zf, zg, zo = z[:h], z[h:2 * h], z[2 * h:3 * h], z[3 * h:]
        ig = _sigmoid(zi + w_ic * c)
        fg = _sigmoid(zf + w_fc * c)
        c = fg * c + ig * np.tanh(zg)
        og = _sigmoid(zo + w_oc * c)
        m = og * np.tanh(c)
        y = m if w.w_hr is None else w.w_hr @ m
        out.append(y)
    return np.array(out)
