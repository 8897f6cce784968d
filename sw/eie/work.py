"""The work a pack does on given inputs, and the ideal cycle count it implies.

For each layer and input vector: the nonzero input activations (what the broadcast must send)
and, per PE, the entries and the real (non-padding) entries in the active columns. The
ideal cycle count of a layer is EIE's model, ``max(entries / PEs, nonzero activations)``
(padding counted, as in the paper's Table III); ``ideal_no_padding`` counts real entries only.
Layer k's inputs are the golden outputs of layer k - 1, which the hardware must equal.
"""

import numpy as np

from sparsa.sw.eie.golden import run_layers

__all__ = ["layer_work", "ideal_cycles"]


def ideal_cycles(entries, real, nonzero_acts, pes):
    """EIE's ideal for one layer and one input (see the module docstring)."""
    return max(entries / pes, nonzero_acts), max(real / pes, nonzero_acts)


def layer_work(pack, x):
    """Per layer, summed over the batch: a dict with ``nonzero_activations``,
    ``entries_per_pe``, ``real_per_pe`` (lists), ``ideal_cycles`` and ``ideal_no_padding``."""
    x = np.atleast_2d(np.asarray(x))
    acts = [x] + run_layers(pack.golden_layers(), x, keep_all=True)[:-1]
    out = []
    for layer, xin in zip(pack.layers, acts):
        nreal = [np.concatenate([[0], np.cumsum(s.v != 0)]) for s in layer.slices]
        rec = {"nonzero_activations": 0, "entries_per_pe": np.zeros(pack.pes, np.int64),
               "real_per_pe": np.zeros(pack.pes, np.int64), "ideal_cycles": 0.0, "ideal_no_padding": 0.0}
        for xi in xin:
            active = np.flatnonzero(xi)
            ent = np.array([int((s.ptr[active + 1] - s.ptr[active]).sum()) for s in layer.slices])
            real = np.array([int((n[s.ptr[active + 1]] - n[s.ptr[active]]).sum())
                             for s, n in zip(layer.slices, nreal)])
            ideal, free = ideal_cycles(ent.sum(), real.sum(), active.size, pack.pes)
            rec["nonzero_activations"] += int(active.size)
            rec["entries_per_pe"] += ent
            rec["real_per_pe"] += real
            rec["ideal_cycles"] += ideal
            rec["ideal_no_padding"] += free
        rec["entries_per_pe"] = rec["entries_per_pe"].tolist()
        rec["real_per_pe"] = rec["real_per_pe"].tolist()
        out.append(rec)
    return out
