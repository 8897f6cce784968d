"""The LSTM step scheduler: how one ESE time step runs on the EIE array, and its golden model.

One step is two EIE layers on the same PE array (the packing is :mod:`sparsa.sw.lstm.pack`):

1. **gates** over ``[y_{t-1}; x_t]``, rows in hardware order: PE ``k``'s local row ``4l + g``
   holds gate ``g`` (i, f, g, o) of cell ``h = l * N + k`` (:func:`hw_gate_rows`), so the
   output stage hands the four gates of one cell to the element-wise unit
   (:mod:`.lstm_cell`, hardware :mod:`sparsa.hw.eie.lstm_ew`) in four consecutive cycles;
2. **projection** of ``m_t``, written where the next step's gates layer reads ``y``.

:func:`lstm_golden` runs steps exactly as the hardware does (bit for bit).
"""

import numpy as np

from sparsa.sw.eie.golden import layer_forward
from sparsa.sw.eie.lstm_cell import cell_update

__all__ = ["hw_gate_rows", "gate_layout", "round_up", "lstm_steps", "lstm_golden"]


def round_up(n, pes):
    """``n`` rounded up to a multiple of ``pes`` (H' and P')."""
    return -(-n // pes) * pes


def hw_gate_rows(hidden_pad, pes):
    """PyTorch gate row (g * H' + h) of every hardware row R (see the module docstring)."""
    r = np.arange(4 * hidden_pad)
    local, k = np.divmod(r, pes)
    l, g = np.divmod(local, 4)
    return g * hidden_pad + l * pes + k


def gate_layout(hidden, pes):
    """For every hardware row of the gates layer: its gate (0..3), its cell, and whether the
    cell is real (not padding up to H'). Returns ``(gate, cell, real)`` arrays of length 4H'."""
    hp = round_up(hidden, pes)
    gate, cell = np.divmod(hw_gate_rows(hp, pes), hp)
    return gate, cell, cell < hidden


def lstm_steps(pack, x):
    """Run an LSTM pack over int16 x (T, I) from zero state exactly as the hardware does, and
    yield each step's ``(gates_input, m, y, c)``: the gates layer's input vector
    ``[y_{t-1}; x_t]`` (P' + I), the element-wise unit's output ``m`` (int16, H'), the
    projection's output ``y`` (int16, P') and the cell state ``c`` after the step."""
    meta = pack.lstm
    hp, pp = meta["hidden_pad"], meta["outputs_pad"]
    gates, proj = pack.golden_layers()
    g, cell, _ = gate_layout(meta["hidden"], pack.pes)
    peep = meta["peep"].astype(np.int64)
    w = [np.zeros(hp, np.int64) for _ in range(4)]
    for gate in range(4):
        w[gate][cell[g == gate]] = peep[g == gate]
    vec = np.zeros(pp + meta["inputs"], dtype=np.int16)
    c = np.zeros(hp, dtype=np.int64)
    for xt in np.atleast_2d(x):
        vec[pp:] = xt
        gates_input = vec.copy()
        z = np.zeros((4, hp), np.int64)
        z[g, cell] = layer_forward(gates, vec).astype(np.int64)
        m, c = cell_update(z[0], z[1], z[2], z[3], c, w[0], w[1], w[3])
        m = m.astype(np.int16)
        y = layer_forward(proj, m)
        vec[:pp] = y
        yield gates_input, m, y, c


def lstm_golden(pack, x, *, keep_state=False):
    """Bit-exact run of an LSTM pack over int16 x (T, I) from zero state -> y (T, P) int16."""
    p = pack.lstm["outputs"]
    out, c = [], np.zeros(pack.lstm["hidden_pad"], dtype=np.int64)
    for _, _, y, c in lstm_steps(pack, x):
        out.append(y[:p])
    y = np.array(out, dtype=np.int16).reshape(-1, p)
    return (y, c) if keep_state else y
