"""The work a pack does on given inputs, and the ideal cycle count it implies.

**The ideal** (the one definition every benchmark uses, :func:`ideal_cycles`): for one layer
and one input vector,

    ideal = max(real / (PEs x macs), nonzero activations)

* ``real`` = the nonzero weights in the columns of the nonzero activations, summed over PEs:
  the real multiply-accumulates. EIE's padding entries (zero-weight entries that break long
  runs of zeros) are **not** counted: they are format overhead, not work.
* ``PEs x macs`` = the total multipliers (``macs`` = multipliers per PE, 1 or 2), each of
  which does at most one multiply a cycle;
* ``nonzero activations`` = the broadcast bound: the array broadcasts one activation a cycle.

Both terms are lower bounds on the cycles any array with that many multipliers and one
broadcast a cycle needs, so measured cycles >= ideal and efficiency = ideal / measured <= 1.
A job of several layers (or an LSTM step: gates layer then projection) adds the layers' ideals.

**The busiest PE** (``busiest_pe_cycles``): ``max(max over PEs of real_k / macs, nonzero
activations)``, where ``real_k`` is PE k's share of ``real``. A PE cannot finish its own work
sooner, so this is a lower bound as well, and a tighter one: it counts the imbalance that the
rows' interleaving over the PEs leaves (row r in PE r % PEs; a layer whose rows do not divide
evenly gives some PEs one row more). ideal <= busiest <= measured; measured / busiest is what
the array's scheduling (queues, stalls, pipeline) loses on top of the imbalance.

``layer_work`` also reports EIE's padded model, ``max(entries / PEs, nonzero activations)``
(``eie_model_cycles``, entries with padding, one multiplier per PE: the paper's Table III
"theoretical"), for reference only.
Layer k's inputs are the golden outputs of layer k - 1, which the hardware must equal.
"""

import numpy as np

from sparsa.sw.eie.golden import run_layers

__all__ = ["ideal_cycles", "layer_work", "input_work", "lstm_work"]


def ideal_cycles(real, nonzero_acts, pes, macs):
    """The ideal cycles of one layer on one input (see the module docstring): ``real`` nonzero
    weights in the active columns, ``nonzero_acts`` nonzero activations, ``pes`` PEs with
    ``macs`` multipliers each."""
    if macs not in (1, 2) or pes < 1:
        raise ValueError(f"pes must be >= 1 and macs 1 or 2 (got pes={pes}, macs={macs})")
    return max(real / (pes * macs), float(nonzero_acts))


def input_work(layer, xi, pes, macs, nreal=None):
    """Work of one packed layer on one input vector ``xi``: (nonzero activations, entries per
    PE, real entries per PE, ideal, EIE padded model, busiest PE's bound)."""
    if nreal is None:
        nreal = [np.concatenate([[0], np.cumsum(s.v != 0)]) for s in layer.slices]
    active = np.flatnonzero(xi)
    ent = np.array([int((s.ptr[active + 1] - s.ptr[active]).sum()) for s in layer.slices])
    real = np.array([int((n[s.ptr[active + 1]] - n[s.ptr[active]]).sum())
                     for s, n in zip(layer.slices, nreal)])
    return (int(active.size), ent, real, ideal_cycles(int(real.sum()), active.size, pes, macs),
            max(ent.sum() / pes, float(active.size)), max(float(real.max(initial=0)) / macs, float(active.size)))


def _record(pes):
    return {"nonzero_activations": 0, "entries_per_pe": np.zeros(pes, np.int64),
            "real_per_pe": np.zeros(pes, np.int64), "ideal_cycles": 0.0, "eie_model_cycles": 0.0,
            "busiest_pe_cycles": 0.0}


def _add(rec, work):
    nact, ent, real, ideal, eie, busiest = work
    rec["nonzero_activations"] += nact
    rec["entries_per_pe"] += ent
    rec["real_per_pe"] += real
    rec["ideal_cycles"] += ideal
    rec["eie_model_cycles"] += eie
    rec["busiest_pe_cycles"] += busiest


def _finish(rec):
    rec["entries_per_pe"] = rec["entries_per_pe"].tolist()
    rec["real_per_pe"] = rec["real_per_pe"].tolist()
    return rec


def layer_work(pack, x, macs=1):
    """Per layer, summed over the batch: a dict with ``nonzero_activations``,
    ``entries_per_pe``, ``real_per_pe`` (lists), ``ideal_cycles`` (:func:`ideal_cycles` at
    ``macs`` multipliers per PE), ``busiest_pe_cycles`` and ``eie_model_cycles`` (EIE's
    padded model)."""
    x = np.atleast_2d(np.asarray(x))
    acts = [x] + run_layers(pack.golden_layers(), x, keep_all=True)[:-1]
    out = []
    for layer, xin in zip(pack.layers, acts):
        nreal = [np.concatenate([[0], np.cumsum(s.v != 0)]) for s in layer.slices]
        rec = _record(pack.pes)
        for xi in xin:
            _add(rec, input_work(layer, xi, pack.pes, macs, nreal))
        out.append(_finish(rec))
    return out


def lstm_work(pack, x, macs=1):
    """Per LSTM step of an LSTM pack on int16 x (T, I) from zero state (as
    :func:`sparsa.sw.eie.lstm_step.lstm_golden` runs it): a list of ``[gates, projection]``
    records (as :func:`layer_work`'s), the step's ideal being the sum of the two."""
    from sparsa.sw.eie.lstm_step import lstm_steps
    steps = []
    for gates_input, m, _, _ in lstm_steps(pack, x):
        rec_g, rec_p = _record(pack.pes), _record(pack.pes)
        _add(rec_g, input_work(pack.layers[0], gates_input, pack.pes, macs))
        _add(rec_p, input_work(pack.layers[1], m, pack.pes, macs))
        steps.append([_finish(rec_g), _finish(rec_p)])
    return steps
